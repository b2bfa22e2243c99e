#include "operators/camera/synthetic_scene.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>

namespace edgeflow {
namespace {

constexpr double kPi = 3.14159265358979323846;

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9e3779b97f4a7c15ULL + b + 0x632be59bd9b4e019ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) | 1;  // cv::RNG treats a zero state specially
}

// Position on [0, span] of a point moving freely and bouncing off both ends.
double bounce(double p, double span) {
  if (span <= 0) return 0;
  double m = std::fmod(p, 2 * span);
  if (m < 0) m += 2 * span;
  return m <= span ? m : 2 * span - m;
}

}  // namespace

SyntheticScene::SyntheticScene(Config c) : config_(c) {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (c.width < 16 || c.height < 16) fail("the frame must be at least 16x16 pixels");
  if (c.objects < 0) fail("objects must be >= 0");
  if (c.together < 1) fail("together must be >= 1");
  if (c.duration < 1) fail("duration must be >= 1 frame");
  if (c.first < 0 || c.gap < 0) fail("first and gap must be >= 0 frames");
  if (c.drift_period < 1) fail("drift_period must be >= 1 frame");
  int band = c.height / c.together;
  if (c.object_size < 4 || c.object_size > band || c.object_size > c.width) {
    fail("object_size " + std::to_string(c.object_size) + " does not fit: each of the " +
         std::to_string(c.together) + " objects shown together moves in a band of " +
         std::to_string(c.width) + "x" + std::to_string(band) + " pixels");
  }
  groups_ = (c.objects + c.together - 1) / c.together;

  // A static background with texture, so a detector sees edges, not a flat field.
  cv::RNG rng(mix(c.seed, 0xb4c6));
  background_.create(c.height, c.width, CV_8UC3);
  for (int y = 0; y < c.height; ++y) {
    auto level = static_cast<uchar>(70 + 60 * y / c.height);
    background_.row(y).setTo(cv::Scalar(level, level + 5, level + 10));
  }
  int patches = 12 + c.width * c.height / 8000;
  for (int i = 0; i < patches; ++i) {
    int w = rng.uniform(c.width / 40 + 2, c.width / 6 + 3);
    int h = rng.uniform(c.height / 40 + 2, c.height / 6 + 3);
    int x = rng.uniform(0, c.width - 1), y = rng.uniform(0, c.height - 1);
    int g = rng.uniform(50, 150);
    cv::rectangle(background_, cv::Rect(x, y, w, h),
                  cv::Scalar(g + rng.uniform(-10, 10), g, g + rng.uniform(-10, 10)), cv::FILLED);
  }
  cv::GaussianBlur(background_, background_, cv::Size(5, 5), 0);
}

SyntheticScene::Object SyntheticScene::object(int id) const {
  cv::RNG rng(mix(config_.seed, static_cast<uint64_t>(id) + 1));
  const Config& c = config_;
  int band = c.height / c.together;
  Object o;
  o.start = {rng.uniform(0.0, static_cast<double>(c.width - c.object_size)),
             rng.uniform(0.0, static_cast<double>(band - c.object_size))};
  double angle = rng.uniform(0.0, 2 * kPi);
  o.velocity = {c.object_speed * std::cos(angle), c.object_speed * std::sin(angle)};
  // Bright and saturated: well above the background's luminance in gray and in color.
  o.color = cv::Scalar(rng.uniform(0, 256), rng.uniform(200, 256), rng.uniform(150, 256));
  o.cell = rng.uniform(5, 9);
  return o;
}

int SyntheticScene::group_of_frame(int64_t index, int64_t& offset) const {
  const Config& c = config_;
  if (groups_ == 0 || index < c.first) return -1;
  int64_t period = c.duration + c.gap;
  int64_t g = (index - c.first) / period;
  offset = (index - c.first) % period;
  if (offset >= c.duration || (!c.repeat && g >= groups_)) return -1;
  return static_cast<int>(g);
}

cv::Rect SyntheticScene::box_at(int id, int64_t age) const {
  const Config& c = config_;
  int band = c.height / c.together;
  // The slot within its group fixes the band; ids count objects across repeats.
  int in_cycle = id % std::max(c.objects, 1);
  int slot = in_cycle % c.together;
  Object o = object(id);
  double t = static_cast<double>(age);
  double x = bounce(o.start.x + o.velocity.x * t, c.width - c.object_size);
  double y = bounce(o.start.y + o.velocity.y * t, band - c.object_size);
  return {static_cast<int>(std::lround(x)), slot * band + static_cast<int>(std::lround(y)),
          c.object_size, c.object_size};
}

std::vector<SyntheticScene::Truth> SyntheticScene::truth(int64_t index) const {
  std::vector<Truth> out;
  int64_t age = 0;
  int g = group_of_frame(index, age);
  if (g < 0) return out;
  const Config& c = config_;
  int cycle = g / groups_, in_cycle = g % groups_;
  int first_id = in_cycle * c.together;
  int count = std::min(c.together, c.objects - first_id);
  for (int k = 0; k < count; ++k) {
    int id = cycle * c.objects + first_id + k;
    out.push_back({id, box_at(id, age)});
  }
  return out;
}

cv::Mat SyntheticScene::render(int64_t index) const {
  const Config& c = config_;
  cv::Mat frame = background_.clone();
  for (const Truth& t : truth(index)) {
    Object o = object(t.id);
    cv::Mat roi = frame(t.box);
    roi.setTo(o.color);
    // A dark checker fixed to the object: its inside changes as it moves, in any direction,
    // as a person's or a car's does.
    cv::Scalar dark = o.color * 0.45;
    for (int y = 0; y < t.box.height; y += o.cell) {
      for (int x = ((y / o.cell) % 2) * o.cell; x < t.box.width; x += 2 * o.cell) {
        cv::rectangle(
            roi,
            cv::Rect(x, y, std::min(o.cell, t.box.width - x), std::min(o.cell, t.box.height - y)),
            dark, cv::FILLED);
      }
    }
  }
  if (c.drift > 0) {
    double gain = 1 + c.drift * std::sin(2 * kPi * static_cast<double>(index) / c.drift_period);
    frame.convertTo(frame, -1, gain, 0);
  }
  if (c.noise > 0) {
    cv::Mat noise(frame.size(), CV_16SC3);
    cv::RNG rng(mix(c.seed ^ 0x6e6f697365ULL, static_cast<uint64_t>(index)));
    rng.fill(noise, cv::RNG::NORMAL, 0, c.noise);
    cv::add(frame, noise, frame, cv::noArray(), CV_8U);
  }
  return frame;
}

std::vector<SyntheticScene::Appearance> SyntheticScene::appearances(int64_t frames) const {
  std::vector<Appearance> out;
  const Config& c = config_;
  if (groups_ == 0) return out;
  int64_t period = c.duration + c.gap;
  for (int64_t g = 0;; ++g) {
    if (!c.repeat && g >= groups_) break;
    int64_t start = c.first + g * period;
    if (start >= frames) break;
    int64_t last = std::min(start + c.duration - 1, frames - 1);
    int cycle = static_cast<int>(g / groups_), in_cycle = static_cast<int>(g % groups_);
    int first_id = in_cycle * c.together;
    int count = std::min(c.together, c.objects - first_id);
    for (int k = 0; k < count; ++k) out.push_back({cycle * c.objects + first_id + k, start, last});
  }
  return out;
}

int64_t SyntheticScene::natural_length() const {
  const Config& c = config_;
  return c.first + static_cast<int64_t>(groups_) * (c.duration + c.gap);
}

}  // namespace edgeflow
