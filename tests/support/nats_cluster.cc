#include "tests/support/nats_cluster.h"

#include <sstream>
#include <vector>

#include "tests/support/process.h"

namespace edgeflow::testing {
namespace {

std::string script() { return source_dir() + "/scripts/nats-cluster.sh"; }

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

NatsCluster::NatsCluster(int servers, const std::vector<std::string>& extra)
    : dir_(make_temp_dir()) {
  std::vector<std::string> args = {"bash", script(), "start", dir_, std::to_string(servers)};
  args.insert(args.end(), extra.begin(), extra.end());
  ProcessResult r = run_process(args, 60);
  if (r.exit_code != 0) {
    error_ = "scripts/nats-cluster.sh start failed (" + std::to_string(r.exit_code) + "): " + r.err;
    return;
  }
  servers_ = trimmed(read_file(dir_ + "/servers"));
  mqtt_ = trimmed(read_file(dir_ + "/mqtt"));
  if (servers_.empty()) error_ = "scripts/nats-cluster.sh wrote no servers in " + dir_;
}

NatsCluster::~NatsCluster() { stop(); }

void NatsCluster::stop() { run_process({"bash", script(), "stop", dir_}, 30); }

std::string NatsCluster::servers_yaml() const {
  std::string out;
  for (const std::string& s : split(servers_)) out += (out.empty() ? "\"" : ", \"") + s + "\"";
  return "[" + out + "]";
}

std::string NatsCluster::mqtt_uri(int i) const {
  return split(mqtt_).at(static_cast<size_t>(i - 1));
}

void NatsCluster::kill(int i) {
  run_process({"bash", script(), "kill", dir_, std::to_string(i)}, 30);
}

bool NatsCluster::restart(int i) {
  return run_process({"bash", script(), "restart", dir_, std::to_string(i)}, 60).exit_code == 0;
}

}  // namespace edgeflow::testing
