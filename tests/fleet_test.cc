// The fleet end to end, with real processes: a real mosquitto on a free loopback port, one
// `edgeflow cloud` and three `edgeflow edge` services, `edgeflow deploy` / `nodes`. Every
// reading of the replayed CSV must reach the cloud's file exactly once and in order per node,
// through broker restarts, a kill -9 of an edge service and of the cloud service, and a new
// version deployed mid-stream.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/headless_chromium.h"
#include "tests/support/nats_cluster.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_scrape.h"

namespace edgeflow {
namespace {

using namespace std::chrono_literals;
using namespace edgeflow::testing;

// The temperatures of the CSV the stations replay, in file order.
std::vector<double> csv_temps(const std::string& path) {
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);  // header: temp,date
  std::vector<double> out;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(std::stod(line.substr(0, line.find(','))));
  return out;
}

class Fleet : public ::testing::Test {
 protected:
  // FleetOverNats: the services reach a NATS server through its MQTT interface instead.
  virtual bool over_nats() const { return false; }

  void SetUp() override {
    dir_ = make_temp_dir();
    if (over_nats()) {
      nats_ = std::make_unique<NatsCluster>(1);
      ASSERT_TRUE(nats_->ok()) << nats_->error();
      broker_uri_ = nats_->mqtt_uri(1);
    } else {
      port_ = free_tcp_port();
      broker_uri_ = "tcp://127.0.0.1:" + std::to_string(port_);
      write_file(dir_ + "/mosquitto.conf",
                 "listener " + std::to_string(port_) + " 127.0.0.1\nallow_anonymous true\n");
      start_broker();
    }
    ASSERT_EQ(run_process({edgeflow_binary(), "wallet", "new", dir_ + "/cloud.key"}).exit_code, 0);
    auto a = run_process({edgeflow_binary(), "wallet", "address", dir_ + "/cloud.key"});
    trust_ = a.out.substr(0, a.out.find('\n'));
    csv_ = source_dir() + "/pipelines/data/station-hourly.csv";
    for (const char* n : {"cloud", "pi-1", "pi-2", "pi-3"}) {
      write_file(dir_ + "/" + n + ".yaml", std::string("node: ") + n + "\nbroker: " + broker_uri_ +
                                               "\ndata_dir: " + dir_ + "/data/" + n +
                                               "\ntrust: \"" + trust_ +
                                               "\"\nstatus_period: 1s\nkeepalive: 5s\n");
    }
    write_file(dir_ + "/fleet.yaml", R"(pipeline: fleet-test
nodes:
  pi-1: { tier: edge }
  pi-2: { tier: edge }
  pi-3: { tier: edge }
  cloud: { tier: cloud }
stages:
  - id: sensors
    op: csv.replay
    on: edge
    with: { path: )" + csv_ + R"(, time_column: date, time_format: "%Y/%m/%d %H:%M:%S",
            speed: 90000 }
  - id: readings
    op: file.write
    on: cloud
    from: sensors
    with: { path: )" + dir_ + R"(/readings.jsonl }
)");
  }
  void TearDown() override {
    if (HasFailure()) {
      // What each service said, and its files kept, to tell where a reading went.
      for (auto& [node, p] : services_) {
        std::string err = earlier_[node] + p->err();
        write_file(dir_ + "/" + node + ".err", err);
        if (err.size() > 6000) err = "..." + err.substr(err.size() - 6000);
        std::cerr << "---- " << node << " ----\n" << err << "\n";
      }
      std::cerr << "kept " << dir_ << "\n";
    }
    services_.clear();
    broker_.reset();
    nats_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(dir_, ec);
  }

