// The load generator against a real mosquitto: every sensor's readings arrive on its own
// topic, in order, with the values reading() gives, over one connection or one per sensor.
#include "loadgen/loadgen.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "brokers/mqtt/embedded_broker.h"
#include "tests/support/mqtt_collector.h"

namespace edgeflow {
namespace {

using testing::MqttCollector;

void check_fleet(const loadgen::Options& o) {
  mqtt::EmbeddedBroker broker;
  broker.start();
  MqttCollector collector(broker.uri(), "sensors/+/reading");
  loadgen::Options opts = o;
  opts.broker = broker.uri();
  const loadgen::Result r = loadgen::run(opts, nullptr);
  const size_t expected = static_cast<size_t>(o.sensors * o.count);
  EXPECT_EQ(r.published, expected);
  EXPECT_EQ(r.failed, 0u);
  const std::vector<mqtt::Received> got = collector.wait_for(expected);
  ASSERT_EQ(got.size(), expected);
  std::map<std::string, int64_t> next_seq;  // per sensor: readings arrive in order
  for (const mqtt::Received& m : got) {
    nlohmann::json j = nlohmann::json::parse(m.payload, nullptr, false);
    ASSERT_TRUE(j.is_object()) << m.payload;
    const std::string id = j.value("sensor_id", "");
    EXPECT_EQ(m.topic, "sensors/" + id + "/reading");
    EXPECT_EQ(j.value("seq", int64_t{-1}), next_seq[id]++) << m.payload;
    const int i = std::stoi(id.substr(1));
    EXPECT_EQ(m.payload,
              loadgen::reading(opts, i, j["seq"].get<int64_t>(), j["time"].get<double>()));
    EXPECT_GE(j["temperature"].get<double>(), 10.0);
    EXPECT_LE(j["temperature"].get<double>(), 30.0);
  }
  EXPECT_EQ(next_seq.size(), static_cast<size_t>(o.sensors));
  for (const auto& [id, n] : next_seq) EXPECT_EQ(n, o.count) << id;
}

TEST(Loadgen, ManySensorsOnOneConnectionEachOnItsTopicInOrder) {
  loadgen::Options o;
  o.sensors = 2000;
  o.rate = 20;  // 40,000 readings/s asked: the broker sets the pace
  o.count = 3;
  o.qos = 1;
  check_fleet(o);
}

TEST(Loadgen, SensorsWithConnectionsOfTheirOwn) {
  loadgen::Options o;
  o.sensors = 50;
  o.rate = 10;
  o.count = 4;
  o.qos = 1;
  o.per_sensor_clients = true;
  check_fleet(o);
}

TEST(Loadgen, BadArgumentsAndAnUnreachableBrokerAreExplained) {
  loadgen::Options o;
  o.broker = "tcp://127.0.0.1:1";
  o.count = 1;
  o.topic = "sensors/x";
  EXPECT_THROW(loadgen::run(o, nullptr), std::runtime_error);
  o.topic = "sensors/{id}/reading";
  o.rate = 0;
  EXPECT_THROW(loadgen::run(o, nullptr), std::runtime_error);
  o.rate = 1;
  try {
    loadgen::run(o, nullptr);
    ADD_FAILURE() << "connected to port 1";
  } catch (const mqtt::MqttError& e) {
    EXPECT_NE(std::string(e.what()).find("tcp://127.0.0.1:1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace edgeflow
