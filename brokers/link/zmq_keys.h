// A node's ZeroMQ CURVE key file, as `edgeflow keys zmq NODE` writes it (mode 0600):
//   public: "<40 characters of Z85>"
//   secret: "<40 characters of Z85>"
#pragma once

#include <string>

namespace edgeflow {

struct ZmqKeyPair {
  std::string public_key;
  std::string secret_key;
};

// Throws std::runtime_error naming the file and the fix: unreadable, readable by others,
// not YAML, a key missing or not 40 characters.
ZmqKeyPair load_zmq_keys(const std::string& path);

}  // namespace edgeflow
