// Throughput of an edge-to-cloud link carrying small readings (3 numbers + origin), encode and
// decode included, against raw libmosquitto moving the same readings in the same frames.
//
//   a  in-process queues (no transport): the runtime's ceiling
//   b  MQTT link, libmosquitto client, QoS 1      c  the same at QoS 0
//   d  MQTT link, Paho C++ client, QoS 1
//   e  raw libmosquitto at QoS 1: a publisher builds the same readings, encodes them with
//      BatchWriter in frames of 1000 (the link's batch size), publishes with a window of 64
//      frames (the link's in-flight window); a subscriber decode_batch()es each frame in its
//      message callback. The transport's own cost with identical batching.   e0: at QoS 0.
//      e256: frames of 256, the size the link actually sends (it flushes at the end of each
//      executor turn, and a turn is at most ExecutorOptions::batch = 256 messages).
//
// The pipeline: bench.readings on node edge -> bench.count on node cloud, so placement cuts
// one link. Time runs from the first reading made to the last one counted. Each variant runs
// in a forked child (its own peak RSS) against a fresh embedded mosquitto on a free port.
//
//   bt, dt  b and d over TLS (a mosquitto TLS listener, a test CA from scripts/make-test-ca.sh,
//      host names verified): what TLS costs a link.
//
//   build-bench/bench/link_bench [--quick] [--count N] [--rounds R]
#include <mosquitto.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>

#include "bench/bench_readings.h"
#include "bench/bench_util.h"
#include "brokers/link/batch.h"
#include "brokers/mqtt/embedded_broker.h"

