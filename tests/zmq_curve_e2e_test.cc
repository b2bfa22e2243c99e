// ZeroMQ links with CURVE, end to end with the edgeflow binary: keys from `edgeflow keys zmq`,
// one process per node, every reading aggregated once; a plaintext node or one with a key the
// cloud does not pin gets nothing through, and the cloud reports the refusals; and the
// mistakes a user makes (a key file others may read, a node missing from peers) stop the run
// with the file and the fix.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/process.h"

namespace edgeflow {
namespace {

using testing::edgeflow_binary;
using testing::make_temp_dir;
using testing::Process;
using testing::ProcessResult;
using testing::read_file;
using testing::run_process;
using testing::write_file;

constexpr int kCount = 600;  // readings per edge node: ten one-minute windows

class ZmqCurve : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    for (const char* node : {"pi-1", "cloud"}) {
      ProcessResult r =
          run_process({edgeflow_binary(), "keys", "zmq", node, "--out", dir_ + "/keys"}, 30);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      public_[node] = r.out.substr(0, r.out.find('\n'));
      ASSERT_EQ(public_[node].size(), 40u) << r.out;
      struct stat st {};
      ASSERT_EQ(::stat((dir_ + "/keys/" + node + ".zmq.key").c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u);
    }
  }

  std::string pipeline(const std::string& peers) {
    std::ostringstream y;
    y << "pipeline: curve-test\n"
         "nodes:\n"
         "  pi-1: {tier: edge, address: 127.0.0.1}\n"
         "  cloud: {tier: cloud, address: 127.0.0.1}\n"
         "links:\n"
         "  via: zmq\n"
         "  zmq:\n"
         "    port: "
      << edgeflow::testing::free_tcp_port()
      << "\n"
         "    curve: {keys: \"keys/{node}.zmq.key\", peers: {"
      << peers
      << "}}\n"
         "stages:\n"
         "  - {id: sensors, op: weather.simulate, on: edge, with: {period: 1s, speed: 0, "
         "count: "
      << kCount
      << ", start: \"2026-06-01T00:00:00Z\"}}\n"
         "  - {id: minute, op: weather.aggregate, on: edge, from: sensors,\n"
         "     with: {window: 60s, fields: [temperature], stats: [mean]}}\n"
         "  - {id: out, op: file.write, on: cloud, from: minute, with: {path: out.jsonl}}\n";
    write_file(dir_ + "/p.yaml", y.str());
    return dir_ + "/p.yaml";
  }
  std::string all_peers() {
    return "pi-1: \"" + public_["pi-1"] + "\", cloud: \"" + public_["cloud"] + "\"";
  }

  // The receive end of the link in a report of `run --report`.
  static nlohmann::json receive_end(const std::string& report) {
    const nlohmann::json j = nlohmann::json::parse(report);
    for (const nlohmann::json& l : j.at("links"))
      if (l.at("direction") == "receive") return l;
    return nlohmann::json::object();
  }

  // The cloud runs `file`, pi-1 `sender_file`, which the cloud refuses: nothing arrives, and
  // the cloud, stopped, reports the refusals on the link's receive end and says what to fix.
  void expect_refused_and_reported(const std::string& file, const std::string& sender_file) {
    const std::string report = dir_ + "/cloud.json";
    Process cloud({edgeflow_binary(), "run", file, "--node", "cloud", "--report", report});
    Process pi({edgeflow_binary(), "run", sender_file, "--node", "pi-1"});
    EXPECT_TRUE(pi.wait_for_err("the receiver refused the handshake", 60)) << pi.err();
    EXPECT_TRUE(cloud.wait_for_err("refused a sender's handshake", 60)) << cloud.err();
    pi.signal(SIGKILL);
    pi.wait(30);
    cloud.signal(SIGTERM);  // a clean stop: the summary and the report
    ASSERT_TRUE(cloud.wait(60)) << cloud.err();
    EXPECT_EQ(cloud.exit_code(), 128 + SIGTERM) << cloud.err();
    EXPECT_EQ(read_file(dir_ + "/out.jsonl"), "");
    nlohmann::json rx = receive_end(read_file(report));
    ASSERT_TRUE(rx.contains("refused")) << rx.dump();
    EXPECT_GE(rx["refused"].get<uint64_t>(), 1u) << rx.dump();
    EXPECT_EQ(rx["messages"], 0) << rx.dump();
    const std::string err = cloud.err();
    EXPECT_NE(err.find("link minute->out on 'cloud': refused "), std::string::npos) << err;
    EXPECT_NE(err.find("in links.zmq.curve.peers"), std::string::npos) << err;
  }

