// `edgeflow cloud --http ADDR`: the fleet dashboard (a page and its files, shipped inside the
// binary) and the JSON API under it, which the page and scripts use:
//   GET /                        the page; /dashboard.js, /dashboard.css
//   GET /api/state               everything below at once, with the server's time
//   GET /api/events              server-sent events: /api/state each time it changes (1 s)
//   GET /api/nodes[/NODE]        each node's last status (404: no such node)
//   GET /api/pipelines[/NAME]    deployed pipelines: graph, placement, bytes/s per link
//   GET /api/motion              recent motion events; /api/motion/ORIGIN/ID.jpg a snapshot
//   GET /api/tasks               recent iExec tasks: status, consensus
//   GET /?once                   the page without live updates (screenshots)
// Read-only unless the config names `operators:` (edgeflow operator add): then, with the
// header X-Edgeflow-Action and HTTP digest authentication,
//   POST /api/login              {"operator": NAME}
//   POST /api/nodes/NODE/forget  an offline node leaves the registry and the broker
#pragma once

#include <memory>
#include <vector>

#include "cloud/fleet_view.h"
#include "cloud/registry.h"
#include "edge/node_service.h"

namespace edgeflow {

std::vector<NodeServiceHooks::HttpRoute> dashboard_routes(std::shared_ptr<NodeRegistry> registry,
                                                          std::shared_ptr<FleetView> view);

// The page's files, built in from cloud/dashboard/ (path "/dashboard.js" -> its bytes).
struct DashboardAsset {
  const char* path;
  const char* content_type;
  const unsigned char* data;
  size_t size;
};
const std::vector<DashboardAsset>& dashboard_assets();

}  // namespace edgeflow
