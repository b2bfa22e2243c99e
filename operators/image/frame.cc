#include "operators/image/frame.h"

#include <exception>
#include <opencv2/imgcodecs.hpp>
#include <vector>

namespace edgeflow {

Blob make_frame_blob(cv::Mat pixels) {
  Blob b;
  b.type = std::string(pixels.channels() == 1 ? kFrameGray : kFrameBgr);
  b.native_bytes = pixels.total() * pixels.elemSize();
  b.native = std::make_shared<const cv::Mat>(std::move(pixels));
  return b;
}

const cv::Mat* native_frame(const Blob& blob) {
  if (!blob.native || (blob.type != kFrameBgr && blob.type != kFrameGray)) return nullptr;
  return static_cast<const cv::Mat*>(blob.native.get());
}

bool frame_pixels(const Blob& blob, cv::Mat& out, std::string& why) {
  if (const cv::Mat* m = native_frame(blob)) {
    out = *m;
    return true;
  }
  if (blob.empty()) {
    why = "the message carries no frame";
    return false;
  }
  if (blob.type != kImageJpeg && blob.type != kImagePng) {
    why = "a '" + blob.type + "' blob is not a frame or a JPEG/PNG image";
    return false;
  }
  if (!blob.bytes || blob.bytes->empty()) {
    why = "the '" + blob.type + "' image has no bytes";
    return false;
  }
  try {
    cv::Mat raw(1, static_cast<int>(blob.bytes->size()), CV_8UC1,
                const_cast<char*>(blob.bytes->data()));
    out = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const std::exception&) {
    out.release();
  }
  if (out.empty()) {
    why = "the '" + blob.type + "' image (" + std::to_string(blob.bytes->size()) +
          " bytes) does not decode";
    return false;
  }
  return true;
}

bool encode_image(const cv::Mat& pixels, ImageFormat format, int quality, std::string& out,
                  std::string& why) {
  if (pixels.empty() || pixels.depth() != CV_8U ||
      (pixels.channels() != 1 && pixels.channels() != 3)) {
    why = "only 8-bit gray or BGR frames can be encoded";
    return false;
  }
  std::vector<int> params;
  if (format == ImageFormat::kJpeg) {
    params = {cv::IMWRITE_JPEG_QUALITY, quality};
  } else {
    params = {cv::IMWRITE_PNG_COMPRESSION, quality};
  }
  std::vector<uchar> buf;
  bool ok = false;
  try {
    ok = cv::imencode(format == ImageFormat::kJpeg ? ".jpg" : ".png", pixels, buf, params);
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
  if (!ok) {
    why = "OpenCV could not encode the frame";
    return false;
  }
  out.assign(reinterpret_cast<const char*>(buf.data()), buf.size());
  return true;
}

std::string_view image_type(ImageFormat format) {
  return format == ImageFormat::kJpeg ? kImageJpeg : kImagePng;
}

Blob make_image_blob(ImageFormat format, std::string bytes) {
  Blob b;
  b.type = std::string(image_type(format));
  b.bytes = std::make_shared<const std::string>(std::move(bytes));
  return b;
}

}  // namespace edgeflow
