// vision.motion — motion events from camera frames: background subtraction (MOG2, KNN) or
// frame differencing (MotionDetector), with hysteresis (MotionEvents). One detector per
// camera: frames from several nodes or cameras (origin, stream) never mix.
//
// Ports: in (blob: frames; JPEG/PNG images are decoded, so this stage can sit on the far
// side of a link behind image.encode)
//   -> out (event): {event: start, event_id, camera, start, start_frame, boxes, area, width,
//      height} once start_after frames had motion (event time: the first of them), and
//      {event: end, ..., end, duration_s, end_frame, frames, peak_area, peak_frame,
//      peak_time, boxes (at the peak), bounds, ended_by} after end_after quiet frames (event
//      time: the last frame with motion). Boxes are [x, y, w, h] in frame pixels.
//   -> snapshots (image): with `snapshot`, a JPEG of the event's first frame (sent with its
//      start) or peak frame (sent with its end), fields event_id, event, camera, frame,
//      boxes. With snapshot_base64 the event also carries it as a base64 string field
//      `snapshot_jpeg`, for JSON consumers.
//   -> boxes (record): with per_frame, every frame after warmup: {camera, frame, motion,
//      boxes, area, event_id (0 outside an event)}.
// Options: see spec() below; `roi` and `exclude` take polygons "x,y x,y x,y ..." in pixels or
// percent ("0,0 100%,0 100%,60% 0,60%").
//
//   - id: motion
//     op: vision.motion
//     from: cam
//     with: { method: mog2, min_area: 400, start_after: 2, end_after: 20, snapshot: peak }
#include <map>
#include <opencv2/imgproc.hpp>
#include <string>
#include <utility>
#include <vector>

#include "operators/image/base64.h"
#include "operators/image/frame.h"
#include "operators/vision/motion_detector.h"
#include "runtime/duration.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

constexpr int kOut = 0, kSnapshots = 1, kBoxes = 2;

MotionMethod parse_method(const std::string& m) {
  if (m == "knn") return MotionMethod::kKnn;
  if (m == "diff") return MotionMethod::kDiff;
  return MotionMethod::kMog2;
}

std::vector<RegionPolygon> parse_polygons(const Options& o, const std::string& option) {
  std::vector<RegionPolygon> out;
  for (const std::string& text : o.get_list(option)) {
    std::string why;
    auto p = parse_polygon(text, why);
    if (!p)
      throw OptionError(option, why,
                        "a polygon is \"x,y x,y x,y ...\", like \"0,0 50%,0 50%,100%\"");
    out.push_back(std::move(*p));
  }
  return out;
}

MotionDetector::Config detector_config(const Options& o) {
  MotionDetector::Config c;
  c.method = parse_method(o.get_string("method"));
  if (o.has("threshold")) c.threshold = o.get_double("threshold");
  c.min_area = static_cast<int>(o.get_int("min_area"));
  c.blur = static_cast<int>(o.get_int("blur"));
  if (c.blur > 1 && c.blur % 2 == 0)
    throw OptionError("blur", "must be odd (got " + std::to_string(c.blur) + ")",
                      "use " + std::to_string(c.blur + 1) + ", or 0 for no blur");
  c.erode = static_cast<int>(o.get_int("erode"));
  c.dilate = static_cast<int>(o.get_int("dilate"));
  c.learning_rate = o.get_double("learning_rate");
  c.warmup = static_cast<int>(o.get_int("warmup"));
  c.history = static_cast<int>(o.get_int("history"));
  c.shadows = o.get_bool("shadows");
  c.color = o.get_bool("color");
  c.merge_gap = static_cast<int>(o.get_int("merge_gap"));
  c.include = parse_polygons(o, "roi");
  c.exclude = parse_polygons(o, "exclude");
  return c;
}

Value box_value(const cv::Rect& r) { return Array{r.x, r.y, r.width, r.height}; }

