// camera.synthetic through the harness: frames with their fields and truth, event times
// spaced by 1/fps, pacing against the fake clock, a different scene per node, option checks.
#include <gtest/gtest.h>

#include <string>

#include "operators/image/frame.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

TEST(CameraSynthetic, FramesCarryFieldsTruthAndPixels) {
  OperatorHarness h("camera.synthetic",
                    "{width: 320, height: 240, fps: 10, speed: 0, objects: 2, object_size: 40}");
  h.run_source(10000);
  const auto& out = h.output();
  ASSERT_EQ(out.size(), 20u + 2 * 60);  // first + objects * (duration + gap)
  int64_t t0 = out[0]->event_time_us;
  int with_truth = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const Message& m = *out[i];
    EXPECT_EQ(m.event_time_us - t0, static_cast<int64_t>(i) * 100'000);
    EXPECT_EQ(*find_field(m.fields, "frame"), Value(static_cast<int64_t>(i)));
    EXPECT_EQ(*find_field(m.fields, "width"), Value(320));
    const cv::Mat* px = native_frame(m.blob);
    ASSERT_NE(px, nullptr);
    EXPECT_EQ(px->size(), cv::Size(320, 240));
    const Array* truth = find_field(m.fields, "truth")->array();
    ASSERT_NE(truth, nullptr);
    if (!truth->empty()) {
      ++with_truth;
      const Fields& box = *(*truth)[0].map();
      EXPECT_EQ(*find_field(box, "w"), Value(40));
    }
  }
  EXPECT_EQ(with_truth, 2 * 30);
  EXPECT_EQ(h.step().kind, SourceStep::kDone);
}

TEST(CameraSynthetic, PacesAtFpsTimesSpeedOnTheInjectedClock) {
  OperatorHarness h("camera.synthetic",
                    "{fps: 5, speed: 1, count: 3, width: 64, height: 48, "
                    "object_size: 10}");
  SourceStep s = h.step();
  EXPECT_EQ(h.output().size(), 1u);
  ASSERT_EQ(s.kind, SourceStep::kWaitUntil);
  EXPECT_EQ(s.wake_us - h.now_us(), 200'000);
  h.run_source(100);
  EXPECT_EQ(h.output().size(), 3u);
}

// An energy mode scaling fps by 0.5 (runtime/energy_rules.h) sends every other frame, on the
// scene's own clock; lifting it restores every frame.
TEST(CameraSynthetic, EnergyModeScalesTheFrameRateWhileRunning) {
  OperatorHarness h("camera.synthetic",
                    "{fps: 10, speed: 0, count: 40, width: 64, height: 48, "
                    "object_size: 10}",
                    "pi-1", "cam");
  auto frames = [&](size_t n) {
    std::vector<int64_t> idx;
    while (h.output().size() < n && h.step().kind != SourceStep::kDone) {
    }
    for (const MessagePtr& m : h.take())
      idx.push_back(static_cast<int64_t>(*find_field(m->fields, "frame")->number()));
    return idx;
  };
  EXPECT_EQ(frames(4), (std::vector<int64_t>{0, 1, 2, 3}));
  EnergyActions low;
  low.mode = "low";
  low.scale["cam"]["fps"] = 0.5;
  h.energy_mode().set(low);
  std::vector<int64_t> halved = frames(4);
  ASSERT_GE(halved.size(), 4u);
  for (size_t i = 1; i < halved.size(); ++i) EXPECT_EQ(halved[i] - halved[i - 1], 2);
  h.energy_mode().set(EnergyActions{});
  std::vector<int64_t> back = frames(3);
  ASSERT_GE(back.size(), 3u);
  for (size_t i = 1; i < back.size(); ++i) EXPECT_EQ(back[i] - back[i - 1], 1);
}

TEST(CameraSynthetic, EachNodeGetsItsOwnScene) {
  auto first_truth = [](const std::string& node) {
    OperatorHarness h("camera.synthetic", "{speed: 0, count: 21, width: 320, height: 240}", node);
    h.run_source(100);
    return *find_field(h.output()[20]->fields, "truth");
  };
  EXPECT_NE(first_truth("pi-1"), first_truth("pi-2"));
  EXPECT_EQ(first_truth("pi-1"), first_truth("pi-1"));
}

TEST(CameraSynthetic, RejectsObjectsTooBigForTheirBand) {
  std::string p = OperatorHarness::option_problems("camera.synthetic",
                                                   "{height: 120, together: 3, object_size: 60}");
  EXPECT_NE(p.find("object_size"), std::string::npos) << p;
  EXPECT_NE(p.find("band"), std::string::npos) << p;
}

}  // namespace
}  // namespace edgeflow
