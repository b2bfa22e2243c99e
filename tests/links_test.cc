// Links between nodes with real parts: a real mosquitto on a free loopback port (or the one
// `edgeflow run` embeds), real ZeroMQ sockets, and the edgeflow binary run as one process or
// as one process per node. Every transport is checked against the same pipeline run with
// in-process queues: the aggregates must be the same records, each exactly once.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "brokers/mqtt/embedded_broker.h"
#include "tests/support/process.h"
#include "tests/support/weather_links.h"

namespace edgeflow {
namespace {

using namespace edgeflow::testing;  // tests/support: processes, files, the weather pipeline

std::string transport_name(const ::testing::TestParamInfo<Transport>& info) {
  return info.param.name;
}

const std::vector<Transport> kTransports = {
    {"MqttMosquitto", "mqtt", "mosquitto"},
    {"MqttPaho", "mqtt", "paho"},
    {"ZmqAcked", "zmq", ""},
};

class Links : public ::testing::TestWithParam<Transport> {};

// One process, every node in it, joined by the real transport (an embedded mosquitto for
// MQTT, started and stopped by edgeflow itself).
TEST_P(Links, OneProcessAggregatesEveryReadingExactlyOnce) {
  const int kCount = 3000;
  std::string yaml = weather_pipeline(GetParam(), "", kCount, 0);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  ProcessResult r = run_process(
      {edgeflow_binary(), "run", dir + "/p.yaml", "--report", dir + "/report.json"}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  if (GetParam().via == "mqtt") {
    EXPECT_NE(r.err.find("embedded broker on tcp://127.0.0.1:"), std::string::npos) << r.err;
  }

  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  ASSERT_EQ(got.size(), 2u);
  for (const char* node : {"pi-1", "pi-2"}) {
    EXPECT_EQ(got[node].size(), static_cast<size_t>(kCount / 60)) << node;
    EXPECT_EQ(total_count(got[node]), kCount) << node;
  }
  auto want = by_origin(reference_run(yaml));
  EXPECT_EQ(got, want) << "the aggregates differ from the in-process run";

  json report = json::parse(read_file(dir + "/report.json"));
  uint64_t sent = 0, received = 0, batches = 0, wire = 0, payload = 0;
  for (const json& l : report["links"]) {
    EXPECT_EQ(l["via"], GetParam().via);
    if (l["direction"] == "send") {
      sent += l["messages"].get<uint64_t>();
      batches += l["batches"].get<uint64_t>();
      wire += l["wire_bytes_estimate"].get<uint64_t>();
      payload += l["payload_bytes"].get<uint64_t>();
    } else {
      received += l["messages"].get<uint64_t>();
      EXPECT_EQ(l["bad_frames"], 0);
    }
  }
  EXPECT_EQ(sent, 2u * kCount / 60);
  EXPECT_EQ(received, sent);
  EXPECT_GE(batches, 2u);  // at least the two ends of input
  EXPECT_GT(wire, payload);
}

// One process per node, as on a real fleet: the edges start before the cloud exists and
// still lose nothing (MQTT: senders wait for the receiver's retained announcement; ZeroMQ:
// unacknowledged frames are sent again).
TEST_P(Links, ProcessPerNodeEdgesFirst) {
  const int kCount = 1200;
  std::unique_ptr<mqtt::EmbeddedBroker> broker;
  std::string extra;
  if (GetParam().via == "mqtt") {
    broker = std::make_unique<mqtt::EmbeddedBroker>();
    broker->start();
    extra = ", broker: \"" + broker->uri() + "\"";
  } else {
    extra = ", zmq: {port: " + std::to_string(edgeflow::testing::free_tcp_port()) + "}";
  }
  std::string yaml = weather_pipeline(GetParam(), extra, kCount, 0);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  auto node = [&](const std::string& name) { return run_node(dir, name); };
  auto pi1 = node("pi-1");
  auto pi2 = node("pi-2");
  // The edges are up (and holding their first frame for the cloud) before the cloud starts.
  for (Process* p : {pi1.get(), pi2.get()})
    ASSERT_TRUE(p->wait_for_err("running 'links-test'", 60)) << p->err();
  auto cloud = node("cloud");
  ASSERT_TRUE(pi1->wait(60)) << pi1->err();
  ASSERT_TRUE(pi2->wait(60)) << pi2->err();
  ASSERT_TRUE(cloud->wait(60)) << cloud->err();
  EXPECT_EQ(pi1->exit_code(), 0) << pi1->err();
  EXPECT_EQ(pi2->exit_code(), 0) << pi2->err();
  EXPECT_EQ(cloud->exit_code(), 0) << cloud->err();

  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-2"}) EXPECT_EQ(total_count(got[n]), kCount) << n;
  EXPECT_EQ(got, by_origin(reference_run(yaml)));
  // Each process ran only its own part.
  json edge_report = json::parse(read_file(dir + "/pi-1.json"));
  for (const json& s : edge_report["stages"]) EXPECT_EQ(s["node"], "pi-1") << s.dump();
}

// Ctrl-C in one process: the sources stop, and everything the edge stages emitted still
// crosses the link and reaches the file before exit.
TEST_P(Links, InterruptDeliversEverythingAcceptedAcrossTheLink) {
  std::string yaml = weather_pipeline(GetParam(), "", 0, 600);  // endless, 10 windows/s/node
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  Process run({edgeflow_binary(), "run", dir + "/p.yaml", "--report", dir + "/report.json"});
  // Signal once aggregates are flowing through the link (bounded wait), then a little later.
  for (int i = 0; i < 300 && read_file(dir + "/out.jsonl").empty() && run.running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  run.signal(SIGINT);
  ASSERT_TRUE(run.wait(60)) << run.err();
  EXPECT_EQ(run.exit_code(), 130) << run.err();
  json report = json::parse(read_file(dir + "/report.json"));
  uint64_t emitted = 0, written = 0;
  for (const json& s : report["stages"]) {
    if (s["stage"] == "minute") emitted += s["out"].get<uint64_t>();
    if (s["stage"] == "out") written += s["in"].get<uint64_t>();
  }
  EXPECT_GT(emitted, 10u);
  EXPECT_EQ(written, emitted);
  EXPECT_EQ(json_lines(read_file(dir + "/out.jsonl")).size(), emitted);
}

INSTANTIATE_TEST_SUITE_P(Transports, Links, ::testing::ValuesIn(kTransports), transport_name);

class MqttLinks : public ::testing::TestWithParam<std::string> {};

// A broker that is not there: a clear error naming the URI, exit code 1, promptly.
TEST_P(MqttLinks, BrokerAbsentAtStartIsAClearError) {
  int port = edgeflow::testing::free_tcp_port();
  std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
  Transport t{"", "mqtt", GetParam()};
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", weather_pipeline(t, ", broker: \"" + uri + "\"", 60, 0));
  ProcessResult r = run_process({edgeflow_binary(), "run", dir + "/p.yaml", "--node", "cloud"}, 60);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.err.find(uri), std::string::npos) << r.err;
}

// `links: {mqtt: {retry: true}}`: an edge device that boots before the network keeps trying,
// then delivers everything once the broker appears.
TEST_P(MqttLinks, RetryWaitsForABrokerThatStartsLater) {
  const int kCount = 600;
  mqtt::EmbeddedBrokerOptions bo;
  bo.port = edgeflow::testing::free_tcp_port();
  mqtt::EmbeddedBroker broker(bo);
  Transport t{"", "mqtt", GetParam()};
  std::string extra = ", retry: true, broker: \"tcp://127.0.0.1:" + std::to_string(bo.port) + "\"";
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", weather_pipeline(t, extra, kCount, 0));
  Process run({edgeflow_binary(), "run", dir + "/p.yaml", "--quiet"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(run.running()) << run.err();
  broker.start();
  ASSERT_TRUE(run.wait(60)) << run.err();
  EXPECT_EQ(run.exit_code(), 0) << run.err();
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-2"}) EXPECT_EQ(total_count(got[n]), kCount) << n;
}

// The broker stops and comes back mid-run (QoS 1, persistent sessions, broker persistence):
// no accepted reading is lost and none is aggregated twice.
TEST_P(MqttLinks, BrokerRestartMidRunLosesNothing) {
  const int kCount = 4800;  // 80 windows per node at 1200 readings/s: about 4 s of data
  mqtt::EmbeddedBroker broker;
  broker.start();
  Transport t{"", "mqtt", GetParam()};
  std::string extra = ", broker: \"" + broker.uri() + "\"";
  std::string yaml = weather_pipeline(t, extra, kCount, 1200);
  // Raw readings cross the link: a restart then hits a stream of batches, not a few windows.
  yaml.replace(yaml.find("    on: edge\n    from: sensors"), 12, "    on: cloud");
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  auto node = [&](const std::string& name) { return run_node(dir, name); };
  auto cloud = node("cloud");
  auto pi1 = node("pi-1");
  auto pi2 = node("pi-2");
  // Every node connected and running before the outage (a busy machine may be slow to start).
  for (Process* p : {cloud.get(), pi1.get(), pi2.get()})
    ASSERT_TRUE(p->wait_for_err("running 'links-test'", 60)) << p->err();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  broker.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  broker.start();
  for (Process* p : {pi1.get(), pi2.get(), cloud.get()}) {
    ASSERT_TRUE(p->wait(90)) << p->err();
    EXPECT_EQ(p->exit_code(), 0) << p->err();
  }
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-2"})
    EXPECT_EQ(total_count(got[n]), kCount) << n << "; the cloud said:\n" << cloud->err();
  EXPECT_TRUE(got == by_origin(reference_run(yaml)))
      << "the windows differ from a run without outage";
  json edge = json::parse(read_file(dir + "/pi-1.json"));
  uint64_t reconnects = 0;
  for (const json& l : edge["links"]) reconnects += l["reconnects"].get<uint64_t>();
  EXPECT_GE(reconnects, 1u) << edge.dump(2);
}

// Ctrl-C on an edge node whose broker died and whose cloud never came: the sender gives up
// after links.drain_timeout, says what it could not send, and the process exits (no hang).
TEST_P(MqttLinks, InterruptWithTheBrokerDownEndsAfterTheDrainTimeout) {
  mqtt::EmbeddedBroker broker;
  broker.start();
  Transport t{"", "mqtt", GetParam()};
  std::string yaml = weather_pipeline(t, ", broker: \"" + broker.uri() + "\"", 0, 0);
  yaml.replace(yaml.find("links: {"), 8, "links: {drain_timeout: 2s, ");
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  Process edge({edgeflow_binary(), "run", dir + "/p.yaml", "--node", "pi-1"});
  ASSERT_TRUE(edge.wait_for_err("running 'links-test'", 60)) << edge.err();
  broker.kill();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  edge.signal(SIGINT);
  ASSERT_TRUE(edge.wait(30)) << "no exit after SIGINT:\n" << edge.err();
  EXPECT_EQ(edge.exit_code(), 130) << edge.err();
  EXPECT_NE(edge.err().find("link minute->out"), std::string::npos) << edge.err();
}

INSTANTIATE_TEST_SUITE_P(Clients, MqttLinks, ::testing::Values("mosquitto", "paho"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace edgeflow
