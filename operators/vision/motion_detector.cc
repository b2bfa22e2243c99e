#include "operators/vision/motion_detector.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/background_segm.hpp>
#include <stdexcept>

namespace edgeflow {
namespace {

// "12", "12.5" or "40%": a coordinate; false for anything else.
bool parse_coordinate(std::string_view s, double& value, bool& percent) {
  percent = !s.empty() && s.back() == '%';
  if (percent) s.remove_suffix(1);
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value) || value < 0)
    return false;
  return !percent || value <= 100;
}

}  // namespace

std::optional<RegionPolygon> parse_polygon(std::string_view text, std::string& why) {
  RegionPolygon p;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size()) break;
    size_t end = text.find_first_of(" \t", i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view point = text.substr(i, end - i);
    i = end;
    size_t comma = point.find(',');
    RegionPolygon::Vertex v;
    if (comma == std::string_view::npos ||
        !parse_coordinate(point.substr(0, comma), v.x, v.x_percent) ||
        !parse_coordinate(point.substr(comma + 1), v.y, v.y_percent)) {
      why = "'" + std::string(point) +
            "' is not a vertex: write x,y in pixels or percent, like 120,40 or 50%,100%";
      return std::nullopt;
    }
    p.vertices.push_back(v);
  }
  if (p.vertices.size() < 3) {
    why = "a polygon needs at least 3 vertices (got " + std::to_string(p.vertices.size()) + ")";
    return std::nullopt;
  }
  return p;
}

std::vector<cv::Point> RegionPolygon::at(cv::Size frame) const {
  std::vector<cv::Point> points;
  points.reserve(vertices.size());
  for (const Vertex& v : vertices) {
    double x = v.x_percent ? v.x / 100.0 * frame.width : v.x;
    double y = v.y_percent ? v.y / 100.0 * frame.height : v.y;
    points.emplace_back(static_cast<int>(std::lround(x)), static_cast<int>(std::lround(y)));
  }
  return points;
}

std::vector<cv::Rect> merge_boxes(std::vector<cv::Rect> boxes, int gap) {
  // Pixels between two boxes along one axis; negative when they overlap on it.
  auto apart = [](int a0, int a1, int b0, int b1) { return std::max(b0 - a1, a0 - b1); };
  for (bool merged = true; merged;) {
    merged = false;
    for (size_t i = 0; i < boxes.size() && !merged; ++i) {
      const cv::Rect& a = boxes[i];
      for (size_t j = i + 1; j < boxes.size(); ++j) {
        const cv::Rect& b = boxes[j];
        if (apart(a.x, a.x + a.width, b.x, b.x + b.width) <= gap &&
            apart(a.y, a.y + a.height, b.y, b.y + b.height) <= gap) {
          boxes[i] |= b;
          boxes.erase(boxes.begin() + static_cast<std::ptrdiff_t>(j));
          merged = true;
          break;
        }
      }
    }
  }
  return boxes;
}

double MotionDetector::default_threshold(MotionMethod method) {
  switch (method) {
    case MotionMethod::kMog2:
      return 16;
    case MotionMethod::kKnn:
      return 400;
    case MotionMethod::kDiff:
      return 25;
  }
  return 16;
}

MotionDetector::MotionDetector(Config config) : config_(std::move(config)) {
  const Config& c = config_;
  if (c.blur < 0 || (c.blur > 1 && c.blur % 2 == 0))
    throw std::invalid_argument("blur must be an odd kernel size, or 0 for none");
  if (c.min_area < 0 || c.erode < 0 || c.dilate < 0 || c.warmup < 0 || c.merge_gap < 0)
    throw std::invalid_argument("sizes and counts must be >= 0");
  if (c.history < 1) throw std::invalid_argument("history must be >= 1");
  threshold_ = c.threshold > 0 ? c.threshold : default_threshold(c.method);
  kernel_ = cv::getStructuringElement(cv::MORPH_RECT, cv::Size(3, 3));
}

void MotionDetector::reset() {
  size_ = cv::Size();
  type_ = -1;
}

void MotionDetector::start_model(const cv::Mat& frame) {
  const Config& c = config_;
  size_ = frame.size();
  type_ = frame.type();
  frames_ = 0;
  previous_.release();
  average_.release();
  switch (c.method) {
    case MotionMethod::kMog2:
      subtractor_ = cv::createBackgroundSubtractorMOG2(c.history, threshold_, c.shadows);
      break;
    case MotionMethod::kKnn:
      subtractor_ = cv::createBackgroundSubtractorKNN(c.history, threshold_, c.shadows);
      break;
    case MotionMethod::kDiff:
      subtractor_.reset();
      break;
  }
  region_.release();
  if (!c.include.empty() || !c.exclude.empty()) {
    region_ = cv::Mat(size_, CV_8U, cv::Scalar(c.include.empty() ? 255 : 0));
    std::vector<std::vector<cv::Point>> polygons;
    for (const RegionPolygon& p : c.include) polygons.push_back(p.at(size_));
    if (!polygons.empty()) cv::fillPoly(region_, polygons, cv::Scalar(255));
    polygons.clear();
    for (const RegionPolygon& p : c.exclude) polygons.push_back(p.at(size_));
    if (!polygons.empty()) cv::fillPoly(region_, polygons, cv::Scalar(0));
  }
}

