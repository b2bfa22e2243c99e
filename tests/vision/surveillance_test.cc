// The surveillance-camera pipelines end to end, with the real binary and a real mosquitto:
// both placements validate; the edge placement publishes JSON motion events that
// mosquitto_sub reads and JPEG snapshots; the cloud placement carries JPEG frames over its
// link, many times the edge placement's bytes; a missing camera, a corrupt video file and a
// raw frame sent across a link all fail with a message that says what to do.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "brokers/mqtt/embedded_broker.h"
#include "tests/support/process.h"

namespace edgeflow {
namespace {

using edgeflow::testing::edgeflow_binary;
using edgeflow::testing::make_temp_dir;
using edgeflow::testing::Process;
using edgeflow::testing::ProcessResult;
using edgeflow::testing::read_file;
using edgeflow::testing::run_process;
using edgeflow::testing::source_dir;
using edgeflow::testing::write_file;
using json = nlohmann::json;

std::string pipeline(const std::string& name) { return source_dir() + "/pipelines/" + name; }

// Polls (bounded) until `p`'s stdout holds `text`: mosquitto_sub -d prints SUBACK once it
// has subscribed, so nothing published after that is missed (stdbuf -oL: its stdout is a
// file, which stdio would otherwise buffer until exit).
bool wait_for_out(Process& p, const std::string& text, double timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (p.out().find(text) != std::string::npos) return true;
    if (!p.running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

json link_of(const json& report, const std::string& name, const std::string& direction) {
  for (const json& l : report["links"])
    if (l["link"] == name && l["direction"] == direction) return l;
  return json();
}

TEST(SurveillanceCamera, BothPlacementsValidate) {
  ProcessResult r =
      run_process({edgeflow_binary(), "validate", pipeline("surveillance-camera.yaml"),
                   pipeline("surveillance-camera-cloud.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("link motion->events via mqtt: cam-1 -> cloud"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("link motion.snapshots->snapshots via mqtt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("link cam->motion via mqtt: cam-1 -> cloud"), std::string::npos) << r.out;
}

// A copy of an example pipeline whose frame queues block instead of dropping: with the camera
// at full speed (speed 0), which frames a drop-oldest queue keeps depends on how busy the
// machine is, and these tests check exact frames and counts.
std::string blocking_copy(const std::string& file, const std::string& dir) {
  std::string text = read_file(pipeline(file));
  const std::string queue = "queue: { capacity: 4 }";
  size_t at = text.find(queue);
  if (at != std::string::npos)
    text.replace(at, queue.size(), "queue: { capacity: 4, overflow: block }");
  write_file(dir + "/" + file, text);
  return dir + "/" + file;
}

TEST(SurveillanceCamera, EdgePlacementPublishesJsonEventsAndJpegSnapshots) {
  mqtt::EmbeddedBroker broker;
  broker.start();
  std::string port = std::to_string(broker.port());
  Process events(
      {"stdbuf", "-oL", "mosquitto_sub", "-d", "-p", port, "-t", "camera/+/motion", "-C", "2"});
  Process snaps({"stdbuf", "-oL", "mosquitto_sub", "-d", "-p", port, "-t", "camera/+/snapshot/#",
                 "-C", "1", "-F", "%t %l %x"});
  ASSERT_TRUE(wait_for_out(events, "SUBACK", 10)) << events.out() << events.err();
  ASSERT_TRUE(wait_for_out(snaps, "SUBACK", 10)) << snaps.out() << snaps.err();

  std::string dir = make_temp_dir();
  ProcessResult r =
      run_process({edgeflow_binary(), "run", blocking_copy("surveillance-camera.yaml", dir),
                   "--broker", broker.uri(), "--set", "cam.count=120", "--set", "cam.speed=0",
                   "--report", dir + "/r.json", "--quiet"},
                  120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(events.wait(20)) << events.out();
  ASSERT_TRUE(snaps.wait(20)) << snaps.out();

  // The first event's start and end, as JSON a dashboard reads.
  std::vector<json> got;
  std::istringstream lines(events.out());
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') got.push_back(json::parse(line));
  ASSERT_EQ(got.size(), 2u) << events.out();
  EXPECT_EQ(got[0]["event"], "start");
  EXPECT_EQ(got[1]["event"], "end");
  for (const json& e : got) {
    EXPECT_EQ(e["event_id"], 1);
    EXPECT_EQ(e["origin"], "cam-1");
    EXPECT_EQ(e["camera"], "cam");
    ASSERT_TRUE(e["boxes"].is_array());
    ASSERT_FALSE(e["boxes"].empty());
    EXPECT_EQ(e["boxes"][0].size(), 4u);
    EXPECT_TRUE(e["time"].is_string());
  }
  // The scene's first object is visible in frames 20..49. The frame queue drops the oldest
  // frames when detection falls behind the camera (here as fast as possible), so the first
  // frame detection saw may come a little later.
  EXPECT_GE(got[0]["start_frame"].get<int>(), 20);
  EXPECT_LE(got[0]["start_frame"].get<int>(), 49);
  EXPECT_GT(got[1]["peak_area"].get<int>(), 1000);

  // The snapshot: topic camera/cam-1/snapshot/1, a JPEG (FF D8 FF) of some kilobytes.
  std::string snap = snaps.out();
  size_t at = snap.find("camera/cam-1/snapshot/1 ");
  ASSERT_NE(at, std::string::npos) << snap;
  std::istringstream fields(snap.substr(at));
  std::string topic, hex;
  long length = 0;
  fields >> topic >> length >> hex;
  EXPECT_GT(length, 5000);
  EXPECT_EQ(hex.substr(0, 6), "ffd8ff");

  json report = json::parse(read_file(dir + "/r.json"));
  json sent = link_of(report, "motion->events", "send");
  ASSERT_FALSE(sent.is_null()) << report.dump(1);
  EXPECT_GE(sent["messages"].get<int>(), 2);
  // The camera never waits for detection: its frames go to a drop-oldest queue (the default
  // for a stage reading frames), and every frame is either detected or counted as dropped.
  json cam, motion;
  for (const json& s : report["stages"]) {
    if (s["stage"] == "cam") cam = s;
    if (s["stage"] == "motion") motion = s;
  }
  ASSERT_FALSE(cam.is_null() || motion.is_null()) << report.dump(1);
  EXPECT_EQ(cam["out"], 120);
  EXPECT_EQ(motion["in"].get<int>() + motion["dropped"].get<int>(), 120) << motion.dump();
  EXPECT_EQ(motion["queue_capacity"], 4);
}

TEST(SurveillanceCamera, CloudPlacementCarriesJpegFramesAndManyMoreBytes) {
  std::string dir = make_temp_dir();
  auto run = [&](const std::string& file, const std::string& report) {
    ProcessResult r =
        run_process({edgeflow_binary(), "run", blocking_copy(file, dir), "--set", "cam.count=100",
                     "--set", "cam.speed=0", "--report", dir + "/" + report, "--quiet"},
                    120);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(read_file(dir + "/" + report));
  };
  json edge = run("surveillance-camera.yaml", "edge.json");
  json cloud = run("surveillance-camera-cloud.yaml", "cloud.json");
  uint64_t edge_bytes = 0;
  for (const json& l : edge["links"])
    if (l["direction"] == "send") edge_bytes += l["payload_bytes"].get<uint64_t>();
  json frames = link_of(cloud, "cam->motion", "send");
  ASSERT_FALSE(frames.is_null()) << cloud.dump(1);
  uint64_t messages = frames["messages"].get<uint64_t>();
  ASSERT_GT(messages, 50u);  // most of the 100 frames (a frame queue may drop a few)
  uint64_t per_frame = frames["payload_bytes"].get<uint64_t>() / messages;
  EXPECT_GT(per_frame, 5000u);    // a 640x480 JPEG...
  EXPECT_LT(per_frame, 200000u);  // ...not a raw frame (921600 bytes)
  EXPECT_GT(frames["payload_bytes"].get<uint64_t>(), 10 * edge_bytes);
  for (const json& s : cloud["stages"]) EXPECT_EQ(s["errors"], 0) << s.dump();
}

// The planner on the camera: profile the edge placement, plan both. Motion events sent from
// the edge carry at least 100x fewer bytes than the JPEG frames the cloud placement sends;
// a real run of the cloud placement matches the predicted frame link to 10%.
TEST(SurveillanceCamera, PlannerPredictsBothPlacements) {
  const std::string dir = make_temp_dir();
  const std::string file = dir + "/surveillance-camera.yaml";
  write_file(file, read_file(pipeline("surveillance-camera.yaml")));
  ProcessResult r = run_process({edgeflow_binary(), "profile", file, "--for", "12s"}, 90);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto plan = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {edgeflow_binary(), "plan", file, "--json", "--month", "6"};
    args.insert(args.end(), extra.begin(), extra.end());
    ProcessResult p = run_process(args, 60);
    EXPECT_EQ(p.exit_code, 0) << p.err;
    return json::parse(p.out);
  };
  auto bytes_of = [](const json& plan, const std::string& link) {
    for (const json& l : plan["links"])
      if (l["link"] == link) return l["bytes_per_day"].get<double>();
    ADD_FAILURE() << "no link " << link << " in " << plan.dump();
    return 0.0;
  };
  json edge = plan({});
  json cloud = plan({"--set", "motion.on=cloud"});
  const double frames = bytes_of(cloud, "cam->motion");
  const double events = bytes_of(edge, "motion->events");
  const double snapshots = bytes_of(edge, "motion.snapshots->snapshots");
  EXPECT_GT(events, 0);
  EXPECT_GT(frames / events, 100) << frames << " against " << events;
  // With a JPEG snapshot per event the edge still sends several times fewer bytes (this
  // synthetic scene has a new object every 6 s; a real camera sees motion far less often).
  EXPECT_GT(frames / (events + snapshots), 5);
  // 10 frames a second of about 20-40 kB.
  for (const json& l : cloud["links"]) EXPECT_NEAR(l["messages_per_s"].get<double>(), 10, 0.5);

  const std::string report = dir + "/cloud-report.json";
  r = run_process({edgeflow_binary(), "run", file, "--set", "motion.on=cloud", "--for", "12s",
                   "--quiet", "--report", report},
                  90);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ProcessResult c = run_process(
      {edgeflow_binary(), "plan", file, "--set", "motion.on=cloud", "--json", "--compare", report},
      60);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json cmp = json::parse(c.out);
  ASSERT_EQ(cmp["links"].size(), 1u) << c.out;
  const json& l = cmp["links"][0];
  EXPECT_EQ(l["link"], "cam->motion");
  EXPECT_LT(std::abs(l["error_pct"]["messages_per_s"].get<double>()), 10) << l.dump();
  EXPECT_LT(std::abs(l["error_pct"]["payload_bytes_per_s"].get<double>()), 10) << l.dump();
}

TEST(SurveillanceCamera, MissingCameraAndCorruptFileFailAtStartWithExit1) {
  std::string dir = make_temp_dir();
  write_file(dir + "/junk.avi", std::string(3000, 'x'));
  for (auto [device, expected] :
       {std::pair<std::string, std::string>{"/dev/video99", "no camera at /dev/video99"},
        {"junk.avi", "is not a video OpenCV can read"},
        {"missing.avi", "No such file"}}) {
    write_file(dir + "/p.yaml",
               "pipeline: cam\nstages:\n"
               "  - {id: cam, op: camera.capture, with: {device: '" +
                   device +
                   "'}}\n"
                   "  - {id: motion, op: vision.motion, from: cam}\n");
    ProcessResult r = run_process({edgeflow_binary(), "run", dir + "/p.yaml", "--quiet"}, 60);
    EXPECT_EQ(r.exit_code, 1) << device << ": " << r.err;
    EXPECT_NE(r.err.find("stage 'cam'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
  }
}

// Moving the detector to the cloud is one word: the link encodes the raw frames as JPEG.
TEST(SurveillanceCamera, RawFramesCrossALinkAsJpeg) {
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml",
             "pipeline: raw\nstages:\n"
             "  - {id: cam, op: camera.synthetic, on: edge, with: {count: 20, speed: 0}}\n"
             "  - {id: motion, op: vision.motion, on: cloud, from: cam,\n"
             "     queue: {overflow: block}}\n");
  ProcessResult r =
      run_process({edgeflow_binary(), "run", dir + "/p.yaml", "--report", dir + "/r.json"}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json report = json::parse(read_file(dir + "/r.json"));
  uint64_t frames = 0, bytes = 0;
  for (const json& l : report["links"]) {
    if (l["direction"] != "receive") continue;
    frames += l["messages"].get<uint64_t>();
    bytes += l["payload_bytes"].get<uint64_t>();
  }
  EXPECT_EQ(frames, 20u);
  EXPECT_GT(bytes, 20u * 1000);  // JPEG frames, not a few bytes of fields
  for (const json& st : report["stages"]) {
    if (st["stage"] == "motion") {
      EXPECT_EQ(st["in"], 20) << st.dump();
      EXPECT_EQ(st["errors"], 0) << st.dump();
    }
  }
}

}  // namespace
}  // namespace edgeflow
