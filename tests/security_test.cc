// A pipeline over a broker that wants TLS and a password: links.mqtt and the mqtt.* stages
// with tls: and credentials:, run by the edgeflow binary against a real mosquitto (TLS
// listener on a free loopback port, password file from mosquitto_passwd, certificates from
// scripts/make-test-ca.sh), and read by mosquitto_sub over TLS as anyone would. Then the
// `edgeflow edge` and `edgeflow cloud` services on broker-config's mosquitto, each with its
// own generated credentials (TlsFleet).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "brokers/mqtt/embedded_broker.h"
#include "tests/support/process.h"

namespace edgeflow {
namespace {

using testing::edgeflow_binary;
using testing::make_temp_dir;
using testing::Process;
using testing::ProcessResult;
using testing::read_file;
using testing::run_process;
using testing::source_dir;
using testing::write_file;

constexpr char kPassword[] = "Edge-Pa55-word";

class SecureBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    ProcessResult ca = run_process({source_dir() + "/scripts/make-test-ca.sh", dir_}, 60);
    ASSERT_EQ(ca.exit_code, 0) << ca.err << ca.out;
    ProcessResult pw =
        run_process({"/usr/bin/mosquitto_passwd", "-c", "-b", dir_ + "/passwd", "pi-1", kPassword});
    ASSERT_EQ(pw.exit_code, 0) << pw.err;
    credentials("pi-1.credentials.yaml", kPassword);
    credentials("wrong.credentials.yaml", "Not-The-Password");
    mqtt::EmbeddedBrokerOptions o;
    o.persistence = false;
    o.tls_ca_file = dir_ + "/ca.crt";
    o.tls_cert_file = dir_ + "/server.crt";
    o.tls_key_file = dir_ + "/server.key";
    o.password_file = dir_ + "/passwd";
    broker_ = std::make_unique<mqtt::EmbeddedBroker>(o);
    broker_->start();
    uri_ = "mqtts://localhost:" + std::to_string(broker_->port());
  }
  void credentials(const std::string& name, const std::string& password) {
    write_file(dir_ + "/" + name, "username: pi-1\npassword: " + password + "\n");
    chmod((dir_ + "/" + name).c_str(), 0600);
  }
  // Two nodes joined by an MQTT link over TLS; relative paths are the pipeline file's folder.
  std::string link_pipeline(const std::string& credentials_file, int count) {
    std::ostringstream y;
    y << "pipeline: tls-link\n"
         "nodes: {pi-1: {tier: edge}, cloud: {tier: cloud}}\n"
         "links:\n"
         "  via: mqtt\n"
         "  mqtt:\n"
         "    broker: \""
      << uri_
      << "\"\n"
         "    tls: {ca_file: ca.crt}\n"
         "    credentials: "
      << credentials_file
      << "\n"
         "stages:\n"
         "  - {id: sensors, op: weather.simulate, on: edge, with: {period: 1s, speed: 0, count: "
      << count
      << "}}\n"
         "  - {id: out, op: file.write, on: cloud, from: sensors, with: {path: out.jsonl}}\n";
    return y.str();
  }

  std::string dir_, uri_;
  std::unique_ptr<mqtt::EmbeddedBroker> broker_;
};

size_t lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

TEST_F(SecureBroker, ALinkCarriesEveryReadingOverTlsWithAPassword) {
  write_file(dir_ + "/p.yaml", link_pipeline("pi-1.credentials.yaml", 200));
  ProcessResult r = run_process({edgeflow_binary(), "run", dir_ + "/p.yaml", "--quiet"}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(read_file(dir_ + "/out.jsonl")), 200u);
  EXPECT_EQ(r.err.find(kPassword), std::string::npos) << "the password leaked: " << r.err;
}

TEST_F(SecureBroker, AWrongPasswordStopsTheRunNamingTheBroker) {
  write_file(dir_ + "/p.yaml", link_pipeline("wrong.credentials.yaml", 10));
  ProcessResult r = run_process({edgeflow_binary(), "run", dir_ + "/p.yaml"}, 120);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(uri_), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not authorised"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Not-The-Password"), std::string::npos) << "the password leaked: " << r.err;
}