  std::string dir_;
  std::map<std::string, std::string> public_;
};

TEST_F(ZmqCurve, NodesWithTheirKeysCarryEveryReading) {
  std::string file = pipeline(all_peers());
  auto node = [&](const std::string& name) {
    return std::make_unique<Process>(std::vector<std::string>{
        edgeflow_binary(), "run", file, "--node", name, "--report", dir_ + "/" + name + ".json"});
  };
  auto cloud = node("cloud");
  auto pi = node("pi-1");
  ASSERT_TRUE(pi->wait(90)) << pi->err();
  ASSERT_TRUE(cloud->wait(90)) << cloud->err();
  EXPECT_EQ(pi->exit_code(), 0) << pi->err();
  EXPECT_EQ(cloud->exit_code(), 0) << cloud->err();
  int readings = 0, windows = 0;
  std::istringstream lines(read_file(dir_ + "/out.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    readings += nlohmann::json::parse(line).value("count", 0);
    ++windows;
  }
  EXPECT_EQ(windows, kCount / 60);
  EXPECT_EQ(readings, kCount);
  EXPECT_EQ(cloud->err().find("refused"), std::string::npos) << cloud->err();
  nlohmann::json rx = receive_end(read_file(dir_ + "/cloud.json"));
  EXPECT_EQ(rx["messages"], kCount / 60) << rx.dump();
  EXPECT_EQ(rx["refused"], 0) << rx.dump();
}

// The same pipeline without curve: on the edge, a plaintext sender; the cloud refuses it and
// receives nothing, and reports the refusals (`refused` in --report, a line with the fix).
// This is what tells the test above from one where curve: was ignored.
TEST_F(ZmqCurve, APlaintextNodeGetsNothingThrough) {
  std::string file = pipeline(all_peers());
  std::string plain = read_file(file);
  plain.replace(plain.find("    curve:"), plain.find("stages:") - plain.find("    curve:"), "");
  write_file(dir_ + "/plain.yaml", plain);
  expect_refused_and_reported(file, dir_ + "/plain.yaml");
}

// A node with CURVE keys the cloud's pipeline file does not pin: refused, counted, reported.
TEST_F(ZmqCurve, ANodeWithAnUnpinnedKeyGetsNothingThrough) {
  std::string file = pipeline(all_peers());
  ProcessResult r =
      run_process({edgeflow_binary(), "keys", "zmq", "pi-1", "--out", dir_ + "/stranger"}, 30);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string stranger = read_file(file);
  stranger.replace(stranger.find(public_["pi-1"]), 40, r.out.substr(0, 40));
  stranger.replace(stranger.find("keys/{node}"), 4, "stranger");
  write_file(dir_ + "/stranger.yaml", stranger);
  expect_refused_and_reported(file, dir_ + "/stranger.yaml");
}

TEST_F(ZmqCurve, APeersKeyThatIsNotTheKeyFilesIsNamed) {
  ProcessResult other =
      run_process({edgeflow_binary(), "keys", "zmq", "other", "--out", dir_ + "/keys"}, 30);
  ASSERT_EQ(other.exit_code, 0) << other.err;
  std::string file =
      pipeline("pi-1: \"" + other.out.substr(0, 40) + "\", cloud: \"" + public_["cloud"] + "\"");
  ProcessResult r = run_process({edgeflow_binary(), "run", file, "--node", "pi-1"}, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("ZeroMQ key file " + dir_ + "/keys/pi-1.zmq.key holds public key"),
            std::string::npos)
      << r.err;
}

TEST_F(ZmqCurve, AKeyFileOthersMayReadIsRefusedWithTheFix) {
  std::string file = pipeline(all_peers());
  ::chmod((dir_ + "/keys/pi-1.zmq.key").c_str(), 0644);
  ProcessResult r = run_process({edgeflow_binary(), "run", file, "--node", "pi-1"}, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("ZeroMQ key file " + dir_ + "/keys/pi-1.zmq.key may be read by others"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
}

TEST_F(ZmqCurve, ANodeMissingFromPeersIsNamed) {
  std::string file = pipeline("cloud: \"" + public_["cloud"] + "\"");
  ProcessResult r = run_process({edgeflow_binary(), "run", file, "--node", "cloud"}, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("links.zmq.curve.peers has no key for node 'pi-1'"), std::string::npos)
      << r.err;
}

TEST_F(ZmqCurve, TwoNodesWithOneKeyAreRefusedAtValidation) {
  std::string file =
      pipeline("pi-1: \"" + public_["cloud"] + "\", cloud: \"" + public_["cloud"] + "\"");
  ProcessResult r = run_process({edgeflow_binary(), "validate", file}, 30);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("'pi-1' and 'cloud' have the same public key"), std::string::npos) << r.err;
}

TEST_F(ZmqCurve, KeysZmqDoesNotOverwriteAKey) {
  ProcessResult r =
      run_process({edgeflow_binary(), "keys", "zmq", "pi-1", "--out", dir_ + "/keys"}, 30);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("exists"), std::string::npos) << r.err;
  EXPECT_NE(read_file(dir_ + "/keys/pi-1.zmq.key").find(public_["pi-1"]), std::string::npos);
}

}  // namespace
}  // namespace edgeflow
