#include "operators/zmq/zmq_operator_curve.h"

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "brokers/link/zmq_keys.h"
#include "runtime/link_settings.h"
#include "runtime/log.h"

namespace edgeflow::zmqop {

std::vector<OptionSpec> curve_options() {
  return {
      opt_string("curve_keys",
                 "CURVE: this stage's key file (edgeflow keys zmq NAME writes it, mode 0600); "
                 "set, the socket is encrypted and admits only known peers"),
      opt_string("curve_server_key",
                 "CURVE, when connecting: the public key of the side that binds (Z85, 40 "
                 "characters)"),
      opt_list("curve_clients",
               "CURVE, when binding: the public keys of the peers admitted; any other key, "
               "and every plaintext peer, is refused in the handshake and counted on the "
               "stage's errors"),
  };
}

OperatorCurve read_curve_options(const Options& o, bool bind) {
  OperatorCurve c;
  if (o.has("curve_keys")) c.keys_file = o.resolve_path("curve_keys");
  if (o.has("curve_server_key")) c.server_key = o.get_string("curve_server_key");
  if (o.has("curve_clients")) c.clients = o.get_list("curve_clients");
  if (!c.enabled()) {
    if (!c.server_key.empty() || !c.clients.empty())
      throw OptionError(c.server_key.empty() ? "curve_clients" : "curve_server_key",
                        "needs curve_keys, this stage's own key file",
                        "edgeflow keys zmq NAME writes one");
    return c;
  }
  if (bind) {
    if (!c.server_key.empty())
      throw OptionError("curve_server_key", "is for a socket that connects; this one binds",
                        "list the connecting peers' keys in curve_clients instead");
    if (c.clients.empty())
      throw OptionError("curve_clients",
                        "is needed: a binding socket with CURVE admits only the keys listed");
    for (const std::string& k : c.clients)
      if (!is_z85_key(k))
        throw OptionError("curve_clients", "'" + k + "' is not a public key (40 Z85 characters)");
  } else {
    if (!c.clients.empty())
      throw OptionError("curve_clients", "is for a socket that binds; this one connects",
                        "pin the binding side's key in curve_server_key instead");
    if (!is_z85_key(c.server_key))
      throw OptionError("curve_server_key",
                        c.server_key.empty()
                            ? "is needed: a connecting socket with CURVE pins the key of the "
                              "side that binds"
                            : "'" + c.server_key + "' is not a public key (40 Z85 characters)");
  }
  return c;
}

namespace {

// A handshake that failed: a key refused by the ZAP handler (AUTH), or a plaintext peer, which
// libzmq 4.3 reports with NO_DETAIL (tested) -- as it does a TCP health check or a port scan
// that closes mid-greeting, which therefore counts too.
constexpr int kHandshakeFailed = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
constexpr const char* kFix =
    "if it is a peer of yours, give it a key pair (edgeflow keys zmq NAME) and add its public "
    "key to the stage's curve_clients";
std::atomic<uint64_t> gate_counter{0};

}  // namespace

CurveGate::CurveGate(zmq::context_t& ctx, zmq::socket_t& socket, const zmqlink::CurveServer& server,
                     std::string where)
    : watched_(socket), zap_(ctx, socket, server, where), where_(std::move(where)) {
  zap_.set_fix("if it is a peer of yours, add its public key to the stage's curve_clients");
  const std::string address = "inproc://edgeflow-zmq-op-monitor-" +
                              std::to_string(gate_counter.fetch_add(1, std::memory_order_relaxed));
  if (zmq_socket_monitor(socket.handle(), address.c_str(), kHandshakeFailed) != 0)
    throw zmq::error_t();
  watching_ = true;
  events_ = zmq::socket_t(ctx, zmq::socket_type::pair);
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(address);
}

CurveGate::~CurveGate() = default;

void CurveGate::set_where(const std::string& where) {
  where_ = where;
  zap_.set_where(where);
}

void CurveGate::unwatch() {
  if (!watching_) return;
  watching_ = false;
  if (watched_) zmq_socket_monitor(watched_.handle(), nullptr, 0);
}

uint64_t CurveGate::serve() {
  zap_.answer();  // before the events: a refused key's event follows its answer
  uint64_t counted = 0;
  for (;;) {
    // An event is two parts: [16-bit event, 32-bit value][endpoint].
    zmq::message_t first;
    if (!events_.recv(first, zmq::recv_flags::dontwait)) break;
    uint16_t event = 0;
    if (first.size() >= sizeof(event)) std::memcpy(&event, first.data(), sizeof(event));
    for (bool more = first.more(); more;) {
      zmq::message_t rest;
      if (!events_.recv(rest, zmq::recv_flags::dontwait)) break;
      more = rest.more();
    }
    if (event & kHandshakeFailed) ++counted;
  }
  if (counted == 0) return 0;
  refused_.fetch_add(counted, std::memory_order_relaxed);
  if (!warned_) {
    warned_ = true;
    logger().warn(
        "{}: refused a peer's handshake (a plaintext peer, or a CURVE key not in "
        "curve_clients): nothing goes through to or from it; {}. Refusals are counted on the "
        "stage's errors; this is said once",
        where_, kFix);
  }
  return counted;
}

std::unique_ptr<CurveGate> apply_curve(zmq::context_t& ctx, zmq::socket_t& socket,
                                       const OperatorCurve& curve, bool bind,
                                       const std::string& where) {
  if (!curve.enabled()) return nullptr;
  const ZmqKeyPair keys = load_zmq_keys(curve.keys_file);
  if (!bind) {
    zmqlink::apply_curve_client(socket, {curve.server_key, keys.public_key, keys.secret_key});
    return nullptr;
  }
  zmqlink::CurveServer server{keys.public_key, keys.secret_key, {}};
  for (const std::string& k : curve.clients) server.allowed[k] = "";
  return std::make_unique<CurveGate>(ctx, socket, server, where);
}

void RefusalReport::update(Context& ctx, uint64_t refused, const std::string& endpoint,
                           bool final) {
  if (refused <= reported_) return;
  const int64_t now = ctx.now_us();
  if (!final && reported_ > 0 && now - last_us_ < kEveryUs) return;
  const uint64_t fresh = refused - reported_;
  reported_ = refused;
  last_us_ = now;
  ctx.error(nullptr, "refused " + std::to_string(fresh) + " ZeroMQ handshake" +
                         (fresh == 1 ? "" : "s") + " on " + endpoint + " (" +
                         std::to_string(refused) +
                         " in all): a plaintext peer, or a CURVE key not in curve_clients, "
                         "gets nothing through; " +
                         kFix);
}

}  // namespace edgeflow::zmqop
