// Many origins into one cloud process: plain MQTT sensors (loadgen's readings, one topic per
// sensor) into mqtt.subscribe {origin: topic[2]} -> weather.aggregate (a minute per sensor),
// against the broker's own limit in the same run:
//
//   b   a raw libmosquitto subscriber that only counts: publisher straight to subscriber
//   p   the cloud pipeline (Executor in a process of its own), windows of 5 s
//
// Each variant runs in a forked child (its own RSS and CPU) on a fresh embedded mosquitto. The
// parent publishes two readings per sensor (the sensor's two in a row, sensor after sensor,
// one connection, at most 1000 in flight). The rate is taken where they are received, from
// the first to the last, so both sides are timed the same way. The pipeline's child also
// reports the heap in use (mallinfo2, all arenas) before the first reading and once every
// reading is in, with every sensor's window still open: the bytes per active origin. Then one
// sensor goes on sending once a second past idle_timeout, and the others' windows are closed
// and freed: the heap after that shows what stays per forgotten origin (a tombstone).
//
//   build/bench/origins_bench [--quick] [--sensors N] [--rounds R] [--qos Q]
#include <malloc.h>
#include <mosquitto.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "bench/bench_util.h"
#include "brokers/mqtt/embedded_broker.h"
#include "loadgen/loadgen.h"
#include "runtime/executor.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {
namespace {

using bench::now_ns;
using bench::RunResult;

constexpr int kWindow = 1000;      // publishes in flight
constexpr int kIdleTimeoutS = 10;  // the pipeline's idle_timeout
constexpr int64_t kReadings = 2;   // per sensor
constexpr double kTime0 = 1.78e9;  // event time of the readings: a multiple of 5 s
const char* const kWarmTopic = "sensors/warm/reading";

int64_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
}

// The child tells the parent it is ready ('r'), then, on the parent's 'g', records where its
// count stands and answers 'o'; the parent publishes only after that.
struct Handshake {
  int ready_fd;  // child -> parent
  void say(char c) const { bench::write_all(ready_fd, &c, 1); }
};

// ---- b: a subscriber that only counts (in the child) ----

struct Counter {
  std::atomic<int64_t> counted{0}, warm{0};
  std::atomic<int64_t> first_ns{0}, last_ns{0};
  std::atomic<bool> subscribed{false};
  static void on_connect(mosquitto* m, void* obj, int rc) {
    if (rc == 0)
      mosquitto_subscribe(m, nullptr, "sensors/+/reading", static_cast<Counter*>(obj)->qos);
  }
  static void on_subscribe(mosquitto*, void* obj, int, int, const int*) {
    static_cast<Counter*>(obj)->subscribed = true;
  }
  static void on_message(mosquitto*, void* obj, const mosquitto_message* msg) {
    auto* c = static_cast<Counter*>(obj);
    if (std::strcmp(msg->topic, kWarmTopic) == 0) {
      ++c->warm;
      return;
    }
    const int64_t t = now_ns();
    if (c->counted.fetch_add(1) == 0) c->first_ns = t;
    c->last_ns = t;
  }
  int qos = 0;
};

