// CURVE on the channel's sockets: the client's pinned server key, the server's key, and the
// ZAP handler (RFC 27) that admits only the senders a receiver knows. Each receiver has a
// context of its own, so its handler is a REP socket on that context's ZAP endpoint, polled
// by the receiver's own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <zmq.hpp>

#include "brokers/zmq/zmq_channel.h"

namespace edgeflow::zmqlink {

// Throws std::invalid_argument naming `what` unless `key` is a 40-character Z85 key.
std::string decode_key(const std::string& key, const std::string& what);

// Throws std::invalid_argument unless `secret` is the secret key of `public_key`.
void check_key_pair(const std::string& public_key, const std::string& secret, const char* whose);

// Before connect: encrypt, and accept only the server holding curve.server_key's secret.
void apply_curve_client(zmq::socket_t& socket, const CurveClient& curve);

class ZapHandler {
 public:
  // Binds the context's ZAP endpoint, so call it before the server socket binds; then sets
  // the server socket's CURVE options.
  ZapHandler(zmq::context_t& ctx, zmq::socket_t& server, const CurveServer& curve,
             std::string where);
  zmq::socket_t& socket() { return socket_; }
  void set_where(std::string where) { where_ = std::move(where); }  // for warnings
  // What the warning about an unknown key tells to do (default: the links' peers).
  void set_fix(std::string fix) { fix_ = std::move(fix); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  // Answers every pending request: 200 for a known key, 400 (and a warning, once per key)
  // for any other.
  void answer();
  // A message from `identity` whose connection authenticated as `user` (its ZAP user id).
  bool may_use(const std::string& identity, const char* user) const;

 private:
  zmq::socket_t socket_;
  std::map<std::string, std::string> allowed_;  // 32-byte binary public key -> name
  std::set<std::string> warned_;
  std::string where_;
  std::string fix_ = "if it is one of your nodes, add its public key to links.zmq.curve.peers";
  std::atomic<uint64_t> refused_{0};
};

}  // namespace edgeflow::zmqlink
