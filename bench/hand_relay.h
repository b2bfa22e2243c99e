// The hand-written libmosquitto relays, the reading they relay and the same relay as a pipeline
// file, shared by mqtt_relay_bench (which runs the relays in forked children), mosquitto_relay
// (the one publishing from the callback as a process of its own) and footprint_bench. Header-only
// and free of edgeflow's libraries: mosquitto_relay links only libmosquitto, so its footprint is
// libmosquitto's and nlohmann::json's.
#pragma once

#include <mosquitto.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace edgeflow::bench {

inline constexpr char kInTopic[] = "bench/in";
inline constexpr char kOutTopic[] = "bench/out";
inline constexpr int kWindow = 1000;  // QoS 1 publishes in flight, load generator and relays
// The relays' window in mqtt_relay_bench's hcs: mqtt.publish's default max_inflight. libmosquitto
// walks its whole in-flight list on every publish and acknowledgement, so a relay with a small
// window spends less CPU per message while the broker lags behind.
inline constexpr int kSmallWindow = 100;

// A 100-byte reading: {"seq":...,"node":"pi-1","temperature":...,...,"ts":...}. `relayed`:
// with the field the relay adds, for the broker-alone run.
inline std::string reading_json(int64_t n, bool warm, bool relayed = false) {
  char text[200];
  const double x = static_cast<double>(n % 1000);
  int len = std::snprintf(text, sizeof text,
                          "{\"seq\":%lld,\"node\":\"pi-1\",\"temperature\":%.2f,\"humidity\":%.2f,"
                          "\"pressure\":%.2f,\"ts\":%lld%s%s}",
                          static_cast<long long>(n), 12.0 + x * 0.01, 60.0 + x * 0.02,
                          1000.0 + x * 0.03, 1790000000000LL + n, warm ? ",\"warm\":1" : "",
                          relayed ? ",\"temp_f\":53.6" : "");
  return std::string(text, static_cast<size_t>(len));
}

// A relay on libmosquitto: subscribes kInTopic, parses, adds temp_f, publishes to kOutTopic.
// from_callback (mqtt_relay_bench's hc): all of it in the message callback, one client. Else
// (hq): the callback enqueues, a worker thread running work() (the caller starts it) publishes
// through a second client `pub`. Clients come from relay_client(); the caller connects them.
struct HandRelay {
  int qos = 0;
  bool from_callback = true;
  int window = kWindow;       // QoS 1 publishes in flight (libmosquitto's max_inflight_messages)
  mosquitto* mosq = nullptr;  // subscribes; publishes too when from_callback
  mosquitto* pub = nullptr;   // hq: publishes
  std::mutex mu;
  std::condition_variable cv;
  bool subscribed = false;
  int64_t in_flight = 0;  // hq: publishes not yet acknowledged (QoS 1) or written (QoS 0)
  std::deque<std::string> queue;
  bool stopping = false;
  int64_t relayed = 0, bad = 0;
  std::thread worker;

  // Parse, add the field, dump: the work both relays and the pipeline do.
  bool transform(const char* data, size_t size, std::string& out) {
    nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
    if (j.is_discarded() || !j.contains("temperature") || !j["temperature"].is_number())
      return false;
    j["temp_f"] = j["temperature"].get<double>() * 9 / 5 + 32;
    out = j.dump();
    return true;
  }
  void publish(const std::string& out) {
    if (!from_callback) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < window || stopping; });
      ++in_flight;
    }
    mosquitto_publish(from_callback ? mosq : pub, nullptr, kOutTopic, static_cast<int>(out.size()),
                      out.data(), qos, false);
    ++relayed;
  }

  static void on_connect(mosquitto* m, void* obj, int rc) {
    auto* r = static_cast<HandRelay*>(obj);
    if (rc == 0 && m == r->mosq) mosquitto_subscribe(m, nullptr, kInTopic, r->qos);
  }
  static void on_subscribe(mosquitto*, void* obj, int, int, const int*) {
    auto* r = static_cast<HandRelay*>(obj);
    std::lock_guard<std::mutex> lock(r->mu);
    r->subscribed = true;
    r->cv.notify_all();
  }
  static void on_publish(mosquitto*, void* obj, int) {
    auto* r = static_cast<HandRelay*>(obj);
    if (r->from_callback) return;
    std::lock_guard<std::mutex> lock(r->mu);
    --r->in_flight;
    r->cv.notify_all();
  }
  static void on_message(mosquitto*, void* obj, const mosquitto_message* msg) {
    auto* r = static_cast<HandRelay*>(obj);
    const char* data = static_cast<const char*>(msg->payload);
    const size_t size = static_cast<size_t>(msg->payloadlen);
    if (r->from_callback) {
      std::string out;
      if (r->transform(data, size, out)) {
        r->publish(out);
      } else {
        ++r->bad;
      }
      return;
    }
    std::unique_lock<std::mutex> lock(r->mu);
    r->cv.wait(lock, [&] { return r->queue.size() < 1024 || r->stopping; });
    r->queue.emplace_back(data, size);
    if (r->queue.size() == 1) r->cv.notify_all();
  }
  void work() {
    std::string in, out;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !queue.empty() || stopping; });
        if (queue.empty()) return;
        in = std::move(queue.front());
        queue.pop_front();
        if (queue.size() == 1023) cv.notify_all();
      }
      if (transform(in.data(), in.size(), out)) {
        publish(out);
      } else {
        ++bad;
      }
    }
  }
};

inline mosquitto* relay_client(const char* id, HandRelay* r) {
  mosquitto* m = mosquitto_new(id, true, r);
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_max_inflight_messages_set(m, static_cast<unsigned>(r->window));
  mosquitto_connect_callback_set(m, HandRelay::on_connect);
  mosquitto_subscribe_callback_set(m, HandRelay::on_subscribe);
  mosquitto_publish_callback_set(m, HandRelay::on_publish);
  mosquitto_message_callback_set(m, HandRelay::on_message);
  return m;
}

// The same relay as a pipeline: mqtt.subscribe {format: json} -> map {set: temp_f} ->
// mqtt.publish {format: json}, on one node. It does a little more than the hand relays:
// mqtt.subscribe adds a `topic` field and mqtt.publish's JSON adds `time` and `origin`.
// ca_file: the broker is mqtts:// and both stages trust this CA.
inline std::string relay_pipeline(const std::string& broker, int qos,
                                  const std::string& ca_file = "") {
  const std::string q = std::to_string(qos);
  const std::string tls = ca_file.empty() ? "" : ", tls: {ca_file: \"" + ca_file + "\"}";
  return "pipeline: relaybench\n"
         "nodes: {relay: {tier: cloud}}\n"
         "stages:\n"
         "  - id: in\n"
         "    op: mqtt.subscribe\n"
         "    on: relay\n"
         "    with: {broker: \"" +
         broker + "\", topic: " + kInTopic + ", qos: " + q + ", format: json" + tls +
         "}\n"
         "  - id: add\n"
         "    op: map\n"
         "    from: in\n"
         "    with: {set: {temp_f: \"temperature * 9 / 5 + 32\"}}\n"
         "  - id: out\n"
         "    op: mqtt.publish\n"
         "    from: add\n"
         "    with: {broker: \"" +
         broker + "\", topic: " + kOutTopic + ", qos: " + q + ", format: json" + tls + "}\n";
}

}  // namespace edgeflow::bench
