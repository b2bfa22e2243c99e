#include "cloud/fleet_commands.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/security.h"
#include "crypto/crypto.h"
#include "fleet/protocol.h"
#include "runtime/clock.h"
#include "runtime/duration.h"
#include "runtime/log.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {
namespace {

constexpr int kFailed = 1;
constexpr int kInvalid = 2;

// Collects the fleet's retained status messages.
class StatusWatch {
 public:
  StatusWatch(const std::string& broker, const BrokerAccess& access, const std::string& id) {
    mqtt::ClientOptions co;
    co.uri = broker;
    MqttSecurity s;
    s.ca_file = access.tls_ca;
    s.credentials_file = access.credentials;
    mqtt::apply_security(s, co);
    co.client_id =
        id + "-" + std::to_string(wall_ms() % 1000000) + "-" + std::to_string(::getpid());
    co.connect_timeout_ms = 5000;
    client_ = mqtt::make_client("mosquitto", co, [this](mqtt::Received&& r) {
      nlohmann::json s = nlohmann::json::parse(r.payload, nullptr, false);
      if (!s.is_object() || !s.contains("node") || !s["node"].is_string()) return;
      std::lock_guard<std::mutex> lock(mu_);
      nodes_[s["node"].get<std::string>()] = s;
    });
    client_->subscribe(fleet::kStatusFilter, 1);
    client_->connect();  // throws MqttError naming the broker
  }
  std::map<std::string, nlohmann::json> nodes() {
    std::lock_guard<std::mutex> lock(mu_);
    return nodes_;
  }
  mqtt::Client& client() { return *client_; }

 private:
  std::mutex mu_;
  std::map<std::string, nlohmann::json> nodes_;
  std::unique_ptr<mqtt::Client> client_;
};

std::optional<int64_t> wait_ms(const std::string& text, const char* cmd) {
  auto us = parse_duration_us(text);
  if (!us || *us <= 0) {
    std::cerr << "edgeflow " << cmd << ": --wait must be a duration like 60s (got '" << text
              << "')\n";
    return std::nullopt;
  }
  return *us / 1000;
}

std::optional<crypto::Wallet> load_key(const std::string& path, const char* cmd) {
  try {
    return crypto::Wallet::load(path);
  } catch (const std::exception& e) {
    std::cerr << "edgeflow " << cmd << ": " << e.what() << "\n";
    return std::nullopt;
  }
}

std::string cell(const nlohmann::json& s, const char* key) {
  if (!s.contains(key) || s[key].is_null()) return "-";
  if (s[key].is_string()) return s[key].get<std::string>();
  return s[key].dump();
}

}  // namespace

