// VideoSource — one OpenCV VideoCapture (V4L2 device, video file, or network stream) behind
// errors a user can act on: what failed, where, and what to check. No runtime dependency:
// camera.capture paces and stamps what it reads; tests use files written with cv::VideoWriter.
//
// `device` is classified as: digits -> V4L2 device index (/dev/videoN); /dev/... -> a device
// path; scheme://... -> a network stream (rtsp, http, https, rtmp, udp, tcp); anything else
// -> a video file. A file is checked by reading its first frame at open(), so an unreadable
// or corrupt file fails there, before the pipeline runs.
#pragma once

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>
#include <string>

namespace edgeflow {

class VideoSource {
 public:
  enum class Kind { kDevice, kFile, kStream };
  struct Config {
    std::string device;
    std::string backend = "auto";  // auto | v4l2 | ffmpeg | gstreamer
    int width = 0, height = 0;     // requested from a device (a hint; it may refuse)
    double fps = 0;                // requested from a device
    int timeout_ms = 10000;        // network streams: open and read timeouts
  };
  enum class Read { kFrame, kEnd, kDropped };

  static Kind classify(const std::string& device);
  // The URL with any password replaced by ***, for messages and logs.
  static std::string redact(const std::string& url);

  explicit VideoSource(Config config);
  Kind kind() const { return kind_; }
  // "V4L2 device /dev/video0", "video file /x/y.avi", "stream rtsp://cam/live".
  const std::string& name() const { return name_; }

  // False with the reason, and what to check, in `why`.
  bool open(std::string& why);
  bool is_open() const { return cap_.isOpened(); }
  void close();

  // Grabs the next frame without decoding it; `pos_ms` is its time in a file (-1 elsewhere).
  Read grab(double& pos_ms);
  // Decodes the grabbed frame.
  bool retrieve(cv::Mat& frame);
  // Files: back to the first frame.
  bool rewind();
  // Frames per second the source reports; 0 when unknown.
  double fps() const;

 private:
  int api() const;

  Config config_;
  Kind kind_;
  std::string name_;
  int index_ = -1;  // device number
  cv::VideoCapture cap_;
  bool first_pending_ = false;  // open() read the first frame of a file; grab() returns it
  cv::Mat first_;
  double first_pos_ms_ = 0;
  bool first_taken_ = false;
};

}  // namespace edgeflow
