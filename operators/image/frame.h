// Camera frames and encoded images as message blobs, shared by the camera, vision and image
// operators.
//
// A raw frame is a blob of type "frame/bgr8" (or "frame/gray8") whose pixels are a cv::Mat in
// `native`: it moves between stages by pointer and never goes on the wire (a link encodes it
// as JPEG first: see image_encode.cc). An encoded image is "image/jpeg" or "image/png" with the
// file bytes in `bytes`; that is what crosses links. A frame is immutable once emitted: stages that
// draw on one clone it.
#pragma once

#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>

#include "runtime/message.h"

namespace edgeflow {

inline constexpr std::string_view kFrameBgr = "frame/bgr8";
inline constexpr std::string_view kFrameGray = "frame/gray8";
inline constexpr std::string_view kImageJpeg = "image/jpeg";
inline constexpr std::string_view kImagePng = "image/png";

enum class ImageFormat { kJpeg, kPng };

// A frame blob holding `pixels` (8-bit, 1 or 3 channels) by reference, no copy.
Blob make_frame_blob(cv::Mat pixels);

// The in-process pixels of a frame blob; null for any other blob.
const cv::Mat* native_frame(const Blob& blob);

// Pixels of a frame blob, or of an image/jpeg or image/png blob decoded (BGR). False with the
// reason in `why` for an empty blob, another type, or bytes that do not decode.
bool frame_pixels(const Blob& blob, cv::Mat& out, std::string& why);

// Encodes 8-bit BGR or gray pixels. `quality`: JPEG 1..100; PNG compression 0..9.
bool encode_image(const cv::Mat& pixels, ImageFormat format, int quality, std::string& out,
                  std::string& why);
Blob make_image_blob(ImageFormat format, std::string bytes);
std::string_view image_type(ImageFormat format);

}  // namespace edgeflow
