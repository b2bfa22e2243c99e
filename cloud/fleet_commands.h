// The fleet commands: `edgeflow deploy`, `edgeflow undeploy`, `edgeflow nodes`. They talk to
// the services over the broker only (fleet/protocol.h).
#pragma once

#include <string>
#include <vector>

namespace edgeflow {

struct DeployArgs {
  std::string file, broker, key, wait = "60s";
  std::vector<std::string> sets;
};
// 0 when every node runs the new part; 1 when a node failed, refused it or did not answer in
// --wait; 2 for an invalid pipeline or arguments.
int cmd_deploy(const DeployArgs& a);

struct UndeployArgs {
  std::string pipeline, broker, key, wait = "30s";
};
int cmd_undeploy(const UndeployArgs& a);

struct NodesArgs {
  std::string broker, wait = "1s";
  bool json = false;
};
int cmd_nodes(const NodesArgs& a);

}  // namespace edgeflow
