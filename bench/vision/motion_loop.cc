// The program a user would write instead of the motion pipeline: read a video file with
// OpenCV and do vision.motion's work on every frame (gray, blur, MOG2, erode, dilate,
// connected components, box merging, start/end hysteresis), then print the frames and the
// start + end events. It links OpenCV and the detector's box merging only: the baseline of
// motion_process_bench, which times it as a whole process, start-up included.
//   motion_loop VIDEO
#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/background_segm.hpp>
#include <opencv2/videoio.hpp>
#include <vector>

#include "operators/vision/motion_detector.h"

namespace {
// vision.motion's defaults, spelled out (as in vision_bench) for method mog2.
constexpr int kBlur = 5, kErode = 1, kDilate = 3, kMinArea = 150, kMergeGap = 8, kWarmup = 10;
constexpr int kStartAfter = 2, kEndAfter = 10;
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: motion_loop VIDEO\n");
    return 2;
  }
  cv::VideoCapture cap(argv[1]);
  if (!cap.isOpened()) {
    std::fprintf(stderr, "motion_loop: cannot open %s\n", argv[1]);
    return 1;
  }
  cv::Ptr<cv::BackgroundSubtractor> bg = cv::createBackgroundSubtractorMOG2(500, 16, false);
  cv::Mat kernel = cv::getStructuringElement(cv::MORPH_RECT, cv::Size(3, 3));
  cv::Mat frame, gray, blurred, mask, labels, stats, centroids;
  long long frames = 0, events = 0;
  bool active = false;
  int run = 0, quiet = 0;
  for (; cap.read(frame); ++frames) {
    cv::cvtColor(frame, gray, cv::COLOR_BGR2GRAY);
    cv::GaussianBlur(gray, blurred, cv::Size(kBlur, kBlur), 0);
    bg->apply(blurred, mask, -1);
    if (frames < kWarmup) continue;
    cv::erode(mask, mask, kernel, cv::Point(-1, -1), kErode);
    cv::dilate(mask, mask, kernel, cv::Point(-1, -1), kDilate);
    int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
    std::vector<cv::Rect> boxes;
    for (int k = 1; k < n; ++k) {
      const int* s = stats.ptr<int>(k);
      if (s[cv::CC_STAT_AREA] >= kMinArea)
        boxes.emplace_back(s[cv::CC_STAT_LEFT], s[cv::CC_STAT_TOP], s[cv::CC_STAT_WIDTH],
                           s[cv::CC_STAT_HEIGHT]);
    }
    boxes = edgeflow::merge_boxes(std::move(boxes), kMergeGap);
    const bool moving = !boxes.empty();
    if (active) {
      quiet = moving ? 0 : quiet + 1;
      if (quiet >= kEndAfter) {
        active = false;
        quiet = 0;
        ++events;
      }
    } else if (!moving) {
      run = 0;
    } else if (++run >= kStartAfter) {
      active = true;
      run = 0;
      ++events;
    }
  }
  if (active) ++events;
  std::printf("%lld frames %lld events\n", frames, events);
  return 0;
}
