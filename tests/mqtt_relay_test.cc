// The MQTT operators as a user meets them: mosquitto_pub into mqtt.subscribe -> map ->
// mqtt.publish, and mosquitto_sub reads the result, with a real mosquitto on a free loopback
// port, on both MQTT client libraries.
#include <gtest/gtest.h>
#include <signal.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "brokers/mqtt/embedded_broker.h"
#include "tests/support/process.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

using edgeflow::testing::edgeflow_binary;
using edgeflow::testing::make_temp_dir;
using edgeflow::testing::Process;
using edgeflow::testing::ProcessResult;
using edgeflow::testing::read_file;
using edgeflow::testing::run_process;
using edgeflow::testing::write_file;
using json = nlohmann::json;

class MqttRelay : public ::testing::TestWithParam<std::string> {};

TEST_P(MqttRelay, MosquittoPubThroughMapToMosquittoSub) {
  mqtt::EmbeddedBroker broker;
  broker.start();
  const std::string port = std::to_string(broker.port());
  std::string dir = make_temp_dir();
  // retain: mosquitto_sub started at any time still gets the last message of each topic.
  write_file(dir + "/p.yaml",
             "pipeline: relay\n"
             "links: {mqtt: {broker: \"" +
                 broker.uri() + "\", client: " + GetParam() +
                 "}}\n"
                 "stages:\n"
                 "  - id: in\n"
                 "    op: mqtt.subscribe\n"
                 "    with: {topic: \"sensors/+/reading\", format: json}\n"
                 "  - id: f\n"
                 "    op: map\n"
                 "    from: in\n"
                 "    with: {set: {temp_f: \"temperature * 9 / 5 + 32\"}}\n"
                 "  - id: out\n"
                 "    op: mqtt.publish\n"
                 "    from: f\n"
                 "    with: {topic: \"relay/{field.node}/f\", format: json, "
                 "retain: true}\n");
  Process run({edgeflow_binary(), "run", dir + "/p.yaml", "--report", dir + "/report.json"});
  ASSERT_TRUE(run.wait_for_err("running 'relay'", 30)) << run.err();

  auto pub = [&](const std::string& topic, const std::string& payload) {
    ProcessResult r = run_process(
        {"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t", topic, "-m", payload},
        20);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  pub("sensors/pi-1/reading", R"({"node": "pi-1", "temperature": 20})");
  pub("sensors/pi-2/reading", R"({"node": "pi-2", "temperature": 30.5})");
  pub("sensors/pi-3/reading", "not json {");
  pub("sensors/pi-3/reading", R"({"node": "pi-3", "temperature": -40})");

  ProcessResult sub = run_process({"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-t", "relay/#",
                                   "-v", "-C", "3", "-W", "30"},
                                  40);
  ASSERT_EQ(sub.exit_code, 0) << sub.err << sub.out;
  std::map<std::string, json> got;
  std::istringstream lines(sub.out);
  for (std::string line; std::getline(lines, line);) {
    size_t space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    got[line.substr(0, space)] = json::parse(line.substr(space + 1));  // JSON as is
  }
  ASSERT_EQ(got.size(), 3u) << sub.out;
  EXPECT_DOUBLE_EQ(got["relay/pi-1/f"]["temp_f"].get<double>(), 68.0);
  EXPECT_DOUBLE_EQ(got["relay/pi-2/f"]["temp_f"].get<double>(), 86.9);
  EXPECT_DOUBLE_EQ(got["relay/pi-3/f"]["temp_f"].get<double>(), -40.0);
  EXPECT_EQ(got["relay/pi-1/f"]["topic"], "sensors/pi-1/reading");

  run.signal(SIGINT);
  ASSERT_TRUE(run.wait(30)) << run.err();
  EXPECT_EQ(run.exit_code(), 130) << run.err();
  EXPECT_NE(run.err().find("sensors/pi-3/reading"), std::string::npos)
      << "the malformed payload's log line names its topic:\n"
      << run.err();
  json report = json::parse(read_file(dir + "/report.json"));
  for (const json& s : report["stages"]) {
    if (s["stage"] == "in") {
      EXPECT_EQ(s["out"], 3);
      EXPECT_EQ(s["errors"], 1);
    }
    if (s["stage"] == "out") {
      EXPECT_EQ(s["in"], 3);
    }
  }
}

// The example pipeline on the embedded broker: edgeflow prints the port and the run's
// credentials file, and mosquitto_sub reads each edge node's aggregates as JSON from
// weather/<node>/minute with them. Without them the broker refuses it.
TEST(WeatherMqtt, EmbeddedBrokerTopicsReadableByMosquittoSub) {
  Process run({edgeflow_binary(), "run",
               edgeflow::testing::source_dir() + "/pipelines/weather-mqtt.yaml", "--for", "20s"});
  ASSERT_TRUE(run.wait_for_err("running 'weather-mqtt'", 30)) << run.err();
  std::string err = run.err();
  size_t at = err.find("embedded broker on tcp://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << err;
  std::string port = std::to_string(std::stoi(err.substr(at + 35)));
  std::smatch file;
  ASSERT_TRUE(std::regex_search(err, file, std::regex("credentials in (\\S+credentials\\.yaml)")))
      << err;
  const std::string creds = file[1].str();
  EXPECT_EQ(fs::status(creds).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  const YAML::Node c = YAML::LoadFile(creds);
  const std::string user = c["username"].as<std::string>();
  const std::string password = c["password"].as<std::string>();
  EXPECT_EQ(err.find(password), std::string::npos) << "the log shows the password";

  ProcessResult anonymous = run_process(
      {"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-t", "weather/#", "-C", "1", "-W", "10"},
      20);
  EXPECT_NE(anonymous.exit_code, 0) << anonymous.out;
  EXPECT_NE((anonymous.err + anonymous.out).find("not authorised"), std::string::npos)
      << anonymous.err << anonymous.out;
  ProcessResult sub = run_process({"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-u", user, "-P",
                                   password, "-t", "weather/+/minute", "-v", "-C", "4", "-W", "30"},
                                  40);
  run.signal(SIGINT);
  ASSERT_EQ(sub.exit_code, 0) << sub.err << sub.out;
  std::map<std::string, int> per_topic;
  std::istringstream lines(sub.out);
  for (std::string line; std::getline(lines, line);) {
    size_t space = line.find(' ');
    json j = json::parse(line.substr(space + 1));
    EXPECT_TRUE(j.contains("temperature_mean")) << line;
    EXPECT_EQ("weather/" + j["origin"].get<std::string>() + "/minute", line.substr(0, space));
    per_topic[line.substr(0, space)]++;
  }
  EXPECT_EQ(per_topic.size(), 2u) << sub.out;  // both edge nodes
  ASSERT_TRUE(run.wait(30)) << run.err();
  EXPECT_EQ(run.exit_code(), 130) << run.err();
}

INSTANTIATE_TEST_SUITE_P(Clients, MqttRelay, ::testing::Values("mosquitto", "paho"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace edgeflow
