#include "cloud/registry.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "cloud/json_fields.h"
#include "runtime/duration.h"
#include "runtime/log.h"

namespace edgeflow {
NodeRegistry::NodeRegistry(std::string file,
                           std::function<void(const std::string&, const std::string&)> publish)
    : file_(std::move(file)), publish_(std::move(publish)) {
  std::ifstream in(file_);
  if (!in) return;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object()) {
    logger().warn("registry {} is not JSON; starting an empty one", file_);
    return;
  }
  for (auto& [node, status] : j.items())
    if (status.is_object()) nodes_[node] = status;
}

void NodeRegistry::on_status(const std::string& topic, const std::string& payload, int64_t now_ms) {
  nlohmann::json s = nlohmann::json::parse(payload, nullptr, false);
  if (!s.is_object() || !s.contains("node") || !s["node"].is_string()) return;
  const std::string node = s["node"];
  if (topic != "edgeflow/nodes/" + node + "/status") return;  // a node speaking for another
  nlohmann::json& known = nodes_[node];
  if (!known.is_object()) known = nlohmann::json::object();
  const std::string state = text_of(s, "state");
  if (state == "offline") {
    if (text_of(known, "state") != "offline")
      logger().warn("node '{}' is offline ({})", node, text_of(s, "reason", "stopped"));
    // Keep what was known; the will carries little.
    if (!known.empty() && !s.contains("last_seen")) {
      nlohmann::json merged = known;
      merged["state"] = "offline";
      merged["reason"] = text_of(s, "reason", "stopped");
      s = merged;
    }
  } else {
    if (text_of(known, "state") == "offline") logger().info("node '{}' is back ({})", node, state);
    s["last_seen"] = format_iso8601(now_ms * 1000);
    s["last_seen_ms"] = now_ms;
  }
  if (known == s) return;
  known = s;
  save();
}

void NodeRegistry::check_lost(int64_t now_ms) {
  for (auto& [node, s] : nodes_) {
    if (!s.is_object() || text_of(s, "state") == "offline" || !s.contains("last_seen_ms") ||
        !s["last_seen_ms"].is_number_integer())
      continue;
    const double period_s = std::max(number_of(s, "keepalive_s").value_or(10.0),
                                     number_of(s, "status_period_s").value_or(10.0));
    if (now_ms - s["last_seen_ms"].get<int64_t>() <= static_cast<int64_t>(1500 * period_s))
      continue;
    logger().warn("node '{}' lost: no status for {:.0f} s (1.5x its {} s keep-alive)", node,
                  (now_ms - s["last_seen_ms"].get<int64_t>()) / 1000.0, period_s);
    s["state"] = "offline";
    s["reason"] = "lost: no status for 1.5x its keep-alive";
    publish_("edgeflow/nodes/" + node + "/status", s.dump());
    save();
  }
}

std::string NodeRegistry::forget(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return "no node '" + node + "' is known";
  const std::string state = text_of(it->second, "state");
  if (state != "offline")
    return "node '" + node + "' is " + (state.empty() ? "not offline" : state) +
           ": only an offline node can be forgotten (stop its service first)";
  nodes_.erase(it);
  publish_("edgeflow/nodes/" + node + "/status", "");  // an empty retained message clears it
  save();
  return "";
}

void NodeRegistry::save() {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [node, s] : nodes_) j[node] = s;
  const std::string tmp = file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out) {
      logger().error("cannot write the registry {}", tmp);
      return;
    }
  }
  std::rename(tmp.c_str(), file_.c_str());
}

}  // namespace edgeflow
