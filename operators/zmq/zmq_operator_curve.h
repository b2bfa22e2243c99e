// CURVE on the zmq.* operators' sockets, as on ZeroMQ links (docs/zeromq.md): encryption, and
// only known peers. The side that binds is the CURVE server: it lists the public keys of the
// clients it admits (curve_clients) and refuses, in the handshake, every other key and every
// plaintext peer. The side that connects pins the server's public key (curve_server_key). Both
// name their own key file (curve_keys), as `edgeflow keys zmq NAME` writes it (mode 0600).
#pragma once

#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "brokers/zmq/zmq_curve.h"
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

// Before the socket binds or connects. Connecting: encrypts and pins the server's key;
// returns null. Binding: makes the socket a CURVE server and returns the ZAP handler (on
// `ctx`) whose socket must be answered by the stage's own thread, and which must outlive the
// socket. Throws std::runtime_error naming the key file or key.
std::unique_ptr<zmqlink::ZapHandler> apply_curve(zmq::context_t& ctx, zmq::socket_t& socket,
                                                 const OperatorCurve& curve, bool bind,
                                                 const std::string& where);

}  // namespace edgeflow::zmqop
