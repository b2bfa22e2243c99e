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
#include "metrics/metrics_server.h"

namespace edgeflow {

struct NodeServiceHooks {
  // The cloud service: topic filters it follows besides its own deployments (the fleet's
  // statuses and deployments), each message handed to on_fleet_message on the service's own
  // thread.
  std::vector<std::string> fleet_filters;
  std::function<void(const std::string& topic, const std::string& payload)> on_fleet_message;
  // Called about every 200 ms on the service's thread (lost-node checks), with functions that
  // publish a retained message and follow one more topic filter on the service's connection.
  using Publish = std::function<void(const std::string& topic, const std::string& payload)>;
  using Subscribe = std::function<void(const std::string& filter)>;
  std::function<void(const Publish&, const Subscribe&)> tick;
  // More Prometheus families for /metrics (the cloud's registry), on the service's thread.
  std::function<std::string()> metrics_text;
  std::string tier = "edge";
  // `--metrics ADDR`: serve /metrics there, whatever the config's `metrics:` says.
  std::string metrics_address;
  // `cloud --http ADDR`: serve /metrics and these routes there (answered on the service's
  // thread). A tree route serves GET of its path and everything below it; an event route is
  // a server-sent event stream of what `handle` renders (status 200), once a second; an
  // action route serves POST of its path (below it, for a path ending in '/') to the
  // operators of the config's `operators:` file (`act` gets the path and the operator).
  struct HttpRoute {
    std::string path;
    enum Kind { kExact, kTree, kEvents, kAction } kind = kExact;
    std::function<metrics::Response(const std::string& path)> handle;
    std::function<metrics::Response(const std::string& path, const std::string& user)> act;
  };
  std::vector<HttpRoute> http_routes;
  std::string http_address;
  int http_event_streams = 8;  // browsers with the dashboard open at once
};

// Returns the exit code: 0 after SIGTERM/SIGINT, 2 for a bad config, 1 when the service
// cannot start (data_dir not writable).
int run_node_service(const std::string& config_path, const NodeServiceHooks& hooks);

}  // namespace edgeflow
