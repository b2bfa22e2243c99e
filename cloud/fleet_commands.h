// The fleet commands: `edgeflow deploy`, `edgeflow undeploy`, `edgeflow nodes`. They talk to
// the services over the broker only (fleet/protocol.h).
#pragma once

#include <string>
#include <vector>

namespace edgeflow {

// How the fleet commands reach an mqtts:// broker: --tls-ca and --credentials (mode 0600).
struct BrokerAccess {
  std::string tls_ca, credentials;
};

struct DeployArgs {
  std::string file, broker, key, wait = "60s";
  BrokerAccess access;
  std::vector<std::string> sets;
};
// 0 when every node runs the new part; 1 when a node failed, refused it or did not answer in
// --wait; 2 for an invalid pipeline or arguments.
int cmd_deploy(const DeployArgs& a);

struct UndeployArgs {
  std::string pipeline, broker, key, wait = "30s";
  BrokerAccess access;
};
int cmd_undeploy(const UndeployArgs& a);

struct NodesArgs {
  std::string broker, wait = "1s";
  BrokerAccess access;
  bool json = false;
};
int cmd_nodes(const NodesArgs& a);

}  // namespace edgeflow
