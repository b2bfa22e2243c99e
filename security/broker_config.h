// `edgeflow broker-config FILE --out DIR`: a Mosquitto configuration for a pipeline's fleet,
// where each node may use only its own topics.
//
//   DIR/mosquitto.conf          a TLS listener on the port of links.mqtt.broker, no anonymous
//                               clients, the password file and ACL below
//   DIR/passwd                  Mosquitto's hashed format, one user per node (and cloud)
//   DIR/acl                     per user: its status (write) and deploy (read) topics, the
//                               links its stages send and receive, its mqtt.* stages' topics
//   DIR/credentials/NODE.yaml   username and password, mode 0600, for tls:/credentials:
//   DIR/make-test-ca.sh         makes a test CA and the broker's certificate into DIR
// Passwords are new at every run: run it once, and again when a node joins or a key leaks.
#pragma once

#include <string>

namespace edgeflow {
struct PipelineSpec;
}

namespace edgeflow::security {

struct BrokerConfigArgs {
  std::string file;
  std::string out;
  std::string bind;    // listener address; "" = the host of the broker URI when it is an IP
  bool force = false;  // overwrite DIR's passwd and credentials
};

// 0 on success, 2 for an invalid pipeline or arguments, 1 when files cannot be written.
int cmd_broker_config(const BrokerConfigArgs& a);

// The ACL text for a loaded pipeline (exposed for tests): users are node names; cloud-tier
// nodes (or "cloud" when there is none) also read every status and write every deploy topic.
std::string broker_acl(const PipelineSpec& pipeline);

}  // namespace edgeflow::security
