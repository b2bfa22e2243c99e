// Link ends of a node run by a service, over MQTT, with the disk spool (brokers/spool).
//
// Sender: every frame is appended to the spool before it counts as sent (the stage then
// takes the next turn); a thread publishes spooled frames in order and deletes them once
// every receiver acknowledged them. A receiver acknowledges with a retained message
// `<session> <seq>` on `edgeflow/<pipeline>/_ack/<from>/<to>/<sender>/<receiver>` after the
// frame is committed in its own spool. No acknowledgement within resend_ms, or a reconnect:
// the sender goes back to the first unacknowledged frame (go-back-N). So a broker that
// restarts and forgets everything, or a kill -9 of either side, loses nothing. While the
// node's energy mode holds the link, frames are spooled and not published (the radio stays
// off); once it lifts, everything held goes out in order.
//
// Receiver: accepts only the next frame of each (sender, session) (or one that carries the
// sender's floor), commits it with the de-duplication state, acknowledges, then emits. After
// a crash it first replays the frames it kept (the inbox): sinks that commit (file.write)
// skip what they already hold.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "brokers/link/link_counters.h"
#include "brokers/link/mqtt_channel.h"
#include "brokers/spool/spool.h"
#include "runtime/link.h"
#include "runtime/operator.h"

namespace edgeflow {

struct SpooledLinkConfig {
  const LinkPlan* link = nullptr;
  std::string node;
  Spool* spool = nullptr;
  std::string key;  // the link in the spool: "<pipeline>/<link name>" (spool_key())
  std::shared_ptr<LinkCounters> counters;
  // The link end's MQTT options (broker, client, topic, client id for "tx"/"rx").
  std::function<MqttLinkOptions(Context&, const char* end)> mqtt_options;
  std::string ack_prefix;  // edgeflow/<pipeline>/_ack/<from>/<to>/
  const std::atomic<bool>* stopping = nullptr;
  // The stage whose output the link carries: an energy mode holding its links
  // (`hold_links`, runtime/energy_rules.h) keeps the frames in the spool until it lifts.
  std::string from_stage;
  int resend_ms = 3000;
  int window = 64;  // frames published and not yet acknowledged
};

inline std::string spool_key(const std::string& pipeline, const std::string& link) {
  return pipeline + "/" + link;
}

std::unique_ptr<Operator> make_spooled_sender(SpooledLinkConfig config);
std::unique_ptr<Operator> make_durable_receiver(SpooledLinkConfig config);

}  // namespace edgeflow
