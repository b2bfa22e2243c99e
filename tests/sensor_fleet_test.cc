// 10,000 plain MQTT sensors (loadgen, one topic each, as microcontrollers publish) into the
// cloud's weather aggregation (`edgeflow run`, mqtt.subscribe with origin: topic[2]), through a
// real mosquitto. An independent subscriber records every reading the broker passed on; the
// windows of every sensor in the pipeline's output must be exactly those computed here from
// those readings: each sensor's count and mean, no window missing, none twice.
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <ctime>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/embedded_broker.h"
#include "loadgen/loadgen.h"
#include "tests/support/mqtt_collector.h"
#include "tests/support/process.h"

namespace edgeflow {
namespace {

using json = nlohmann::json;
using namespace edgeflow::testing;

constexpr int64_t kWindowS = 10;

struct Window {
  int64_t count = 0;
  double sum = 0;
};

// (sensor, window start in s) -> what the readings of that window add up to.
using Windows = std::map<std::pair<std::string, int64_t>, Window>;

TEST(SensorFleet, TenThousandPlainMqttSensorsEachGetTheirOwnCorrectWindows) {
  mqtt::EmbeddedBroker broker;
  broker.start();
  const std::string dir = make_temp_dir();
  write_file(dir + "/cloud.yaml", R"(pipeline: sensor-fleet
links: { mqtt: { broker: ")" + broker.uri() +
                                      R"(" } }
stages:
  - id: sensors
    op: mqtt.subscribe
    with: { topic: "sensors/+/reading", format: json, qos: 1, time_field: time,
            origin: "topic[2]", queue: 20000 }
  - id: windows
    op: weather.aggregate
    from: sensors
    with: { window: 10s, fields: [temperature], stats: [count, mean], idle_timeout: 0s }
  - id: out
    op: file.write
    from: windows
    with: { path: windows.jsonl }
  # The last reading the test sends (seq -1) says every reading before it was taken.
  - id: end
    op: filter
    from: sensors
    with: { where: "seq < 0" }
  - id: show-end
    op: log
    from: end
    with: { to: stderr }
)");
  Process cloud({edgeflow_binary(), "run", dir + "/cloud.yaml", "--report", dir + "/report.json"});
  ASSERT_TRUE(cloud.wait_for_err("running 'sensor-fleet'", 30)) << cloud.err();

  MqttCollector truth(broker.uri(), "sensors/+/reading");
  loadgen::Options o;
  o.broker = broker.uri();
  o.sensors = 10'000;
  o.rate = 1;  // 10,000 readings a second, each sensor one a second
  o.count = 4;
  o.qos = 1;
  const loadgen::Result published = loadgen::run(o, nullptr);
  ASSERT_EQ(published.published, 40'000u);
  ASSERT_EQ(published.failed, 0u);
  const std::vector<mqtt::Received> readings = truth.wait_for(40'000);
  ASSERT_EQ(readings.size(), 40'000u);

  // The end marker, once the broker acknowledged every reading: it is queued behind them.
  {
    mqtt::ClientOptions co;
    co.uri = broker.uri();
    co.client_id = "test-end-marker";
    auto marker = mqtt::make_client("mosquitto", co, [](mqtt::Received&&) {});
    marker->connect();
    const std::string end = R"({"sensor_id": "zz-end", "seq": -1, "temperature": 0, "time": 0})";
    ASSERT_TRUE(marker->publish("sensors/zz-end/reading", end.data(), end.size(), 1, false));
    ASSERT_TRUE(marker->flush(10'000));
    marker->disconnect();
  }
  ASSERT_TRUE(cloud.wait_for_err("zz-end", 60)) << cloud.err();
  cloud.signal(SIGINT);  // end of input: every open window closes
  ASSERT_TRUE(cloud.wait(60)) << cloud.err();
  EXPECT_EQ(cloud.exit_code(), 130) << cloud.err();

  Windows want;
  for (const mqtt::Received& m : readings) {
    const json j = json::parse(m.payload);
    const int64_t t = static_cast<int64_t>(std::floor(j["time"].get<double>()));
    Window& w =
        want[{j["sensor_id"].get<std::string>(), t - ((t % kWindowS) + kWindowS) % kWindowS}];
    ++w.count;
    w.sum += j["temperature"].get<double>();
  }
  std::map<std::string, int> per_sensor;
  Windows got;
  std::istringstream lines(read_file(dir + "/windows.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const json j = json::parse(line);
    const std::string sensor = j["node"];  // file.write names the origin "node"
    if (sensor == "zz-end") continue;
    ++per_sensor[sensor];
    // window_start is ISO 8601 UTC; the seconds since the epoch come from the window's end.
    const std::string start = j["window_start"];
    std::tm tm{};
    std::istringstream(start) >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
    const int64_t start_s = static_cast<int64_t>(timegm(&tm));
    auto [it, fresh] = got.try_emplace({sensor, start_s});
    EXPECT_TRUE(fresh) << sensor << " window " << start << " twice";
    it->second.count = j["temperature_count"].get<int64_t>();
    it->second.sum = j["temperature_mean"].get<double>() * static_cast<double>(it->second.count);
  }
  EXPECT_EQ(per_sensor.size(), 10'000u) << "sensors with windows";
  ASSERT_EQ(got.size(), want.size());
  size_t wrong = 0;
  for (const auto& [key, w] : want) {
    auto it = got.find(key);
    const bool same = it != got.end() && it->second.count == w.count &&
                      std::abs(it->second.sum - w.sum) < 1e-6 * std::max(1.0, std::abs(w.sum));
    if (!same && ++wrong <= 5)
      ADD_FAILURE() << key.first << " window at " << key.second << ": want count " << w.count
                    << " sum " << w.sum << ", got "
                    << (it == got.end() ? std::string("none")
                                        : std::to_string(it->second.count) + " sum " +
                                              std::to_string(it->second.sum));
  }
  EXPECT_EQ(wrong, 0u);
}

}  // namespace
}  // namespace edgeflow