  void start_broker() {
    broker_ = std::make_unique<Process>(
        std::vector<std::string>{"mosquitto", "-c", dir_ + "/mosquitto.conf"});
    std::this_thread::sleep_for(300ms);
  }
  void start(const std::string& node, const std::vector<std::string>& extra = {}) {
    if (services_[node]) earlier_[node] += services_[node]->err();
    std::vector<std::string> argv = {edgeflow_binary(),
                                     node == "cloud" || node == "archive" ? "cloud" : "edge",
                                     "--config", dir_ + "/" + node + ".yaml"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    services_[node] = std::make_unique<Process>(argv);
    ASSERT_TRUE(services_[node]->wait_for_err("waiting for deployments", 10)) << node;
  }
  void start_all() {
    for (const char* n : {"cloud", "pi-1", "pi-2", "pi-3"}) start(n);
  }
  ProcessResult deploy(std::vector<std::string> extra = {}, const std::string& key = "") {
    std::vector<std::string> argv = {edgeflow_binary(),
                                     "deploy",
                                     dir_ + "/fleet.yaml",
                                     "--broker",
                                     broker_uri_,
                                     "--key",
                                     key.empty() ? dir_ + "/cloud.key" : key};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv, 90);
  }
  std::map<std::string, nlohmann::json> nodes() {
    auto r = run_process({edgeflow_binary(), "nodes", "--broker", broker_uri_, "--json"}, 20);
    std::map<std::string, nlohmann::json> out;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_array())
      for (auto& n : j) out[n["node"]] = n;
    return out;
  }
  // node -> the temperatures the cloud wrote for it, in file order.
  std::map<std::string, std::vector<double>> received() {
    std::map<std::string, std::vector<double>> out;
    std::istringstream in(read_file(dir_ + "/readings.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object()) out[j.value("node", "")].push_back(j.value("temp", -1e9));
    }
    return out;
  }
  size_t lines() {
    size_t n = 0;
    for (auto& [node, v] : received()) n += v.size();
    return n;
  }
  void wait_for_lines(size_t n, double seconds) {
    for (int i = 0; i < seconds * 5 && lines() < n; ++i) std::this_thread::sleep_for(200ms);
  }

  std::string dir_, broker_uri_, trust_, csv_;
  int port_ = 0;
  std::unique_ptr<Process> broker_;
  std::unique_ptr<NatsCluster> nats_;
  std::map<std::string, std::unique_ptr<Process>> services_;
  std::map<std::string, std::string> earlier_;  // what services killed and started again said
};

TEST_F(Fleet, EveryReadingArrivesOnceInOrderThroughOutagesKillsAndARedeploy) {
  start_all();
  const std::vector<double> expected = csv_temps(csv_);
  ASSERT_GT(expected.size(), 500u);
  auto d = deploy({"--wait", "30s"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_NE(d.out.find("pi-3"), std::string::npos);

  // kill -9 of an edge service mid-stream, then of the cloud service, with the broker
  // stopped and started three times in between, and a new version deployed mid-stream.
  wait_for_lines(300, 20);
  services_["pi-2"]->signal(SIGKILL);
  services_["pi-2"]->wait(5);
  std::this_thread::sleep_for(500ms);
  start("pi-2");
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(1500ms);
    broker_->signal(SIGKILL);
    broker_->wait(5);
    std::this_thread::sleep_for(1000ms);
    start_broker();
  }
  services_["cloud"]->signal(SIGKILL);
  services_["cloud"]->wait(5);
  std::this_thread::sleep_for(500ms);
  start("cloud");
  auto v2 = deploy({"--wait", "40s", "--set", "readings.append=true"});
  EXPECT_EQ(v2.exit_code, 0) << v2.out << v2.err;

  wait_for_lines(3 * expected.size(), 120);
  auto got = received();
  for (const char* node : {"pi-1", "pi-2", "pi-3"}) {
    const std::vector<double>& g = got[node];
    size_t first = 0;
    while (first < g.size() && first < expected.size() && g[first] == expected[first]) ++first;
    ASSERT_EQ(g.size(), expected.size())
        << node << ": lost or repeated readings; the first difference is at reading " << first;
    EXPECT_EQ(got[node], expected) << node << ": readings out of order";
  }
  // Nothing is left waiting in any spool.
  std::this_thread::sleep_for(2s);
  for (auto& [node, s] : nodes()) EXPECT_EQ(s["spool_backlog"], 0) << node;
}

// The same services, deploy and nodes against nats-server's MQTT interface (JetStream keeps
// the sessions): what a fleet on a NATS cluster runs at the edge.
class FleetOverNats : public Fleet {
 protected:
  bool over_nats() const override { return true; }
};

TEST_F(FleetOverNats, DeployedPartsDeliverEveryReadingOnceInOrder) {
  start_all();
  const std::vector<double> expected = csv_temps(csv_);
  auto d = deploy({"--wait", "30s"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  wait_for_lines(3 * expected.size(), 120);
  auto got = received();
  for (const char* node : {"pi-1", "pi-2", "pi-3"})
    EXPECT_EQ(got[node], expected) << node << ": lost, repeated or reordered readings";
  auto n = nodes();
  ASSERT_EQ(n.size(), 4u);
  for (auto& [node, st] : n) EXPECT_EQ(st["pipeline"], "fleet-test") << node << st.dump();
}

TEST_F(Fleet, ForgedPartIsRefusedAndAPartThatFailsRollsBack) {
  start_all();
  ASSERT_EQ(run_process({edgeflow_binary(), "wallet", "new", dir_ + "/other.key"}).exit_code, 0);
  auto forged = deploy({"--wait", "4s"}, dir_ + "/other.key");
  EXPECT_EQ(forged.exit_code, 1) << forged.out;
  auto n = nodes();
  ASSERT_EQ(n.count("pi-1"), 1u);
  EXPECT_EQ(n["pi-1"]["state"], "error");
  EXPECT_NE(n["pi-1"]["error"].get<std::string>().find("not by the trusted"), std::string::npos)
      << n["pi-1"].dump();
  EXPECT_TRUE(n["pi-1"]["pipeline"].is_null());  // nothing runs

  auto v1 = deploy({"--wait", "30s"});
  ASSERT_EQ(v1.exit_code, 0) << v1.out << v1.err;
  const std::string v1_hash = nodes()["pi-1"]["part_hash"];
  // A version whose source cannot open: the nodes go back to v1 and say so.
  auto bad = deploy({"--wait", "30s", "--set", "sensors.path=/nonexistent/readings.csv"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("failed"), std::string::npos) << bad.out;
  n = nodes();
  EXPECT_EQ(n["pi-1"]["part_hash"], v1_hash);
  EXPECT_NE(n["pi-1"]["error"].get<std::string>().find("rolled back"), std::string::npos)
      << n["pi-1"].dump();
}

TEST_F(Fleet, KilledNodeShowsOfflineKeptPartRunsAfterARestartUndeployStopsAll) {
  start_all();
  ASSERT_EQ(deploy({"--wait", "30s"}).exit_code, 0);
  services_["pi-3"]->signal(SIGKILL);
  services_["pi-3"]->wait(5);
  // The broker sends the last will after 1.5 x the 5 s keep-alive.
  std::string state;
  for (int i = 0; i < 60 && state != "offline"; ++i) {
    std::this_thread::sleep_for(250ms);
    state = nodes()["pi-3"].value("state", "");
  }
  EXPECT_EQ(state, "offline");
  start("pi-3");  // no deploy: it runs the part it kept in data_dir
  std::string pipeline;
  for (int i = 0; i < 40 && pipeline != "fleet-test"; ++i) {
    std::this_thread::sleep_for(250ms);
    auto s = nodes()["pi-3"];
    pipeline = s["pipeline"].is_string() ? s["pipeline"].get<std::string>() : "";
  }
  EXPECT_EQ(pipeline, "fleet-test");

  // undeploy stops it on every node, and the nodes forget the kept part.
  auto u = run_process({edgeflow_binary(), "undeploy", "fleet-test", "--broker", broker_uri_,
                        "--key", dir_ + "/cloud.key", "--wait", "30s"},
                       60);
  EXPECT_EQ(u.exit_code, 0) << u.out << u.err;
  for (auto& [node, st] : nodes()) EXPECT_TRUE(st["pipeline"].is_null()) << node;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/data/pi-1/part.json"));
}

// `edge --metrics` and `cloud --metrics`: Prometheus reads the part's counters, the node's
// state and spool, and (from the cloud) every node's state, which turns offline when one is
// killed.
TEST_F(Fleet, ServicesServeMetricsThatCountWhatTheyDid) {
  start("cloud", {"--metrics", "127.0.0.1:0", "--http", "127.0.0.1:0"});
  start("pi-1", {"--metrics", "127.0.0.1:0"});
  start("pi-2");
  start("pi-3");
  const std::string cloud_url = logged_metrics_url(services_["cloud"]->err());
  const std::string edge_url = logged_metrics_url(services_["pi-1"]->err());
  ASSERT_FALSE(cloud_url.empty()) << services_["cloud"]->err();
  ASSERT_FALSE(edge_url.empty()) << services_["pi-1"]->err();
  // Before any deployment: the node waits, with an empty spool.
  std::string edge = scrape(edge_url);
  EXPECT_EQ(sample(edge, "edgeflow_node_state", "node=\"pi-1\",state=\"waiting\""), 1) << edge;
  EXPECT_EQ(sample(edge, "edgeflow_spool_frames", "node=\"pi-1\""), 0) << edge;
  EXPECT_EQ(sample(edge, "edgeflow_node_broker_connected", "node=\"pi-1\""), 1) << edge;

  const std::vector<double> expected = csv_temps(csv_);
  ASSERT_EQ(deploy({"--wait", "30s"}).exit_code, 0);
  wait_for_lines(3 * expected.size(), 120);
  ASSERT_EQ(lines(), 3 * expected.size());
  const double n = static_cast<double>(expected.size());

  // The edge's part replayed every row; the cloud's part wrote what came from all three.
  edge = scrape(edge_url);
  const std::string part = "pipeline=\"fleet-test\",node=\"pi-1\",stage=\"sensors\"";
  EXPECT_EQ(sample(edge, "edgeflow_stage_messages_sent_total", part), n) << edge;
  EXPECT_NE(edge.find("\nprocess_resident_memory_bytes "), std::string::npos) << edge;
  // The replay has ended, so the part does too (soon after its last reading).
  double running = 1;
  for (int i = 0; i < 40 && running != 0; ++i) {
    running = sample(scrape(edge_url), "edgeflow_node_part_running", "node=\"pi-1\"");
    if (running != 0) std::this_thread::sleep_for(250ms);
  }
  EXPECT_EQ(running, 0);
  EXPECT_NE(edge.find("edgeflow_node_info{node=\"pi-1\",tier=\"edge\",pipeline=\"fleet-test\""),
            std::string::npos)
      << edge;
  std::string cloud = scrape(cloud_url);
  // The JSON API: every node with its last status, the same the nodes command prints.
  std::smatch api;
  const std::string cloud_log = services_["cloud"]->err();
  ASSERT_TRUE(
      std::regex_search(cloud_log, api, std::regex(R"(HTTP API on http://([0-9.]+):(\d+))")))
      << cloud_log;
  httplib::Client http(api[1].str(), std::stoi(api[2].str()));
  http.set_read_timeout(5);
  auto got = http.Get("/api/nodes");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->get_header_value("Content-Type"), "application/json");
  const nlohmann::json listed = nlohmann::json::parse(got->body, nullptr, false);
  ASSERT_TRUE(listed.is_array()) << got->body;
  std::map<std::string, nlohmann::json> by_node;
  for (const auto& n : listed) by_node[n.value("node", "")] = n;
  const std::map<std::string, nlohmann::json> seen = nodes();
  ASSERT_EQ(seen.size(), 4u);
  for (const auto& [node, st] : seen) {
    ASSERT_TRUE(by_node.count(node)) << node << " missing from " << got->body;
    EXPECT_EQ(by_node[node]["pipeline"], "fleet-test") << node;
    EXPECT_TRUE(by_node[node]["state"].is_string()) << node;  // it may change between the two
    EXPECT_EQ(by_node[node]["tier"], node == "cloud" ? "cloud" : "edge") << node;
    EXPECT_EQ(by_node[node]["pipeline"], st["pipeline"]) << node;
  }
  EXPECT_EQ(by_node.size(), 4u);
  // One node's URL, a node nobody knows, and only GET.
  auto one = http.Get("/api/nodes/pi-1");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(nlohmann::json::parse(one->body, nullptr, false).value("node", ""), "pi-1");
  auto nobody = http.Get("/api/nodes/nobody");
  ASSERT_TRUE(nobody);
  EXPECT_EQ(nobody->status, 404);
  auto post = http.Post("/api/nodes", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  // /metrics is served there too.
  EXPECT_NE(scrape("http://" + api[1].str() + ":" + api[2].str() + "/metrics")
                .find("edgeflow_fleet_nodes"),
            std::string::npos);
  // Each family's HELP and TYPE once in a whole scrape.
  for (const std::string* text : {&edge, &cloud}) {
    std::istringstream in(*text);
    std::set<std::string> types;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("# TYPE ", 0) == 0) {
        EXPECT_TRUE(types.insert(line).second) << line;
      }
    }
  }
  EXPECT_EQ(sample(cloud, "edgeflow_stage_messages_received_total", "stage=\"readings\""), 3 * n)
      << cloud;
  EXPECT_EQ(sample(cloud, "edgeflow_fleet_nodes", "state=\"offline\""), 0) << cloud;
  for (const char* node : {"pi-1", "pi-2", "pi-3", "cloud"}) {
    const std::string of = std::string("node=\"") + node + "\",state=\"offline\"";
    EXPECT_EQ(sample(cloud, "edgeflow_fleet_node_state", of), 0) << node << cloud;
    EXPECT_GT(sample(cloud, "edgeflow_fleet_node_last_seen_timestamp_seconds",
                     std::string("node=\"") + node + "\""),
              0)
        << node;
  }

  // Any node may publish any JSON as its status: one with fields of the wrong types and a
  // state of its own is listed as unknown, and the cloud goes on serving.
  auto pub = run_process({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port_), "-t",
                          "edgeflow/nodes/odd/status", "-r", "-q", "1", "-m",
                          R"({"node": "odd", "state": "dancing", "version": null, "tier": 1,
                              "energy": {"charge_pct": "full"}, "spool": 7})"},
                         20);
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  // The value of a fleet node's state sample once it reads 1, or what it read after `seconds`.
  auto wait_for_state = [&](const std::string& node, const std::string& state, double seconds) {
    double v = 0;
    for (int i = 0; i < seconds * 4 && v != 1; ++i) {
      std::this_thread::sleep_for(250ms);
      v = sample(scrape(cloud_url), "edgeflow_fleet_node_state",
                 "node=\"" + node + "\",state=\"" + state + "\"");
    }
    return v;
  };
  EXPECT_EQ(wait_for_state("odd", "unknown", 10), 1);
  EXPECT_EQ(sample(scrape(cloud_url), "edgeflow_fleet_nodes", "state=\"unknown\""), 1);
  EXPECT_TRUE(services_["cloud"]->running());

  // A killed node is offline on the cloud's /metrics once its will comes (1.5 x keep-alive).
  services_["pi-2"]->signal(SIGKILL);
  services_["pi-2"]->wait(5);
  EXPECT_EQ(wait_for_state("pi-2", "offline", 20), 1);
  EXPECT_EQ(sample(scrape(cloud_url), "edgeflow_fleet_nodes", "state=\"offline\""), 1);
}

// The dashboard of `cloud --http` in a real browser (headless Chromium): every node appears
// with its state; the deployed pipeline's graph shows each stage on the nodes that run it and
// the bytes/s its link carries from each station; a node killed with -9 turns offline on the
// page by itself (server-sent events, no reload) once its keep-alive runs out; a node that
// publishes a malformed status shows as unknown and the cloud stays up. The screenshot is
// kept in the build folder's test-artifacts/.
TEST_F(Fleet, DashboardShowsTheFleetLiveInABrowser) {
  HeadlessChromium browser;
  ASSERT_TRUE(browser.ok()) << browser.error();
  // An operator who may act once logged in.
  const std::string operators = dir_ + "/operators.digest";
  auto added = run_process({edgeflow_binary(), "operator", "add", operators, "alice"}, 20,
                           "correct horse battery\n");
  ASSERT_EQ(added.exit_code, 0) << added.err;
  write_file(dir_ + "/cloud.yaml",
             read_file(dir_ + "/cloud.yaml") + "operators: " + operators + "\n");
  start("cloud", {"--http", "127.0.0.1:0"});
  for (const char* n : {"pi-1", "pi-2", "pi-3"}) start(n);
  std::smatch api;
  const std::string cloud_log = services_["cloud"]->err();
  ASSERT_TRUE(
      std::regex_search(cloud_log, api, std::regex(R"(HTTP API on http://([0-9.]+):(\d+))")))
      << cloud_log;
  const std::string base = "http://" + api[1].str() + ":" + api[2].str();
  ASSERT_TRUE(browser.open(base + "/")) << browser.error();
  auto state_of = [](const std::string& node) {
    return "(document.querySelector('#nodes tr[data-node=\"" + node +
           "\"]') || {dataset: {}}).dataset.state";
  };
  EXPECT_TRUE(
      browser.wait_until("document.querySelectorAll('#nodes tr[data-node]').length == 4", 20))
      << browser.eval("document.body.innerText");
  for (const char* n : {"pi-1", "pi-2", "pi-3", "cloud"})
    EXPECT_EQ(browser.eval(state_of(n)), "waiting") << n;
  // A mark in the page: gone if it were reloaded, so what follows comes by live updates.
  browser.eval("window.edgeflowTestMark = 1");

  // A replay of some 2 minutes: the link still carries readings when the page is read.
  ASSERT_EQ(deploy({"--wait", "30s", "--set", "sensors.speed=20000"}).exit_code, 0);
  const std::string graph = ".pipeline[data-pipeline=\"fleet-test\"] svg ";
  EXPECT_TRUE(
      browser.wait_until("document.querySelectorAll('" + graph + "g.copy').length == 4", 20))
      << browser.eval("document.body.innerText");
  for (const char* n : {"pi-1", "pi-2", "pi-3"}) {
    EXPECT_EQ(browser.eval("document.querySelectorAll('" + graph +
                           "g.copy[data-stage=\"sensors\"][data-node=\"" + n + "\"]').length"),
              1)
        << n;
  }
  EXPECT_EQ(browser.eval("document.querySelectorAll('" + graph +
                         "g.copy[data-stage=\"readings\"][data-node=\"cloud\"]').length"),
            1);
  // Each station's end of the link, labelled with the bytes/s it sends while the replay runs.
  const std::string rates =
      "[...document.querySelectorAll('" + graph + "text.rate[data-link=\"sensors->readings\"]')]";
  EXPECT_EQ(browser.eval(rates + ".length"), 3);
  EXPECT_TRUE(browser.wait_until(rates + ".some(t => /^[0-9.]+ [kM]?B\\/s$/.test(t.textContent) && "
                                         "!t.textContent.startsWith('0 '))",
                                 20))
      << browser.eval(rates + ".map(t => t.textContent).join()");
  httplib::Client http(api[1].str(), std::stoi(api[2].str()));
  http.set_read_timeout(5);
  auto pipeline = http.Get("/api/pipelines/fleet-test");
  ASSERT_TRUE(pipeline);
  ASSERT_EQ(pipeline->status, 200);
  const nlohmann::json p = nlohmann::json::parse(pipeline->body, nullptr, false);
  ASSERT_TRUE(p.is_object()) << pipeline->body;
  ASSERT_EQ(p["links"].size(), 1u) << pipeline->body;
  EXPECT_EQ(p["links"][0]["name"], "sensors->readings");
  EXPECT_EQ(p["links"][0]["senders"], nlohmann::json({"pi-1", "pi-2", "pi-3"}));
  EXPECT_EQ(p["links"][0]["receivers"], nlohmann::json({"cloud"}));
  for (const auto& n : p["nodes"]) EXPECT_TRUE(n["part_hash"].is_string()) << n;
  for (const char* path : {"/api/pipelines/nothing", "/no-such-page"}) {
    auto missing = http.Get(path);
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404) << path;
  }
  auto post_state = http.Post("/api/state", "{}", "application/json");
  ASSERT_TRUE(post_state);
  EXPECT_EQ(post_state->status, 405);