RunResult run_counter(int port, int qos, int64_t expected, int control_fd, Handshake hs) {
  RunResult res;
  mosquitto_lib_init();
  Counter c;
  c.qos = qos;
  mosquitto* m = mosquitto_new("bench-counter", true, &c);
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_connect_callback_set(m, Counter::on_connect);
  mosquitto_subscribe_callback_set(m, Counter::on_subscribe);
  mosquitto_message_callback_set(m, Counter::on_message);
  if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS)
    throw std::runtime_error("counter: cannot connect");
  mosquitto_loop_start(m);
  for (int i = 0; i < 1500 && c.warm == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  hs.say('r');
  if (bench::read_command(control_fd, 60'000) == 'g') hs.say('o');
  // Until every reading is in, or 5 s without one.
  int64_t seen = -1, seen_at = now_ns();
  while (c.counted < expected && now_ns() - seen_at < 5'000'000'000) {
    if (c.counted != seen) seen = c.counted, seen_at = now_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  bench::read_command(control_fd, 60'000);  // the parent's end
  mosquitto_disconnect(m);
  mosquitto_loop_stop(m, false);
  mosquitto_destroy(m);
  mosquitto_lib_cleanup();
  res.sent = static_cast<uint64_t>(expected);
  res.delivered = static_cast<uint64_t>(c.counted.load());
  res.seconds = static_cast<double>(c.last_ns - c.first_ns) / 1e9;
  res.ok = c.counted == expected;
  return res;
}

// ---- p: the cloud pipeline (in the child) ----

std::string cloud_pipeline(const std::string& broker, int qos) {
  return "pipeline: origins-bench\n"
         "links: { mqtt: { broker: \"" +
         broker +
         "\" } }\n"
         "stages:\n"
         "  - id: sensors\n"
         "    op: mqtt.subscribe\n"
         "    with: { topic: \"sensors/+/reading\", format: json, qos: " +
         std::to_string(qos) +
         ", time_field: time, origin: \"topic[2]\" }\n"
         "  - id: minute\n"
         "    op: weather.aggregate\n"
         "    from: sensors\n"
         "    with: { window: 5s, fields: [temperature, humidity], stats: [mean],\n"
         "            idle_timeout: " +
         std::to_string(kIdleTimeoutS) + "s }\n";
}

RunResult run_pipeline(const std::string& broker, int qos, int64_t sensors, int control_fd,
                       Handshake hs) {
  RunResult res;
  LoadResult lr = load_pipeline_text(cloud_pipeline(broker, qos), "origins_bench.yaml", ".");
  if (!lr.pipeline) {
    res.set_note("pipeline: " + lr.diags.str());
    return res;
  }
  const PipelineSpec pipeline = std::move(*lr.pipeline);
  const Plan plan = place(pipeline);
  const int64_t expected = sensors * kReadings;
  Executor ex(pipeline, plan, ExecutorOptions{});
  ex.start();
  auto stage = [&ex](const char* id) {
    for (const StageMetrics& m : ex.metrics())
      if (m.stage == id) return m;
    return StageMetrics{};
  };
  for (int i = 0; i < 1500 && stage("minute").in == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  hs.say('r');
  if (bench::read_command(control_fd, 60'000) != 'g') {
    ex.request_stop();
    ex.wait(20'000'000);
    res.set_note("no go from the parent");
    return res;
  }
  // Warm readings may still come; they are counted apart by their origin's window later.
  const int64_t base = static_cast<int64_t>(stage("minute").in);
  const int64_t heap_before = heap_in_use();
  hs.say('o');
  int64_t first_ns = 0, last_ns = 0, in = 0, seen = -1, seen_at = now_ns();
  while (in < expected && now_ns() - seen_at < 5'000'000'000) {
    in = static_cast<int64_t>(stage("minute").in) - base;
    const int64_t t = now_ns();
    if (in > 0 && first_ns == 0) first_ns = t;
    if (in != seen) seen = in, seen_at = t, last_ns = t;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  const int64_t heap_open = heap_in_use();
  // The parent keeps one sensor sending past idle_timeout ('i' when it did).
  int64_t heap_forgotten = 0;
  uint64_t windows = 0;
  if (bench::read_command(control_fd, 60'000) == 'i') {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    windows = stage("minute").out;
    heap_forgotten = heap_in_use();
  }
  ex.request_stop();
  const bool finished = ex.wait(20'000'000);
  uint64_t errors = 0, dropped = 0;
  for (const StageMetrics& m : ex.metrics()) errors += m.errors, dropped += m.dropped;
  res.sent = static_cast<uint64_t>(expected);
  res.delivered = static_cast<uint64_t>(std::max<int64_t>(0, in));
  res.seconds = static_cast<double>(last_ns - first_ns) / 1e9;
  res.ok = finished && errors == 0 && dropped == 0 && in == expected &&
           windows >= static_cast<uint64_t>(sensors);
  const double per_open = static_cast<double>(heap_open - heap_before) / sensors;
  const double per_gone = static_cast<double>(heap_forgotten - heap_before) / sensors;
  char note[200];
  std::snprintf(note, sizeof note,
                "heap/origin: %.0f B open, %.0f B forgotten; %llu windows emitted%s", per_open,
                per_gone, static_cast<unsigned long long>(windows),
                errors || dropped ? "; stage errors or drops" : "");
  res.set_note(note);
  return res;
}

// ---- the publisher (in the parent) ----

struct Publisher {
  std::mutex mu;
  std::condition_variable cv;
  bool connected = false;
  int64_t in_flight = 0;
  static void on_connect(mosquitto*, void* obj, int rc) {
    auto* p = static_cast<Publisher*>(obj);
    std::lock_guard<std::mutex> lock(p->mu);
    p->connected = rc == 0;
    p->cv.notify_all();
  }
  static void on_publish(mosquitto*, void* obj, int) {
    auto* p = static_cast<Publisher*>(obj);
    std::lock_guard<std::mutex> lock(p->mu);
    --p->in_flight;
    p->cv.notify_all();
  }
  void publish(mosquitto* m, const std::string& topic, const std::string& payload, int qos) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < kWindow; });
      ++in_flight;
    }
    mosquitto_publish(m, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(),
                      qos, false);
  }
};

bool read_byte(int fd, char want, int timeout_ms) {
  char c = 0;
  return bench::read_all(fd, &c, 1, timeout_ms) && c == want;
}

bench::Measured drive(char kind, int qos, int64_t sensors) {
  mqtt::EmbeddedBrokerOptions bo;
  bo.persistence = false;
  mqtt::EmbeddedBroker broker(bo);
  broker.start();
  const int port = broker.port();
  const std::string uri = broker.uri();
  int ready[2];
  if (::pipe(ready) != 0) throw std::runtime_error("pipe");
  bench::Child child([&](int control_fd) {
    ::close(ready[0]);
    Handshake hs{ready[1]};
    if (kind == 'p') return run_pipeline(uri, qos, sensors, control_fd, hs);
    return run_counter(port, qos, sensors * kReadings, control_fd, hs);
  });
  ::close(ready[1]);

  Publisher pub;
  mosquitto* m = mosquitto_new("bench-sensors", true, &pub);
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_max_inflight_messages_set(m, kWindow);
  mosquitto_connect_callback_set(m, Publisher::on_connect);
  mosquitto_publish_callback_set(m, Publisher::on_publish);
  mosquitto_connect(m, "127.0.0.1", port, 30);
  mosquitto_loop_start(m);
  loadgen::Options lo;
  lo.sensors = static_cast<int>(sensors);
  const std::string warm = loadgen::reading(lo, 0, 0, kTime0);
  // Made after the fork, so the child's RSS does not hold them; made before the clock starts,
  // so the publisher is not what is measured.
  std::vector<std::pair<std::string, std::string>> readings;
  readings.reserve(static_cast<size_t>(sensors * kReadings));
  for (int64_t i = 0; i < sensors; ++i) {
    const std::string topic = "sensors/" + loadgen::sensor_id(static_cast<int>(i)) + "/reading";
    for (int64_t seq = 0; seq < kReadings; ++seq)
      readings.emplace_back(topic, loadgen::reading(lo, static_cast<int>(i), seq, kTime0 + seq));
  }
  // Warm readings until the consumer has one (it is subscribed), at most 15 s.
  bool ready_seen = false;
  for (int i = 0; i < 150 && !ready_seen; ++i) {
    pub.publish(m, kWarmTopic, warm, qos);
    pollfd pfd{ready[0], POLLIN, 0};
    ready_seen = ::poll(&pfd, 1, 100) > 0 && read_byte(ready[0], 'r', 100);
  }
  bool go = false;
  if (ready_seen) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // warm ones in flight land
    child.send('g');
    go = read_byte(ready[0], 'o', 10'000);
  }
  if (go) {
    for (const auto& [topic, payload] : readings) pub.publish(m, topic, payload, qos);
    if (kind == 'p') {
      // One sensor goes on sending, once a second (a stall of the whole input would not count
      // as idleness); past idle_timeout the others are forgotten.
      for (int t = 0; t <= kIdleTimeoutS + 1; ++t) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        pub.publish(m, kWarmTopic, loadgen::reading(lo, 0, t + 1, kTime0 + 120 + t), qos);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      child.send('i');
    }
  }
  child.send('e');
  bench::Measured result = child.finish(120'000);
  ::close(ready[0]);
  mosquitto_disconnect(m);
  mosquitto_loop_stop(m, false);
  mosquitto_destroy(m);
  if (!go && !result.result.note[0]) result.result.set_note("the consumer never got ready");
  return result;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  using namespace edgeflow::bench;
  const char* usage = "origins_bench [--quick] [--sensors N] [--rounds R] [--qos 0|1]";
  int64_t sensors = 100'000;
  int rounds = 3, qos = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      sensors = 20'000, rounds = 1;
    } else if (a == "--sensors" && i + 1 < argc) {
      sensors = std::atoll(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--qos" && i + 1 < argc) {
      qos = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s\n", usage);
      return 2;
    }
  }
  if (sensors < 1 || sensors > 1'000'000 || rounds < 1 || qos < 0 || qos > 1) {
    std::fprintf(stderr, "usage: %s\n", usage);
    return 2;
  }
  mosquitto_lib_init();
  const std::string q = std::to_string(qos);
  std::vector<Variant> vs;
  vs.emplace_back("p", "cloud pipeline, one process, QoS " + q,
                  [=] { return drive('p', qos, sensors); });
  vs.emplace_back("b", "broker's limit (counting subscriber), QoS " + q,
                  [=] { return drive('b', qos, sensors); });
  std::printf("origins_bench: %lld sensors x %lld JSON readings, one topic each, %s\n",
              static_cast<long long>(sensors), static_cast<long long>(kReadings),
              rounds == 1 ? "one round" : ("best of " + std::to_string(rounds)).c_str());
  run_rounds(vs, rounds);
  print_table(vs, "readings/s");
  print_rss_floor();
  print_ratio(vs, "p", "b", "cloud pipeline / broker's limit", 0.9);
  mosquitto_lib_cleanup();
  return any_failed(vs) ? 1 : 0;
}
