#include "brokers/zmq/zmq_curve.h"

#include <spdlog/spdlog.h>

#include <array>
#include <stdexcept>
#include <vector>

namespace edgeflow::zmqlink {

std::string decode_key(const std::string& key, const std::string& what) {
  std::string out(32, '\0');
  if (key.size() != 40 || !zmq_z85_decode(reinterpret_cast<uint8_t*>(out.data()), key.c_str())) {
    throw std::invalid_argument(what +
                                " is not a ZeroMQ CURVE key (40 characters of Z85, as "
                                "`edgeflow keys zmq NODE` prints it)");
  }
  return out;
}

void check_key_pair(const std::string& public_key, const std::string& secret, const char* whose) {
  decode_key(public_key, std::string(whose) + " public key");
  decode_key(secret, std::string(whose) + " secret key");
  char derived[41];
  if (zmq_curve_public(derived, secret.c_str()) != 0 || public_key != derived) {
    throw std::invalid_argument(std::string(whose) +
                                " public and secret keys are not one pair; make the key file "
                                "again with edgeflow keys zmq NODE --force");
  }
}

void apply_curve_client(zmq::socket_t& socket, const CurveClient& curve) {
  if (curve.server_key.empty()) return;
  decode_key(curve.server_key, "the receiver's public key");
  check_key_pair(curve.public_key, curve.secret_key, "the sender's");
  socket.set(zmq::sockopt::curve_serverkey, curve.server_key);
  socket.set(zmq::sockopt::curve_publickey, curve.public_key);
  socket.set(zmq::sockopt::curve_secretkey, curve.secret_key);
}

ZapHandler::ZapHandler(zmq::context_t& ctx, zmq::socket_t& server, const CurveServer& curve,
                       std::string where)
    : where_(std::move(where)) {
  check_key_pair(curve.public_key, curve.secret_key, "the receiver's");
  for (const auto& [key, name] : curve.allowed) {
    decode_key(key, "the key of sender '" + name + "'");  // name: the identity it must use
    allowed_[key] = name;
  }
  socket_ = zmq::socket_t(ctx, zmq::socket_type::rep);
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
  server.set(zmq::sockopt::curve_server, true);
  server.set(zmq::sockopt::curve_secretkey, curve.secret_key);
  server.set(zmq::sockopt::zap_domain, "edgeflow");
  // libzmq admits every CURVE client when no handler is bound (ZMQ_ZAP_ENFORCE_DOMAIN is a
  // draft option): the receiver closes its socket before this handler.
}

bool ZapHandler::may_use(const std::string& identity, const char* user) const {
  auto it = user ? allowed_.find(user) : allowed_.end();  // the user id is the key's Z85
  return it != allowed_.end() && (it->second.empty() || it->second == identity);
}

void ZapHandler::answer() {
  for (;;) {
    // version, request id, domain, address, identity, mechanism, credentials (the key)
    std::vector<zmq::message_t> parts;
    zmq::message_t part;
    if (!socket_.recv(part, zmq::recv_flags::dontwait)) return;
    parts.push_back(std::move(part));
    // A REP socket must read the whole request before it may reply: keep 7 parts, drop more.
    for (bool more = parts.back().more(); more;) {
      zmq::message_t next;
      if (!socket_.recv(next, zmq::recv_flags::none)) break;
      more = next.more();
      if (parts.size() < 7) parts.push_back(std::move(next));
    }
    const bool well_formed = parts.size() >= 7 && parts[5].to_string() == "CURVE";
    const std::string key = well_formed ? parts[6].to_string() : "";
    char z85[41] = "?";
    if (key.size() == 32) zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(key.data()), 32);
    const bool known = key.size() == 32 && allowed_.count(z85) > 0;
    if (!known) refused_.fetch_add(1, std::memory_order_relaxed);
    // Bounded: a stranger may try a fresh key on every handshake.
    if (!known && warned_.size() < 64 && warned_.insert(key).second) {
      spdlog::warn("{}: refused a ZeroMQ peer from {} with an unknown CURVE key {}: {}", where_,
                   parts.size() > 3 ? parts[3].to_string() : "?", z85, fix_);
    }
    // The user id (each message's "User-Id") is the key, for may_use.
    std::array<std::string, 6> reply = {"1.0",
                                        parts.size() > 1 ? parts[1].to_string() : "",
                                        known ? "200" : "400",
                                        known ? "OK" : "unknown key",
                                        known ? std::string(z85) : "",
                                        ""};
    for (size_t i = 0; i < reply.size(); ++i) {
      socket_.send(zmq::buffer(reply[i]),
                   i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

}  // namespace edgeflow::zmqlink
