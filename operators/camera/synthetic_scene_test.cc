// SyntheticScene: frames are a pure function of config and index, the truth matches the
// pixels, the schedule matches the truth, and sizes that cannot fit are refused.
#include "operators/camera/synthetic_scene.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace edgeflow {
namespace {

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  cv::Scalar s = cv::mean(d);
  return (s[0] + s[1] + s[2]) / 3;
}

TEST(SyntheticScene, FramesArePureFunctionsOfTheIndex) {
  SyntheticScene::Config c;
  SyntheticScene a(c), b(c);
  cv::Mat f30 = a.render(30);
  a.render(5);
  EXPECT_EQ(mean_abs_diff(f30, a.render(30)), 0.0);
  EXPECT_EQ(mean_abs_diff(f30, b.render(30)), 0.0);
  c.seed = 2;
  EXPECT_GT(mean_abs_diff(f30, SyntheticScene(c).render(30)), 1.0);
}

TEST(SyntheticScene, ScheduleAndTruthAgree) {
  SyntheticScene::Config c;
  c.objects = 3;
  c.first = 20;
  c.duration = 30;
  c.gap = 30;
  SyntheticScene s(c);
  EXPECT_EQ(s.natural_length(), 20 + 3 * 60);
  auto apps = s.appearances(s.natural_length());
  ASSERT_EQ(apps.size(), 3u);
  EXPECT_EQ(apps[1].first, 80);
  EXPECT_EQ(apps[1].last, 109);
  EXPECT_TRUE(s.truth(19).empty());
  ASSERT_EQ(s.truth(20).size(), 1u);
  EXPECT_EQ(s.truth(20)[0].id, 0);
  EXPECT_TRUE(s.truth(50).empty());
  EXPECT_EQ(s.truth(109).size(), 1u);
  EXPECT_TRUE(s.truth(110).empty());
  EXPECT_TRUE(s.truth(100000).empty());  // no repeat
  for (int64_t i = 0; i < s.natural_length(); ++i) {
    for (const auto& t : s.truth(i)) {
      EXPECT_GE(t.box.x, 0);
      EXPECT_GE(t.box.y, 0);
      EXPECT_LE(t.box.x + t.box.width, c.width);
      EXPECT_LE(t.box.y + t.box.height, c.height);
    }
  }
}

TEST(SyntheticScene, ObjectsMoveAtTheirSpeedAndStandOut) {
  SyntheticScene::Config c;
  c.noise = 0;
  c.drift = 0;
  c.object_speed = 5;
  SyntheticScene s(c);
  cv::Rect a = s.truth(21)[0].box, b = s.truth(22)[0].box;
  double step = std::hypot(b.x - a.x, b.y - a.y);
  EXPECT_NEAR(step, 5.0, 1.5);  // rounding; a bounce only shortens it
  // Inside the truth box the frame differs from the empty scene; outside it does not.
  cv::Mat empty = s.render(0), with = s.render(21);
  cv::Mat inside_diff, outside_diff;
  EXPECT_GT(mean_abs_diff(empty(a), with(a)), 30.0);
  cv::Mat mask(with.size(), CV_8U, cv::Scalar(255));
  mask(a).setTo(0);
  cv::Mat d;
  cv::absdiff(empty, with, d);
  EXPECT_EQ(cv::mean(d, mask)[0], 0.0);
}

TEST(SyntheticScene, TogetherPutsObjectsInSeparateBands) {
  SyntheticScene::Config c;
  c.objects = 4;
  c.together = 2;
  SyntheticScene s(c);
  for (int64_t i = c.first; i < c.first + c.duration; ++i) {
    auto t = s.truth(i);
    ASSERT_EQ(t.size(), 2u);
    EXPECT_EQ((t[0].box & t[1].box).area(), 0);
    EXPECT_LE(t[0].box.y + t[0].box.height, 240);
    EXPECT_GE(t[1].box.y, 240);
  }
  EXPECT_EQ(s.appearances(1000).size(), 4u);
}

TEST(SyntheticScene, RepeatBringsNewObjectsForever) {
  SyntheticScene::Config c;
  c.objects = 2;
  c.repeat = true;
  SyntheticScene s(c);
  auto apps = s.appearances(20 + 10 * 60);
  ASSERT_EQ(apps.size(), 10u);
  EXPECT_EQ(apps[9].id, 9);
  EXPECT_EQ(s.truth(20 + 9 * 60)[0].id, 9);
}

TEST(SyntheticScene, RefusesObjectsThatDoNotFit) {
  SyntheticScene::Config c;
  c.together = 4;
  c.object_size = 200;  // bands of 120 pixels
  EXPECT_THROW(SyntheticScene{c}, std::invalid_argument);
}

}  // namespace
}  // namespace edgeflow
