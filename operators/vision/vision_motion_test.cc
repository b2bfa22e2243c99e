// vision.motion through the harness, fed by camera.synthetic (and camera.capture reading an
// MJPG file): events match the scene's ground truth, snapshots and per-frame boxes come out
// when asked, JPEG input works, cameras never mix, and bad input goes to the error output.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <opencv2/videoio.hpp>
#include <string>
#include <vector>

#include "operators/camera/synthetic_scene.h"
#include "operators/image/frame.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

std::vector<MessagePtr> synthetic(const std::string& options, const std::string& node = "edge") {
  OperatorHarness cam("camera.synthetic", options, node, "cam");
  cam.run_source(100000);
  return cam.take();
}

const std::string kScene = "{speed: 0, objects: 3, seed: 5}";

std::string text(const Message& m, const std::string& key) {
  const Value* v = find_field(m.fields, key);
  return v && v->string() ? *v->string() : "";
}
int64_t integer(const Message& m, const std::string& key) {
  const Value* v = find_field(m.fields, key);
  return v && v->v.index() == 2 ? std::get<int64_t>(v->v) : -1;
}

// The box {x, y, w, h} of one truth entry.
cv::Rect truth_box(const Value& t) {
  Message m;
  m.fields = *t.map();
  return {static_cast<int>(integer(m, "x")), static_cast<int>(integer(m, "y")),
          static_cast<int>(integer(m, "w")), static_cast<int>(integer(m, "h"))};
}

cv::Rect rect_of(const Value& v) {
  const Array& a = *v.array();
  return {static_cast<int>(*a[0].number()), static_cast<int>(*a[1].number()),
          static_cast<int>(*a[2].number()), static_cast<int>(*a[3].number())};
}

double iou(const cv::Rect& a, const cv::Rect& b) {
  double inter = (a & b).area();
  return inter / (a.area() + b.area() - inter);
}

// Truth per frame from the frames' own `truth` fields: first and last frame of each object.
struct TruthSpan {
  int64_t first = -1, last = -1;
};
std::map<int64_t, TruthSpan> truth_spans(const std::vector<MessagePtr>& frames) {
  std::map<int64_t, TruthSpan> spans;
  for (const MessagePtr& f : frames) {
    for (const Value& t : *find_field(f->fields, "truth")->array()) {
      int64_t id = std::get<int64_t>(find_field(*t.map(), "id")->v);
      TruthSpan& s = spans[id];
      if (s.first < 0) s.first = integer(*f, "frame");
      s.last = integer(*f, "frame");
    }
  }
  return spans;
}

TEST(VisionMotion, OneStartAndOneEndPerObjectMatchingTheTruth) {
  std::vector<MessagePtr> frames = synthetic(kScene);
  OperatorHarness h("vision.motion", "{}");
  for (const MessagePtr& f : frames) h.push(f);
  h.finish();
  auto spans = truth_spans(frames);
  ASSERT_EQ(spans.size(), 3u);
  const auto& out = h.output();
  ASSERT_EQ(out.size(), 6u);
  size_t k = 0;
  for (const auto& [id, span] : spans) {
    const Message& start = *out[k++];
    const Message& end = *out[k++];
    EXPECT_EQ(text(start, "event"), "start");
    EXPECT_EQ(text(end, "event"), "end");
    EXPECT_EQ(integer(start, "event_id"), id + 1);
    EXPECT_EQ(integer(end, "event_id"), id + 1);
    EXPECT_EQ(text(start, "camera"), "cam");
    EXPECT_LE(std::llabs(integer(start, "start_frame") - span.first), 2);
    EXPECT_LE(std::llabs(integer(end, "end_frame") - span.last), 2);
    EXPECT_EQ(start.event_time_us, frames[integer(start, "start_frame")]->event_time_us);
    EXPECT_EQ(end.event_time_us, frames[integer(end, "end_frame")]->event_time_us);
    EXPECT_EQ(text(end, "ended_by"), "quiet");
    EXPECT_GT(integer(end, "peak_area"), 0);
    EXPECT_GE(integer(end, "frames"), span.last - span.first - 1);
    EXPECT_EQ(start.origin, "edge");
    // The peak frame's box against that frame's truth.
    const MessagePtr& peak = frames[integer(end, "peak_frame")];
    cv::Rect truth = truth_box((*find_field(peak->fields, "truth")->array())[0]);
    const Array& boxes = *find_field(end.fields, "boxes")->array();
    ASSERT_EQ(boxes.size(), 1u);
    EXPECT_GE(iou(rect_of(boxes[0]), truth), 0.5);
  }
  EXPECT_TRUE(h.errors().empty());
}

