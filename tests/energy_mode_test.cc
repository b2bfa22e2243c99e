// Energy-aware operation end to end: a real mosquitto on a free loopback port, `edgeflow
// cloud` and one `edgeflow edge` whose sysfs_root is a fake power_supply tree the test
// writes. The deployed pipeline's `energy:` rules hold the edge's links below 15%. The test
// walks the battery's capacity 80 -> 45 -> 25 -> 10 -> 40 -> 80 and checks each step's mode
// on the retained status topic (hysteresis on the way back), that nothing reaches the cloud
// while the links are held (the frames wait in the edge's spool), and that every reading
// arrives exactly once and in order after the hold lifts. Every wait is bounded.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "brokers/mqtt/client.h"
#include "tests/support/process.h"

namespace edgeflow {
namespace {

using namespace std::chrono_literals;
using namespace edgeflow::testing;
using json = nlohmann::json;
namespace fs = std::filesystem;

bool eventually(const std::function<bool()>& done, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

// The latest retained status of one node.
class StatusWatch {
 public:
  StatusWatch(const std::string& uri, const std::string& node) {
    mqtt::ClientOptions o;
    o.uri = uri;
    o.client_id = "energy-test-watch";
    client_ = mqtt::make_client("mosquitto", o, [this](mqtt::Received&& r) {
      json j = json::parse(r.payload, nullptr, false);
      if (j.is_discarded()) return;
      std::lock_guard<std::mutex> lock(mu_);
      status_ = std::move(j);
      modes_seen_.push_back(status_.contains("energy") ? status_["energy"].value("mode", "") : "");
    });
    client_->connect();
    client_->subscribe("edgeflow/nodes/" + node + "/status", 1);
  }
  ~StatusWatch() { client_->disconnect(); }
  json status() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  json energy() {
    json s = status();
    return s.contains("energy") ? s["energy"] : json::object();
  }
  std::string mode() { return energy().value("mode", ""); }
  uint64_t spool_frames() {
    json s = status();
    return s.contains("spool") ? s["spool"].value("frames", uint64_t{0}) : 0;
  }

 private:
  std::mutex mu_;
  json status_ = json::object();
  std::vector<std::string> modes_seen_;
  std::unique_ptr<mqtt::Client> client_;  // last: its thread stops first
};

std::vector<double> csv_temps(const std::string& path) {
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);  // header: temp,date
  std::vector<double> out;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(std::stod(line.substr(0, line.find(','))));
  return out;
}

class EnergyModes : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    const int port = free_tcp_port();
    broker_uri_ = "tcp://127.0.0.1:" + std::to_string(port);
    write_file(dir_ + "/mosquitto.conf",
               "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous true\n");
    broker_ = std::make_unique<Process>(
        std::vector<std::string>{"mosquitto", "-c", dir_ + "/mosquitto.conf"});
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(run_process({edgeflow_binary(), "wallet", "new", dir_ + "/cloud.key"}).exit_code, 0);
    auto a = run_process({edgeflow_binary(), "wallet", "address", dir_ + "/cloud.key"});
    const std::string trust = a.out.substr(0, a.out.find('\n'));
    // The fake battery: what the kernel's power_supply class shows for a fuel gauge.
    supply_ = dir_ + "/sys/class/power_supply";
    fs::create_directories(supply_ + "/BAT0");
    fs::create_directories(supply_ + "/AC");
    write_file(supply_ + "/BAT0/type", "Battery\n");
    write_file(supply_ + "/BAT0/status", "Discharging\n");
    write_file(supply_ + "/AC/type", "Mains\n");
    write_file(supply_ + "/AC/online", "0\n");
    set_capacity(80);
    const std::string common =
        "broker: " + broker_uri_ + "\ntrust: \"" + trust + "\"\nstatus_period: 1s\nkeepalive: 5s\n";
    write_file(dir_ + "/cloud.yaml", "node: cloud\ndata_dir: " + dir_ + "/data/cloud\n" + common);
    write_file(dir_ + "/pi-1.yaml", "node: pi-1\ndata_dir: " + dir_ + "/data/pi-1\n" + common +
                                        "sysfs_root: " + dir_ + "/sys\n" +
                                        "battery: { poll: 100ms, source: sysfs }\n");
    csv_ = source_dir() + "/pipelines/data/station-hourly.csv";
    // 30 readings a second: the stream runs for about 24 s, through every step below.
    write_file(dir_ + "/energy.yaml", R"(pipeline: energy-test
nodes:
  pi-1: { tier: edge }
  cloud: { tier: cloud }
energy:
  modes:
    - { name: saver, below: 50% }
    - { name: low, below: 30% }
    - { name: critical, below: 15%, hold_links: true }
  hysteresis: 5%
stages:
  - id: sensors
    op: csv.replay
    on: edge
    with: { path: )" + csv_ + R"(, time_column: date, time_format: "%Y/%m/%d %H:%M:%S",
            speed: 108000 }
  - id: readings
    op: file.write
    on: cloud
    from: sensors
    with: { path: )" + dir_ + R"(/readings.jsonl }
)");
  }

