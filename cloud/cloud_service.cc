#include "cloud/cloud_service.h"

#include <chrono>
#include <filesystem>
#include <memory>

#include "cloud/registry.h"
#include "edge/node_config.h"
#include "edge/node_service.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow {

int run_cloud_service(const std::string& config_path) {
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
  return run_node_service(config_path, hooks);
}

}  // namespace edgeflow
