// `edgeflow cloud --config FILE`: the node service with tier cloud (it runs the cloud parts
// deployed to it, like an edge service runs its own), plus the fleet's registry.
#pragma once

#include <string>

namespace edgeflow {

// metrics_address: `--metrics ADDR` ("" = the config's `metrics:`, if any). http_address:
// `--http ADDR`, the JSON API (GET /api/nodes) and /metrics ("" = none).
int run_cloud_service(const std::string& config_path, const std::string& metrics_address = "",
                      const std::string& http_address = "");

}  // namespace edgeflow
