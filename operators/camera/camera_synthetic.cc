// camera.synthetic — a camera without a camera: seeded scenes of moving objects with their
// ground truth (SyntheticScene), for tests, benchmarks and demos.
//
// Ports: none -> out (frame: frame/bgr8, with fields frame (index from 0), width, height and
// truth: the boxes of the objects visible, [{id, x, y, w, h}, ...]).
// Options: width, height, fps (event time between frames), speed (event seconds per wall
// second: 1 = real time, 0 = as fast as possible), count (frames; 0 = until the last object
// has gone, or forever with repeat), objects, together, object_size, object_speed (pixels
// per frame), first, duration, gap (frames), repeat, noise (gray levels), drift (brightness
// amplitude), drift_period (frames), seed (combined with the node name).
//
//   - id: cam
//     op: camera.synthetic
//     on: edge
//     with: { width: 640, height: 480, fps: 10, objects: 3, repeat: true }
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

#include "operators/camera/synthetic_scene.h"
#include "operators/image/frame.h"
#include "runtime/duration.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

uint64_t fnv1a64(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

SyntheticScene::Config scene_config(const Options& o) {
  SyntheticScene::Config c;
  c.width = static_cast<int>(o.get_int("width"));
  c.height = static_cast<int>(o.get_int("height"));
  c.objects = static_cast<int>(o.get_int("objects"));
  c.together = static_cast<int>(o.get_int("together"));
  c.object_size = static_cast<int>(o.get_int("object_size"));
  c.object_speed = o.get_double("object_speed");
  c.first = static_cast<int>(o.get_int("first"));
  c.duration = static_cast<int>(o.get_int("duration"));
  c.gap = static_cast<int>(o.get_int("gap"));
  c.repeat = o.get_bool("repeat");
  c.noise = o.get_double("noise");
  c.drift = o.get_double("drift");
  c.drift_period = static_cast<int>(o.get_int("drift_period"));
  c.seed = static_cast<uint64_t>(o.get_int("seed"));
  int band = c.height / std::max(c.together, 1);
  if (c.object_size > band || c.object_size > c.width) {
    throw OptionError("object_size",
                      "is " + std::to_string(c.object_size) + " pixels, but each of the " +
                          std::to_string(c.together) + " objects shown together moves in a " +
                          std::to_string(c.width) + "x" + std::to_string(band) + " band",
                      "use a smaller object_size or fewer objects together");
  }
  return c;
}

class CameraSynthetic : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "camera.synthetic";
    s.summary = "Seeded scenes of moving objects with their ground truth, as camera frames.";
    s.example =
        "- id: cam\n  op: camera.synthetic\n  on: edge\n"
        "  with: { width: 640, height: 480, fps: 10, objects: 3, repeat: true }";
    s.outputs = {{"out", "frame",
                  "frame/bgr8 frames with fields frame, width, height, truth: [{id, x, y, w, h}]"}};
    s.options = {
        opt_int("width", "frame width, pixels").def("640").at_least(16).at_most(7680),
        opt_int("height", "frame height, pixels").def("480").at_least(16).at_most(4320),
        opt_double("fps", "frames per second of event time")
            .def("10")
            .greater_than(0)
            .at_most(1000)
            .scalable(),
        opt_double("speed", "event seconds per wall second: 1 = real time, 0 = as fast as possible")
            .def("1")
            .at_least(0),
        opt_int("count",
                "frames to produce (0: until the last object has gone; with repeat, "
                "forever)")
            .def("0")
            .at_least(0),
        opt_int("objects", "objects in all (0: a static scene)").def("3").at_least(0),
        opt_int("together", "objects visible at once, each in its own horizontal band")
            .def("1")
            .at_least(1)
            .at_most(16),
        opt_int("object_size", "side of an object, pixels").def("60").at_least(4),
        opt_double("object_speed", "pixels an object moves per frame").def("4").at_least(0),
        opt_int("first", "quiet frames before the first object").def("20").at_least(0),
        opt_int("duration", "frames a group of objects stays visible").def("30").at_least(1),
        opt_int("gap", "quiet frames between groups").def("30").at_least(0),
        opt_bool("repeat", "start over with new objects after the last group").def("false"),
        opt_double("noise", "pixel noise, standard deviation in gray levels")
            .def("4")
            .at_least(0)
            .at_most(100),
        opt_double("drift", "lighting drift: amplitude of the brightness change, fraction")
            .def("0.05")
            .at_least(0)
            .at_most(0.9),
        opt_int("drift_period", "frames per cycle of the lighting drift").def("600").at_least(1),
        opt_int("seed", "random seed, combined with the node name").def("1"),
    };
    return s;
  }

  explicit CameraSynthetic(const Options& o)
      : config_(scene_config(o)),
        fps_(o.get_double("fps")),
        speed_(o.get_double("speed")),
        count_(o.get_int("count")) {}

  void open(Context& ctx) override {
    SyntheticScene::Config c = config_;
    c.seed = config_.seed * 0x9e3779b97f4a7c15ULL ^ fnv1a64(ctx.node());
    scene_.emplace(c);
    if (count_ == 0 && !c.repeat) count_ = scene_->natural_length();
  }

  SourceStep generate(Context& ctx) override {
    if (!scene_) open(ctx);
    if (!wall_start_us_) {
      wall_start_us_ = ctx.now_us();
      event_start_us_ = *wall_start_us_;
    }
    // Bounded work per call: a few frames, not the runtime's 256 readings (a frame is big).
    const double share = std::min(1.0, ctx.energy().scale(ctx.stage(), "fps"));
    for (int emitted = 0; emitted < kMaxPerCall && !finished() && due(index_, ctx); ++emitted) {
      if (share < 1) {
        // An energy mode lowers the rate: frames in between are skipped, not rendered.
        credit_ += share;
        if (credit_ < 1 - 1e-9) {
          ++index_;
          continue;
        }
        credit_ -= 1;
      }
      int64_t t = event_start_us_ + event_offset_us(index_);
      auto m = ctx.make_message(t);
      m->fields.reserve(4);
      m->fields.push_back({"frame", index_});
      m->fields.push_back({"width", config_.width});
      m->fields.push_back({"height", config_.height});
      Array truth;
      for (const SyntheticScene::Truth& tr : scene_->truth(index_)) {
        truth.push_back(Fields{{"id", tr.id},
                               {"x", tr.box.x},
                               {"y", tr.box.y},
                               {"w", tr.box.width},
                               {"h", tr.box.height}});
      }
      m->fields.push_back({"truth", std::move(truth)});
      m->blob = make_frame_blob(scene_->render(index_));
      ctx.emit(std::move(m));
      ++index_;
    }
    if (finished()) return SourceStep::done();
    if (due(index_, ctx)) return SourceStep::emitted();
    return SourceStep::wait_until(wall_due_us(index_));
  }

 private:
  static constexpr int kMaxPerCall = 4;

  bool finished() const { return count_ > 0 && index_ >= count_; }
  int64_t event_offset_us(int64_t index) const {
    return static_cast<int64_t>(std::llround(static_cast<double>(index) * 1e6 / fps_));
  }
  // The due test and the wake time come from one function, so a source woken at its wake
  // time always finds the frame due.
  int64_t wall_due_us(int64_t index) const {
    return replay_due_us(*wall_start_us_, static_cast<double>(event_offset_us(index)), speed_);
  }
  bool due(int64_t index, const Context& ctx) const {
    return speed_ == 0 || ctx.now_us() >= wall_due_us(index);
  }

  SyntheticScene::Config config_;
  double fps_, speed_;
  int64_t count_;
  std::optional<SyntheticScene> scene_;
  std::optional<int64_t> wall_start_us_;
  int64_t event_start_us_ = 0;
  int64_t index_ = 0;
  double credit_ = 0;  // frames owed under a lowered rate (energy modes)
};

EF_REGISTER_OPERATOR(CameraSynthetic)

}  // namespace
}  // namespace edgeflow