TEST_F(SecureBroker, ACredentialsFileOthersMayReadIsRefusedAtStart) {
  write_file(dir_ + "/p.yaml", link_pipeline("pi-1.credentials.yaml", 10));
  chmod((dir_ + "/pi-1.credentials.yaml").c_str(), 0644);
  ProcessResult r = run_process({edgeflow_binary(), "run", dir_ + "/p.yaml"}, 120);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
}

TEST_F(SecureBroker, MqttPublishOverTlsIsReadByMosquittoSub) {
  // mosquitto_sub over TLS with the same CA and user, as any reader of the topic would.
  // stdbuf: line-buffered, so the SUBACK line shows before mosquitto_sub exits.
  Process sub({"/usr/bin/stdbuf",
               "-oL",
               "/usr/bin/mosquitto_sub",
               "-h",
               "localhost",
               "-p",
               std::to_string(broker_->port()),
               "--cafile",
               dir_ + "/ca.crt",
               "-u",
               "pi-1",
               "-P",
               kPassword,
               "-t",
               "nodes/pi-1/weather",
               "-C",
               "20",
               "-W",
               "60",
               "-q",
               "1",
               "-d"});
  ASSERT_TRUE(sub.wait_for_out("SUBACK", 30)) << sub.err() << sub.out();
  std::ostringstream y;
  y << "pipeline: tls-publish\n"
       "stages:\n"
       "  - {id: sensors, op: weather.simulate, with: {period: 1s, speed: 0, count: 20}}\n"
       "  - id: out\n"
       "    op: mqtt.publish\n"
       "    from: sensors\n"
       "    with:\n"
       "      broker: \""
    << uri_
    << "\"\n"
       "      topic: nodes/pi-1/weather\n"
       "      tls: {ca_file: ca.crt, verify_hostname: true}\n"
       "      credentials: pi-1.credentials.yaml\n";
  write_file(dir_ + "/p.yaml", y.str());
  ProcessResult r = run_process({edgeflow_binary(), "run", dir_ + "/p.yaml", "--quiet"}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(sub.wait(60)) << sub.err();
  size_t readings = 0;
  std::istringstream out(sub.out());
  for (std::string line; std::getline(out, line);)
    readings += line.find("\"temperature\"") != std::string::npos;
  EXPECT_EQ(readings, 20u) << sub.out();
}

TEST_F(SecureBroker, FleetCommandsReachTheBrokerWithACaAndCredentials) {
  ProcessResult r =
      run_process({edgeflow_binary(), "nodes", "--broker", uri_, "--tls-ca", dir_ + "/ca.crt",
                   "--credentials", dir_ + "/pi-1.credentials.yaml", "--json"},
                  60);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 1), "[") << r.out;
  r = run_process({edgeflow_binary(), "nodes", "--broker", uri_, "--tls-ca", dir_ + "/ca.crt",
                   "--credentials", dir_ + "/wrong.credentials.yaml"},
                  60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(uri_), std::string::npos) << r.err;
  r = run_process({edgeflow_binary(), "nodes", "--broker", uri_, "--tls-ca", dir_ + "/other-ca.crt",
                   "--credentials", dir_ + "/pi-1.credentials.yaml"},
                  60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("certificate"), std::string::npos) << r.err;
}

TEST_F(SecureBroker, TlsKeysAreCheckedWhereTheyAreWritten) {
  write_file(dir_ + "/p.yaml",
             "pipeline: bad-tls\n"
             "links: {mqtt: {broker: \"tcp://127.0.0.1:1\", tls: {ca_file: ca.crt, verify: no}}}\n"
             "stages:\n"
             "  - {id: s, op: weather.simulate, with: {count: 1}}\n"
             "  - {id: o, op: file.write, from: s, with: {path: o.jsonl}}\n");
  ProcessResult r = run_process({edgeflow_binary(), "validate", dir_ + "/p.yaml"}, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.err + r.out).find("p.yaml:2:"), std::string::npos) << r.err << r.out;
  EXPECT_NE((r.err + r.out).find("unknown tls key 'verify'"), std::string::npos) << r.err << r.out;
  // tls: on a stage that names no broker would be ignored: refused, with where it goes.
  write_file(dir_ + "/q.yaml",
             "pipeline: stage-tls\n"
             "stages:\n"
             "  - {id: s, op: weather.simulate, with: {count: 1}}\n"
             "  - {id: o, op: mqtt.publish, from: s, with: {topic: t, tls: {ca_file: ca.crt}}}\n");
  r = run_process({edgeflow_binary(), "validate", dir_ + "/q.yaml"}, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.err + r.out).find("goes with the stage's own broker"), std::string::npos)
      << r.err << r.out;
}

