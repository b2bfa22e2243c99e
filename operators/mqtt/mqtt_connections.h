// One MQTT connection per broker in a process, shared by the mqtt.publish stages and at most
// one mqtt.subscribe stage that name the same broker with the same settings.
//
// Why: a relay (mqtt.subscribe -> map -> mqtt.publish) runs its chain on the subscriber's
// network thread. With a connection of its own, every publish wakes that connection's network
// thread to write it: a thread switch per message, which made the relay cost 1.4x the CPU of
// a hand-written one (bench/mqtt_relay_bench). On the subscriber's connection the publish is
// written by the thread that already runs, as the hand-written relay does. It is one TCP
// connection and one thread fewer on the device too.
//
// Shared only where that changes nothing a user can see and cannot deadlock:
// - libmosquitto clients (Paho runs its handler on a thread of its own anyway);
// - no client_id and no last will set by hand;
// - a subscriber with a clean session: a persistent one (QoS 1 by default) keeps a connection
//   of its own, whose session is disconnected, not merely left, when the stage stops, so the
//   broker keeps what arrives meanwhile;
// - QoS 0 publishers: a QoS 1 publisher waits for acknowledgements that the shared network
//   thread reads, and that thread may itself wait for room in the subscriber's full queue,
//   which the publisher's stage drains.
#pragma once

#include <memory>
#include <string>

#include "brokers/mqtt/client.h"

namespace edgeflow::mqttop {

class SharedConnection;

// A stage's hold on a connection; releasing the last hold disconnects it.
class ConnectionLease {
 public:
  ConnectionLease() = default;
  ConnectionLease(ConnectionLease&&) noexcept;
  ConnectionLease& operator=(ConnectionLease&&) noexcept;
  ~ConnectionLease();

  mqtt::Client* client() const;
  explicit operator bool() const { return client() != nullptr; }
  bool shared() const;  // other stages may use this connection
  // A subscriber's handler stops being called; when this returns, no call is in progress.
  // Waits for a call in progress: the handler must return soon once told to stop. Its
  // filters stay subscribed while publishers hold the connection (their messages dropped).
  void detach();
  // Lets go of the connection (disconnects it when this was the last hold).
  void release();

 private:
  friend ConnectionLease connect_publisher(const std::string&, const std::string&,
                                           mqtt::ClientOptions, bool);
  friend ConnectionLease connect_subscriber(const std::string&, const std::string&,
                                            mqtt::ClientOptions, bool, mqtt::MessageHandler);
  std::shared_ptr<SharedConnection> conn_;
  std::unique_ptr<mqtt::Client> own_;  // a connection of this stage's alone
  bool subscriber_ = false;
};

// A connected client for a publisher: a shared one when `may_share` (the rules above) and the
// options allow it, among the stages of one `scope` (a pipeline's node, so another pipeline in
// the process never waits on this one's handler or publishes under its client id). Throws
// mqtt::MqttError.
ConnectionLease connect_publisher(const std::string& scope, const std::string& kind,
                                  mqtt::ClientOptions options, bool may_share);
// A connected client for a subscriber whose handler gets every message the connection
// receives (its subscriptions only: a connection ever has one subscriber). The caller
// subscribes through client() afterwards. Throws mqtt::MqttError.
ConnectionLease connect_subscriber(const std::string& scope, const std::string& kind,
                                   mqtt::ClientOptions options, bool may_share,
                                   mqtt::MessageHandler handler);

}  // namespace edgeflow::mqttop
