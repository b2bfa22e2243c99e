// Motion detection on camera frames: MotionDetector finds moving regions in one frame,
// MotionEvents turns the per-frame results into events with hysteresis. Plain classes with no
// runtime dependency: vision.motion is a thin operator around them, and tests drive them with
// synthetic frames.
//
// Per frame (MotionDetector::apply):
//   gray (unless `color`) -> Gaussian blur (`blur`, odd kernel) -> foreground mask by
//   MOG2 or KNN background subtraction (`threshold`: their variance / distance threshold,
//   `learning_rate`, `history`, `shadows`) or by frame differencing (`threshold`: gray
//   levels of |frame - previous|; with learning_rate > 0, against a running average instead
//   of the previous frame) -> `erode` then `dilate` (3x3, iterations) -> region of interest
//   (`include` / `exclude` polygons) -> connected blobs of at least `min_area` pixels ->
//   their boxes, merged when at most `merge_gap` pixels apart.
// The first `warmup` frames (and the first after a change of frame size) only teach the
// model: they never report motion.
//
// Events (MotionEvents::observe): an event starts once `start_after` consecutive frames have
// motion (its start is the first of them) and ends after `end_after` consecutive quiet
// frames (its end is the last frame with motion). Short flickers never become events; a
// pause shorter than end_after does not split one.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <opencv2/video/background_segm.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgeflow {

enum class MotionMethod { kMog2, kKnn, kDiff };

// A polygon whose vertices are pixels or percents of the frame's width and height, parsed
// from "x,y x,y x,y ..." (for example "0,0 100%,0 100%,50% 0,50%").
struct RegionPolygon {
  struct Vertex {
    double x = 0, y = 0;
    bool x_percent = false, y_percent = false;
  };
  std::vector<Vertex> vertices;
  std::vector<cv::Point> at(cv::Size frame) const;
};
// nullopt with the reason in `why` for bad syntax or fewer than 3 vertices.
std::optional<RegionPolygon> parse_polygon(std::string_view text, std::string& why);

struct FrameMotion {
  bool warming_up = false;
  std::vector<cv::Rect> boxes;  // merged, in frame pixels
  int64_t area = 0;             // foreground pixels of the kept blobs
  bool motion() const { return !boxes.empty(); }
};

class MotionDetector {
 public:
  struct Config {
    MotionMethod method = MotionMethod::kMog2;
    double threshold = 0;  // 0: the method's default (mog2 16, knn 400, diff 25)
    int min_area = 150;
    int blur = 5;  // Gaussian kernel side; 0 or 1: none
    int erode = 1;
    int dilate = 3;
    double learning_rate = -1;  // mog2/knn: -1 automatic; diff: <= 0 previous frame
    int warmup = 10;
    int history = 500;
    bool shadows = false;  // mog2/knn: detect shadows and leave them out of the motion
    bool color = false;    // model BGR rather than gray (mog2/knn; slower)
    int merge_gap = 8;
    std::vector<RegionPolygon> include;  // empty: the whole frame
    std::vector<RegionPolygon> exclude;
  };

  static double default_threshold(MotionMethod method);

  // Throws std::invalid_argument for an even blur kernel or negative sizes.
  explicit MotionDetector(Config config);

  const Config& config() const { return config_; }
  // One frame, 8-bit BGR or gray; every frame of a stream has the same size or the model
  // starts over.
  FrameMotion apply(const cv::Mat& frame);
  // The last foreground mask after region and morphology (CV_8U, 0 or 255).
  const cv::Mat& mask() const { return mask_; }
  int64_t frames_seen() const { return frames_; }
  void reset();

 private:
  void start_model(const cv::Mat& frame);

  Config config_;
  double threshold_;
  cv::Ptr<cv::BackgroundSubtractor> subtractor_;
  cv::Mat kernel_;
  cv::Mat region_;  // CV_8U mask of the region of interest; empty: whole frame
  cv::Mat previous_, average_;
  cv::Mat input_, blurred_, diff_, mask_, labels_, stats_, centroids_;
  cv::Size size_;
  int type_ = -1;
  int64_t frames_ = 0;  // since the model (re)started
};

// Boxes at most `gap` pixels apart (or overlapping) merged into their union, repeatedly.
std::vector<cv::Rect> merge_boxes(std::vector<cv::Rect> boxes, int gap);

struct MotionEvent {
  int64_t id = 0;  // 1, 2, ... per MotionEvents
  int64_t start_frame = 0, start_us = 0;
  int64_t end_frame = 0, end_us = 0;  // last frame with motion so far
  int64_t frames = 0;                 // frames with motion
  int64_t peak_area = 0, peak_frame = 0, peak_us = 0;
  std::vector<cv::Rect> first_boxes, peak_boxes;
  int64_t first_area = 0;
  cv::Rect bounds;  // union of every box of the event
};

class MotionEvents {
 public:
  struct Config {
    int start_after = 2;  // consecutive frames with motion that start an event
    int end_after = 10;   // consecutive quiet frames that end it
  };

  struct Step {
    bool run_began = false;  // this frame starts a run of motion (a possible event's first)
    bool new_peak = false;   // this frame is the peak so far of the run or event
    bool started = false;    // an event was confirmed: `event` is it so far
    bool ended = false;      // an event ended: `event` is final
    MotionEvent event;
  };

  explicit MotionEvents(Config config);
  Step observe(int64_t frame, int64_t time_us, const FrameMotion& motion);
  // End of input: the event in progress, if any, ends at its last frame with motion.
  std::optional<MotionEvent> finish();
  bool active() const { return active_; }
  // An event is active, or a run of motion frames may become one.
  bool in_run() const { return active_ || run_ > 0; }
  // The event in progress (active) or the run that may become one.
  const MotionEvent& current() const { return current_; }

 private:
  Config config_;
  bool active_ = false;
  int run_ = 0;    // consecutive motion frames while idle
  int quiet_ = 0;  // consecutive quiet frames while active
  int64_t next_id_ = 1;
  MotionEvent current_;
};

}  // namespace edgeflow
