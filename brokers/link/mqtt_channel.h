// A link over MQTT: frames published to `edgeflow/<pipeline>/<from>/<to>`, one client per
// link end, persistent sessions at QoS 1 and 2 so the broker keeps frames for a receiver
// that is away.
//
// A receiver announces itself with a retained message on
// `edgeflow/<pipeline>/_ready/<from>/<to>/<node>` once subscribed; a sender sends its first
// frame only when every receiver of the link has announced itself, so nothing is published
// before anybody subscribed (MQTT would drop it). The retained announcement and the
// persistent session outlive restarts of either side.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "brokers/channel.h"
#include "runtime/link_settings.h"

namespace edgeflow {

struct MqttLinkOptions {
  std::string broker;  // URI
  std::string client = "mosquitto";
  std::string client_id;
  std::string topic;         // data topic
  std::string ready_prefix;  // announcements: ready_prefix + node
  int qos = 1;
  bool retry = false;                  // keep retrying an unreachable broker instead of failing
  int max_inflight = 64;               // frames, each up to links.batch.bytes
  std::vector<std::string> receivers;  // senders wait for these nodes' announcements
  std::string node;                    // receivers: the node announced
  std::string link;                    // for log lines
  MqttSecurity security;               // links.mqtt tls: and credentials:
};

// Both throw mqtt::MqttError naming the broker when it cannot be reached (and retry is off).
std::unique_ptr<FrameSender> make_mqtt_sender(const MqttLinkOptions& options);
std::unique_ptr<FrameReceiver> make_mqtt_receiver(const MqttLinkOptions& options,
                                                  FrameHandler handler);

// Bytes one PUBLISH of `payload` bytes on `topic` costs on the wire at `qos`, with its
// acknowledgement packets and TCP/IP headers (an estimate: one segment per packet).
uint64_t mqtt_wire_bytes(const std::string& topic, uint64_t payload, int qos);

}  // namespace edgeflow
