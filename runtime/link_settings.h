// The pipeline's `links:` settings: the default transport between nodes and its options.
#pragma once

#include <string>

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
  // A link sends what a turn of its sending stage produced as one batch, cut at these bounds.
  int batch_messages = 1000;
  int batch_bytes = 256 * 1024;
  int drain_timeout_ms = 10000;  // at the end, how long a sender waits for acknowledgements
};

}  // namespace edgeflow
