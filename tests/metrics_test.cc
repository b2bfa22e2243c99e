// `edgeflow run --metrics`: Prometheus scrapes /metrics over real HTTP while a pipeline runs
// on a real mosquitto; the counters it reads must be those of the run's report.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/embedded_broker.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_scrape.h"

namespace edgeflow {
namespace {

using json = nlohmann::json;
using namespace edgeflow::testing;

TEST(Metrics, AScrapeDuringTheRunCountsWhatTheReportCounts) {
  mqtt::EmbeddedBroker broker;
  broker.start();
  const std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", R"(pipeline: metrics-test
links: { mqtt: { broker: ")" + broker.uri() +
                                  R"(" } }
stages:
  - id: readings
    op: mqtt.subscribe
    with: { topic: "sensors/+/reading", qos: 1 }
  - id: hot
    op: filter
    from: readings
    with: { where: "temperature > 20" }
  - id: out
    op: file.write
    from: hot
    with: { path: out.jsonl }
)");
  Process run({edgeflow_binary(), "run", dir + "/p.yaml", "--metrics", "127.0.0.1:0", "--report",
               dir + "/report.json"});
  ASSERT_TRUE(run.wait_for_err("metrics for Prometheus on http://", 30)) << run.err();
  std::smatch m;
  const std::string err = run.err();
  ASSERT_TRUE(std::regex_search(err, m, std::regex(R"(http://127\.0\.0\.1:\d+/metrics)")));
  const std::string url = m[0];
  ASSERT_TRUE(run.wait_for_err("running 'metrics-test'", 30)) << run.err();

  mqtt::ClientOptions co;
  co.uri = broker.uri();
  co.client_id = "metrics-test-publisher";
  auto pub = mqtt::make_client("mosquitto", co, [](mqtt::Received&&) {});
  pub->connect();
  for (int i = 0; i < 500; ++i) {
    const std::string p = "{\"temperature\": " + std::to_string(i % 40) + "}";
    ASSERT_TRUE(pub->publish("sensors/s" + std::to_string(i % 7) + "/reading", p.data(), p.size(),
                             1, false));
  }
  ASSERT_TRUE(pub->flush(10'000));

  // Scrapes until every reading went through (bounded), as Prometheus would every few seconds.
  std::string text;
  const std::string out = "stage=\"out\"";
  for (int i = 0; i < 100; ++i) {
    text = scrape(url);
    if (sample(text, "edgeflow_stage_messages_received_total", "stage=\"readings\"") < 0) break;
    if (sample(text, "edgeflow_stage_messages_sent_total", "stage=\"readings\"") >= 500) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(text.empty()) << "no answer from " << url;
  EXPECT_NE(text.find("# TYPE edgeflow_stage_messages_received_total counter"), std::string::npos);
  EXPECT_NE(text.find("# TYPE process_resident_memory_bytes gauge"), std::string::npos);
  EXPECT_GT(sample(text, "edgeflow_build_info", "version="), 0);
  EXPECT_EQ(sample(text, "edgeflow_stage_messages_sent_total", "stage=\"readings\""), 500);
  // 21..39 of every 40 pass the filter: 19 in each of 12 whole rounds, none in the last 20.
  const double hot = 12 * 19;
  // Until the filter has taken all 500 and the sink its 228: a scrape between would differ
  // from the report by what was still on its way.
  for (int i = 0;
       i < 50 && (sample(text, "edgeflow_stage_messages_received_total", "stage=\"hot\"") < 500 ||
                  sample(text, "edgeflow_stage_messages_received_total", out) < hot);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    text = scrape(url);
  }
  EXPECT_EQ(sample(text, "edgeflow_stage_messages_received_total", out), hot) << text;
  EXPECT_NE(text.find("pipeline=\"metrics-test\",node=\""), std::string::npos);

  run.signal(SIGINT);
  ASSERT_TRUE(run.wait(30)) << run.err();
  const json report = json::parse(read_file(dir + "/report.json"));
  for (const json& s : report["stages"]) {
    const std::string labels = "stage=\"" + s["stage"].get<std::string>() + "\"";
    EXPECT_EQ(sample(text, "edgeflow_stage_messages_received_total", labels), s["in"].get<double>())
        << labels;
    EXPECT_EQ(sample(text, "edgeflow_stage_messages_sent_total", labels), s["out"].get<double>())
        << labels;
    EXPECT_EQ(sample(text, "edgeflow_stage_errors_total", labels), s["errors"].get<double>())
        << labels;
  }
}

TEST(Metrics, AnAddressThatCannotBeUsedIsAClearError) {
  const std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", R"(pipeline: metrics-bad
stages:
  - id: sensors
    op: weather.simulate
    with: { period: 1s, speed: 600, count: 10 }
)");
  ProcessResult bad = run_process({edgeflow_binary(), "run", dir + "/p.yaml", "--metrics", "x"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("give a port (9464), HOST:PORT"), std::string::npos) << bad.err;
  // A port someone else listens on.
  httplib::Server other;
  const int port = other.bind_to_any_port("127.0.0.1");
  ProcessResult taken =
      run_process({edgeflow_binary(), "run", dir + "/p.yaml", "--metrics", std::to_string(port)});
  EXPECT_EQ(taken.exit_code, 2) << taken.err;
  EXPECT_NE(taken.err.find("cannot listen there"), std::string::npos) << taken.err;
}

}  // namespace
}  // namespace edgeflow