// broker-config's files, the test CA it ships, and a real mosquitto run with them: three
// processes (two edges, the cloud), each with its own generated credentials, deliver every
// reading; one node cannot write another's status.
TEST(BrokerConfig, AFleetRunsOnTheGeneratedConfigAndANodeStaysInItsTopics) {
  const std::string dir = make_temp_dir();
  const int port = testing::free_tcp_port();
  const std::string uri = "mqtts://localhost:" + std::to_string(port);
  std::ostringstream y;
  y << "pipeline: fleet-tls\n"
       "nodes: {pi-1: {tier: edge}, pi-2: {tier: edge}, cloud: {tier: cloud}}\n"
       "links:\n"
       "  via: mqtt\n"
       "  mqtt: {broker: \""
    << uri
    << "\", tls: {ca_file: conf/ca.crt}, credentials: \"conf/credentials/{node}.yaml\"}\n"
       "stages:\n"
       "  - {id: sensors, op: weather.simulate, on: edge, with: {period: 1s, speed: 0, count: "
       "120}}\n"
       "  - {id: out, op: file.write, on: cloud, from: sensors, with: {path: out.jsonl}}\n";
  write_file(dir + "/p.yaml", y.str());
  ProcessResult r = run_process({edgeflow_binary(), "broker-config", dir + "/p.yaml", "--out",
                                 dir + "/conf", "--bind", "127.0.0.1"},
                                60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(stat((dir + "/conf/credentials/pi-1.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string conf = read_file(dir + "/conf/mosquitto.conf");
  EXPECT_NE(conf.find("listener " + std::to_string(port) + " 127.0.0.1"), std::string::npos)
      << conf;
  EXPECT_NE(conf.find("allow_anonymous false"), std::string::npos) << conf;
  r = run_process({dir + "/conf/make-test-ca.sh", dir + "/conf", "localhost"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // As root, mosquitto would switch to the user 'mosquitto', who cannot read these 0600 files.
  if (geteuid() == 0) {
    std::ofstream(dir + "/conf/mosquitto.conf", std::ios::app) << "user root\n";
  }
  Process broker({"/usr/sbin/mosquitto", "-c", dir + "/conf/mosquitto.conf"});
  ASSERT_TRUE(broker.wait_for_err("mosquitto version", 20)) << broker.err();
  ASSERT_TRUE(broker.wait_for_err("Opening ipv4 listen socket on port " + std::to_string(port), 20))
      << broker.err();

  auto node = [&](const std::string& name) {
    return std::make_unique<Process>(
        std::vector<std::string>{edgeflow_binary(), "run", dir + "/p.yaml", "--node", name});
  };
  auto pi1 = node("pi-1");
  auto pi2 = node("pi-2");
  for (Process* p : {pi1.get(), pi2.get()})
    ASSERT_TRUE(p->wait_for_err("running 'fleet-tls'", 60)) << p->err();
  auto cloud = node("cloud");
  for (Process* p : {pi1.get(), pi2.get(), cloud.get()}) {
    ASSERT_TRUE(p->wait(90)) << p->err();
    EXPECT_EQ(p->exit_code(), 0) << p->err();
  }
  EXPECT_EQ(lines(read_file(dir + "/out.jsonl")), 240u);

  // pi-1 forges pi-2's status; the cloud, allowed to read every status, sees only pi-2's own.
  auto creds = [&](const std::string& who) {
    std::istringstream in(read_file(dir + "/conf/credentials/" + who + ".yaml"));
    std::string line, user, pass;
    while (std::getline(in, line)) {
      if (line.rfind("username: ", 0) == 0) user = line.substr(10);
      if (line.rfind("password: ", 0) == 0) pass = line.substr(10);
    }
    return std::vector<std::string>{"-u", user, "-P", pass};
  };
  auto mosq = [&](const std::string& tool, const std::string& who) {
    std::vector<std::string> argv = {"/usr/bin/stdbuf",   "-oL", "/usr/bin/" + tool,   "-h",
                                     "localhost",         "-p",  std::to_string(port), "--cafile",
                                     dir + "/conf/ca.crt"};
    for (const std::string& a : creds(who)) argv.push_back(a);
    return argv;
  };
  std::vector<std::string> sub_argv = mosq("mosquitto_sub", "cloud");
  for (const char* a : {"-t", "edgeflow/nodes/pi-2/status", "-C", "1", "-W", "30", "-d"})
    sub_argv.push_back(a);
  Process sub(sub_argv);
  ASSERT_TRUE(sub.wait_for_out("SUBACK", 30)) << sub.err() << sub.out();
  std::vector<std::string> forge = mosq("mosquitto_pub", "pi-1");
  for (const char* a : {"-t", "edgeflow/nodes/pi-2/status", "-m", "forged", "-q", "1"})
    forge.push_back(a);
  r = run_process(forge, 30);
  EXPECT_EQ(r.exit_code, 0) << r.err;  // MQTT 3.1.1 has no way to say no: silently dropped
  std::vector<std::string> own = mosq("mosquitto_pub", "pi-2");
  for (const char* a : {"-t", "edgeflow/nodes/pi-2/status", "-m", "own", "-q", "1"})
    own.push_back(a);
  r = run_process(own, 30);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(sub.wait(30)) << sub.err();
  EXPECT_NE(sub.out().find("\nown"), std::string::npos) << sub.out();
  EXPECT_EQ(sub.out().find("forged"), std::string::npos) << sub.out();
}

// The edge and cloud services over the same broker: broker-config's mosquitto.conf, passwd,
// ACL and test CA; each service with its own generated credentials, tls.ca_file and
// verify_hostname in its config; a signed deployment from the cloud's identity.
class TlsFleet : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    port_ = testing::free_tcp_port();
    uri_ = "mqtts://localhost:" + std::to_string(port_);
    write_file(
        dir_ + "/fleet.yaml",
        "pipeline: fleet-tls\n"
        "nodes: {pi-1: {tier: edge}, pi-2: {tier: edge}, cloud: {tier: cloud}}\n"
        "links:\n"
        "  via: mqtt\n"
        "  mqtt: {broker: \"" +
            uri_ +
            "\", tls: {ca_file: conf/ca.crt}, credentials: \"conf/credentials/{node}.yaml\"}\n"
            "stages:\n"
            "  - {id: sensors, op: weather.simulate, on: edge, with: {period: 100ms, speed: "
            "1}}\n"
            "  - {id: readings, op: file.write, on: cloud, from: sensors, with: {path: " +
            dir_ + "/readings.jsonl}}\n");
    ProcessResult r = run_process({edgeflow_binary(), "broker-config", dir_ + "/fleet.yaml",
                                   "--out", dir_ + "/conf", "--bind", "127.0.0.1"},
                                  60);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_process({dir_ + "/conf/make-test-ca.sh", dir_ + "/conf", "localhost"}, 60);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // As root, mosquitto would switch to the user 'mosquitto', who cannot read these 0600 files.
    if (geteuid() == 0)
      std::ofstream(dir_ + "/conf/mosquitto.conf", std::ios::app) << "user root\n";
    broker_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/mosquitto", "-c", dir_ + "/conf/mosquitto.conf"});
    ASSERT_TRUE(
        broker_->wait_for_err("Opening ipv4 listen socket on port " + std::to_string(port_), 20))
        << broker_->err();
    ASSERT_TRUE(broker_->wait_for_err("running", 20)) << broker_->err();
    ASSERT_EQ(run_process({edgeflow_binary(), "wallet", "new", dir_ + "/cloud.key"}).exit_code, 0);
    r = run_process({edgeflow_binary(), "wallet", "address", dir_ + "/cloud.key"});
    trust_ = r.out.substr(0, r.out.find('\n'));
  }
  void TearDown() override {
    if (HasFailure()) {
      for (auto& [name, p] : services_) std::cerr << "---- " << name << " ----\n" << p->err();
      if (broker_) std::cerr << "---- mosquitto ----\n" << broker_->err();
      std::cerr << "kept " << dir_ << "\n";
    }
    services_.clear();  // SIGKILL to each group still running
    broker_.reset();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(dir_, ec);
  }

  // The service config of `node`: paths relative to it, as an operator would write them.
  std::string service_config(const std::string& node, const std::string& credentials,
                             const std::string& tls) {
    const std::string path = dir_ + "/" + node + ".yaml";
    write_file(path, "node: " + node + "\nbroker: \"" + uri_ + "\"\ndata_dir: " + dir_ + "/data/" +
                         node + "\ntrust: \"" + trust_ + "\"\ncredentials: " + credentials +
                         "\ntls: " + tls + "\nstatus_period: 1s\nkeepalive: 5s\n");
    return path;
  }
  Process& start(const std::string& name, const std::string& tier, const std::string& config) {
    services_[name] = std::make_unique<Process>(
        std::vector<std::string>{edgeflow_binary(), tier, "--config", config});
    return *services_[name];
  }
  // What `edgeflow deploy|nodes` and mosquitto_sub connect with: the cloud's identity.
  std::vector<std::string> fleet_access() {
    return {"--broker",      uri_,
            "--tls-ca",      dir_ + "/conf/ca.crt",
            "--credentials", dir_ + "/conf/credentials/cloud.yaml"};
  }
  std::string password_of(const std::string& user) {
    std::istringstream in(read_file(dir_ + "/conf/credentials/" + user + ".yaml"));
    for (std::string line; std::getline(in, line);)
      if (line.rfind("password: ", 0) == 0) return line.substr(10);
    return "";
  }
  std::map<std::string, nlohmann::json> nodes() {
    std::vector<std::string> argv = {edgeflow_binary(), "nodes", "--json"};
    for (const std::string& a : fleet_access()) argv.push_back(a);
    ProcessResult r = run_process(argv, 30);
    std::map<std::string, nlohmann::json> out;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_array())
      for (auto& n : j) out[n.value("node", "")] = n;
    return out;
  }
  // node -> readings the cloud service wrote for it.
  std::map<std::string, size_t> readings() {
    std::map<std::string, size_t> out;
    std::istringstream in(read_file(dir_ + "/readings.jsonl"));
    for (std::string line; std::getline(in, line);) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("temperature")) ++out[j.value("node", "")];
    }
    return out;
  }

  std::string dir_, uri_, trust_;
  int port_ = 0;
  std::unique_ptr<Process> broker_;
  std::map<std::string, std::unique_ptr<Process>> services_;
};

TEST_F(TlsFleet, ServicesWithTheirOwnCredentialsRunADeployedPipelineEndToEnd) {
  const std::string tls = "{ca_file: conf/ca.crt, verify_hostname: true}";
  start("cloud", "cloud", service_config("cloud", "conf/credentials/cloud.yaml", tls));
  for (const char* n : {"pi-1", "pi-2"})
    start(n, "edge", service_config(n, std::string("conf/credentials/") + n + ".yaml", tls));
  for (auto& [name, p] : services_)
    ASSERT_TRUE(p->wait_for_err("on broker " + uri_ + ": waiting for deployments", 30))
        << name << ": " << p->err();
  // Each service is on the broker as the user its own credentials name.
  for (const char* n : {"cloud", "pi-1", "pi-2"}) {
    const std::string as = std::string(" as ef-node-") + n + " (";
    ASSERT_TRUE(broker_->wait_for_err(as, 30)) << broker_->err();
    const std::string log = broker_->err();
    const size_t at = log.find(as);
    EXPECT_NE(log.substr(at, log.find('\n', at) - at).find(std::string("u'") + n + "'"),
              std::string::npos)
        << log;
  }

  std::vector<std::string> deploy = {
      edgeflow_binary(), "deploy", dir_ + "/fleet.yaml", "--key", dir_ + "/cloud.key",
      "--wait",          "60s"};
  for (const std::string& a : fleet_access()) deploy.push_back(a);
  ProcessResult d = run_process(deploy, 120);
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  for (const char* n : {"cloud", "pi-1", "pi-2"}) {
    const size_t at = d.out.find(std::string("\n") + n + " ");
    ASSERT_NE(at, std::string::npos) << d.out;
    EXPECT_NE(d.out.substr(at, d.out.find('\n', at + 1) - at).find(" running "), std::string::npos)
        << d.out;
  }

  // Every node says it works on the pipeline, read over TLS as `edgeflow nodes` reads it.
  std::map<std::string, nlohmann::json> fleet;
  auto working = [&](const std::string& n) {
    return fleet.count(n) && fleet[n].value("state", "") == "working" &&
           fleet[n]["pipeline"] == "fleet-tls";
  };
  for (int i = 0; i < 60 && !(working("pi-1") && working("pi-2") && working("cloud")); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    fleet = nodes();
  }
  for (const char* n : {"cloud", "pi-1", "pi-2"})
    EXPECT_TRUE(working(n)) << n << ": " << (fleet.count(n) ? fleet[n].dump() : "no status");

  // pi-1's own status, read by mosquitto_sub over TLS with the cloud's credentials: the part
  // runs and the service is connected.
  Process sub({"/usr/bin/mosquitto_sub", "-h", "localhost", "-p", std::to_string(port_), "--cafile",
               dir_ + "/conf/ca.crt", "-u", "cloud", "-P", password_of("cloud"), "-t",
               "edgeflow/nodes/pi-1/status", "-C", "1", "-W", "30"});
  ASSERT_TRUE(sub.wait(40)) << sub.err();
  EXPECT_EQ(sub.exit_code(), 0) << sub.err();
  nlohmann::json status = nlohmann::json::parse(sub.out(), nullptr, false);
  ASSERT_TRUE(status.is_object()) << sub.out();
  EXPECT_EQ(status.value("node", ""), "pi-1");
  EXPECT_EQ(status["pipeline"], "fleet-tls") << status.dump();
  EXPECT_EQ(status["part_running"], true) << status.dump();
  EXPECT_EQ(status["broker_connected"], true) << status.dump();

  // Readings of both edge nodes reach the cloud service's file through the TLS links.
  std::map<std::string, size_t> got = readings();
  for (int i = 0; i < 300 && (got["pi-1"] < 20 || got["pi-2"] < 20); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    got = readings();
  }
  EXPECT_GE(got["pi-1"], 20u);
  EXPECT_GE(got["pi-2"], 20u);

  // No password reached a log line.
  for (auto& [name, p] : services_)
    for (const char* user : {"cloud", "pi-1", "pi-2"})
      EXPECT_EQ(p->err().find(password_of(user)), std::string::npos) << name << " logged it";
}

// A refused edge service says why, naming the broker, and keeps trying (a device at boot
// must); one whose CA file cannot be read stops at once with exit 2.
TEST_F(TlsFleet, AnEdgeServiceTheBrokerRefusesSaysWhyNamingTheBroker) {
  write_file(dir_ + "/wrong.yaml", "username: pi-1\npassword: Not-The-Password\n");
  chmod((dir_ + "/wrong.yaml").c_str(), 0600);
  Process& wrong = start("pi-1 (wrong password)", "edge",
                         service_config("pi-1", "wrong.yaml", "{ca_file: conf/ca.crt}"));
  ASSERT_TRUE(wrong.wait_for_err("refused the connection", 30)) << wrong.err();
  EXPECT_NE(wrong.err().find("MQTT broker " + uri_), std::string::npos) << wrong.err();
  EXPECT_NE(wrong.err().find("not authorised"), std::string::npos) << wrong.err();
  EXPECT_NE(wrong.err().find("trying again in the background"), std::string::npos) << wrong.err();
  EXPECT_EQ(wrong.err().find("Not-The-Password"), std::string::npos) << "leaked: " << wrong.err();
  EXPECT_TRUE(wrong.running()) << wrong.err();
  EXPECT_EQ(nodes().count("pi-1"), 0u) << "a refused node published its status";

  // Without the CA that signed the broker's certificate (the system's CAs do not hold it).
  Process& no_ca = start("pi-2 (no ca_file)", "edge",
                         service_config("pi-2", "conf/credentials/pi-2.yaml", "{}"));
  ASSERT_TRUE(no_ca.wait_for_err("over TLS", 30)) << no_ca.err();
  EXPECT_NE(no_ca.err().find("cannot connect to MQTT broker " + uri_), std::string::npos)
      << no_ca.err();
  EXPECT_NE(no_ca.err().find("certificate"), std::string::npos) << no_ca.err();
  EXPECT_TRUE(no_ca.running()) << no_ca.err();

  ProcessResult missing = run_process(
      {edgeflow_binary(), "edge", "--config",
       service_config("pi-3", "conf/credentials/pi-1.yaml", "{ca_file: conf/missing-ca.crt}")},
      60);
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find(uri_), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("missing-ca.crt"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace edgeflow
