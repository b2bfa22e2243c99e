// The pipeline's `links:` settings: the default transport between nodes and its options.
#pragma once

#include <string>

namespace edgeflow {

struct LinkDefaults {
  std::string via = "mqtt";
  std::string mqtt_broker;  // "" = start an embedded broker on loopback
  int mqtt_qos = 1;
  std::string mqtt_client = "mosquitto";
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