TEST(VisionMotion, PerFrameBoxesOverlapTheTruth) {
  std::vector<MessagePtr> frames = synthetic("{speed: 0, objects: 2, together: 2, seed: 9}");
  OperatorHarness h("vision.motion", "{method: diff, per_frame: true}");
  for (const MessagePtr& f : frames) h.push(f);
  h.finish();
  const auto& boxes = h.output("boxes");
  ASSERT_EQ(boxes.size(), frames.size() - 10);  // every frame after warmup
  int checked = 0;
  for (const MessagePtr& b : boxes) {
    const MessagePtr& f = frames[integer(*b, "frame")];
    EXPECT_EQ(b->event_time_us, f->event_time_us);
    const Array& found = *find_field(b->fields, "boxes")->array();
    for (const Value& t : *find_field(f->fields, "truth")->array()) {
      cv::Rect truth = truth_box(t);
      double best = 0;
      for (const Value& v : found) best = std::max(best, iou(rect_of(v), truth));
      EXPECT_GE(best, 0.5) << "frame " << integer(*b, "frame");
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2 * 30);
}

TEST(VisionMotion, PeakSnapshotAsImageAndAsBase64) {
  std::vector<MessagePtr> frames = synthetic(kScene);
  OperatorHarness h("vision.motion", "{snapshot: peak, snapshot_base64: true}");
  for (const MessagePtr& f : frames) h.push(f);
  h.finish();
  const auto& snaps = h.output("snapshots");
  ASSERT_EQ(snaps.size(), 3u);
  for (const MessagePtr& s : snaps) {
    EXPECT_EQ(s->blob.type, "image/jpeg");
    ASSERT_TRUE(s->blob.bytes);
    cv::Mat px;
    std::string why;
    ASSERT_TRUE(frame_pixels(s->blob, px, why)) << why;
    EXPECT_EQ(px.size(), cv::Size(640, 480));
    EXPECT_EQ(text(*s, "event"), "end");
  }
  int ends = 0;
  for (const MessagePtr& e : h.output()) {
    if (text(*e, "event") != "end") {
      EXPECT_EQ(find_field(e->fields, "snapshot_jpeg"), nullptr);
      continue;
    }
    ++ends;
    std::string b64 = text(*e, "snapshot_jpeg");
    EXPECT_EQ(b64.substr(0, 4), "/9j/");  // FF D8 FF: a JPEG
    EXPECT_EQ(integer(*snaps[ends - 1], "event_id"), integer(*e, "event_id"));
    EXPECT_EQ(integer(*snaps[ends - 1], "frame"), integer(*e, "peak_frame"));
  }
  EXPECT_EQ(ends, 3);
}

TEST(VisionMotion, FirstSnapshotComesWithTheStart) {
  std::vector<MessagePtr> frames = synthetic(kScene);
  OperatorHarness h("vision.motion", "{snapshot: first, snapshot_boxes: false}");
  for (const MessagePtr& f : frames) h.push(f);
  h.finish();
  const auto& snaps = h.output("snapshots");
  ASSERT_EQ(snaps.size(), 3u);
  for (const MessagePtr& s : snaps) EXPECT_EQ(text(*s, "event"), "start");
  EXPECT_EQ(integer(*snaps[0], "frame"), integer(*h.output()[0], "start_frame"));
}

TEST(VisionMotion, JpegFramesFromAcrossALinkGiveTheSameEvents) {
  std::vector<MessagePtr> frames = synthetic(kScene);
  OperatorHarness enc("image.encode", "{quality: 80}");
  OperatorHarness raw("vision.motion", "{}"), jpeg("vision.motion",
                                                   "{snapshot: peak, "
                                                   "snapshot_boxes: false}");
  for (const MessagePtr& f : frames) {
    raw.push(f);
    enc.push(f);
  }
  for (const MessagePtr& j : enc.take()) jpeg.push(j);
  raw.finish();
  jpeg.finish();
  ASSERT_EQ(jpeg.output().size(), raw.output().size());
  for (size_t i = 0; i < raw.output().size(); ++i) {
    EXPECT_LE(std::llabs(integer(*jpeg.output()[i], "start_frame") -
                         integer(*raw.output()[i], "start_frame")),
              1);
  }
  // Without boxes drawn, the snapshot is the input JPEG itself: no second encode.
  ASSERT_FALSE(jpeg.output("snapshots").empty());
  EXPECT_EQ(jpeg.output("snapshots")[0]->blob.bytes->substr(0, 2), "\xff\xd8");
}

TEST(VisionMotion, CamerasOfDifferentNodesNeverMix) {
  std::vector<MessagePtr> moving = synthetic(kScene, "pi-1");
  std::vector<MessagePtr> still = synthetic("{speed: 0, objects: 0, count: 200}", "pi-2");
  OperatorHarness h("vision.motion", "{}", "cloud");
  for (size_t i = 0; i < std::max(moving.size(), still.size()); ++i) {
    if (i < moving.size()) h.push(moving[i]);
    if (i < still.size()) h.push(still[i]);
  }
  h.finish();
  ASSERT_EQ(h.output().size(), 6u);
  for (const MessagePtr& e : h.output()) EXPECT_EQ(e->origin, "pi-1");
}

TEST(VisionMotion, EndOfInputEndsTheEventInProgress) {
  std::vector<MessagePtr> frames = synthetic("{speed: 0, objects: 1, count: 35}");
  OperatorHarness h("vision.motion", "{}");
  for (const MessagePtr& f : frames) h.push(f);
  h.finish();
  ASSERT_EQ(h.output().size(), 2u);
  EXPECT_EQ(text(*h.output()[1], "ended_by"), "end of input");
}

TEST(VisionMotion, StaticNoisySceneGivesNoEvent) {
  std::vector<MessagePtr> frames =
      synthetic("{speed: 0, objects: 0, count: 300, noise: 10, drift: 0.15, drift_period: 200}");
  for (const char* method : {"mog2", "knn", "diff"}) {
    OperatorHarness h("vision.motion", std::string("{method: ") + method + "}");
    for (const MessagePtr& f : frames) h.push(f);
    h.finish();
    EXPECT_TRUE(h.output().empty()) << method;
  }
}

TEST(VisionMotion, BadInputGoesToTheErrorOutput) {
  OperatorHarness h("vision.motion", "{}");
  h.push_reading(1, {{"temperature", 20.0}});
  auto junk = std::make_shared<Message>();
  junk->blob = make_image_blob(ImageFormat::kJpeg, "not a jpeg");
  h.push(junk);
  EXPECT_EQ(h.errors().size(), 2u);
  EXPECT_EQ(h.output("error").size(), 2u);
  EXPECT_TRUE(h.output().empty());
}

TEST(VisionMotion, OptionChecks) {
  auto problems = [](const std::string& o) {
    return OperatorHarness::option_problems("vision.motion", o);
  };
  EXPECT_NE(problems("{blur: 4}").find("must be odd"), std::string::npos);
  EXPECT_NE(problems("{roi: ['0,0 10,10']}").find("at least 3 vertices"), std::string::npos);
  EXPECT_NE(problems("{exclude: ['0,0 10;10 5,5']}").find("exclude"), std::string::npos);
  EXPECT_NE(problems("{snapshot_base64: true}").find("snapshot"), std::string::npos);
  EXPECT_NE(problems("{method: mog3}").find("method"), std::string::npos);
  EXPECT_NE(problems("{threshold: 0}").find("threshold"), std::string::npos);
  EXPECT_EQ(problems("{method: knn, roi: ['0,0 100%,0 100%,50%'], threshold: 300}"), "");
}

// The end-to-end case without a device: an MJPG file written with OpenCV, read back
// by camera.capture, detected by vision.motion.
TEST(VisionMotion, DetectsMotionInAnMjpgFileReadBack) {
  std::string pattern = (fs::temp_directory_path() / "edgeflow-vision-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  std::string path = pattern + "/scene.avi";
  SyntheticScene::Config c;
  c.objects = 2;
  c.seed = 21;
  SyntheticScene scene(c);
  {
    cv::VideoWriter w(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10,
                      cv::Size(c.width, c.height));
    ASSERT_TRUE(w.isOpened());
    for (int64_t i = 0; i < scene.natural_length(); ++i) w.write(scene.render(i));
  }
  OperatorHarness cam("camera.capture", "{device: '" + path + "', speed: 0}", "edge", "cam");
  cam.run_source(100000);
  std::vector<MessagePtr> frames = cam.take();
  fs::remove_all(pattern);
  ASSERT_EQ(static_cast<int64_t>(frames.size()), scene.natural_length());

  OperatorHarness h("vision.motion", "{per_frame: true}");
  for (const MessagePtr& f : frames) h.push(f);
  h.finish();
  auto truth = scene.appearances(scene.natural_length());
  ASSERT_EQ(h.output().size(), 2 * truth.size());
  for (size_t k = 0; k < truth.size(); ++k) {
    const Message& start = *h.output()[2 * k];
    EXPECT_LE(std::llabs(integer(start, "start_frame") - truth[k].first), 2);
    for (int64_t f = truth[k].first + 1; f <= truth[k].last; ++f) {
      const Message& b = *h.output("boxes")[f - 10];
      ASSERT_EQ(integer(b, "frame"), f);
      double best = 0;
      for (const Value& v : *find_field(b.fields, "boxes")->array())
        best = std::max(best, iou(rect_of(v), scene.truth(f)[0].box));
      EXPECT_GE(best, 0.5) << "frame " << f;
    }
  }
}

}  // namespace
}  // namespace edgeflow
