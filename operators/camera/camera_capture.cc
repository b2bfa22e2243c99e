// camera.capture — frames from a V4L2 camera, a video file, or a network stream (RTSP, HTTP)
// through OpenCV's videoio (VideoSource).
//
// Ports: none -> out (frame: frame/bgr8, with fields frame (index from 0), width, height).
// Options: device (0, /dev/video0, a file, or an rtsp:// or http:// URL), backend, fps (most
// frames per second sent on; 0 = every frame), width / height (resize; one alone keeps the
// aspect), loop (files: start over at the end), speed (files: 1 = the file's own pace, 0 = as
// fast as possible), count (frames, then stop), time (event time from the capture clock or
// the file's frame times), reconnect / reconnect_delay (devices and streams: retry a device
// that is missing or drops instead of failing), timeout (streams: open and read timeouts).
// Energy modes (runtime/energy_rules.h) may scale `fps` (with fps 0, the camera's own rate):
// frames over the lowered limit are grabbed and never decoded.
//
// A missing device or an unreadable file fails at start with a message naming it (exit 1),
// unless reconnect is set for a device or stream; a stream that drops while running is
// reported on the error output and then either reopened (reconnect) or ended.
//
//   - id: cam
//     op: camera.capture
//     on: edge
//     with: { device: /dev/video0, fps: 10, width: 640 }
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>

#include "operators/camera/video_source.h"
#include "operators/image/frame.h"
#include "runtime/duration.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

VideoSource::Config source_config(const Options& o) {
  VideoSource::Config c;
  c.device = o.get_string("device");
  if (VideoSource::classify(c.device) == VideoSource::Kind::kFile &&
      !(o.get_string("backend") == "gstreamer" && c.device.find('!') != std::string::npos))
    c.device = o.resolve_path("device");
  c.backend = o.get_string("backend");
  c.width = static_cast<int>(o.get_int("width"));
  c.height = static_cast<int>(o.get_int("height"));
  c.fps = o.get_double("fps");
  c.timeout_ms = static_cast<int>(o.get_duration_us("timeout") / 1000);
  return c;
}

