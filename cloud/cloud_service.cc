#include "cloud/cloud_service.h"

#include <chrono>
#include <filesystem>
#include <memory>

#include "cloud/registry.h"
#include "edge/node_config.h"
#include "edge/node_service.h"
#include "metrics/service_metrics.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow {

namespace {

// What /metrics says of each node, from its last status message.
std::vector<metrics::FleetNodeFigures> fleet_figures(const NodeRegistry& registry) {
  std::vector<metrics::FleetNodeFigures> out;
  for (const auto& [node, s] : registry.nodes()) {
    metrics::FleetNodeFigures f;
    f.node = node;
    f.state = s.value("state", "");
    f.tier = s.value("tier", "");
    f.version = s.value("version", "");
    if (s.contains("pipeline") && s["pipeline"].is_string()) f.pipeline = s["pipeline"];
    if (s.contains("last_seen_ms") && s["last_seen_ms"].is_number_integer())
      f.last_seen_ms = s["last_seen_ms"];
    const nlohmann::json& energy = s.contains("energy") ? s["energy"] : nlohmann::json();
    if (energy.is_object() && energy.contains("charge_pct") && energy["charge_pct"].is_number())
      f.charge_pct = energy["charge_pct"].get<double>();
    const nlohmann::json& spool = s.contains("spool") ? s["spool"] : nlohmann::json();
    if (spool.is_object() && spool.contains("bytes") && spool["bytes"].is_number())
      f.spool_bytes = spool["bytes"].get<double>();
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

int run_cloud_service(const std::string& config_path, const std::string& metrics_address) {
  std::string data_dir;
  try {
    data_dir = load_node_config(config_path, false).data_dir;
    std::filesystem::create_directories(data_dir);
  } catch (const ConfigError& e) {
    logger().error("{}", e.what());
    return 2;
  } catch (const std::exception& e) {
    logger().error("{}: {}", config_path, e.what());
    return 1;
  }
  NodeServiceHooks::Publish publish;
  auto registry = std::make_shared<NodeRegistry>(
      data_dir + "/registry.json",
      [&publish](const std::string& topic, const std::string& payload) {
        if (publish) publish(topic, payload);
      });
  NodeServiceHooks hooks;
  hooks.tier = "cloud";
  hooks.on_fleet_status = [registry](const std::string& topic, const std::string& payload) {
    registry->on_status(topic, payload, wall_ms());
  };
  hooks.tick = [registry, &publish](const NodeServiceHooks::Publish& p) {
    publish = p;
    registry->check_lost(wall_ms());
  };
  hooks.metrics_text = [registry] { return metrics::fleet_text(fleet_figures(*registry)); };
  hooks.metrics_address = metrics_address;
  return run_node_service(config_path, hooks);
}

}  // namespace edgeflow
