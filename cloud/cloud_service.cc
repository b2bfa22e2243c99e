#include "cloud/cloud_service.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include "brokers/mqtt/client.h"
#include "cloud/dashboard.h"
#include "cloud/fleet_view.h"
#include "cloud/json_fields.h"
#include "cloud/registry.h"
#include "edge/node_config.h"
#include "edge/node_service.h"
#include "fleet/protocol.h"
#include "metrics/service_metrics.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow {

namespace {

// What /metrics says of each node, from its last status message. A state the node made up
// (or none) is "unknown", so every node counts in exactly one state.
std::vector<metrics::FleetNodeFigures> fleet_figures(const NodeRegistry& registry) {
  std::vector<metrics::FleetNodeFigures> out;
  const std::vector<std::string>& states = metrics::node_states();
  for (const auto& [node, s] : registry.nodes()) {
    metrics::FleetNodeFigures f;
    f.node = node;
    f.state = text_of(s, "state");
    if (std::find(states.begin(), states.end(), f.state) == states.end()) f.state = "unknown";
    f.tier = text_of(s, "tier");
    f.version = text_of(s, "version");
    f.pipeline = text_of(s, "pipeline");
    auto seen = s.find("last_seen_ms");
    if (seen != s.end() && seen->is_number_integer()) f.last_seen_ms = seen->get<int64_t>();
    f.charge_pct = number_of(s, "energy", "charge_pct");
    f.spool_bytes = number_of(s, "spool", "bytes");
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

int run_cloud_service(const std::string& config_path, const std::string& metrics_address,
                      const std::string& http_address) {
  std::string data_dir, trust;
  try {
    NodeConfig config = load_node_config(config_path, false);
    data_dir = config.data_dir;
    trust = config.trust;
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
  auto view = std::make_shared<FleetView>(trust);
  NodeServiceHooks hooks;
  hooks.tier = "cloud";
  hooks.fleet_filters = {fleet::kStatusFilter, fleet::kDeployFilter};
  hooks.on_fleet_message = [registry, view](const std::string& topic, const std::string& payload) {
    if (mqtt::topic_matches(fleet::kStatusFilter, topic))
      registry->on_status(topic, payload, wall_ms());
    view->on_message(topic, payload, wall_ms());
  };
  hooks.tick = [registry, view, &publish](const NodeServiceHooks::Publish& p,
                                          const NodeServiceHooks::Subscribe& subscribe) {
    publish = p;
    registry->check_lost(wall_ms());
    // The motion and task topics of pipelines deployed since, for the dashboard.
    for (const std::string& filter : view->take_new_filters()) {
      try {
        subscribe(filter);
      } catch (const std::exception& e) {
        logger().warn("dashboard: cannot follow {}: {}", filter, e.what());
      }
    }
  };
  hooks.metrics_text = [registry, view] {
    return metrics::fleet_text(fleet_figures(*registry)) + metrics::iexec_text(view->task_counts());
  };
  hooks.metrics_address = metrics_address;
  hooks.http_address = http_address;
  hooks.http_routes = dashboard_routes(registry, view);
  return run_node_service(config_path, hooks);
}

}  // namespace edgeflow
