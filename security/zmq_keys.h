// `edgeflow keys zmq NODE`: a ZeroMQ CURVE key pair for a node, without libzmq (the CLI does
// not map it): Curve25519 with OpenSSL, keys in ZeroMQ's Z85 text (RFC 32).
#pragma once

#include <string>

#include "brokers/link/zmq_keys.h"

namespace edgeflow::security {

// Z85 of `bytes` (a multiple of 4 long), as zmq_z85_encode.
std::string z85_encode(const std::string& bytes);

// A fresh key pair; throws std::runtime_error when OpenSSL cannot make one.
ZmqKeyPair make_zmq_keys();

struct KeysArgs {
  std::string node;
  std::string out = "keys";  // DIR/NODE.zmq.key
  bool force = false;
};
// Writes DIR/NODE.zmq.key (mode 0600) and prints the public key and the line for
// links.zmq.curve.peers; 0, or 1 (with the reason on stderr) when the file exists or cannot
// be written.
int cmd_keys_zmq(const KeysArgs& a);

}  // namespace edgeflow::security
