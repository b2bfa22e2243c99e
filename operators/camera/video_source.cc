#include "operators/camera/video_source.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <opencv2/videoio/registry.hpp>
#include <vector>

namespace edgeflow {
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string video_devices() {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev", ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("video", 0) == 0) found.push_back(entry.path().string());
  }
  std::sort(found.begin(), found.end());
  if (found.empty()) return "no /dev/video* device is present";
  std::string list;
  for (const std::string& f : found) list += (list.empty() ? "" : ", ") + f;
  return "present: " + list;
}

}  // namespace

VideoSource::Kind VideoSource::classify(const std::string& device) {
  if (all_digits(device) || device.rfind("/dev/", 0) == 0) return Kind::kDevice;
  if (device.find("://") != std::string::npos) return Kind::kStream;
  return Kind::kFile;
}

std::string VideoSource::redact(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t host_start = scheme + 3;
  // User info ends at the last '@' before the path, as FFmpeg reads it: user:p@ss@cam.
  size_t slash = url.find('/', host_start);
  size_t at = url.rfind('@', slash == std::string::npos ? std::string::npos : slash);
  if (at == std::string::npos || at < host_start) return url;
  size_t colon = url.find(':', host_start);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

VideoSource::VideoSource(Config config) : config_(std::move(config)) {
  kind_ = classify(config_.device);
  if (config_.backend == "gstreamer" && kind_ == Kind::kFile &&
      config_.device.find('!') != std::string::npos)
    kind_ = Kind::kStream;  // a GStreamer pipeline ending in appsink
  switch (kind_) {
    case Kind::kDevice:
      if (all_digits(config_.device)) {
        index_ = std::stoi(config_.device);
        name_ = "V4L2 device /dev/video" + config_.device;
      } else {
        name_ = "V4L2 device " + config_.device;
      }
      break;
    case Kind::kFile:
      name_ = "video file " + config_.device;
      break;
    case Kind::kStream:
      name_ = "stream " + redact(config_.device);
      break;
  }
}

int VideoSource::api() const {
  const std::string& b = config_.backend;
  if (b == "v4l2") return cv::CAP_V4L2;
  if (b == "ffmpeg") return cv::CAP_FFMPEG;
  if (b == "gstreamer") return cv::CAP_GSTREAMER;
  if (kind_ == Kind::kDevice) return cv::CAP_V4L2;
  // FFmpeg reads files and streams without the warnings other backends print while OpenCV
  // tries them in turn.
  if (cv::videoio_registry::hasBackend(cv::CAP_FFMPEG)) return cv::CAP_FFMPEG;
  return cv::CAP_ANY;
}

bool VideoSource::open(std::string& why) {
  close();
  const std::string& d = config_.device;
  try {
    if (kind_ == Kind::kDevice) {
      std::string path = index_ >= 0 ? "/dev/video" + std::to_string(index_) : d;
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) {
        why = "no camera at " + path + " (" + std::strerror(errno) + "); " + video_devices();
        return false;
      }
      if (::access(path.c_str(), R_OK | W_OK) != 0) {
        why = "cannot use " + path + ": " + std::strerror(errno) +
              " (add the user to group 'video': sudo usermod -aG video $USER)";
        return false;
      }
      bool ok = index_ >= 0 ? cap_.open(index_, api()) : cap_.open(path, api());
      if (!ok || !cap_.isOpened()) {
        why = "could not open " + path +
              " as a camera (is another program using it? is it a capture node? try "
              "v4l2-ctl --list-devices)";
        return false;
      }
      if (config_.width > 0) cap_.set(cv::CAP_PROP_FRAME_WIDTH, config_.width);
      if (config_.height > 0) cap_.set(cv::CAP_PROP_FRAME_HEIGHT, config_.height);
      if (config_.fps > 0) cap_.set(cv::CAP_PROP_FPS, config_.fps);
      return true;
    }
    if (kind_ == Kind::kFile) {
      struct stat st {};
      if (::stat(d.c_str(), &st) != 0) {
        why = "cannot open video file '" + d + "': " + std::strerror(errno);
        return false;
      }
      if (S_ISDIR(st.st_mode)) {
        why = "'" + d + "' is a directory, not a video file";
        return false;
      }
      if (::access(d.c_str(), R_OK) != 0) {
        why = "cannot read video file '" + d + "': " + std::strerror(errno);
        return false;
      }
      if (!cap_.open(d, api()) || !cap_.isOpened()) {
        why = "'" + d + "' is not a video OpenCV can read (unknown format, or the file is corrupt)";
        return false;
      }
      // A file whose header parses but whose frames do not is as useless: find out now.
      if (!cap_.grab() || !cap_.retrieve(first_) || first_.empty()) {
        why =
            "'" + d + "' opened but its first frame cannot be decoded (truncated or corrupt file)";
        cap_.release();
        return false;
      }
      first_pos_ms_ = cap_.get(cv::CAP_PROP_POS_MSEC);
      first_pending_ = true;
      first_taken_ = false;
      return true;
    }
    std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, config_.timeout_ms,
                               cv::CAP_PROP_READ_TIMEOUT_MSEC, config_.timeout_ms};
    if (!cap_.open(d, api(), params) || !cap_.isOpened()) {
      why = "could not open " + name_ + " within " + std::to_string(config_.timeout_ms / 1000) +
            "s (is the camera reachable? are the URL, user and password right?)";
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    cap_.release();
    why = "OpenCV failed to open " + name_ + ": " + e.what();
    return false;
  }
}

void VideoSource::close() {
  cap_.release();
  first_pending_ = false;
  first_taken_ = false;
  first_.release();
}

VideoSource::Read VideoSource::grab(double& pos_ms) {
  pos_ms = -1;
  if (first_pending_) {
    first_pending_ = false;
    first_taken_ = true;
    pos_ms = first_pos_ms_;
    return Read::kFrame;
  }
  first_taken_ = false;
  first_.release();
  if (!cap_.isOpened()) return kind_ == Kind::kFile ? Read::kEnd : Read::kDropped;
  bool ok = false;
  try {
    ok = cap_.grab();
  } catch (const std::exception&) {
    ok = false;
  }
  if (!ok) return kind_ == Kind::kFile ? Read::kEnd : Read::kDropped;
  if (kind_ == Kind::kFile) pos_ms = cap_.get(cv::CAP_PROP_POS_MSEC);
  return Read::kFrame;
}

bool VideoSource::retrieve(cv::Mat& frame) {
  if (first_taken_) {
    frame = first_;
    first_taken_ = false;
    first_.release();
    return !frame.empty();
  }
  try {
    return cap_.retrieve(frame) && !frame.empty();
  } catch (const std::exception&) {
    return false;
  }
}

bool VideoSource::rewind() {
  if (kind_ != Kind::kFile) return false;
  first_pending_ = false;
  first_taken_ = false;
  first_.release();
  try {
    if (cap_.isOpened() && cap_.set(cv::CAP_PROP_POS_FRAMES, 0)) return true;
    std::string why;
    return open(why);
  } catch (const std::exception&) {
    return false;
  }
}

double VideoSource::fps() const {
  double f = cap_.isOpened() ? cap_.get(cv::CAP_PROP_FPS) : 0;
  return f > 0 && f < 1000 ? f : 0;
}

}  // namespace edgeflow
