// The cloud's registry of nodes, kept from their retained status messages and persisted in
// data_dir/registry.json so it survives the cloud service's restarts. A node whose status
// has not come for 1.5x its keep-alive is marked lost (the broker's last will usually says
// so first); its last known status is republished with "state": "offline" and "last_seen".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace edgeflow {

class NodeRegistry {
 public:
  // `publish(topic, payload)` republishes a lost node's status (retained).
  NodeRegistry(std::string file,
               std::function<void(const std::string&, const std::string&)> publish);
  void on_status(const std::string& topic, const std::string& payload, int64_t now_ms);
  void check_lost(int64_t now_ms);
  // Forgets an offline node (a device taken out of the fleet) and clears its retained status
  // so that it is not listed again. "" when done, else why not (unknown, or not offline).
  std::string forget(const std::string& node);
  const std::map<std::string, nlohmann::json>& nodes() const { return nodes_; }

 private:
  void save();
  std::string file_;
  std::function<void(const std::string&, const std::string&)> publish_;
  std::map<std::string, nlohmann::json> nodes_;  // node -> last status, with last_seen_ms
};

}  // namespace edgeflow