int cmd_deploy(const DeployArgs& a) {
  std::vector<OptionOverride> overrides;
  for (const std::string& s : a.sets) {
    auto o = parse_override(s);
    if (!o) {
      std::cerr << "edgeflow deploy: --set takes STAGE.OPTION=VALUE (got '" << s << "')\n";
      return kInvalid;
    }
    overrides.push_back(*o);
  }
  auto wait = wait_ms(a.wait, "deploy");
  if (!wait) return kInvalid;
  LoadResult r = load_pipeline_file(a.file, overrides);
  if (!r.pipeline) {
    std::cerr << r.diags.str();
    return kInvalid;
  }
  auto key = load_key(a.key, "deploy");
  if (!key) return kInvalid;
  std::ifstream in(a.file);
  std::stringstream text;
  text << in.rdbuf();
  const PipelineSpec& p = *r.pipeline;
  for (const StageSpec& st : p.stages)
    if (st.replicas > 1) {
      std::cerr << "edgeflow deploy: stage '" << st.id << "' has replicas: " << st.replicas
                << ", which the edge and cloud services do not run yet; run that node with "
                   "`edgeflow run "
                << a.file << " --node NODE` (docs/scaling.md)\n";
      return kInvalid;
    }
  Plan plan = place(p);
  std::set<std::string> nodes;
  for (const StageInstance& i : plan.instances) nodes.insert(i.node);

  std::unique_ptr<StatusWatch> watch;
  try {
    watch = std::make_unique<StatusWatch>(a.broker, a.access, "ef-deploy");
  } catch (const std::exception& e) {
    std::cerr << "edgeflow deploy: " << e.what() << "\n";
    return kFailed;
  }
  const uint64_t version = static_cast<uint64_t>(wall_ms());
  std::map<std::string, std::string> hashes;
  for (const std::string& node : nodes) {
    fleet::Deployment d;
    d.pipeline = p.name;
    d.version = version;
    d.node = node;
    d.file_name = a.file;
    d.file_text = text.str();
    d.base_dir = p.base_dir;
    d.sets = a.sets;
    d.part_hash = fleet::part_hash(d.file_text, d.sets, node);
    hashes[node] = d.part_hash;
    const std::string payload = fleet::seal(d, *key);
    if (!watch->client().publish(fleet::deploy_topic(node), payload.data(), payload.size(), 1, true,
                                 5000)) {
      std::cerr << "edgeflow deploy: the broker " << a.broker << " did not take the part of '"
                << node << "'\n";
      return kFailed;
    }
  }
  watch->client().flush(5000);
  std::cout << "deployed '" << p.name << "' version " << version << " to " << nodes.size()
            << " nodes; waiting up to " << a.wait << " for them\n";

  // A node answers when its status shows this version running, or an error about it.
  std::map<std::string, std::pair<std::string, std::string>> result;  // node -> (result, why)
  const int64_t deadline = wall_ms() + *wait;
  while (wall_ms() < deadline && result.size() < nodes.size()) {
    for (const auto& [node, s] : watch->nodes()) {
      if (!nodes.count(node) || result.count(node)) continue;
      const bool ours = s.value("part_version", nlohmann::json()).is_number() &&
                        s["part_version"].get<uint64_t>() == version;
      const std::string state = s.value("state", "");
      if (s.value("failed_version", uint64_t{0}) == version) {
        result[node] = {"failed", s.value("error", "")};
      } else if (ours && s.value("part_running", false) && state != "error") {
        result[node] = {"running", state};
      } else if (state == "error" &&
                 s.value("error", "").find(std::to_string(version)) != std::string::npos) {
        result[node] = {"failed", s.value("error", "")};
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int code = 0;
  std::printf("%-16s %-9s %-18s %s\n", "NODE", "RESULT", "PART", "DETAIL");
  for (const std::string& node : nodes) {
    auto it = result.find(node);
    std::string res = it == result.end() ? "no answer" : it->second.first;
    std::string why = it == result.end() ? "no status with this version within --wait (is "
                                           "`edgeflow edge` running for this node?)"
                                         : it->second.second;
    if (res != "running") code = kFailed;
    std::printf("%-16s %-9s %-18s %s\n", node.c_str(), res.c_str(), hashes[node].c_str(),
                why.c_str());
  }
  return code;
}

int cmd_undeploy(const UndeployArgs& a) {
  auto wait = wait_ms(a.wait, "undeploy");
  if (!wait) return kInvalid;
  auto key = load_key(a.key, "undeploy");
  if (!key) return kInvalid;
  std::unique_ptr<StatusWatch> watch;
  try {
    watch = std::make_unique<StatusWatch>(a.broker, a.access, "ef-undeploy");
  } catch (const std::exception& e) {
    std::cerr << "edgeflow undeploy: " << e.what() << "\n";
    return kFailed;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the retained statuses
  const uint64_t version = static_cast<uint64_t>(wall_ms());
  std::set<std::string> nodes;
  for (const auto& [node, s] : watch->nodes()) {
    if (s.value("pipeline", nlohmann::json()) != a.pipeline) continue;
    nodes.insert(node);
    fleet::Deployment d;
    d.kind = "undeploy";
    d.pipeline = a.pipeline;
    d.version = version;
    d.node = node;
    const std::string payload = fleet::seal(d, *key);
    watch->client().publish(fleet::deploy_topic(node), payload.data(), payload.size(), 1, true,
                            5000);
  }
  if (nodes.empty()) {
    std::cerr << "edgeflow undeploy: no node reports pipeline '" << a.pipeline << "' on "
              << a.broker << " (see edgeflow nodes --broker " << a.broker << ")\n";
    return kFailed;
  }
  watch->client().flush(5000);
  const int64_t deadline = wall_ms() + *wait;
  std::set<std::string> stopped;
  while (wall_ms() < deadline && stopped.size() < nodes.size()) {
    for (const auto& [node, s] : watch->nodes())
      if (nodes.count(node) && s.value("pipeline", nlohmann::json()).is_null())
        stopped.insert(node);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const std::string& n : nodes)
    std::printf("%-16s %s\n", n.c_str(), stopped.count(n) ? "stopped" : "no answer");
  return stopped.size() == nodes.size() ? 0 : kFailed;
}

// "low 28%" (the mode and the charge), "normal -" when the charge is unknown, "-" for a node
// that does not report energy.
static std::string energy_cell(const nlohmann::json& s) {
  if (!s.contains("energy") || !s["energy"].is_object()) return "-";
  const nlohmann::json& e = s["energy"];
  std::string out = e.value("mode", "-");
  if (e.contains("charge_pct") && e["charge_pct"].is_number())
    out += " " + std::to_string(std::lround(e["charge_pct"].get<double>())) + "%";
  else
    out += " -";
  return out;
}

int cmd_nodes(const NodesArgs& a) {
  auto wait = wait_ms(a.wait, "nodes");
  if (!wait) return kInvalid;
  std::unique_ptr<StatusWatch> watch;
  try {
    watch = std::make_unique<StatusWatch>(a.broker, a.access, "ef-nodes");
  } catch (const std::exception& e) {
    std::cerr << "edgeflow nodes: " << e.what() << "\n";
    return kFailed;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(*wait));
  auto nodes = watch->nodes();
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [node, s] : nodes) {
      out.push_back({{"node", node},
                     {"state", s.value("state", "")},
                     {"last_seen", s.value("last_seen", s.value("time", ""))},
                     {"version", s.value("version", "")},
                     {"pipeline", s.value("pipeline", nlohmann::json())},
                     {"part_hash", s.value("part_hash", nlohmann::json())},
                     {"spool_backlog", s.contains("spool") ? s["spool"].value("frames", 0) : 0},
                     {"energy", s.value("energy", nlohmann::json())},
                     {"error", s.value("error", "")}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-14s %-8s %-21s %-16s %-18s %-17s %-16s %s\n", "NODE", "STATE", "LAST SEEN",
              "VERSION", "PIPELINE", "PART", "ENERGY", "SPOOL");
  for (const auto& [node, s] : nodes) {
    std::string spool = "-";
    if (s.contains("spool")) {
      spool = std::to_string(s["spool"].value("frames", 0)) + " frames, " +
              std::to_string(s["spool"].value("bytes", 0)) + " B";
    }
    std::printf("%-14s %-8s %-21s %-16s %-18s %-17s %-16s %s\n", node.c_str(),
                cell(s, "state").c_str(), s.value("last_seen", s.value("time", "-")).c_str(),
                cell(s, "version").c_str(), cell(s, "pipeline").c_str(),
                cell(s, "part_hash").c_str(), energy_cell(s).c_str(), spool.c_str());
    if (s.contains("error")) std::printf("  error: %s\n", s["error"].get<std::string>().c_str());
  }
  if (nodes.empty())
    std::printf("(no node has reported on %s; start one with edgeflow edge --config FILE)\n",
                a.broker.c_str());
  return 0;
}

}  // namespace edgeflow
