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
