#include "brokers/link/mqtt_channel.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/security.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

class MqttSender final : public FrameSender {
 public:
  explicit MqttSender(const MqttLinkOptions& o) : o_(o) {
    mqtt::ClientOptions co;
    co.uri = o.broker;
    mqtt::apply_security(o.security, co);
    co.client_id = o.client_id;
    co.clean_session = o.qos == 0;
    co.max_inflight = o.max_inflight;
    co.retry_first_connect = o.retry;
    client_ = mqtt::make_client(o.client, co, [this](mqtt::Received&& r) { on_ready(r); });
    if (!o.receivers.empty()) client_->subscribe(o.ready_prefix + "+", 1);
    client_->connect();
  }
  ~MqttSender() override { client_->disconnect(); }

  bool send(const std::string& frame, int timeout_ms) override {
    const auto start = std::chrono::steady_clock::now();
    if (!wait_ready(timeout_ms)) return false;
    int left = timeout_ms;
    if (timeout_ms >= 0) {
      auto used = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
      left = std::max<int>(0, timeout_ms - static_cast<int>(used));
    }
    return client_->publish(o_.topic, frame.data(), frame.size(), o_.qos, false, left);
  }
  bool drain(int timeout_ms) override { return client_->flush(timeout_ms); }
  uint64_t unacknowledged() const override { return client_->stats().unacknowledged; }
  uint64_t reconnects() const override { return client_->stats().reconnects; }
  uint64_t wire_bytes(uint64_t payload) const override {
    return mqtt_wire_bytes(o_.topic, payload, o_.qos);
  }

 private:
  void on_ready(const mqtt::Received& r) {
    if (r.topic.rfind(o_.ready_prefix, 0) != 0 || r.payload.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.insert(r.topic.substr(o_.ready_prefix.size()));
    }
    cv_.notify_all();
  }
  bool all_ready_locked() const {
    for (const std::string& n : o_.receivers)
      if (!ready_.count(n)) return false;
    return true;
  }
  bool wait_ready(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    if (all_ready_) return true;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!all_ready_locked()) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_note_ > std::chrono::seconds(10)) {
        last_note_ = now;
        std::string missing;
        for (const std::string& n : o_.receivers)
          if (!ready_.count(n)) missing += (missing.empty() ? "'" : ", '") + n + "'";
        logger().info(
            "link {}: waiting for node {} to subscribe on {} (start its part: "
            "edgeflow run FILE --node NAME)",
            o_.link, missing, o_.broker);
      }
      if (timeout_ms < 0) {
        cv_.wait_for(lock, std::chrono::seconds(1));
      } else if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && !all_ready_locked()) {
        return false;
      }
    }
    all_ready_ = true;
    return true;
  }

  MqttLinkOptions o_;
  std::unique_ptr<mqtt::Client> client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> ready_;
  bool all_ready_ = false;
  std::chrono::steady_clock::time_point last_note_ = std::chrono::steady_clock::now();
};

class MqttReceiver final : public FrameReceiver {
 public:
  MqttReceiver(const MqttLinkOptions& o, FrameHandler handler) : o_(o) {
    mqtt::ClientOptions co;
    co.uri = o.broker;
    mqtt::apply_security(o.security, co);
    co.client_id = o.client_id;
    co.clean_session = o.qos == 0;
    co.retry_first_connect = o.retry;
    client_ = mqtt::make_client(o.client, co, [this, h = std::move(handler)](mqtt::Received&& r) {
      if (r.topic == o_.topic) h(std::move(r.payload));
    });
    client_->subscribe(o.topic, o.qos);
    client_->connect();
    // Sent after SUBSCRIBE on the same connection: the broker has the subscription by the
    // time a sender sees this.
    static const char kReady[] = "1";
    client_->publish(o.ready_prefix + o.node, kReady, 1, 1, true, -1);
  }
  ~MqttReceiver() override { stop(); }
  void stop() override { client_->disconnect(); }
  uint64_t reconnects() const override { return client_->stats().reconnects; }

 private:
  MqttLinkOptions o_;
  std::unique_ptr<mqtt::Client> client_;
};

uint64_t remaining_length_bytes(uint64_t n) {
  uint64_t b = 1;
  while (n >= 128) {
    n /= 128;
    ++b;
  }
  return b;
}

}  // namespace

std::unique_ptr<FrameSender> make_mqtt_sender(const MqttLinkOptions& options) {
  return std::make_unique<MqttSender>(options);
}

std::unique_ptr<FrameReceiver> make_mqtt_receiver(const MqttLinkOptions& options,
                                                  FrameHandler handler) {
  return std::make_unique<MqttReceiver>(options, std::move(handler));
}

uint64_t mqtt_wire_bytes(const std::string& topic, uint64_t payload, int qos) {
  // PUBLISH: fixed header, topic length and name, packet id at QoS > 0.
  uint64_t body = 2 + topic.size() + (qos > 0 ? 2 : 0) + payload;
  uint64_t bytes = tcp_wire_bytes(1 + remaining_length_bytes(body) + body);
  // PUBACK (QoS 1) or PUBREC, PUBREL, PUBCOMP (QoS 2): 4 bytes each, a segment each.
  if (qos == 1) bytes += tcp_wire_bytes(4);
  if (qos == 2) bytes += 3 * tcp_wire_bytes(4);
  return bytes;
}

}  // namespace edgeflow
