// vision.motion's work written as a plain OpenCV loop, the baseline of vision_bench (frames in
// memory) and motion_loop (a video file, a whole process): gray, blur, background subtraction
// (MOG2) or frame differencing, erode, dilate, connected components, box merging, and the
// start/end hysteresis, with vision.motion's defaults spelled out.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/background_segm.hpp>
#include <vector>

#include "operators/vision/motion_detector.h"

namespace edgeflow::bench {

class RawMotion {
 public:
  explicit RawMotion(bool mog2) : mog2_(mog2) {
    if (mog2) bg_ = cv::createBackgroundSubtractorMOG2(500, 16, false);
    kernel_ = cv::getStructuringElement(cv::MORPH_RECT, cv::Size(3, 3));
  }

  void frame(const cv::Mat& bgr) {
    const int64_t i = frames_++;
    cv::cvtColor(bgr, gray_, cv::COLOR_BGR2GRAY);
    cv::GaussianBlur(gray_, blurred_, cv::Size(kBlur, kBlur), 0);
    if (mog2_) {
      bg_->apply(blurred_, mask_, -1);
    } else {
      if (previous_.empty()) {
        mask_ = cv::Mat::zeros(blurred_.size(), CV_8U);
      } else {
        cv::absdiff(blurred_, previous_, diff_);
        cv::threshold(diff_, mask_, 25, 255, cv::THRESH_BINARY);
      }
      blurred_.copyTo(previous_);
    }
    if (i < kWarmup) return;
    cv::erode(mask_, mask_, kernel_, cv::Point(-1, -1), kErode);
    cv::dilate(mask_, mask_, kernel_, cv::Point(-1, -1), kDilate);
    int n = cv::connectedComponentsWithStats(mask_, labels_, stats_, centroids_, 8, CV_32S);
    std::vector<cv::Rect> boxes;
    for (int k = 1; k < n; ++k) {
      const int* s = stats_.ptr<int>(k);
      if (s[cv::CC_STAT_AREA] >= kMinArea)
        boxes.emplace_back(s[cv::CC_STAT_LEFT], s[cv::CC_STAT_TOP], s[cv::CC_STAT_WIDTH],
                           s[cv::CC_STAT_HEIGHT]);
    }
    boxes = merge_boxes(std::move(boxes), kMergeGap);
    const bool moving = !boxes.empty();
    if (active_) {
      quiet_ = moving ? 0 : quiet_ + 1;
      if (quiet_ >= kEndAfter) {
        active_ = false;
        quiet_ = 0;
        ++messages_;
      }
    } else if (!moving) {
      run_ = 0;
    } else if (++run_ >= kStartAfter) {
      active_ = true;
      run_ = 0;
      ++messages_;
    }
  }

  int64_t frames() const { return frames_; }
  // Start and end messages; an event still open counts its end, as vision.motion's close does.
  int64_t messages() const { return messages_ + (active_ ? 1 : 0); }

 private:
  static constexpr int kBlur = 5, kErode = 1, kDilate = 3, kMinArea = 150, kMergeGap = 8;
  static constexpr int kWarmup = 10, kStartAfter = 2, kEndAfter = 10;
  bool mog2_;
  cv::Ptr<cv::BackgroundSubtractor> bg_;
  cv::Mat kernel_, gray_, blurred_, previous_, diff_, mask_, labels_, stats_, centroids_;
  int64_t frames_ = 0, messages_ = 0;
  bool active_ = false;
  int run_ = 0, quiet_ = 0;
};

}  // namespace edgeflow::bench
