// SyntheticScene — reproducible camera scenes with moving objects and their ground truth, for
// tests, benchmarks and demos without a camera. A plain class with no runtime dependency:
// camera.synthetic is a thin source around it.
//
// The scene is a static textured background. Objects (checkered, bright rectangles) appear
// in groups of `together`, each group moving for `duration` frames, then vanishing; `gap`
// quiet frames separate groups and `first` quiet frames come before the first (time for a
// background model to learn). An object moves `object_speed` pixels per frame in a direction
// drawn from the seed and bounces off the edges of its band (the frame is cut into
// `together` horizontal bands so the objects of a group never overlap). On top: a slow global
// brightness drift (sine of amplitude `drift` and period `drift_period` frames) and gaussian
// pixel noise of standard deviation `noise` gray levels.
//
// Every frame is a pure function of the config and its index: render(i) gives the same
// pixels in any order, and truth(i) the boxes of the objects visible in frame i.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

namespace edgeflow {

class SyntheticScene {
 public:
  struct Config {
    int width = 640;
    int height = 480;
    int objects = 3;          // objects in all (0: a static scene)
    int together = 1;         // objects visible at once (one group)
    int object_size = 60;     // side, pixels
    double object_speed = 4;  // pixels per frame
    int first = 20;           // quiet frames before the first group
    int duration = 30;        // frames a group is visible
    int gap = 30;             // quiet frames between groups
    bool repeat = false;      // start over after the last group, forever
    double noise = 4;         // gray levels, standard deviation
    double drift = 0.05;      // brightness amplitude, fraction
    int drift_period = 600;   // frames
    uint64_t seed = 1;
  };

  struct Truth {
    int id = 0;  // object number, from 0, counting across repeats
    cv::Rect box;
  };

  // An object's visible span: frames first..last inclusive.
  struct Appearance {
    int id = 0;
    int64_t first = 0;
    int64_t last = 0;
  };

  // Throws std::invalid_argument for sizes that do not fit the frame or bands.
  explicit SyntheticScene(Config config);

  const Config& config() const { return config_; }
  // BGR pixels of frame `index` (>= 0), newly allocated.
  cv::Mat render(int64_t index) const;
  std::vector<Truth> truth(int64_t index) const;
  // Objects that appear in frames [0, frames).
  std::vector<Appearance> appearances(int64_t frames) const;
  // Frames until the last group has gone and a gap has passed (the natural length of a
  // scene that does not repeat).
  int64_t natural_length() const;

 private:
  struct Object {
    cv::Point2d start;  // top-left at the first visible frame, within its band
    cv::Point2d velocity;
    cv::Scalar color;
    int cell = 6;  // side of the checker's squares
  };
  Object object(int id) const;
  int group_of_frame(int64_t index, int64_t& offset) const;  // -1: quiet
  cv::Rect box_at(int id, int64_t age) const;

  Config config_;
  cv::Mat background_;
  int groups_ = 0;
};

}  // namespace edgeflow
