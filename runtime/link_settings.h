// The pipeline's `links:` settings: the default transport between nodes and its options.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace edgeflow {

// TLS and credentials of a connection to an MQTT broker: the same keys wherever a broker is
// named (links.mqtt, the mqtt.* stages, the edge and cloud services):
//   broker: "mqtts://host:8883"
//   tls: {ca_file: ca.crt, cert_file: pi-1.crt, key_file: pi-1.key, verify_hostname: true}
//   credentials: pi-1.credentials.yaml      # username: ..., password: ...; mode 0600
// Paths are resolved against the folder of the file that names them.
struct MqttSecurity {
  std::string ca_file;    // CA certificates to trust (PEM); "" = the system's
  std::string cert_file;  // this client's certificate (PEM), for brokers that ask for one
  std::string key_file;   // its private key
  bool verify_hostname = true;
  std::string credentials_file;  // "" = connect without a username; {node}: the node's name
  // The settings of one node: {node} in the credentials path becomes its name, so one file
  // names each node's own credentials (credentials/{node}.yaml, as broker-config writes them).
  MqttSecurity for_node(const std::string& node) const {
    MqttSecurity s = *this;
    for (size_t at = 0; (at = s.credentials_file.find("{node}", at)) != std::string::npos;
         at += node.size())
      s.credentials_file.replace(at, 6, node);
    return s;
  }
};

// One key of a `tls:` map into `s` (paths resolved by `resolve`); "" or what is wrong.
template <typename Resolve>
std::string set_mqtt_tls_key(MqttSecurity& s, const std::string& key, const std::string& value,
                             Resolve resolve) {
  if (key == "ca_file") {
    s.ca_file = resolve(value);
  } else if (key == "cert_file") {
    s.cert_file = resolve(value);
  } else if (key == "key_file") {
    s.key_file = resolve(value);
  } else if (key == "verify_hostname") {
    if (value != "true" && value != "false")
      return "tls 'verify_hostname' must be true or false (got '" + value + "')";
    s.verify_hostname = value == "true";
  } else {
    return "unknown tls key '" + key + "': use ca_file, cert_file, key_file, verify_hostname";
  }
  return "";
}

// CURVE on ZeroMQ links: each node's key pair, and every node's public key pinned.
//   zmq: {curve: {keys: "keys/{node}.zmq.key", peers: {pi-1: "<40 Z85 chars>", cloud: ...}}}
// A sender accepts only the receiver whose key is pinned; a receiver admits only senders
// whose keys are listed. `edgeflow keys zmq NODE` writes a key file and prints its public key.
// A CURVE key as text: 40 characters of Z85 (ZeroMQ RFC 32).
inline bool is_z85_key(const std::string& key) {
  static const std::string alphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return key.size() == 40 && key.find_first_not_of(alphabet) == std::string::npos;
}

struct ZmqCurve {
  std::string keys_file;                     // "" = plaintext links; {node}: the node's name
  std::map<std::string, std::string> peers;  // node -> public key
  bool enabled() const { return !keys_file.empty(); }
  std::string keys_for(const std::string& node) const {
    std::string path = keys_file;
    for (size_t at = 0; (at = path.find("{node}", at)) != std::string::npos; at += node.size())
      path.replace(at, 6, node);
    return path;
  }
};

struct LinkDefaults {
  std::string via = "mqtt";
  std::string mqtt_broker;  // "" = start an embedded broker on loopback
  int mqtt_qos = 1;
  std::string mqtt_client = "mosquitto";
  MqttSecurity mqtt_security;
  bool mqtt_retry = false;         // broker unreachable at start: false fails with a clear error,
                                   // true keeps retrying in the background (an edge device at boot)
  int zmq_port = 0;                // first port of ZeroMQ links; 0 = free ports (one process only)
  std::string zmq_mode = "acked";  // acked | push | pubsub
  ZmqCurve zmq_curve;
  // via: nats (brokers/nats/nats_channel.h): JetStream on these servers, any of a cluster's.
  std::vector<std::string> nats_servers;
  int nats_replicas = 1;         // of the pipeline's stream (3 on a 3-server cluster)
  int nats_ack_wait_ms = 10000;  // until an unacknowledged frame is delivered again
  bool nats_retry = false;       // servers unreachable at start: keep trying
  // links.nats.tls and .credentials, the same keys as MQTT's: TLS to servers with a `tls {}`
  // block (tls:// URLs), a username and password for servers with `authorization`.
  MqttSecurity nats_security;
  bool nats_tls = false;  // links.nats.tls given (or a tls:// server): connect with TLS
  // A link sends what a turn of its sending stage produced as one batch, cut at these bounds.
  int batch_messages = 1000;
  int batch_bytes = 256 * 1024;
  int drain_timeout_ms = 10000;  // at the end, how long a sender waits for acknowledgements
};

}  // namespace edgeflow