  void TearDown() override {
    if (HasFailure()) {
      for (auto& [node, p] : services_) {
        std::string err = p->err();
        if (err.size() > 6000) err = "..." + err.substr(err.size() - 6000);
        std::cerr << "---- " << node << " ----\n" << err << "\n";
      }
      std::cerr << "kept " << dir_ << "\n";
    }
    watch_.reset();
    services_.clear();
    broker_.reset();
    std::error_code ec;
    if (!HasFailure()) fs::remove_all(dir_, ec);
  }

  void set_capacity(int pct) {
    // Written aside and renamed, as sysfs reads are atomic: the service never sees "" or "4".
    write_file(supply_ + "/BAT0/capacity.tmp", std::to_string(pct) + "\n");
    fs::rename(supply_ + "/BAT0/capacity.tmp", supply_ + "/BAT0/capacity");
  }

  void start(const std::string& node) {
    services_[node] = std::make_unique<Process>(
        std::vector<std::string>{edgeflow_binary(), node == "cloud" ? "cloud" : "edge", "--config",
                                 dir_ + "/" + node + ".yaml"});
    ASSERT_TRUE(services_[node]->wait_for_err("waiting for deployments", 10)) << node;
  }

  size_t lines() {
    std::istringstream in(read_file(dir_ + "/readings.jsonl"));
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) n += !line.empty();
    return n;
  }

  // Sets the capacity and waits for the status to report `mode` at that charge.
  ::testing::AssertionResult step(int pct, const std::string& mode) {
    set_capacity(pct);
    bool ok = eventually(
        [&] {
          json e = watch_->energy();
          return e.value("mode", "") == mode && e.value("charge_pct", -1.0) == pct;
        },
        10);
    if (ok) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "at " << pct << "% the status says "
                                         << watch_->energy().dump() << ", want mode " << mode;
  }

  std::string dir_, broker_uri_, supply_, csv_;
  std::unique_ptr<Process> broker_;
  std::map<std::string, std::unique_ptr<Process>> services_;
  std::unique_ptr<StatusWatch> watch_;
};

TEST_F(EnergyModes, ModesFollowTheBatteryHoldLinksAndLoseNothing) {
  start("cloud");
  start("pi-1");
  watch_ = std::make_unique<StatusWatch>(broker_uri_, "pi-1");
  auto d = run_process({edgeflow_binary(), "deploy", dir_ + "/energy.yaml", "--broker", broker_uri_,
                        "--key", dir_ + "/cloud.key", "--wait", "30s"},
                       60);
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  ASSERT_TRUE(eventually([&] { return lines() > 10; }, 20)) << "no reading reached the cloud";

  ASSERT_TRUE(step(80, "normal"));
  json e = watch_->energy();
  EXPECT_EQ(e.value("source", ""), "sysfs");
  EXPECT_EQ(e.value("supply", ""), "BAT0");
  EXPECT_EQ(e["modes"].size(), 3u);
  ASSERT_TRUE(step(45, "saver"));
  ASSERT_TRUE(step(25, "low"));

  // `edgeflow nodes` shows the mode and the charge.
  auto n = run_process({edgeflow_binary(), "nodes", "--broker", broker_uri_}, 20);
  EXPECT_NE(n.out.find("ENERGY"), std::string::npos) << n.out;
  EXPECT_NE(n.out.find("low 25%"), std::string::npos) << n.out;

  // Critical: the links are held. Whatever was in flight lands; then nothing more arrives,
  // while the edge keeps reading into its spool.
  ASSERT_TRUE(step(10, "critical"));
  std::this_thread::sleep_for(1s);
  const size_t held_at = lines();
  ASSERT_TRUE(eventually([&] { return watch_->spool_frames() >= 5; }, 10))
      << "the edge's spool did not fill while held: " << watch_->status().dump();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(lines(), held_at) << "readings reached the cloud while the links were held";
  EXPECT_GE(watch_->spool_frames(), 5u);

  // 40%: out of critical (>= 15 + 5) and low (>= 30 + 5), not of saver (< 50 + 5).
  ASSERT_TRUE(step(40, "saver"));
  ASSERT_TRUE(eventually([&] { return lines() > held_at; }, 10))
      << "nothing arrived after the hold lifted";
  ASSERT_TRUE(step(80, "normal"));

  // Every reading of the file arrives, exactly once and in order.
  const std::vector<double> expected = csv_temps(csv_);
  ASSERT_TRUE(eventually([&] { return lines() >= expected.size(); }, 90))
      << lines() << " of " << expected.size() << " readings arrived";
  std::this_thread::sleep_for(500ms);
  std::vector<double> got;
  std::istringstream in(read_file(dir_ + "/readings.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object()) got.push_back(j.value("temp", -1e9));
  }
  EXPECT_EQ(got, expected);
  EXPECT_TRUE(eventually([&] { return watch_->spool_frames() == 0; }, 10));

  // The service logged each change.
  const std::string log = services_["pi-1"]->err();
  EXPECT_NE(log.find("energy mode 'critical'"), std::string::npos);
  EXPECT_NE(log.find("held by energy mode 'critical'"), std::string::npos);
  EXPECT_NE(log.find("hold lifted"), std::string::npos);
}

}  // namespace
}  // namespace edgeflow
