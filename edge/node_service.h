// The service every node runs: `edgeflow edge` on a device, `edgeflow cloud` in the cloud.
// It announces itself with a retained status (last will: offline), takes signed deployments
// of its part from edgeflow/nodes/<node>/deploy, runs the part with the disk spool, keeps
// the last accepted part across its own restarts, and talks to systemd (Type=notify).
//
// Signals: SIGTERM/SIGINT drain the part (every accepted message processed and spooled) and
// exit 0; SIGHUP re-reads the config (status period, labels, device; a new node name or
// broker needs a restart and says so).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "edge/node_config.h"

namespace edgeflow {

struct NodeServiceHooks {
  // The cloud service's registry: every status message of the fleet (topic, payload), on
  // the service's own thread.
  std::function<void(const std::string& topic, const std::string& payload)> on_fleet_status;
  // Called about every 200 ms on the service's thread (lost-node checks), with a function
  // that publishes a retained message on the service's connection.
  using Publish = std::function<void(const std::string& topic, const std::string& payload)>;
  std::function<void(const Publish&)> tick;
  // More Prometheus families for /metrics (the cloud's registry), on the service's thread.
  std::function<std::string()> metrics_text;
  std::string tier = "edge";
  // `--metrics ADDR`: serve /metrics there, whatever the config's `metrics:` says.
  std::string metrics_address;
  // `cloud --http ADDR`: serve /metrics and these routes there (GET, rendered on the
  // service's thread).
  struct HttpRoute {
    std::string path, content_type;
    std::function<std::string()> render;
  };
  std::vector<HttpRoute> http_routes;
  std::string http_address;
};

// Returns the exit code: 0 after SIGTERM/SIGINT, 2 for a bad config, 1 when the service
// cannot start (data_dir not writable).
int run_node_service(const std::string& config_path, const NodeServiceHooks& hooks);

}  // namespace edgeflow
