#include "operators/zmq/zmq_operator_curve.h"

#include <stdexcept>

#include "brokers/link/zmq_keys.h"
#include "runtime/link_settings.h"

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
               "and every plaintext peer, is refused in the handshake"),
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

std::unique_ptr<zmqlink::ZapHandler> apply_curve(zmq::context_t& ctx, zmq::socket_t& socket,
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
  auto zap = std::make_unique<zmqlink::ZapHandler>(ctx, socket, server, where);
  zap->set_fix("if it is a peer of yours, add its public key to the stage's curve_clients");
  return zap;
}

}  // namespace edgeflow::zmqop