namespace edgeflow {
namespace {

using bench::now_ns;
using bench::RunResult;

// ---- raw libmosquitto, same readings, same frames ----

struct RawState {
  std::mutex mu;
  std::condition_variable cv;
  bool connected = false;
  bool subscribed = false;
  int64_t acked = 0;       // publisher: QoS 1 frames acknowledged
  int64_t received = 0;    // subscriber: readings decoded
  int64_t bad_frames = 0;  // subscriber: frames that did not decode
  int64_t last_ns = 0;
  int64_t expected = 0;
  std::string topic;
  int qos = 0;
};

void raw_on_connect(mosquitto* mosq, void* obj, int rc) {
  auto* s = static_cast<RawState*>(obj);
  if (rc == 0 && !s->topic.empty()) mosquitto_subscribe(mosq, nullptr, s->topic.c_str(), s->qos);
  std::lock_guard<std::mutex> lock(s->mu);
  s->connected = rc == 0;
  s->cv.notify_all();
}
void raw_on_subscribe(mosquitto*, void* obj, int, int, const int*) {
  auto* s = static_cast<RawState*>(obj);
  std::lock_guard<std::mutex> lock(s->mu);
  s->subscribed = true;
  s->cv.notify_all();
}
void raw_on_publish(mosquitto*, void* obj, int) {
  auto* s = static_cast<RawState*>(obj);
  std::lock_guard<std::mutex> lock(s->mu);
  ++s->acked;
  s->cv.notify_all();
}
void raw_on_message(mosquitto*, void* obj, const mosquitto_message* msg) {
  auto* s = static_cast<RawState*>(obj);
  DecodedBatch b =
      decode_batch(static_cast<const char*>(msg->payload), static_cast<size_t>(msg->payloadlen));
  int64_t n = 0;
  for (const MessagePtr& m : b.messages) n += reading_ok(*m);
  std::lock_guard<std::mutex> lock(s->mu);
  if (!b.error.empty() || n != static_cast<int64_t>(b.messages.size())) ++s->bad_frames;
  s->received += n;
  s->last_ns = now_ns();
  if (s->received >= s->expected) s->cv.notify_all();
}

mosquitto* raw_client(const char* id, RawState* state, int port, int inflight) {
  mosquitto* m = mosquitto_new(id, true, state);
  if (!m) throw std::runtime_error("mosquitto_new failed");
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_max_inflight_messages_set(m, static_cast<unsigned>(inflight));
  mosquitto_connect_callback_set(m, raw_on_connect);
  mosquitto_subscribe_callback_set(m, raw_on_subscribe);
  mosquitto_publish_callback_set(m, raw_on_publish);
  mosquitto_message_callback_set(m, raw_on_message);
  if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS)
    throw std::runtime_error("mosquitto_connect failed");
  mosquitto_loop_start(m);
  return m;
}

RunResult run_raw(int64_t count, int qos, int batch, int port, int timeout_ms) {
  constexpr int kWindow = 64;
  RunResult res;
  res.sent = static_cast<uint64_t>(count);
  mosquitto_lib_init();
  RawState sub_state, pub_state;
  sub_state.topic = "bench/link";
  sub_state.qos = qos;
  sub_state.expected = count;
  mosquitto* sub = raw_client("bench-raw-sub", &sub_state, port, kWindow);
  {
    std::unique_lock<std::mutex> lock(sub_state.mu);
    if (!sub_state.cv.wait_for(lock, std::chrono::seconds(5), [&] { return sub_state.subscribed; }))
      throw std::runtime_error("subscriber did not subscribe");
  }
  mosquitto* pub = raw_client("bench-raw-pub", &pub_state, port, kWindow);
  {
    std::unique_lock<std::mutex> lock(pub_state.mu);
    if (!pub_state.cv.wait_for(lock, std::chrono::seconds(5), [&] { return pub_state.connected; }))
      throw std::runtime_error("publisher did not connect");
  }
  const int64_t t0 = now_ns();
  BatchWriter writer;
  std::string frame, why;
  int64_t frames = 0;
  auto send = [&](bool end) {
    BatchHeader h;
    h.sender = "edge";
    h.session = 42;
    h.sequence = static_cast<uint64_t>(++frames);
    h.end = end;
    writer.finish(h, frame);
    if (qos > 0) {
      std::unique_lock<std::mutex> lock(pub_state.mu);
      pub_state.cv.wait(lock, [&] { return frames - 1 - pub_state.acked < kWindow; });
    }
    int rc = mosquitto_publish(pub, nullptr, sub_state.topic.c_str(),
                               static_cast<int>(frame.size()), frame.data(), qos, false);
    if (rc != MOSQ_ERR_SUCCESS) throw std::runtime_error("mosquitto_publish failed");
  };
  for (int64_t n = 0; n < count; ++n) {
    auto m = make_reading(n);
    if (!writer.add(*m, why)) throw std::runtime_error(why);
    if (writer.count() >= static_cast<size_t>(batch)) send(false);
  }
  send(true);
  {
    // Bounded: no progress for 10 s (or the overall timeout) ends the wait, and the run is lossy.
    std::unique_lock<std::mutex> lock(sub_state.mu);
    int64_t deadline = t0 + static_cast<int64_t>(timeout_ms) * 1'000'000;
    int64_t seen = -1, seen_at = now_ns();
    while (sub_state.received < count && now_ns() < deadline) {
      if (sub_state.received != seen) seen = sub_state.received, seen_at = now_ns();
      if (now_ns() - seen_at > 10'000'000'000) break;
      sub_state.cv.wait_for(lock, std::chrono::milliseconds(100));
    }
    res.delivered = static_cast<uint64_t>(sub_state.received);
    res.seconds = static_cast<double>(sub_state.last_ns - t0) / 1e9;
    res.ok = sub_state.received == count && sub_state.bad_frames == 0;
    if (sub_state.bad_frames) res.set_note(std::to_string(sub_state.bad_frames) + " bad frames");
  }
  mosquitto_disconnect(pub);
  mosquitto_loop_stop(pub, false);
  mosquitto_disconnect(sub);
  mosquitto_loop_stop(sub, false);
  mosquitto_destroy(pub);
  mosquitto_destroy(sub);
  mosquitto_lib_cleanup();
  return res;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  using namespace edgeflow::bench;
  Args args = parse_args(argc, argv, "link_bench [--quick] [--count N] [--rounds R]");
  const int64_t count = args.count ? args.count : args.quick ? 300'000 : 1'000'000;
  const int timeout_ms = args.quick ? 60'000 : 300'000;

  // A fresh broker per run: no session, retained announcement or queued frame of an earlier
  // run can reach the next one. Started here, in the parent, so its memory is not the child's.
  const std::string ca_dir = make_test_ca(EDGEFLOW_SOURCE_DIR);  // for the TLS variants
  auto with_broker = [timeout_ms, ca_dir](std::function<RunResult(mqtt::EmbeddedBroker&)> body,
                                          bool tls = false) {
    return [timeout_ms, body, tls, ca_dir] {
      mqtt::EmbeddedBrokerOptions bo;
      bo.persistence = false;
      if (tls) {
        bo.tls_ca_file = ca_dir + "/ca.crt";
        bo.tls_cert_file = ca_dir + "/server.crt";
        bo.tls_key_file = ca_dir + "/server.key";
      }
      mqtt::EmbeddedBroker broker(bo);
      broker.start();
      return run_forked([&] { return body(broker); }, timeout_ms + 15'000);
    };
  };
  auto link = [&](const std::string& client, int qos, bool tls = false) {
    const std::string links = "{via: mqtt, mqtt: {client: " + client +
                              ", qos: " + std::to_string(qos) +
                              (tls ? ", tls: {ca_file: \"" + ca_dir + "/ca.crt\"}" : "") + "}}";
    return with_broker(
        [=](mqtt::EmbeddedBroker& b) {
          return run_readings_pipeline(count, links, true, b.uri(), timeout_ms);
        },
        tls);
  };
  auto raw = [&](int qos, int batch) {
    return with_broker(
        [=](mqtt::EmbeddedBroker& b) { return run_raw(count, qos, batch, b.port(), timeout_ms); });
  };
  std::vector<Variant> vs;
  vs.emplace_back("a", "in-process queues (no transport)", [&] {
    return run_forked(
        [&] { return run_readings_pipeline(count, "{via: mqtt}", false, "", timeout_ms); },
        timeout_ms + 15'000);
  });
  vs.emplace_back("b", "MQTT link, libmosquitto, QoS 1", link("mosquitto", 1));
  vs.emplace_back("c", "MQTT link, libmosquitto, QoS 0", link("mosquitto", 0));
  vs.emplace_back("d", "MQTT link, Paho C++, QoS 1", link("paho", 1));
  vs.emplace_back("e", "raw libmosquitto, QoS 1, 1000/frame", raw(1, 1000));
  vs.emplace_back("e0", "raw libmosquitto, QoS 0, 1000/frame", raw(0, 1000));
  vs.emplace_back("e256", "raw libmosquitto, QoS 1, 256/frame", raw(1, 256));
  if (!ca_dir.empty()) {
    vs.emplace_back("bt", "MQTT link over TLS, libmosquitto, QoS 1", link("mosquitto", 1, true));
    vs.emplace_back("dt", "MQTT link over TLS, Paho C++, QoS 1", link("paho", 1, true));
  }

  std::printf("link_bench: %lld readings (3 numbers + origin) edge -> cloud, %s\n",
              static_cast<long long>(count),
              args.quick ? "quick: one round" : ("best of " + std::to_string(args.rounds)).c_str());
  run_rounds(vs, args.rounds);
  print_table(vs, "readings/s");
  print_rss_floor();
  print_ratio(vs, "b", "e", "libmosquitto link / raw libmosquitto, QoS 1");
  print_ratio(vs, "d", "e", "Paho link / raw libmosquitto, QoS 1");
  print_ratio(vs, "b", "a", "libmosquitto link QoS 1 / in-process queues");
  print_ratio(vs, "c", "e0", "libmosquitto link / raw libmosquitto, QoS 0");
  print_ratio(vs, "b", "e256", "libmosquitto link / raw libmosquitto with the link's frame size");
  if (!ca_dir.empty()) {
    print_ratio(vs, "bt", "b", "libmosquitto link over TLS / plaintext, QoS 1");
    print_ratio(vs, "dt", "d", "Paho link over TLS / plaintext, QoS 1");
    print_cpu_ratio(vs, "bt", "b", "libmosquitto link CPU per reading, TLS / plaintext, QoS 1");
    std::error_code ec;
    std::filesystem::remove_all(ca_dir, ec);
  }
  const Variant* b = find_variant(vs, "b");
  std::printf("target: b >= 1000000 readings/s: %s\n", b->failed          ? "n/a"
                                                       : b->rate() >= 1e6 ? "met"
                                                                          : "NOT met");
  return any_failed(vs) ? 1 : 0;
}