FrameMotion MotionDetector::apply(const cv::Mat& frame) {
  const Config& c = config_;
  FrameMotion out;
  if (frame.size() != size_ || frame.type() != type_) start_model(frame);
  ++frames_;

  const cv::Mat* src = &frame;
  bool keep_color = c.color && c.method != MotionMethod::kDiff;
  if (frame.channels() == 3 && !keep_color) {
    cv::cvtColor(frame, input_, cv::COLOR_BGR2GRAY);
    src = &input_;
  }
  if (c.blur > 1) {
    cv::GaussianBlur(*src, blurred_, cv::Size(c.blur, c.blur), 0);
    src = &blurred_;
  }

  if (c.method == MotionMethod::kDiff) {
    if (previous_.empty()) {
      mask_ = cv::Mat::zeros(size_, CV_8U);
    } else {
      cv::absdiff(*src, previous_, diff_);
      cv::threshold(diff_, mask_, threshold_, 255, cv::THRESH_BINARY);
    }
    if (c.learning_rate > 0) {
      if (average_.empty()) src->convertTo(average_, CV_32F);
      cv::accumulateWeighted(*src, average_, c.learning_rate);
      average_.convertTo(previous_, CV_8U);
    } else {
      src->copyTo(previous_);
    }
  } else {
    subtractor_->apply(*src, mask_, c.learning_rate);
    // Shadows are marked 127: motion is only the definite foreground (255).
    if (c.shadows) cv::threshold(mask_, mask_, 200, 255, cv::THRESH_BINARY);
  }

  if (frames_ <= c.warmup) {
    out.warming_up = true;
    return out;
  }
  if (c.erode > 0) cv::erode(mask_, mask_, kernel_, cv::Point(-1, -1), c.erode);
  if (c.dilate > 0) cv::dilate(mask_, mask_, kernel_, cv::Point(-1, -1), c.dilate);
  // Last, so that dilation cannot carry motion across the region's edge.
  if (!region_.empty()) cv::bitwise_and(mask_, region_, mask_);

  int n = cv::connectedComponentsWithStats(mask_, labels_, stats_, centroids_, 8, CV_32S);
  std::vector<cv::Rect> boxes;
  for (int i = 1; i < n; ++i) {
    const int* s = stats_.ptr<int>(i);
    if (s[cv::CC_STAT_AREA] < c.min_area) continue;
    boxes.emplace_back(s[cv::CC_STAT_LEFT], s[cv::CC_STAT_TOP], s[cv::CC_STAT_WIDTH],
                       s[cv::CC_STAT_HEIGHT]);
    out.area += s[cv::CC_STAT_AREA];
  }
  out.boxes = merge_boxes(std::move(boxes), c.merge_gap);
  return out;
}

MotionEvents::MotionEvents(Config config) : config_(config) {
  if (config_.start_after < 1 || config_.end_after < 1)
    throw std::invalid_argument("start_after and end_after must be >= 1");
}

MotionEvents::Step MotionEvents::observe(int64_t frame, int64_t time_us,
                                         const FrameMotion& motion) {
  Step s;
  bool moving = motion.motion();
  if (active_ && !moving) {
    if (++quiet_ >= config_.end_after) {
      active_ = false;
      quiet_ = 0;
      s.ended = true;
      s.event = current_;
    }
    return s;
  }
  if (!active_ && !moving) {
    run_ = 0;
    return s;
  }
  if (!active_ && run_ == 0) {
    current_ = MotionEvent{};
    current_.start_frame = frame;
    current_.start_us = time_us;
    current_.first_boxes = motion.boxes;
    current_.first_area = motion.area;
    s.run_began = true;
  }
  quiet_ = 0;
  MotionEvent& e = current_;
  e.end_frame = frame;
  e.end_us = time_us;
  ++e.frames;
  if (motion.area > e.peak_area) {
    e.peak_area = motion.area;
    e.peak_frame = frame;
    e.peak_us = time_us;
    e.peak_boxes = motion.boxes;
    s.new_peak = true;
  }
  for (const cv::Rect& b : motion.boxes) e.bounds = e.bounds.area() > 0 ? (e.bounds | b) : b;
  if (!active_ && ++run_ >= config_.start_after) {
    active_ = true;
    run_ = 0;
    e.id = next_id_++;
    s.started = true;
    s.event = e;
  }
  return s;
}

std::optional<MotionEvent> MotionEvents::finish() {
  run_ = 0;
  if (!active_) return std::nullopt;
  active_ = false;
  quiet_ = 0;
  return current_;
}

}  // namespace edgeflow
