// The pipeline's `links:` settings: the default transport between nodes and its options.
#pragma once

#include <string>

namespace edgeflow {

struct LinkDefaults {
  std::string via = "mqtt";
  std::string mqtt_broker;  // "" = start an embedded broker on loopback
  int mqtt_qos = 1;
  std::string mqtt_client = "mosquitto";
};

}  // namespace edgeflow
