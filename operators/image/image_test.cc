// Frames and images: base64, image.encode / image.decode through the harness, and the codec
// carrying an encoded image and decoding it on the far side.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <string>

#include "brokers/codec.h"
#include "operators/image/base64.h"
#include "operators/image/frame.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

cv::Mat test_pattern(int w = 160, int h = 120) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      m.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>(x), static_cast<uchar>(y), static_cast<uchar>((x + y) / 2));
  cv::rectangle(m, cv::Rect(40, 30, 50, 40), cv::Scalar(20, 220, 240), cv::FILLED);
  return m;
}

MessagePtr frame_message(cv::Mat pixels, int64_t t = 1'000'000) {
  auto m = std::make_shared<Message>();
  m->stream = "cam";
  m->origin = "pi-1";
  m->event_time_us = t;
  m->fields = {{"frame", 7}, {"width", pixels.cols}, {"height", pixels.rows}};
  m->blob = make_frame_blob(std::move(pixels));
  return m;
}

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  cv::Scalar s = cv::mean(d);
  return (s[0] + s[1] + s[2]) / 3;
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xd8\xff\x00", 4)), "/9j/AA==");
}

TEST(ImageEncode, JpegKeepsFieldsAndDecodesClose) {
  OperatorHarness h("image.encode", "{format: jpeg, quality: 90}");
  cv::Mat pixels = test_pattern();
  h.push(frame_message(pixels));
  ASSERT_EQ(h.output().size(), 1u);
  const Message& out = *h.output()[0];
  EXPECT_EQ(out.blob.type, "image/jpeg");
  ASSERT_TRUE(out.blob.bytes);
  EXPECT_EQ(out.blob.native, nullptr);
  EXPECT_EQ(out.blob.bytes->substr(0, 2), "\xff\xd8");
  EXPECT_EQ(out.fields.size(), 3u);
  EXPECT_EQ(out.event_time_us, 1'000'000);
  cv::Mat back;
  std::string why;
  ASSERT_TRUE(frame_pixels(out.blob, back, why)) << why;
  EXPECT_EQ(back.size(), pixels.size());
  EXPECT_LT(mean_abs_diff(back, pixels), 4.0);
  EXPECT_TRUE(h.errors().empty());
}

TEST(ImageEncode, PngIsLossless) {
  OperatorHarness h("image.encode", "{format: png}");
  cv::Mat pixels = test_pattern();
  h.push(frame_message(pixels));
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.output()[0]->blob.type, "image/png");
  cv::Mat back;
  std::string why;
  ASSERT_TRUE(frame_pixels(h.output()[0]->blob, back, why)) << why;
  EXPECT_EQ(mean_abs_diff(back, pixels), 0.0);
}

TEST(ImageEncode, QualitySetsSize) {
  auto size_at = [](int q) {
    OperatorHarness h("image.encode", "{quality: " + std::to_string(q) + "}");
    h.push(frame_message(test_pattern(320, 240)));
    return h.output()[0]->blob.bytes->size();
  };
  EXPECT_LT(size_at(20), size_at(95));
}

TEST(ImageEncode, ImageInTheTargetFormatPassesUnchanged) {
  OperatorHarness h("image.encode", "{}");
  h.push(frame_message(test_pattern()));
  MessagePtr jpeg = h.take()[0];
  h.push(jpeg);
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.output()[0]->blob.bytes, jpeg->blob.bytes);  // the same bytes, not a copy
}

TEST(ImageEncode, MessageWithoutFrameGoesToErrorOutput) {
  OperatorHarness h("image.encode", "{}");
  h.push_reading(5, {{"temperature", 20.0}});
  EXPECT_TRUE(h.output().empty());
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_NE(h.errors()[0].find("no frame"), std::string::npos);
  EXPECT_EQ(h.output("error").size(), 1u);
}

TEST(ImageEncode, RejectsOutOfRangeQuality) {
  std::string problems = OperatorHarness::option_problems("image.encode", "{quality: 0}");
  EXPECT_NE(problems.find("quality"), std::string::npos) << problems;
}

TEST(ImageDecode, JpegBackToFrameAndGarbageToErrors) {
  OperatorHarness enc("image.encode", "{}");
  enc.push(frame_message(test_pattern()));
  OperatorHarness dec("image.decode", "{}");
  dec.push(enc.take()[0]);
  ASSERT_EQ(dec.output().size(), 1u);
  const cv::Mat* m = native_frame(dec.output()[0]->blob);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->size(), cv::Size(160, 120));
  EXPECT_EQ(dec.output()[0]->blob.type, "frame/bgr8");

  auto bad = std::make_shared<Message>();
  bad->blob = make_image_blob(ImageFormat::kJpeg, std::string("\xff\xd8 not really a jpeg", 20));
  dec.push(bad);
  ASSERT_EQ(dec.errors().size(), 1u);
  EXPECT_NE(dec.errors()[0].find("does not decode"), std::string::npos);
}

TEST(FramesOnTheWire, JpegSurvivesTheCodecAndARawFrameHasNoBytesToSend) {
  MessagePtr raw = frame_message(test_pattern());
  EXPECT_EQ(raw->blob.bytes, nullptr);  // a link refuses it (brokers/link/batch.cc)

  OperatorHarness enc("image.encode", "{quality: 80}");
  enc.push(raw);
  MessagePtr jpeg = enc.take()[0];
  std::string wire;
  encode_message(*jpeg, wire);
  // The JPEG is the bulk of what goes on the wire: the raw 160x120 frame is 57600 bytes.
  EXPECT_LT(wire.size(), jpeg->blob.bytes->size() + 100);
  DecodeResult d = decode_message(wire.data(), wire.size());
  ASSERT_TRUE(d.message) << d.error;
  EXPECT_EQ(*d.message->blob.bytes, *jpeg->blob.bytes);
  cv::Mat back;
  std::string why;
  ASSERT_TRUE(frame_pixels(d.message->blob, back, why)) << why;
  EXPECT_EQ(back.size(), cv::Size(160, 120));
}

}  // namespace
}  // namespace edgeflow
