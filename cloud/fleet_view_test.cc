// The dashboard's view of the fleet, fed the messages the fleet publishes (deployments signed
// as `edgeflow deploy` signs them, statuses, motion events and snapshots, iExec ledger events
// and results in the shapes the operators publish), and hostile ones.
#include "cloud/fleet_view.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "brokers/mqtt/client.h"
#include "crypto/crypto.h"
#include "fleet/protocol.h"

namespace edgeflow {
namespace {

using json = nlohmann::json;

const char* kPipeline = R"(pipeline: cams
nodes:
  cam-1: { tier: edge, solar: { panel_w: 20, battery_wh: 50, lat: 48.1 } }
  cam-2: { tier: edge }
  cloud: { tier: cloud }
stages:
  - { id: cam, op: camera.synthetic, on: edge, with: { count: 10 } }
  - { id: motion, op: vision.motion, on: cloud, from: cam, with: { snapshot: peak } }
  - { id: events, op: mqtt.publish, on: cloud, from: motion,
      with: { topic: "camera/{origin}/motion" } }
  - { id: snapshots, op: mqtt.publish, on: cloud, from: motion.snapshots,
      with: { topic: "camera/{origin}/snapshot/{field.event_id}", format: raw } }
  - { id: scheduler, op: iexec.scheduler, on: cloud,
      with: { wallet: s.key, apps: apps.yaml, journal: j, pool: lab, open_pool: true,
              open_requests: true } }
)";

std::string sealed(const crypto::Wallet& key, const std::string& node, uint64_t version,
                   const std::string& text = kPipeline) {
  fleet::Deployment d;
  d.pipeline = "cams";
  d.version = version;
  d.node = node;
  d.file_name = "cams.yaml";
  d.file_text = text;
  d.part_hash = fleet::part_hash(d.file_text, {}, node);
  return fleet::seal(d, key);
}

std::string status(const std::string& node, const std::string& state, double bytes,
                   const std::string& part_hash = "") {
  json s = {
      {"node", node},
      {"state", state},
      {"tier", "edge"},
      {"part_running", true},
      {"part_hash", part_hash},
      {"pipeline", "cams"},
      {"links", {{{"link", "cam->motion"}, {"direction", "send"}, {"payload_bytes", bytes}}}}};
  return s.dump();
}

// A registry file of this test's own, left by no earlier run.
std::string fresh_registry_file() {
  const std::string path = ::testing::TempDir() + "/" +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                           ".registry.json";
  std::remove(path.c_str());
  return path;
}

struct Fed {
  crypto::Wallet key = crypto::Wallet::generate();
  NodeRegistry registry{fresh_registry_file(), [](const std::string&, const std::string&) {}};
  FleetView view{key.address().hex()};
  void feed(const std::string& topic, const std::string& payload, int64_t now_ms) {
    if (mqtt::topic_matches(fleet::kStatusFilter, topic))
      registry.on_status(topic, payload, now_ms);
    view.on_message(topic, payload, now_ms);
  }
  void deploy_all() {
    for (const char* n : {"cam-1", "cam-2", "cloud"})
      feed(fleet::deploy_topic(n), sealed(key, n, 7), 1000);
  }
};

TEST(FleetView, ADeployedPipelineShowsItsPlacementAndEachSendersBytesPerSecond) {
  Fed f;
  f.deploy_all();
  const std::string hash1 = fleet::part_hash(kPipeline, {}, "cam-1");
  f.feed(fleet::status_topic("cam-1"), status("cam-1", "working", 1000, hash1), 10'000);
  f.feed(fleet::status_topic("cam-1"), status("cam-1", "working", 6000, hash1), 12'000);
  f.feed(fleet::status_topic("cam-2"), status("cam-2", "working", 500), 10'000);
  const json p = f.view.pipelines_json(f.registry);
  ASSERT_EQ(p.size(), 1u) << p.dump(1);
  EXPECT_EQ(p[0]["pipeline"], "cams");
  EXPECT_EQ(p[0]["version"], 7);
  EXPECT_FALSE(p[0].contains("error")) << p[0]["error"];
  // Placement: the camera on both edge nodes, the rest on the cloud.
  std::multiset<std::string> copies;
  for (const json& c : p[0]["copies"])
    copies.insert(c["stage"].get<std::string>() + "@" + c["node"].get<std::string>());
  EXPECT_EQ(copies,
            (std::multiset<std::string>{"cam@cam-1", "cam@cam-2", "motion@cloud", "events@cloud",
                                        "snapshots@cloud", "scheduler@cloud"}));
  ASSERT_EQ(p[0]["links"].size(), 1u);
  EXPECT_EQ(p[0]["links"][0]["name"], "cam->motion");
  // 5,000 bytes in 2 s from cam-1; cam-2 has sent one status only: no rate yet.
  EXPECT_EQ(p[0]["links"][0]["bytes_per_s"], 2500);
  int labelled = 0;
  for (const json& e : p[0]["edges"]) {
    if (!e.contains("link")) continue;
    const std::string from = p[0]["copies"][e["from"].get<size_t>()]["node"];
    if (from == "cam-1") {
      EXPECT_EQ(e["bytes_per_s"], 2500);
      ++labelled;
    } else {
      EXPECT_FALSE(e.contains("bytes_per_s")) << e;
    }
  }
  EXPECT_EQ(labelled, 1);
  // cam-1 runs the part deployed to it; cam-2 reports another hash.
  for (const json& n : p[0]["nodes"]) {
    if (n["name"] == "cam-1") {
      EXPECT_EQ(n["running"], true);
      EXPECT_EQ(n["solar"]["battery_wh"], 50);
    }
    if (n["name"] == "cam-2") {
      EXPECT_EQ(n["running"], false);
    }
  }
  // The feeds of the pipeline: its motion sinks and its scheduler's pool.
  std::vector<std::string> filters = f.view.take_new_filters();
  std::sort(filters.begin(), filters.end());
  EXPECT_EQ(filters, (std::vector<std::string>{"camera/+/motion", "camera/+/snapshot/+",
                                               "edgeflow/cams/iexec/lab/events",
                                               "edgeflow/cams/iexec/lab/results/+"}));
  EXPECT_TRUE(f.view.take_new_filters().empty());
  // A cleared retained message changes nothing (nodes keep their part); an undeploy does.
  for (const char* n : {"cam-1", "cam-2", "cloud"}) f.feed(fleet::deploy_topic(n), "", 20'000);
  EXPECT_EQ(f.view.pipelines_json(f.registry).size(), 1u);
  for (const char* n : {"cam-1", "cam-2", "cloud"}) {
    fleet::Deployment u;
    u.kind = "undeploy";
    u.pipeline = "cams";
    u.version = 8;
    u.node = n;
    f.feed(fleet::deploy_topic(n), fleet::seal(u, f.key), 20'000);
    EXPECT_EQ(f.view.pipelines_json(f.registry).size(), std::string(n) == "cloud" ? 0u : 1u) << n;
  }
}

// Rates are timed by the node's clock (a status read late, or a retained one, says when it
// was made), and only the link ends of the latest status are kept.
TEST(FleetView, RatesAreTimedByTheNodesClockAndKeepOnlyCurrentLinks) {
  Fed f;
  f.deploy_all();
  auto timed = [](const std::string& time, double bytes, const char* link) {
    json s = json::parse(status("cam-1", "working", bytes));
    s["time"] = time;
    s["links"][0]["link"] = link;
    return s.dump();
  };
  // Made 10 s apart, read 1 s apart: 10,000 bytes in 10 s.
  f.feed(fleet::status_topic("cam-1"), timed("2026-12-06T08:00:00Z", 0, "cam->motion"), 50'000);
  f.feed(fleet::status_topic("cam-1"), timed("2026-12-06T08:00:10Z", 10'000, "cam->motion"),
         51'000);
  json p = f.view.pipelines_json(f.registry);
  EXPECT_EQ(p[0]["links"][0]["bytes_per_s"], 1000) << p[0]["links"];
  // A status of another part: the old link end is gone, the new one has no rate yet.
  f.feed(fleet::status_topic("cam-1"), timed("2026-12-06T08:00:20Z", 10'000, "other->x"), 52'000);
  p = f.view.pipelines_json(f.registry);
  EXPECT_TRUE(p[0]["links"][0]["bytes_per_s"].is_null()) << p[0]["links"];
}

TEST(FleetView, DeploymentsNotSignedByTheTrustedKeyAreNotShown) {
  Fed f;
  const crypto::Wallet other = crypto::Wallet::generate();
  f.feed(fleet::deploy_topic("cam-1"), sealed(other, "cam-1", 9), 1000);
  f.feed(fleet::deploy_topic("cam-2"), "{\"body\": 5}", 1000);
  f.feed(fleet::deploy_topic("cloud"), "not json", 1000);
  EXPECT_TRUE(f.view.pipelines_json(f.registry).empty());
  // With no trusted key configured, any signer's is shown, and says whose it is.
  FleetView any("");
  any.on_message(fleet::deploy_topic("cam-1"), sealed(other, "cam-1", 9), 1000);
  const json p = any.pipelines_json(f.registry);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0]["signer"], other.address().hex());
}

// Deployments a node would refuse or that hold text no broker takes as a filter: the view
// keeps what the node runs, follows no bad filter, and loads no plugin of the file's own.
TEST(FleetView, DeploymentsTheNodesRefuseChangeNothingAndBadFiltersAreNotFollowed) {
  Fed f;
  f.deploy_all();
  f.view.take_new_filters();
  // Addressed to another node, or older than what cam-1 holds: nothing changes.
  f.feed(fleet::deploy_topic("cam-1"), sealed(f.key, "cam-2", 9, "pipeline: other\n"), 2000);
  f.feed(fleet::deploy_topic("cam-1"), sealed(f.key, "cam-1", 3, "pipeline: other\n"), 2000);
  json p = f.view.pipelines_json(f.registry);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0]["version"], 7);
  // A newer file with a pool's name no broker would take in a filter.
  std::string bad = kPipeline;
  bad.replace(bad.find("pool: lab"), 9, "pool: \"a+b\"");
  for (const char* n : {"cam-1", "cam-2", "cloud"})
    f.feed(fleet::deploy_topic(n), sealed(f.key, n, 10, bad), 3000);
  p = f.view.pipelines_json(f.registry);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0]["version"], 10);
  EXPECT_FALSE(p[0].contains("error")) << p[0]["error"];
  // The motion topics are followed already; edgeflow/cams/iexec/a+b/... is not a filter.
  EXPECT_EQ(f.view.take_new_filters(), std::vector<std::string>{});
  // With a plugin of its own: named in the error, never loaded into the cloud.
  bad = "plugins: [/tmp/not-loaded.so]\n" + bad;
  for (const char* n : {"cam-1", "cam-2", "cloud"})
    f.feed(fleet::deploy_topic(n), sealed(f.key, n, 11, bad), 4000);
  p = f.view.pipelines_json(f.registry);
  ASSERT_EQ(p.size(), 1u);
  ASSERT_TRUE(p[0].contains("error"));
  EXPECT_NE(p[0]["error"].get<std::string>().find("plugin '/tmp/not-loaded.so' is not loaded"),
            std::string::npos)
      << p[0]["error"];
}

TEST(FleetView, MotionEventsKeepTheirSnapshotAndTheEndReplacesTheStart) {
  Fed f;
  f.deploy_all();
  f.view.take_new_filters();
  f.feed("camera/cam-1/motion",
         R"({"event": "start", "event_id": 1, "origin": "cam-1", "start": "2026-12-06T08:00:00Z"})",
         1000);
  f.feed("camera/cam-1/snapshot/1", std::string("\xff\xd8 jpeg bytes \xff\xd9", 15), 1100);
  f.feed("camera/cam-1/motion",
         R"({"event": "end", "event_id": 1, "origin": "cam-1", "duration_s": 2.5,
             "peak_area": 900})",
         1200);
  f.feed("camera/cam-2/motion", R"({"event": "start", "event_id": 1, "origin": "cam-2"})", 1300);
  const json m = f.view.motion_json();
  ASSERT_EQ(m.size(), 2u) << m.dump(1);
  EXPECT_EQ(m[0]["key"], "cam-2/1");  // newest first
  EXPECT_FALSE(m[0].contains("snapshot"));
  EXPECT_EQ(m[1]["event"], "end");
  EXPECT_EQ(m[1]["duration_s"], 2.5);
  EXPECT_EQ(m[1]["snapshot"], "/api/motion/cam-1/1.jpg?at=1100");
  const std::string* jpeg = f.view.snapshot("cam-1/1");
  ASSERT_NE(jpeg, nullptr);
  EXPECT_EQ(jpeg->size(), 15u);
  EXPECT_EQ(f.view.snapshot("cam-2/1"), nullptr);
  // The camera restarts: its new event 1 (another start) does not take the old snapshot.
  f.feed("camera/cam-1/motion",
         R"({"event": "start", "event_id": 1, "origin": "cam-1", "start": "2026-12-06T09:00:00Z"})",
         60'000);
  EXPECT_FALSE(f.view.motion_json()[0].contains("snapshot")) << f.view.motion_json()[0];
  EXPECT_EQ(f.view.snapshot("cam-1/1"), nullptr);
  f.feed("camera/cam-1/snapshot/1", "new jpeg", 61'000);
  EXPECT_EQ(f.view.motion_json()[0]["snapshot"], "/api/motion/cam-1/1.jpg?at=61000");
  // Bounded: only the newest events are kept.
  for (int i = 2; i < 100; ++i)
    f.feed("camera/cam-1/motion",
           R"({"event": "start", "origin": "cam-1", "event_id": )" + std::to_string(i) + "}",
           2000 + i);
  EXPECT_EQ(f.view.motion_json().size(), FleetView::kMotionEvents);
}

TEST(FleetView, TasksShowTheirStatusAndTheConsensusOfTheirResult) {
  Fed f;
  f.deploy_all();
  const std::string t = "0x" + std::string(64, 'a');
  f.feed("edgeflow/cams/iexec/lab/events",
         json({{"kind", "assigned"}, {"task", t}, {"worker", "0xw1"}, {"status", "ACTIVE"}}).dump(),
         1000);
  f.feed("edgeflow/cams/iexec/lab/events",
         json({{"kind", "assigned"}, {"task", t}, {"worker", "0xw2"}, {"status", "ACTIVE"}}).dump(),
         1001);
  json tasks = f.view.tasks_json();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0]["status"], "ACTIVE");
  EXPECT_EQ(tasks[0]["workers"].size(), 2u);
  f.feed("edgeflow/cams/iexec/lab/results/" + t,
         json({{"task", t},
               {"status", "COMPLETED"},
               {"app", "forecast"},
               {"trust", 3},
               {"winners", {"0xw1", "0xw2"}},
               {"contributors", {{{"worker", "0xw1"}}, {{"worker", "0xw2"}}, {{"worker", "0xw3"}}}},
               {"result_digest", "0xd"}})
             .dump(),
         2000);
  // A late ledger event does not hide the final result.
  f.feed("edgeflow/cams/iexec/lab/events",
         json({{"kind", "reward"}, {"task", t}, {"status", "REVEALING"}}).dump(), 2001);
  tasks = f.view.tasks_json();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0]["status"], "COMPLETED");
  // Counted once for /metrics, however often the retained result comes.
  f.feed("edgeflow/cams/iexec/lab/results/" + t,
         json({{"task", t}, {"status", "COMPLETED"}, {"app", "forecast"}}).dump(), 2002);
  std::vector<metrics::IexecTaskCount> counts = f.view.task_counts();
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].pipeline, "cams");
  EXPECT_EQ(counts[0].status, "COMPLETED");
  EXPECT_EQ(counts[0].count, 1u);
  EXPECT_EQ(tasks[0]["winners"], 2);
  EXPECT_EQ(tasks[0]["contributors"], 3);
  EXPECT_EQ(tasks[0]["app"], "forecast");
  for (int i = 0; i < 80; ++i)
    f.feed("edgeflow/cams/iexec/lab/events",
           json({{"kind", "created"}, {"task", std::to_string(i)}}).dump(), 3000 + i);
  EXPECT_EQ(f.view.tasks_json().size(), FleetView::kTasks);
}

TEST(FleetView, HostileMessagesAreIgnoredNotThrown) {
  Fed f;
  f.deploy_all();
  for (const char* payload :
       {"", "null", "[]", "5", "{\"links\": 3}", "{\"links\": [1, {\"payload_bytes\": \"x\"}]}",
        "{\"event_id\": \"x\"}", "{\"event_id\": 1e300, \"origin\": 7}", "{\"task\": 5}",
        "{\"task\": \"t\", \"winners\": 3, \"trust\": \"high\", \"status\": []}", "\xff\xfe"}) {
    for (const char* topic :
         {"edgeflow/nodes/cam-1/status", "camera/cam-1/motion", "camera/cam-1/snapshot/1",
          "edgeflow/cams/iexec/lab/events", "edgeflow/cams/iexec/lab/results/t",
          "edgeflow/nodes/cam-1/deploy", "edgeflow/nodes//status"}) {
      EXPECT_NO_THROW(f.feed(topic, payload, 5000)) << topic << " " << payload;
    }
  }
  EXPECT_NO_THROW(
      f.view.state_json(f.registry, 6000).dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace
}  // namespace edgeflow