  // Killed: offline on the page once the broker gives up on it (1.5 x its 5 s keep-alive).
  services_["pi-2"]->signal(SIGKILL);
  services_["pi-2"]->wait(5);
  EXPECT_TRUE(browser.wait_until(state_of("pi-2") + " == 'offline'", 25))
      << browser.eval(state_of("pi-2"));
  for (const char* n : {"pi-1", "pi-3", "cloud"})
    EXPECT_NE(browser.eval(state_of(n)), "offline") << n;
  EXPECT_EQ(browser.eval("window.edgeflowTestMark"), 1);
  EXPECT_EQ(browser.eval("document.querySelector('" + graph +
                         "g.node[data-node=\"pi-2\"]').classList.contains('offline')"),
            true);

  // The page as an operator sees it now: pi-2 offline, the others still sending.
  const std::string png = browser.screenshot_png();
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_GT(png.size(), 20000u);
  const std::string artifacts =
      std::filesystem::path(edgeflow_binary()).parent_path().parent_path() / "test-artifacts";
  std::filesystem::create_directories(artifacts);
  write_file(artifacts + "/dashboard.png", png);

  // The stopped station's link end sends nothing now.
  EXPECT_TRUE(
      browser.wait_until("[...document.querySelectorAll('" + graph +
                             "text.rate[data-from=\"pi-2\"]')]"
                             ".every((t, i, all) => all.length == 1 && t.textContent == '…')",
                         10));