class CameraCapture : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "camera.capture";
    s.summary = "Frames from a V4L2 camera, a video file, or an RTSP/HTTP stream (OpenCV).";
    s.example =
        "- id: cam\n  op: camera.capture\n  on: edge\n"
        "  with: { device: /dev/video0, fps: 10, width: 640 }";
    s.outputs = {{"out", "frame", "frame/bgr8 frames with fields frame, width, height"}};
    s.options = {
        opt_string("device",
                   "camera index (0) or path (/dev/video0), video file, or rtsp:// / http:// URL")
            .require(),
        opt_enum("backend", {"auto", "v4l2", "ffmpeg", "gstreamer"},
                 "OpenCV videoio backend (auto: V4L2 for devices, FFmpeg for files and streams)")
            .def("auto"),
        opt_double("fps", "most frames per second to send on (0: every frame)")
            .def("0")
            .at_least(0)
            .at_most(1000)
            .scalable(),
        opt_int("width", "resize frames to this width (0: keep; alone keeps the aspect)")
            .def("0")
            .at_least(0)
            .at_most(7680),
        opt_int("height", "resize frames to this height (0: keep; alone keeps the aspect)")
            .def("0")
            .at_least(0)
            .at_most(4320),
        opt_bool("loop", "files: start over at the end").def("false"),
        opt_double("speed",
                   "files: 1 = the file's own pace, 2 = twice as fast, 0 = as fast as possible")
            .def("1")
            .at_least(0),
        opt_int("count", "frames to send, then stop (0: no limit)").def("0").at_least(0),
        opt_enum("time", {"auto", "capture", "file"},
                 "event time: the capture clock, or the file's frame times from the start "
                 "(auto: file for files, capture otherwise)")
            .def("auto"),
        opt_bool("reconnect",
                 "devices and streams: keep retrying one that is missing or drops, instead of "
                 "failing")
            .def("false"),
        opt_duration("reconnect_delay", "time between reconnection attempts")
            .def("2s")
            .greater_than(0),
        opt_duration("timeout", "streams: how long opening or reading a frame may take")
            .def("10s")
            .greater_than(0),
    };
    return s;
  }

  explicit CameraCapture(const Options& o)
      : source_(source_config(o)),
        fps_limit_(o.get_double("fps")),
        width_(static_cast<int>(o.get_int("width"))),
        height_(static_cast<int>(o.get_int("height"))),
        loop_(o.get_bool("loop")),
        speed_(o.get_double("speed")),
        count_(o.get_int("count")),
        reconnect_(o.get_bool("reconnect")),
        reconnect_delay_us_(o.get_duration_us("reconnect_delay")) {
    const std::string& time = o.get_string("time");
    bool file = source_.kind() == VideoSource::Kind::kFile;
    if (time == "file" && !file) {
      throw OptionError(
          "time",
          "is 'file', but '" + VideoSource::redact(o.get_string("device")) + "' is not a file",
          "use time: capture for cameras and streams");
    }
    if (o.get_bool("loop") && !file)
      throw OptionError("loop", "applies to video files only",
                        "leave loop out for " + source_.name());
    file_time_ = time == "file" || (time == "auto" && file);
    pace_file_ = file && speed_ > 0;
    if (reconnect_ && file) {
      throw OptionError("reconnect", "applies to cameras and streams, not to video files",
                        "leave reconnect out, or set loop: true to replay the file");
    }
  }

  void open(Context& ctx) override {
    std::string why;
    if (source_.open(why)) return;
    if (!reconnect_) {
      throw OperatorError(why + (source_.kind() == VideoSource::Kind::kFile
                                     ? ""
                                     : "; set reconnect: true to wait for it instead"));
    }
    ctx.error(nullptr, why + "; retrying every " + format_duration(reconnect_delay_us_));
    retry_at_us_ = ctx.now_us() + reconnect_delay_us_;
  }

  SourceStep generate(Context& ctx) override {
    if (finished()) return SourceStep::done();
    if (!source_.is_open()) {
      if (ctx.now_us() < retry_at_us_) return SourceStep::wait_until(retry_at_us_);
      std::string why;
      if (!source_.open(why)) {
        // The first failure of a run of them was already reported; then one in 30.
        if (++failed_attempts_ % 30 == 0)
          ctx.error(nullptr, why + " (" + std::to_string(failed_attempts_) + " attempts)");
        retry_at_us_ = ctx.now_us() + reconnect_delay_us_;
        return SourceStep::wait_until(retry_at_us_);
      }
      failed_attempts_ = 0;
    }
    if (!pending_) {
      grab_next(ctx);
      if (finished()) return SourceStep::done();
      if (!source_.is_open()) return SourceStep::wait_until(retry_at_us_);  // reconnecting
      if (!pending_) return SourceStep::emitted();  // over the fps limit, or rewound
    }
    if (pace_file_) {
      int64_t due =
          replay_due_us(wall_start_us_, static_cast<double>(*pending_ - event_start_us_), speed_);
      if (ctx.now_us() < due) return SourceStep::wait_until(due);
    }
    emit_pending(ctx);
    return finished() ? SourceStep::done() : SourceStep::emitted();
  }

 private:
  bool finished() const { return done_ || (count_ > 0 && index_ >= count_); }

  // Grabs one frame and decides its event time; sets pending_ when it is to be sent.
  void grab_next(Context& ctx) {
    double pos_ms = -1;
    VideoSource::Read r = source_.grab(pos_ms);
    if (r == VideoSource::Read::kEnd) {
      if (loop_ && frames_read_ > 0 && source_.rewind()) {
        // The replay continues the timeline: one frame interval after the last frame.
        loop_offset_us_ += last_file_us_ - file_origin_us_ + frame_interval_us();
        file_origin_reset_ = true;
        return;
      }
      done_ = true;
      return;
    }
    if (r == VideoSource::Read::kDropped) {
      source_.close();
      if (!reconnect_) {
        ctx.error(nullptr, source_.name() +
                               " stopped delivering frames; the source ends (set reconnect: "
                               "true to reopen it)");
        done_ = true;
        return;
      }
      // The first drop of a run of them, then one in 30 (like failed opens).
      if (drops_in_a_row_++ % 30 == 0)
        ctx.error(nullptr, source_.name() + " stopped delivering frames; reopening every " +
                               format_duration(reconnect_delay_us_));
      retry_at_us_ = ctx.now_us() + reconnect_delay_us_;
      return;
    }
    ++frames_read_;
    int64_t now = ctx.now_us();
    if (!started_) {
      started_ = true;
      wall_start_us_ = now;
      event_start_us_ = now;
    }
    int64_t t;
    if (file_time_ && pos_ms >= 0) {
      int64_t file_us = static_cast<int64_t>(std::llround(pos_ms * 1000));
      if (file_origin_reset_ || frames_read_ == 1) {
        file_origin_us_ = file_us;
        file_origin_reset_ = false;
      }
      last_file_us_ = file_us;
      t = event_start_us_ + loop_offset_us_ + (file_us - file_origin_us_);
    } else if (file_time_) {
      t = event_start_us_ + (frames_read_ - 1) * frame_interval_us();
    } else {
      t = now;
    }
    if (last_t_ && t <= *last_t_) t = *last_t_ + 1;  // event time rises on a stream
    last_t_ = t;
    // An energy mode may scale the limit (or, with no limit, the camera's own rate).
    double limit = fps_limit_;
    const double scale = ctx.energy().scale(ctx.stage(), "fps");
    if (scale != 1) limit = (limit > 0 ? limit : 1e6 / frame_interval_us()) * scale;
    if (limit > 0 && last_sent_t_ && static_cast<double>(t - *last_sent_t_) < 0.95 * 1e6 / limit)
      return;  // over the limit: grabbed, never decoded
    pending_ = t;
  }

  void emit_pending(Context& ctx) {
    int64_t t = *pending_;
    pending_.reset();
    cv::Mat frame;
    if (!source_.retrieve(frame)) {
      ctx.error(nullptr, "a frame of " + source_.name() + " did not decode; skipped");
      return;
    }
    // Downstream takes 8-bit gray or BGR: convert what some backends deliver (BGRA, 16-bit).
    if (frame.depth() == CV_16U) frame.convertTo(frame, CV_8U, 1.0 / 256);
    if (frame.channels() == 4) cv::cvtColor(frame, frame, cv::COLOR_BGRA2BGR);
    if (frame.empty() || frame.depth() != CV_8U ||
        (frame.channels() != 1 && frame.channels() != 3)) {
      ctx.error(nullptr, "a frame of " + source_.name() + " is not 8-bit gray or BGR (" +
                             std::to_string(frame.channels()) + " channels); skipped");
      return;
    }
    cv::Size want = target_size(frame.size());
    if (want != frame.size()) {
      cv::Mat resized;
      bool shrink = want.area() < frame.size().area();
      cv::resize(frame, resized, want, 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
      frame = resized;
    } else {
      // Some videoio backends hand out a view of a buffer they reuse for the next frame; a
      // frame sent on must own its pixels (the copy costs far less than the decode).
      frame = frame.clone();
    }
    auto m = ctx.make_message(t);
    m->fields.reserve(3);
    m->fields.push_back({"frame", index_});
    m->fields.push_back({"width", frame.cols});
    m->fields.push_back({"height", frame.rows});
    m->blob = make_frame_blob(std::move(frame));
    drops_in_a_row_ = 0;
    ctx.emit(std::move(m));
    last_sent_t_ = t;
    ++index_;
  }

  cv::Size target_size(cv::Size in) const {
    if (width_ > 0 && height_ > 0) return {width_, height_};
    if (width_ > 0)
      return {width_, std::max(1, static_cast<int>(std::lround(static_cast<double>(in.height) *
                                                               width_ / in.width)))};
    if (height_ > 0)
      return {std::max(1, static_cast<int>(
                              std::lround(static_cast<double>(in.width) * height_ / in.height))),
              height_};
    return in;
  }

  int64_t frame_interval_us() const {
    double fps = source_.fps();
    return fps > 0 ? static_cast<int64_t>(std::llround(1e6 / fps)) : 40'000;
  }

  VideoSource source_;
  double fps_limit_;
  int width_, height_;
  bool loop_;
  double speed_;
  int64_t count_;
  bool reconnect_;
  int64_t reconnect_delay_us_;
  bool file_time_ = false, pace_file_ = false;

  bool done_ = false, started_ = false;
  int64_t retry_at_us_ = 0;
  int64_t failed_attempts_ = 0;
  int64_t drops_in_a_row_ = 0;  // reopened streams that failed again before a frame
  int64_t wall_start_us_ = 0, event_start_us_ = 0;
  int64_t frames_read_ = 0, index_ = 0;
  int64_t file_origin_us_ = 0, last_file_us_ = 0, loop_offset_us_ = 0;
  bool file_origin_reset_ = false;
  std::optional<int64_t> pending_, last_t_, last_sent_t_;
};

EF_REGISTER_OPERATOR(CameraCapture)

}  // namespace
}  // namespace edgeflow
