// CURVE on the zmq.* operators' sockets, as on ZeroMQ links (docs/zeromq.md): encryption, and
// only known peers. The side that binds is the CURVE server: it lists the public keys of the
// clients it admits (curve_clients) and refuses, in the handshake, every other key and every
// plaintext peer. The side that connects pins the server's public key (curve_server_key). Both
// name their own key file (curve_keys), as `edgeflow keys zmq NAME` writes it (mode 0600).
//
// The binding side counts the handshakes it refuses (CurveGate), warns once, and reports them
// on the stage's errors (RefusalReport), so they show in the stage's figures.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "brokers/zmq/zmq_curve.h"
#include "runtime/operator.h"
#include "runtime/schema.h"

namespace edgeflow::zmqop {

struct OperatorCurve {
  std::string keys_file;             // "" = no CURVE
  std::string server_key;            // connecting side: the binding side's public key
  std::vector<std::string> clients;  // binding side: the public keys it admits
  bool enabled() const { return !keys_file.empty(); }
};

std::vector<OptionSpec> curve_options();
// Checks the options for a socket that binds or connects: OptionError naming the option.
OperatorCurve read_curve_options(const Options& o, bool bind);

// The binding side's CURVE server: answers the handshakes (ZAP requests) and counts every
// handshake that fails, from a socket monitor: a plaintext peer, a key not in curve_clients
// (a connection dropped mid-handshake counts too). Its sockets are polled and served by one
// thread; refused() may be read from any.
class CurveGate {
 public:
  // Before `socket` binds; `where` ("stage 'x' (zmq.subscribe ENDPOINT)") starts warnings.
  CurveGate(zmq::context_t& ctx, zmq::socket_t& socket, const zmqlink::CurveServer& server,
            std::string where);
  ~CurveGate();
  CurveGate(const CurveGate&) = delete;
  CurveGate& operator=(const CurveGate&) = delete;

  void set_where(const std::string& where);  // once bound (the port picked for `*`)
  // What the serving thread polls for input: the ZAP requests and the handshake events.
  zmq::pollitem_t zap_item() { return {zap_.socket().handle(), 0, ZMQ_POLLIN, 0}; }
  zmq::pollitem_t events_item() { return {events_.handle(), 0, ZMQ_POLLIN, 0}; }
  // Answers the pending handshakes and counts the failed ones, warning at the first (once per
  // gate: a refused peer retries every reconnect interval). Returns how many it counted now.
  uint64_t serve();
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  // By the thread that owns the socket, before it closes it: no more events.
  void unwatch();

 private:
  zmq::socket_t& watched_;
  zmqlink::ZapHandler zap_;  // outlives the socket: libzmq admits any key without it
  zmq::socket_t events_;     // the monitor's PAIR end
  bool watching_ = false;
  bool warned_ = false;
  std::string where_;
  std::atomic<uint64_t> refused_{0};
};

// Before the socket binds or connects. Connecting: encrypts and pins the server's key;
// returns null. Binding: makes the socket a CURVE server and returns its gate, made on `ctx`,
// which must outlive the socket. Throws std::runtime_error naming the key file or key.
std::unique_ptr<CurveGate> apply_curve(zmq::context_t& ctx, zmq::socket_t& socket,
                                       const OperatorCurve& curve, bool bind,
                                       const std::string& where);

// Puts a gate's count on the stage's errors (ctx.error, so it shows in the stage's figures,
// the run report and the error output), on the stage's thread: the first refusal at once,
// then at most one report every kEveryUs while refusals go on, each with the number refused
// since the last one and in all. `final` (at close) reports what is left.
class RefusalReport {
 public:
  static constexpr int64_t kEveryUs = 10'000'000;
  void update(Context& ctx, uint64_t refused, const std::string& endpoint, bool final = false);
  uint64_t reported() const { return reported_; }

 private:
  uint64_t reported_ = 0;
  int64_t last_us_ = 0;
};

}  // namespace edgeflow::zmqop
