// What edge services, the cloud service and the fleet commands say to each other over MQTT:
//
//   edgeflow/nodes/<node>/status   retained JSON, kept by each node's service; its last will
//                                  sets "state": "offline"
//   edgeflow/nodes/<node>/deploy   retained, signed: the node's part of a pipeline (or an
//                                  undeploy), published by `edgeflow deploy`
//
// A deployment is JSON {"body": "<JSON text>", "signature": "0x..."}: the signature is
// EIP-191 over keccak256 of the body text, by the cloud's key (crypto/), so any change to the
// body breaks it and a node checks it against its `trust` address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crypto/crypto.h"

namespace edgeflow::fleet {

std::string status_topic(const std::string& node);
std::string deploy_topic(const std::string& node);
inline const char* kStatusFilter = "edgeflow/nodes/+/status";
inline const char* kDeployFilter = "edgeflow/nodes/+/deploy";

// A topic template of mqtt.publish ({origin}, {field.x}...) as a topic filter: each level
// with a placeholder matches any value ("camera/{origin}/motion" -> "camera/+/motion").
std::string topic_filter_of(const std::string& topic_template);

struct Deployment {
  std::string kind = "deploy";  // "deploy" | "undeploy"
  std::string pipeline;
  uint64_t version = 0;  // rises with every deploy (milliseconds since the epoch)
  std::string node;
  std::string file_name;          // the pipeline file's name, for messages
  std::string file_text;          // the whole pipeline file: the node runs its part
  std::string base_dir;           // where relative paths pointed on the deploying side
  std::vector<std::string> sets;  // --set STAGE.OPTION=VALUE, applied before validation
  std::string part_hash;          // part_hash(file_text, sets, node)
};

// A short stable name for what a node runs: sha256 over the file, the sets and the node.
std::string part_hash(const std::string& file_text, const std::vector<std::string>& sets,
                      const std::string& node);

std::string seal(const Deployment& d, const crypto::Wallet& key);

struct Opened {
  std::optional<Deployment> deployment;  // set when signed by `trust` and well formed
  std::string error;                     // why not: unsigned, forged, malformed
  std::string signer;                    // 0x address the signature recovers to, if any
};
Opened open(const std::string& payload, const std::string& trust_address);
// As trust_address: any well-formed signature is accepted, and `signer` says whose it is. For
// showing what was published (the dashboard), never for running it.
inline const char* kAnySigner = "any";

}  // namespace edgeflow::fleet
