// An MQTT relay: subscribe to bench/in, parse a 100-byte JSON reading, add a field, publish the
// JSON to bench/out. The pipeline (mqtt.subscribe -> map -> mqtt.publish, format json) against
// hand-written libmosquitto relays doing the same work, at QoS 0 and QoS 1:
//
//   p   the pipeline: mqtt.subscribe {format: json} -> map {set: temp_f} -> mqtt.publish
//   hc  hand relay, publishing from libmosquitto's message callback (one client, one network
//       thread: parse, add, dump, mosquitto_publish, all in the callback). libmosquitto allows
//       it: publish only queues the packet for the loop thread, it never waits for an ack.
//   hcs hc with a window of 100 (kSmallWindow, mqtt.publish's default max_inflight) rather
//       than the load generator's 1000: libmosquitto walks its whole in-flight list on every
//       publish and acknowledgement, so the small window is the thriftier hand relay at QoS 1.
//   hq  hand relay as MQTT-NOTES advises: the callback only enqueues (bounded queue, 1024),
//       a worker thread parses, adds, dumps and publishes, with a window of 1000. Two
//       clients: the subscriber's network thread blocks on a full queue (back-pressure to the
//       broker), so the acknowledgements of our publishes need a network thread of their own.
//   b   no relay: the load generator publishes straight to bench/out (the broker's ceiling)
//   pt, hct  p and hc with everything over TLS (a mosquitto TLS listener, a test CA from
//       scripts/make-test-ca.sh, host names verified): what TLS costs each relay.
// The ratio is taken against the faster of hc and hq in this run. The pipeline does a little
// more: mqtt.subscribe adds a `topic` field and mqtt.publish's JSON adds `time` and `origin`.
//
// Each relay runs in a forked child (its own peak RSS and CPU time). The parent drives it: a
// libmosquitto load generator publishes N readings to bench/in as fast as it may (1000 in
// flight), a libmosquitto counter subscribed to bench/out counts them and checks that each
// has the added field. Warm-up readings (marked "warm") go through first, until one comes out,
// so the relay is subscribed before the clock starts. The time runs from the first reading
// published to the last one counted. The counter gives up after a few seconds without progress:
// a run with losses prints them and fails (exit 1), it never hangs. A fresh embedded mosquitto
// on a free port per run.
//
//   build-bench/bench/mqtt_relay_bench [--quick] [--count N] [--rounds R]
#include <mosquitto.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "bench/bench_util.h"
#include "bench/hand_relay.h"
#include "brokers/mqtt/embedded_broker.h"
#include "runtime/executor.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {
namespace {

using bench::now_ns;
using bench::RunResult;

// ---- the hand-written relays (run in the child; the relays themselves: bench/hand_relay.h) ----

using bench::HandRelay;
using bench::kInTopic;
using bench::kOutTopic;
using bench::kSmallWindow;
using bench::kWindow;
using bench::reading_json;
using bench::relay_client;
using bench::relay_pipeline;

// ca: connect over TLS, trusting this CA ("" = plaintext).
void use_tls(mosquitto* m, const std::string& ca) {
  if (!ca.empty() &&
      mosquitto_tls_set(m, ca.c_str(), nullptr, nullptr, nullptr, nullptr) != MOSQ_ERR_SUCCESS)
    throw std::runtime_error("cannot use the test CA " + ca);
}

RunResult run_hand_relay(int port, int qos, bool from_callback, int window, int control_fd,
                         const std::string& ca) {
  RunResult res;
  mosquitto_lib_init();
  HandRelay r;
  r.qos = qos;
  r.from_callback = from_callback;
  r.window = window;
  // The publisher first: mosq's callbacks may use it as soon as mosq connects.
  if (!from_callback) {
    r.pub = relay_client("bench-hand-relay-pub", &r);
    use_tls(r.pub, ca);
    if (mosquitto_connect(r.pub, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS)
      throw std::runtime_error("hand relay: cannot connect");
    mosquitto_loop_start(r.pub);
    r.worker = std::thread([&r] { r.work(); });
  }
  r.mosq = relay_client("bench-hand-relay", &r);
  use_tls(r.mosq, ca);
  if (mosquitto_connect(r.mosq, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS)
    throw std::runtime_error("hand relay: cannot connect");
  mosquitto_loop_start(r.mosq);
  bench::read_command(control_fd, 600'000);  // the parent says when the run is over
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.stopping = true;
    r.cv.notify_all();
  }
  mosquitto_disconnect(r.mosq);
  mosquitto_loop_stop(r.mosq, false);
  mosquitto_destroy(r.mosq);
  if (r.worker.joinable()) r.worker.join();
  if (r.pub) {
    mosquitto_disconnect(r.pub);
    mosquitto_loop_stop(r.pub, false);
    mosquitto_destroy(r.pub);
  }
  mosquitto_lib_cleanup();
  res.ok = r.bad == 0;
  res.delivered = static_cast<uint64_t>(r.relayed);
  if (r.bad) res.set_note(std::to_string(r.bad) + " readings did not parse");
  return res;
}

// ---- the pipeline (run in the child) ----

RunResult run_pipeline_relay(const std::string& broker, int qos, int control_fd,
                             const std::string& ca) {
  RunResult res;
  LoadResult lr = load_pipeline_text(relay_pipeline(broker, qos, ca), "relay_bench.yaml", ".");
  if (!lr.pipeline) {
    res.set_note("pipeline: " + lr.diags.str());
    return res;
  }
  PipelineSpec pipeline = std::move(*lr.pipeline);
  pipeline.links.mqtt_broker = broker;
  const Plan plan = place(pipeline);
  uint64_t errors = 0, relayed = 0, dropped = 0;
  bool finished = false;
  {
    Executor ex(pipeline, plan, ExecutorOptions{});
    ex.start();
    bench::read_command(control_fd, 600'000);
    ex.request_stop();
    finished = ex.wait(20'000'000);
    for (const StageMetrics& m : ex.metrics()) {
      errors += m.errors;
      dropped += m.dropped;
      if (m.stage == "out") relayed += m.in;
    }
  }
  res.ok = finished && errors == 0;
  res.delivered = relayed;
  if (!finished) res.set_note("did not stop within 20 s");
  if (errors || dropped)
    res.set_note(std::to_string(errors) + " stage errors, " + std::to_string(dropped) + " dropped");
  return res;
}

// ---- load generator and counter (in the parent) ----

struct Driver {
  std::mutex mu;
  std::condition_variable cv;
  bool connected = false, subscribed = false;
  int64_t in_flight = 0;
  int64_t counted = 0, warm = 0, bad = 0, last_ns = 0;

  static void on_connect(mosquitto*, void* obj, int rc) {
    auto* d = static_cast<Driver*>(obj);
    std::lock_guard<std::mutex> lock(d->mu);
    d->connected = rc == 0;
    d->cv.notify_all();
  }
  static void on_subscribe(mosquitto*, void* obj, int, int, const int*) {
    auto* d = static_cast<Driver*>(obj);
    std::lock_guard<std::mutex> lock(d->mu);
    d->subscribed = true;
    d->cv.notify_all();
  }
  static void on_publish(mosquitto*, void* obj, int) {
    auto* d = static_cast<Driver*>(obj);
    std::lock_guard<std::mutex> lock(d->mu);
    --d->in_flight;
    d->cv.notify_all();
  }
  static void on_message(mosquitto*, void* obj, const mosquitto_message* msg) {
    auto* d = static_cast<Driver*>(obj);
    std::string_view p(static_cast<const char*>(msg->payload),
                       static_cast<size_t>(msg->payloadlen));
    const bool is_warm = p.find("\"warm\"") != std::string_view::npos;
    const bool ok = p.find("\"temp_f\"") != std::string_view::npos;
    std::lock_guard<std::mutex> lock(d->mu);
    if (!ok) ++d->bad;
    if (is_warm) {
      ++d->warm;
    } else {
      ++d->counted;
      d->last_ns = now_ns();
    }
    d->cv.notify_all();
  }
};

mosquitto* driver_client(const char* id, Driver* d, int port, const std::string& ca) {
  mosquitto* m = mosquitto_new(id, true, d);
  use_tls(m, ca);
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_max_inflight_messages_set(m, kWindow);
  mosquitto_connect_callback_set(m, Driver::on_connect);
  mosquitto_subscribe_callback_set(m, Driver::on_subscribe);
  mosquitto_publish_callback_set(m, Driver::on_publish);
  mosquitto_message_callback_set(m, Driver::on_message);
  if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS)
    throw std::runtime_error("driver: cannot connect");
  mosquitto_loop_start(m);
  return m;
}

// Drives one run of the relay in `child`; the figure comes from the counter.
// `direct`: no relay, the load generator publishes straight to bench/out (the broker alone).
bench::Measured drive(bench::Child& child, int port, int qos, int64_t count, int quiet_ms,
                      bool direct, const std::string& ca) {
  const char* topic = direct ? kOutTopic : kInTopic;
  RunResult res;
  res.sent = static_cast<uint64_t>(count);
  Driver counter, gen;
  mosquitto* sub = driver_client("bench-counter", &counter, port, ca);
  mosquitto* pub = driver_client("bench-loadgen", &gen, port, ca);
  bool started = false;
  {
    std::unique_lock<std::mutex> lock(counter.mu);
    if (!counter.cv.wait_for(lock, std::chrono::seconds(5), [&] { return counter.connected; }))
      res.set_note("counter did not connect");
  }
  mosquitto_subscribe(sub, nullptr, kOutTopic, qos);
  {
    std::unique_lock<std::mutex> lock(counter.mu);
    counter.cv.wait_for(lock, std::chrono::seconds(5), [&] { return counter.subscribed; });
  }
  {
    std::unique_lock<std::mutex> lock(gen.mu);
    gen.cv.wait_for(lock, std::chrono::seconds(5), [&] { return gen.connected; });
  }
  // Warm-up: until a reading makes it through, the relay may not be subscribed yet.
  const std::string warm = reading_json(-1, true, direct);
  for (int i = 0; i < 150 && !started && !child.exited(); ++i) {
    {
      std::lock_guard<std::mutex> lock(gen.mu);
      ++gen.in_flight;  // its on_publish comes like any other's
    }
    mosquitto_publish(pub, nullptr, topic, static_cast<int>(warm.size()), warm.data(), qos, false);
    std::unique_lock<std::mutex> lock(counter.mu);
    started =
        counter.cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return counter.warm > 0; });
  }
  if (!started && !res.note[0] && !child.exited()) res.set_note("relay passed nothing within 15 s");
  if (started) {
    // Made on the fly: a buffer of them would stay in this process's heap and show up in the
    // RSS of the next forked relay. libmosquitto calls on_publish for QoS 0 too, once the
    // packet is written, so one window bounds its queue at both QoS.
    const int64_t t0 = now_ns();
    for (int64_t n = 0; n < count; ++n) {
      const std::string p = reading_json(n, false, direct);
      {
        std::unique_lock<std::mutex> lock(gen.mu);
        gen.cv.wait(lock, [&] { return gen.in_flight < kWindow; });
        ++gen.in_flight;
      }
      mosquitto_publish(pub, nullptr, topic, static_cast<int>(p.size()), p.data(), qos, false);
    }
    // Bounded: stop waiting after quiet_ms without a new reading.
    std::unique_lock<std::mutex> lock(counter.mu);
    int64_t seen = -1, seen_at = now_ns();
    while (counter.counted < count) {
      if (counter.counted != seen) seen = counter.counted, seen_at = now_ns();
      if (now_ns() - seen_at > static_cast<int64_t>(quiet_ms) * 1'000'000) break;
      counter.cv.wait_for(lock, std::chrono::milliseconds(100));
    }
    res.delivered = static_cast<uint64_t>(counter.counted);
    res.seconds = static_cast<double>(counter.last_ns - t0) / 1e9;
    res.ok = counter.counted == count && counter.bad == 0;
    if (counter.counted < count)
      res.set_note("lost " + std::to_string(count - counter.counted) + " readings");
    if (counter.bad) res.set_note(std::to_string(counter.bad) + " readings without temp_f");
  }
  mosquitto_disconnect(pub);
  mosquitto_loop_stop(pub, false);
  mosquitto_disconnect(sub);
  mosquitto_loop_stop(sub, false);
  mosquitto_destroy(pub);
  mosquitto_destroy(sub);

  child.send('s');
  bench::Measured m = child.finish(60'000);
  const RunResult relay = m.result;
  m.result = res;
  if (!relay.ok) {
    m.result.ok = false;
    m.result.set_note(std::string("relay: ") + relay.note);
  } else if (res.ok && relay.note[0]) {
    m.result.set_note(relay.note);
  }
  return m;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  using namespace edgeflow::bench;
  Args args = parse_args(argc, argv, "mqtt_relay_bench [--quick] [--count N] [--rounds R]");
  const int64_t count = args.count ? args.count : args.quick ? 20'000 : 100'000;
  mosquitto_lib_init();

  const std::string ca_dir = make_test_ca(EDGEFLOW_SOURCE_DIR);  // for the TLS variants
  const bool have_tls = !ca_dir.empty();

  // kind: 'p' pipeline, 'c' hand relay publishing from the callback ('s': with the small
  // window), 'q' hand relay with a queue and a publishing thread; tls: all clients through the
  // broker's TLS listener.
  auto relay = [count, ca_dir](char kind, int qos, bool tls = false) {
    return [=] {
      mqtt::EmbeddedBrokerOptions bo;
      bo.persistence = false;
      const std::string ca = tls ? ca_dir + "/ca.crt" : "";
      if (tls) {
        bo.tls_ca_file = ca;
        bo.tls_cert_file = ca_dir + "/server.crt";
        bo.tls_key_file = ca_dir + "/server.key";
      }
      mqtt::EmbeddedBroker broker(bo);
      broker.start();
      const int port = broker.port();
      const std::string uri = broker.uri();
      Child child([&](int control_fd) {
        if (kind == 'p') return run_pipeline_relay(uri, qos, control_fd, ca);
        if (kind == 'b') {
          bench::read_command(control_fd, 600'000);
          RunResult idle;
          idle.ok = true;
          return idle;
        }
        return run_hand_relay(port, qos, kind == 'c' || kind == 's',
                              kind == 's' ? kSmallWindow : kWindow, control_fd, ca);
      });
      return drive(child, port, qos, count, qos == 0 ? 3'000 : 10'000, kind == 'b', ca);
    };
  };
  std::vector<Variant> vs;
  for (int qos : {0, 1}) {
    const std::string q = std::to_string(qos);
    vs.emplace_back("p" + q, "pipeline, QoS " + q, relay('p', qos));
    vs.emplace_back("hc" + q, "hand relay, publish in callback, QoS " + q, relay('c', qos));
    if (qos > 0)
      vs.emplace_back("hcs" + q, "hand relay, publish in callback, window 100, QoS " + q,
                      relay('s', qos));
    vs.emplace_back("hq" + q, "hand relay, queue + thread, QoS " + q, relay('q', qos));
    vs.emplace_back("b" + q, "broker alone (no relay), QoS " + q, relay('b', qos));
    if (have_tls) {
      vs.emplace_back("pt" + q, "pipeline over TLS, QoS " + q, relay('p', qos, true));
      vs.emplace_back("hct" + q, "hand relay over TLS, publish in callback, QoS " + q,
                      relay('c', qos, true));
    }
  }
  std::printf(
      "mqtt_relay_bench: %lld JSON readings of ~100 bytes, bench/in -> relay -> bench/out, %s\n",
      static_cast<long long>(count),
      args.quick ? "quick: one round" : ("best of " + std::to_string(args.rounds)).c_str());
  run_rounds(vs, args.rounds);
  print_table(vs, "readings/s");
  print_rss_floor();
  for (int qos : {0, 1}) {
    const std::string q = std::to_string(qos);
    // Against the best hand relay of this run: the faster for the rate, the thriftier for CPU
    // per message (those that ran, with --only, and did not fail).
    std::string faster, thriftier;
    auto per_message = [](const Variant& v) {
      return v.best_cpu_seconds / static_cast<double>(v.best.delivered);
    };
    for (const char* k : {"hc", "hcs", "hq"}) {
      const Variant* v = find_variant(vs, k + q);
      if (!v || v->failed || v->best.delivered == 0) continue;
      const Variant* f = faster.empty() ? nullptr : find_variant(vs, faster);
      const Variant* t = thriftier.empty() ? nullptr : find_variant(vs, thriftier);
      if (!f || v->rate() > f->rate()) faster = k + q;
      if (!t || per_message(*v) < per_message(*t)) thriftier = k + q;
    }
    if (faster.empty()) faster = thriftier = "hc" + q;  // prints n/a
    print_ratio(vs, "p" + q, faster, "pipeline / faster hand relay, QoS " + q, 0.9);
    print_ratio(vs, faster, "b" + q, "faster hand relay / broker alone, QoS " + q);
    print_cpu_ratio(vs, "p" + q, thriftier,
                    "pipeline CPU per message / thriftier hand relay, QoS " + q, 1.2);
  }
  for (int qos : {0, 1}) {
    if (!have_tls) break;
    const std::string q = std::to_string(qos);
    print_ratio(vs, "pt" + q, "p" + q, "pipeline over TLS / plaintext, QoS " + q);
    print_ratio(vs, "hct" + q, "hc" + q, "hand relay over TLS / plaintext, QoS " + q);
    print_cpu_ratio(vs, "pt" + q, "p" + q, "pipeline CPU per message, TLS / plaintext, QoS " + q);
    print_cpu_ratio(vs, "pt" + q, "hct" + q,
                    "pipeline CPU per message / hand relay, both over TLS, QoS " + q);
  }
  if (!ca_dir.empty()) std::filesystem::remove_all(ca_dir);
  mosquitto_lib_cleanup();
  return any_failed(vs) ? 1 : 0;
}