Value boxes_value(const std::vector<cv::Rect>& boxes) {
  Array a;
  a.reserve(boxes.size());
  for (const cv::Rect& r : boxes) a.push_back(box_value(r));
  return a;
}

class VisionMotion : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "vision.motion";
    s.summary =
        "Motion events (start, end, boxes, peak area) from camera frames: MOG2, KNN or frame "
        "differencing.";
    s.example =
        "- id: motion\n  op: vision.motion\n  from: cam\n"
        "  with: { method: mog2, min_area: 400, start_after: 2, end_after: 20, snapshot: peak }";
    s.inputs = {{"in", "blob", "camera frames, or JPEG/PNG images (decoded here)"}};
    s.outputs = {
        {"out", "event",
         "start and end of each motion event: event_id, camera, start, end, boxes [x,y,w,h], "
         "peak_area, frames..."},
        {"snapshots", "image", "JPEG of each event's first or peak frame (option snapshot)"},
        {"boxes", "record",
         "per frame after warmup: camera, frame, motion, boxes, area, event_id (option "
         "per_frame)"},
    };
    s.options = {
        opt_enum("method", {"mog2", "knn", "diff"},
                 "background subtraction (mog2, knn) or difference with the previous frame")
            .def("mog2"),
        opt_double("threshold",
                   "foreground threshold: mog2 variance (default 16), knn squared distance "
                   "(default 400), diff gray levels (default 25)")
            .greater_than(0),
        opt_int("min_area", "smallest moving blob, pixels").def("150").at_least(0),
        opt_int("blur", "Gaussian blur kernel before detection, odd (0: none)")
            .def("5")
            .at_least(0)
            .at_most(31),
        opt_int("erode", "3x3 erosions of the mask (removes speckle)")
            .def("1")
            .at_least(0)
            .at_most(20),
        opt_int("dilate", "3x3 dilations of the mask (joins the parts of an object)")
            .def("3")
            .at_least(0)
            .at_most(20),
        opt_double("learning_rate",
                   "background learning rate: mog2/knn -1 = automatic; diff > 0 compares with "
                   "a running average instead of the previous frame")
            .def("-1")
            .at_least(-1)
            .at_most(1),
        opt_int("warmup", "frames that only teach the model, never reported").def("10").at_least(0),
        opt_int("history", "mog2/knn: frames of history").def("500").at_least(1),
        opt_bool("shadows", "mog2/knn: detect shadows and leave them out of the motion")
            .def("false"),
        opt_bool("color", "mog2/knn: model color rather than gray (slower)").def("false"),
        opt_int("merge_gap", "boxes at most this many pixels apart become one")
            .def("8")
            .at_least(0),
        opt_list("roi",
                 "polygons where motion counts, \"x,y x,y x,y...\" in pixels or % "
                 "(default: the whole frame)")
            .def("[]"),
        opt_list("exclude", "polygons where motion never counts (trees, a road)").def("[]"),
        opt_int("start_after", "consecutive frames with motion that start an event")
            .def("2")
            .at_least(1),
        opt_int("end_after", "consecutive quiet frames that end it").def("10").at_least(1),
        opt_bool("per_frame", "send every frame's boxes on the boxes output").def("false"),
        opt_enum("snapshot", {"none", "first", "peak"},
                 "JPEG of the event's first frame (with start) or peak frame (with end)")
            .def("none"),
        opt_int("snapshot_quality", "JPEG quality of snapshots").def("85").at_least(1).at_most(100),
        opt_bool("snapshot_boxes", "draw the boxes on snapshots").def("true"),
        opt_bool("snapshot_base64",
                 "also put the snapshot in the event as a base64 field snapshot_jpeg")
            .def("false"),
    };
    return s;
  }

  explicit VisionMotion(const Options& o)
      : detector_config_(detector_config(o)),
        events_config_{static_cast<int>(o.get_int("start_after")),
                       static_cast<int>(o.get_int("end_after"))},
        per_frame_(o.get_bool("per_frame")),
        snapshot_(o.get_string("snapshot")),
        snapshot_quality_(static_cast<int>(o.get_int("snapshot_quality"))),
        snapshot_boxes_(o.get_bool("snapshot_boxes")),
        snapshot_base64_(o.get_bool("snapshot_base64")) {
    if (snapshot_base64_ && snapshot_ == "none") {
      throw OptionError("snapshot_base64", "needs a snapshot to carry",
                        "set snapshot: first or snapshot: peak");
    }
  }

  void process(int, MessagePtr m, Context& ctx) override {
    cv::Mat pixels;
    std::string why;
    if (!frame_pixels(m->blob, pixels, why)) return ctx.error(m.get(), why);
    if (pixels.empty()) return ctx.error(m.get(), "an empty frame (0x0 pixels)");
    if (pixels.depth() != CV_8U || (pixels.channels() != 1 && pixels.channels() != 3))
      return ctx.error(m.get(), "frames must be 8-bit gray or BGR");
    Camera& cam = camera(*m);
    int64_t frame = cam.next_frame;
    if (const Value* f = find_field(m->fields, "frame"); f && f->v.index() == 2)
      frame = std::get<int64_t>(f->v);
    cam.next_frame = frame + 1;

    FrameMotion motion = cam.detector.apply(pixels);
    if (motion.warming_up) return;
    MotionEvents::Step step = cam.events.observe(frame, m->event_time_us, motion);
    // Frames are kept by reference (no copy) until their event's snapshot is taken.
    if (step.run_began && snapshot_ == "first")
      cam.first = {pixels, m->blob, m->event_time_us, frame};
    if (step.new_peak && snapshot_ == "peak") cam.peak = {pixels, m->blob, m->event_time_us, frame};
    if (step.started) emit_start(*m, cam, step.event, pixels.size(), ctx);
    if (step.ended) emit_end(*m, cam, step.event, "quiet", ctx);
    if (!cam.events.in_run()) cam.first = cam.peak = {};  // a flicker that never became an event
    if (per_frame_) {
      auto b = ctx.make_message(m->event_time_us);
      b->origin = m->origin;
      b->fields = {{"camera", m->stream},
                   {"frame", frame},
                   {"motion", motion.motion()},
                   {"boxes", boxes_value(motion.boxes)},
                   {"area", motion.area},
                   {"event_id", cam.events.active() ? cam.events.current().id : int64_t{0}}};
      ctx.emit(kBoxes, std::move(b));
    }
  }

  void close(Context& ctx) override {
    for (auto& [key, cam] : cameras_) {
      if (auto e = cam.events.finish()) {
        Message about;
        about.origin = cam.origin;
        about.stream = cam.stream;
        emit_end(about, cam, *e, "end of input", ctx);
      }
    }
  }

 private:
  // A frame kept for a snapshot: its pixels and its blob (a JPEG input is reused as is).
  struct Held {
    cv::Mat pixels;
    Blob blob;
    int64_t time_us = 0;
    int64_t frame = 0;
  };
  struct Camera {
    Camera(const MotionDetector::Config& d, const MotionEvents::Config& e)
        : detector(d), events(e) {}
    MotionDetector detector;
    MotionEvents events;
    std::string origin, stream;
    int64_t next_frame = 0;
    cv::Size size;
    Held first, peak;
  };

  Camera& camera(const Message& m) {
    std::string key = m.origin;
    key += '\x1f';
    key += m.stream;
    auto it = cameras_.find(key);
    if (it == cameras_.end()) {
      it = cameras_.try_emplace(key, detector_config_, events_config_).first;
      it->second.origin = m.origin;
      it->second.stream = m.stream;
    }
    return it->second;
  }

  void emit_start(const Message& m, Camera& cam, const MotionEvent& e, cv::Size size,
                  Context& ctx) {
    cam.size = size;
    auto out = ctx.make_message(e.start_us);
    out->origin = m.origin;
    out->fields = {{"event", "start"},
                   {"event_id", e.id},
                   {"camera", m.stream},
                   {"start", format_iso8601(e.start_us)},
                   {"start_frame", e.start_frame},
                   {"boxes", boxes_value(e.first_boxes)},
                   {"area", e.first_area},
                   {"width", size.width},
                   {"height", size.height}};
    if (snapshot_ == "first") attach_snapshot(*out, cam, cam.first, e, e.first_boxes, "start", ctx);
    ctx.emit(kOut, std::move(out));
  }

  void emit_end(const Message& m, Camera& cam, const MotionEvent& e, const char* ended_by,
                Context& ctx) {
    auto out = ctx.make_message(e.end_us);
    out->origin = m.origin;
    out->fields = {{"event", "end"},
                   {"event_id", e.id},
                   {"camera", m.stream},
                   {"start", format_iso8601(e.start_us)},
                   {"end", format_iso8601(e.end_us)},
                   {"duration_s", static_cast<double>(e.end_us - e.start_us) / 1e6},
                   {"start_frame", e.start_frame},
                   {"end_frame", e.end_frame},
                   {"frames", e.frames},
                   {"peak_area", e.peak_area},
                   {"peak_frame", e.peak_frame},
                   {"peak_time", format_iso8601(e.peak_us)},
                   {"boxes", boxes_value(e.peak_boxes)},
                   {"bounds", box_value(e.bounds)},
                   {"ended_by", ended_by},
                   {"width", cam.size.width},
                   {"height", cam.size.height}};
    if (snapshot_ == "peak") attach_snapshot(*out, cam, cam.peak, e, e.peak_boxes, "end", ctx);
    ctx.emit(kOut, std::move(out));
    cam.first = {};
    cam.peak = {};
  }

  void attach_snapshot(Message& event, const Camera& cam, const Held& held, const MotionEvent& e,
                       const std::vector<cv::Rect>& boxes, const char* kind, Context& ctx) {
    if (held.pixels.empty()) return;
    std::string bytes, why;
    if (!snapshot_boxes_ && held.blob.type == kImageJpeg && held.blob.bytes) {
      bytes = *held.blob.bytes;  // the camera's own JPEG: no second encode
    } else {
      cv::Mat picture = held.pixels;
      if (snapshot_boxes_) {
        if (picture.channels() == 1) {
          cv::cvtColor(picture, picture, cv::COLOR_GRAY2BGR);
        } else {
          picture = picture.clone();  // frames are shared and immutable
        }
        for (const cv::Rect& b : boxes) cv::rectangle(picture, b, cv::Scalar(0, 0, 255), 2);
      }
      if (!encode_image(picture, ImageFormat::kJpeg, snapshot_quality_, bytes, why)) {
        ctx.error(&event, "snapshot of event " + std::to_string(e.id) + " failed: " + why);
        return;
      }
    }
    if (snapshot_base64_) set_field(event.fields, "snapshot_jpeg", base64_encode(bytes));
    auto snap = ctx.make_message(held.time_us);
    snap->origin = cam.origin;
    snap->fields = {{"event_id", e.id},
                    {"event", kind},
                    {"camera", cam.stream},
                    {"frame", held.frame},
                    {"boxes", boxes_value(boxes)}};
    snap->blob = make_image_blob(ImageFormat::kJpeg, std::move(bytes));
    ctx.emit(kSnapshots, std::move(snap));
  }

  MotionDetector::Config detector_config_;
  MotionEvents::Config events_config_;
  bool per_frame_;
  std::string snapshot_;
  int snapshot_quality_;
  bool snapshot_boxes_, snapshot_base64_;
  std::map<std::string, Camera> cameras_;
};

EF_REGISTER_OPERATOR(VisionMotion)

}  // namespace
}  // namespace edgeflow