  // Read-only until an operator logs in: no action without the header, the login, the
  // right password (curl speaks HTTP digest as the browser does).
  EXPECT_EQ(browser.eval("document.querySelectorAll('button[data-forget]').length"), 0);
  auto bare = http.Post("/api/nodes/pi-2/forget", "", "text/plain");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 403);
  const httplib::Headers action = {{"X-Edgeflow-Action", "1"}};
  auto anonymous = http.Post("/api/nodes/pi-2/forget", action, "", "text/plain");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  auto curl = [&](const std::string& password) {
    return run_process({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--digest", "-u",
                        "alice:" + password, "-X", "POST", "-H", "X-Edgeflow-Action: 1",
                        base + "/api/login"},
                       20)
        .out;
  };
  EXPECT_EQ(curl("wrong password"), "401");
  EXPECT_EQ(curl("correct horse battery"), "200");
  // A captured Authorization header is good for that request only: not again, not elsewhere.
  auto login = run_process(
      {"curl", "-sv", "-o", "/dev/null", "--digest", "-u", "alice:correct horse battery", "-X",
       "POST", "-H", "X-Edgeflow-Action: 1", base + "/api/login"},
      20);
  std::smatch captured;
  ASSERT_TRUE(
      std::regex_search(login.err, captured, std::regex(R"(> Authorization: (Digest [^\r\n]+))")))
      << login.err;
  httplib::Headers replayed = action;
  replayed.emplace("Authorization", captured[1].str());
  auto again = http.Post("/api/login", replayed, "", "text/plain");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 401);
  auto elsewhere = http.Post("/api/nodes/pi-2/forget", replayed, "", "text/plain");
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->status, 401);
  // A digest made (with the right password) for /api/login is not good for another path,
  // nor with a second uri, nonce or nc put in front of the ones it was made with.
  auto md5 = [](const std::string& text) {
    return run_process({"md5sum"}, 10, text).out.substr(0, 32);
  };
  auto challenge = http.Post("/api/login", action, "", "text/plain");
  ASSERT_TRUE(challenge);
  std::smatch nonce;
  const std::string www = challenge->get_header_value("WWW-Authenticate");
  ASSERT_TRUE(std::regex_search(www, nonce, std::regex(R"re(nonce="([^"]+)")re"))) << www;
  auto made_for_login = [&](const std::string& nc) {
    const std::string ha1 = md5("alice:edgeflow:correct horse battery");
    const std::string ha2 = md5("POST:/api/login");
    const std::string response = md5(ha1 + ":" + nonce[1].str() + ":" + nc + ":c0ffee:auth:" + ha2);
    return "username=\"alice\", realm=\"edgeflow\", nonce=\"" + nonce[1].str() +
           "\", uri=\"/api/login\", qop=auth, nc=" + nc + ", cnonce=\"c0ffee\", response=\"" +
           response + "\"";
  };
  auto post_with = [&](const std::string& path, const std::string& digest) {
    httplib::Headers h = action;
    h.emplace("Authorization", "Digest " + digest);
    auto r = http.Post(path, h, "", "text/plain");
    return r ? r->status : -1;
  };
  EXPECT_EQ(post_with("/api/nodes/pi-2/forget", made_for_login("00000011")), 401);
  EXPECT_EQ(post_with("/api/nodes/pi-2/forget",
                      "uri=\"/api/nodes/pi-2/forget\", nc=00000099, " + made_for_login("00000012")),
            401);
  EXPECT_EQ(post_with("/api/login", made_for_login("00000013")), 200);  // as made: good once
  EXPECT_EQ(post_with("/api/login", made_for_login("00000013")), 401);
  // No page of another site may ask first (CORS preflight), nor reach it under its own name.
  auto preflight = http.Options("/api/nodes/pi-2/forget",
                                {{"Origin", "http://evil.example"},
                                 {"Access-Control-Request-Method", "POST"},
                                 {"Access-Control-Request-Headers", "x-edgeflow-action"}});
  ASSERT_TRUE(preflight);
  EXPECT_FALSE(preflight->has_header("Access-Control-Allow-Origin")) << preflight->status;
  EXPECT_NE(preflight->status, 200);
  auto rebound = http.Get("/api/state", {{"Host", "evil.example:8080"}});
  ASSERT_TRUE(rebound);
  EXPECT_EQ(rebound->status, 403);
  // In the page: log in, then forget the offline node with its button.
  ASSERT_TRUE(browser.set_credentials("alice", "correct horse battery")) << browser.error();
  browser.eval("document.getElementById('login').click()");
  EXPECT_TRUE(browser.wait_until("document.body.dataset.operator == 'alice'", 15))
      << browser.eval("document.getElementById('message').textContent");
  const std::string forget_pi1 =
      "fetch('/api/nodes/pi-1/forget', {method: 'POST', headers: {'X-Edgeflow-Action': '1'}})"
      ".then(r => r.status)";
  EXPECT_EQ(browser.eval(forget_pi1), 409);  // working: not forgotten
  EXPECT_TRUE(browser.wait_until("document.querySelector('button[data-forget=\"pi-2\"]')", 10));
  EXPECT_EQ(browser.eval("document.querySelectorAll('button[data-forget]').length"), 1);
  browser.eval("document.querySelector('button[data-forget=\"pi-2\"]').click()");
  EXPECT_TRUE(browser.wait_until("!document.querySelector('#nodes tr[data-node=\"pi-2\"]')", 15));
  auto forgotten = http.Get("/api/nodes/pi-2");
  ASSERT_TRUE(forgotten);
  EXPECT_EQ(forgotten->status, 404);
  EXPECT_EQ(nodes().count("pi-2"), 0u);  // its retained status is gone from the broker too
  EXPECT_NE(services_["cloud"]->err().find("operator 'alice' forgot node 'pi-2'"),
            std::string::npos);

  // Any node may publish any JSON as its status.
  auto pub = run_process({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port_), "-t",
                          "edgeflow/nodes/odd/status", "-r", "-q", "1", "-m",
                          R"({"node": "odd", "state": 5, "keepalive_s": "x", "links": 3,
                              "spool": [], "energy": {"watts": "many"}, "last_seen_ms": "now"})"},
                         20);
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_TRUE(browser.wait_until(state_of("odd") + " == 'unknown'", 15))
      << browser.eval(state_of("odd"));
  EXPECT_TRUE(services_["cloud"]->running());
}

#ifdef EDGEFLOW_VISION_BUILT
// What the deployed pipelines' own stages publish, on the page: the iExec pool of
// pipelines/iexec-worker-pool.yaml (three Pis working for the cloud's scheduler) completes a
// task, shown with its consensus; the surveillance camera (motion detection on a second
// cloud service, "archive") shows motion events whose snapshots load as images; the
// camera's node, a solar Raspberry Pi on the energy model, shows its draw and how long its
// battery lasts.
TEST_F(Fleet, DashboardShowsTasksMotionAndEnergyOfDeployedPipelines) {
  HeadlessChromium browser;
  ASSERT_TRUE(browser.ok()) << browser.error();
  for (const char* n : {"archive", "cam-1"}) {
    write_file(dir_ + "/" + n + ".yaml", std::string("node: ") + n + "\nbroker: " + broker_uri_ +
                                             "\ndata_dir: " + dir_ + "/data/" + n + "\ntrust: \"" +
                                             trust_ +
                                             "\"\nstatus_period: 1s\nkeepalive: 5s\n"
                                             "battery: { poll: 1s }\n");
  }
  start("cloud", {"--http", "127.0.0.1:0"});
  start("archive");
  for (const char* n : {"pi-1", "pi-2", "pi-3", "cam-1"}) start(n);
  std::smatch api;
  const std::string cloud_log = services_["cloud"]->err();
  ASSERT_TRUE(
      std::regex_search(cloud_log, api, std::regex(R"(HTTP API on http://([0-9.]+):(\d+))")))
      << cloud_log;
  ::chmod(dir_.c_str(), 0755);  // the sandboxed apps read their task folders
  auto pool = run_process(
      {edgeflow_binary(), "deploy", source_dir() + "/pipelines/iexec-worker-pool.yaml", "--broker",
       broker_uri_, "--key", dir_ + "/cloud.key", "--wait", "60s", "--set",
       "scheduler.wallet=" + dir_ + "/scheduler.key", "--set",
       "scheduler.journal=" + dir_ + "/poco.journal", "--set",
       "worker.wallet=" + dir_ + "/{node}.key", "--set", "worker.work_dir=" + dir_ + "/work/{node}",
       "--set", "local-forecast.work_dir=" + dir_ + "/local/{node}"},
      90);
  ASSERT_EQ(pool.exit_code, 0) << pool.out << pool.err;
  std::string camera = read_file(source_dir() + "/pipelines/surveillance-camera-cloud.yaml");
  camera.replace(camera.find("  cloud: { tier: cloud }"), 24, "  archive: { tier: cloud }");
  write_file(dir_ + "/camera.yaml", camera);
  auto cam = run_process({edgeflow_binary(), "deploy", dir_ + "/camera.yaml", "--broker",
                          broker_uri_, "--key", dir_ + "/cloud.key", "--wait", "60s"},
                         90);
  ASSERT_EQ(cam.exit_code, 0) << cam.out << cam.err;

  ASSERT_TRUE(browser.open("http://" + api[1].str() + ":" + api[2].str() + "/")) << browser.error();
  // A task of the pool, completed, with the consensus of its contributions.
  const std::string done =
      "[...document.querySelectorAll('#tasks tr[data-task]')].find(r => "
      "r.cells[3].textContent == 'COMPLETED')";
  EXPECT_TRUE(browser.wait_until(done, 90))
      << browser.eval("document.querySelector('#tasks').innerText");
  EXPECT_EQ(browser.eval(done + ".cells[1].textContent"), "iexec-worker-pool");
  EXPECT_EQ(browser.eval(done + ".cells[2].textContent"), "forecast");
  EXPECT_TRUE(browser.eval("/^[0-9]+ of [0-9]+ contributions agree/.test(" + done +
                           ".cells[5].textContent)") == true)
      << browser.eval(done + ".cells[5].textContent");
  // The same tasks counted on /metrics.
  const std::string counted = scrape("http://" + api[1].str() + ":" + api[2].str() + "/metrics");
  EXPECT_GE(sample(counted, "edgeflow_iexec_tasks_finished_total",
                   "pipeline=\"iexec-worker-pool\",status=\"COMPLETED\""),
            1)
      << counted;
  // Motion events of cam-1, and a snapshot the browser decoded as an image.
  const std::string snap =
      "[...document.querySelectorAll('#motion .card img')].find(i => i.complete && "
      "i.naturalWidth == 640)";
  EXPECT_TRUE(browser.wait_until(snap, 60))
      << browser.eval("document.querySelector('#motion').innerText");
  EXPECT_TRUE(
      browser.eval("/^cam-1\\/[0-9]+$/.test(" + snap + ".closest('.card').dataset.event)") == true);
  // cam-1 on the energy model: a draw in watts, and hours (or days) of battery.
  const std::string energy = "document.querySelector('#energy tr[data-node=\"cam-1\"]')";
  EXPECT_TRUE(browser.wait_until(energy + " && /^[0-9.]+ W$/.test(" + energy +
                                     ".cells[4].textContent) && " + energy +
                                     ".cells[4].textContent != '0.00 W'",
                                 30))
      << browser.eval(energy + " && " + energy + ".innerText");
  EXPECT_TRUE(browser.eval("/^[0-9.]+ (h|days)$/.test(" + energy + ".cells[7].textContent)") ==
              true)
      << browser.eval(energy + ".innerText");
  // Both graphs, each on its own nodes.
  for (const char* copy : {".pipeline[data-pipeline=\"iexec-worker-pool\"] "
                           "g.copy[data-stage=\"scheduler\"][data-node=\"cloud\"]",
                           ".pipeline[data-pipeline=\"surveillance-camera\"] "
                           "g.copy[data-stage=\"motion\"][data-node=\"archive\"]"}) {
    EXPECT_EQ(browser.eval("document.querySelectorAll('" + std::string(copy) + "').length"), 1)
        << copy;
  }
  const std::string png = browser.screenshot_png();
  const std::string artifacts =
      std::filesystem::path(edgeflow_binary()).parent_path().parent_path() / "test-artifacts";
  std::filesystem::create_directories(artifacts);
  write_file(artifacts + "/dashboard-pipelines.png", png);
}
#endif

TEST_F(Fleet, AMetricsAddressThatCannotBeUsedStopsTheServiceNamingIt) {
  auto r = run_process(
      {edgeflow_binary(), "edge", "--config", dir_ + "/pi-1.yaml", "--metrics", "nonsense"}, 20);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--metrics 'nonsense': give a port"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("pi-1.yaml"), std::string::npos) << r.err;
  // A port another process serves (the broker's), for the cloud's JSON API.
  auto taken = run_process({edgeflow_binary(), "cloud", "--config", dir_ + "/cloud.yaml", "--http",
                            "127.0.0.1:" + std::to_string(port_)},
                           20);
  EXPECT_EQ(taken.exit_code, 2) << taken.err;
  EXPECT_NE(taken.err.find("--http 127.0.0.1:" + std::to_string(port_) + ": cannot listen there"),
            std::string::npos)
      << taken.err;
}

// Under systemd (NOTIFY_SOCKET set) the service loads libsystemd and says READY=1 with a
// STATUS= line; a datagram socket of the test's stands in for systemd's.
TEST_F(Fleet, TellsSystemdItIsReadyThroughNotifySocket) {
  const std::string path = dir_ + "/notify.sock";
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  Process edge(
      {"env", "NOTIFY_SOCKET=" + path, edgeflow_binary(), "edge", "--config", dir_ + "/pi-1.yaml"});
  std::string said;
  auto heard = [&](const char* what) { return said.find(what) != std::string::npos; };
  for (int i = 0; i < 20 && !(heard("READY=1") && heard("STATUS=")); ++i) {
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) said += std::string(buf, static_cast<size_t>(n)) + "\n";
  }
  close(fd);
  EXPECT_NE(said.find("READY=1"), std::string::npos) << said << edge.err();
  EXPECT_NE(said.find("STATUS="), std::string::npos) << said;
}

}  // namespace
}  // namespace edgeflow
