// MotionDetector and MotionEvents without the runtime, against SyntheticScene's ground truth:
// every object's motion is reported as an event starting within 2 frames of its appearance,
// boxes overlap the truth with IoU >= 0.5, a static noisy scene gives no event, and the
// region of interest, hysteresis and box merging do what they say.
#include "operators/vision/motion_detector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "operators/camera/synthetic_scene.h"

namespace edgeflow {
namespace {

double iou(const cv::Rect& a, const cv::Rect& b) {
  double inter = (a & b).area();
  double uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0;
}

double best_iou(const cv::Rect& truth, const std::vector<cv::Rect>& boxes) {
  double best = 0;
  for (const cv::Rect& b : boxes) best = std::max(best, iou(truth, b));
  return best;
}

struct Detection {
  std::vector<MotionEvent> events;
  std::vector<FrameMotion> frames;
};

Detection detect(const SyntheticScene& scene, int64_t frames, MotionDetector::Config dc,
                 MotionEvents::Config ec = {}) {
  MotionDetector detector(std::move(dc));
  MotionEvents events(ec);
  Detection run;
  for (int64_t i = 0; i < frames; ++i) {
    FrameMotion m = detector.apply(scene.render(i));
    MotionEvents::Step s = events.observe(i, i * 100'000, m);
    if (s.ended) run.events.push_back(s.event);
    run.frames.push_back(std::move(m));
  }
  if (auto e = events.finish()) run.events.push_back(*e);
  return run;
}

MotionDetector::Config with_method(MotionMethod method) {
  MotionDetector::Config c;
  c.method = method;
  return c;
}

// Checks the run against the truth; appearances of one group share one event.
void expect_matches_truth(const SyntheticScene& scene, int64_t frames, const Detection& run) {
  std::vector<SyntheticScene::Appearance> truth = scene.appearances(frames);
  std::map<int64_t, std::vector<SyntheticScene::Appearance>> groups;  // by first frame
  for (const auto& a : truth) groups[a.first].push_back(a);
  ASSERT_EQ(run.events.size(), groups.size()) << "one event per group of objects";
  size_t k = 0;
  for (const auto& [first, members] : groups) {
    const MotionEvent& e = run.events[k++];
    int64_t last = members.front().last;
    EXPECT_LE(std::llabs(e.start_frame - first), 2)
        << "event " << e.id << " starts at frame " << e.start_frame << ", truth " << first;
    EXPECT_GE(e.end_frame, last - 2) << "event " << e.id;
    EXPECT_LE(e.end_frame, last + 2) << "event " << e.id;
    EXPECT_GT(e.peak_area, 0);
    EXPECT_GE(e.frames, last - first - 1);
    // Every object in every frame it is visible: a box with IoU >= 0.5.
    for (int64_t f = first; f <= last; ++f) {
      for (const SyntheticScene::Truth& t : scene.truth(f)) {
        EXPECT_GE(best_iou(t.box, run.frames[f].boxes), 0.5)
            << "object " << t.id << " frame " << f << " truth (" << t.box.x << "," << t.box.y
            << ") boxes " << run.frames[f].boxes.size();
      }
    }
  }
}

class MethodTest : public ::testing::TestWithParam<MotionMethod> {};

TEST_P(MethodTest, ReportsEveryObjectWithinTwoFramesAndTightBoxes) {
  SyntheticScene::Config sc;
  sc.objects = 3;
  sc.seed = 7;
  SyntheticScene scene(sc);
  int64_t frames = scene.natural_length();
  expect_matches_truth(scene, frames, detect(scene, frames, with_method(GetParam())));
}

TEST_P(MethodTest, TwoObjectsAtOnceGetOneEventAndABoxEach) {
  SyntheticScene::Config sc;
  sc.objects = 4;
  sc.together = 2;
  sc.object_speed = 6;
  sc.noise = 6;
  sc.seed = 11;
  SyntheticScene scene(sc);
  int64_t frames = scene.natural_length();
  expect_matches_truth(scene, frames, detect(scene, frames, with_method(GetParam())));
}

TEST_P(MethodTest, StaticNoisySceneWithDriftGivesNoMotion) {
  SyntheticScene::Config sc;
  sc.objects = 0;
  sc.noise = 10;
  sc.drift = 0.15;
  sc.drift_period = 200;
  SyntheticScene scene(sc);
  Detection run = detect(scene, 300, with_method(GetParam()));
  EXPECT_TRUE(run.events.empty());
  int moving = 0;
  for (const FrameMotion& m : run.frames) moving += m.motion();
  EXPECT_EQ(moving, 0);
}

INSTANTIATE_TEST_SUITE_P(Methods, MethodTest,
                         ::testing::Values(MotionMethod::kMog2, MotionMethod::kKnn,
                                           MotionMethod::kDiff),
                         [](const auto& info) {
                           switch (info.param) {
                             case MotionMethod::kMog2:
                               return std::string("mog2");
                             case MotionMethod::kKnn:
                               return std::string("knn");
                             case MotionMethod::kDiff:
                               return std::string("diff");
                           }
                           return std::string("unknown");
                         });

TEST(MotionDetector, WarmupFramesNeverReportMotion) {
  SyntheticScene::Config sc;
  sc.first = 0;  // an object from the very first frame
  SyntheticScene scene(sc);
  MotionDetector::Config dc;
  dc.warmup = 5;
  MotionDetector d(dc);
  for (int i = 0; i < 5; ++i) {
    FrameMotion m = d.apply(scene.render(i));
    EXPECT_TRUE(m.warming_up);
    EXPECT_FALSE(m.motion());
  }
  EXPECT_FALSE(d.apply(scene.render(5)).warming_up);
}

TEST(MotionDetector, RegionOfInterestIgnoresMotionOutsideIt) {
  SyntheticScene::Config sc;
  sc.objects = 2;
  sc.seed = 3;
  SyntheticScene scene(sc);
  int64_t frames = scene.natural_length();
  MotionDetector::Config dc;
  std::string why;
  // Everything included and everything excluded: nothing may be reported.
  dc.include.push_back(*parse_polygon("0,0 100%,0 100%,100% 0,100%", why));
  dc.exclude.push_back(*parse_polygon("0,0 100%,0 100%,100% 0,100%", why));
  Detection none = detect(scene, frames, dc);
  EXPECT_TRUE(none.events.empty());

  // Only the left half: every reported box lies in it.
  MotionDetector::Config left;
  left.include.push_back(*parse_polygon("0,0 50%,0 50%,100% 0,100%", why));
  Detection half = detect(scene, frames, left);
  for (const FrameMotion& m : half.frames)
    for (const cv::Rect& b : m.boxes) EXPECT_LE(b.x + b.width, 320 + 1);
}

TEST(MotionDetector, ResolutionChangeRestartsTheModel) {
  MotionDetector::Config dc;
  dc.warmup = 3;
  MotionDetector d(dc);
  cv::Mat a(120, 160, CV_8UC3, cv::Scalar(90, 90, 90)), b(240, 320, CV_8UC3, cv::Scalar(90));
  for (int i = 0; i < 5; ++i) d.apply(a);
  EXPECT_FALSE(d.apply(a).warming_up);
  EXPECT_TRUE(d.apply(b).warming_up);
  EXPECT_EQ(d.frames_seen(), 1);
}

TEST(MotionDetector, RejectsAnEvenBlurKernel) {
  MotionDetector::Config dc;
  dc.blur = 4;
  EXPECT_THROW(MotionDetector{dc}, std::invalid_argument);
}

TEST(RegionPolygon, ParsesPixelsAndPercents) {
  std::string why;
  auto p = parse_polygon("10,20  50%,0 100%,100%", why);
  ASSERT_TRUE(p) << why;
  std::vector<cv::Point> pts = p->at(cv::Size(200, 100));
  EXPECT_EQ(pts, (std::vector<cv::Point>{{10, 20}, {100, 0}, {200, 100}}));
  EXPECT_FALSE(parse_polygon("10,20 30,40", why));
  EXPECT_NE(why.find("at least 3"), std::string::npos);
  EXPECT_FALSE(parse_polygon("10,20 30;40 1,1", why));
  EXPECT_NE(why.find("'30;40'"), std::string::npos);
  EXPECT_FALSE(parse_polygon("10,20 130%,40 1,1", why));
}

TEST(MergeBoxes, MergesCloseBoxesTransitively) {
  std::vector<cv::Rect> boxes = {
      {0, 0, 10, 10}, {15, 0, 10, 10}, {30, 0, 10, 10}, {100, 100, 5, 5}};
  std::vector<cv::Rect> merged = merge_boxes(boxes, 5);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0], cv::Rect(0, 0, 40, 10));
  EXPECT_EQ(merge_boxes(boxes, 0).size(), 4u);
}

FrameMotion motion_of(bool moving, int64_t area = 100) {
  FrameMotion m;
  if (moving) {
    m.boxes = {cv::Rect(0, 0, 10, 10)};
    m.area = area;
  }
  return m;
}

TEST(MotionEvents, HysteresisStartsAfterARunAndEndsAfterQuiet) {
  MotionEvents ev({3, 2});
  // frames: 0 moving, 1 quiet (a flicker), 2,3,4 moving (start at 2), 5 quiet, 6 moving
  // (one quiet frame does not end it), 7, 8 quiet -> ends at 6.
  std::vector<bool> pattern = {true, false, true, true, true, false, true, false, false};
  std::vector<MotionEvents::Step> steps;
  for (size_t i = 0; i < pattern.size(); ++i)
    steps.push_back(ev.observe(static_cast<int64_t>(i), static_cast<int64_t>(i) * 10,
                               motion_of(pattern[i], 100 + static_cast<int64_t>(i))));
  EXPECT_TRUE(steps[0].run_began);
  EXPECT_FALSE(steps[0].started);
  EXPECT_TRUE(steps[2].run_began);
  EXPECT_TRUE(steps[4].started);
  EXPECT_EQ(steps[4].event.start_frame, 2);
  EXPECT_EQ(steps[4].event.start_us, 20);
  EXPECT_EQ(steps[4].event.id, 1);
  EXPECT_TRUE(steps[8].ended);
  const MotionEvent& e = steps[8].event;
  EXPECT_EQ(e.start_frame, 2);
  EXPECT_EQ(e.end_frame, 6);
  EXPECT_EQ(e.end_us, 60);
  EXPECT_EQ(e.frames, 4);
  EXPECT_EQ(e.peak_frame, 6);
  EXPECT_EQ(e.peak_area, 106);
  EXPECT_FALSE(ev.active());
  EXPECT_FALSE(ev.finish());
}

TEST(MotionEvents, EndOfInputEndsTheEventInProgress) {
  MotionEvents ev({1, 5});
  EXPECT_TRUE(ev.observe(0, 0, motion_of(true)).started);
  ev.observe(1, 1, motion_of(false));
  auto e = ev.finish();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->end_frame, 0);
  EXPECT_EQ(e->frames, 1);
}

}  // namespace
}  // namespace edgeflow
