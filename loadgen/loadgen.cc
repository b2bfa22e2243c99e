#include "loadgen/loadgen.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/security.h"

namespace edgeflow::loadgen {

namespace {

using Clock = std::chrono::steady_clock;

// Three file descriptors per connection, and libmosquitto 2.0.11's select() loop refuses any
// above 1023: past this, one shared connection is the way (what a gateway does anyway).
constexpr int kMaxPerSensorClients = 300;
constexpr double kMaxTotalRate = 1e7;  // readings per second asked, in all

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

double unit(uint64_t x) { return static_cast<double>(splitmix64(x) >> 11) / 9007199254740992.0; }

std::string topic_of(const Options& o, int i) {
  std::string t = o.topic;
  const std::string id = sensor_id(i);
  for (size_t at = t.find("{id}"); at != std::string::npos; at = t.find("{id}", at + id.size()))
    t.replace(at, 4, id);
  return t;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string sensor_id(int i) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "s%06d", i);
  return buf;
}

std::string reading(const Options& o, int i, int64_t seq, double time_s) {
  const uint64_t key =
      o.seed * 0x100000001b3ull ^ (static_cast<uint64_t>(i) << 32) ^ static_cast<uint64_t>(seq);
  const double temperature = std::round((10.0 + 20.0 * unit(key)) * 100.0) / 100.0;
  const double humidity = std::round((30.0 + 60.0 * unit(key ^ 0x5bd1e995ull)) * 10.0) / 10.0;
  char buf[192];
  std::snprintf(buf, sizeof buf,
                "{\"sensor_id\":\"%s\",\"seq\":%lld,\"temperature\":%.2f,\"humidity\":%.1f,"
                "\"time\":%.3f}",
                sensor_id(i).c_str(), static_cast<long long>(seq), temperature, humidity, time_s);
  return buf;
}

Result run(const Options& o, const std::atomic<bool>* stop) {
  if (o.sensors < 1) throw std::runtime_error("--sensors must be at least 1");
  if (!(o.rate > 0)) throw std::runtime_error("--rate must be above 0 readings per second");
  if (o.seconds <= 0 && o.count <= 0) throw std::runtime_error("give --seconds or --count");
  if (o.rate * o.sensors > kMaxTotalRate)
    throw std::runtime_error("--rate times --sensors asks for more than 10,000,000 readings/s");
  if (o.count > 0 && o.count > INT64_MAX / o.sensors)
    throw std::runtime_error("--count times --sensors is too large");
  if (o.topic.find("{id}") == std::string::npos)
    throw std::runtime_error("--topic must hold {id}, as in sensors/{id}/reading");
  if (o.topic.find_first_of("+#") != std::string::npos)
    throw std::runtime_error("--topic must not hold MQTT wildcards (+ or #)");
  if (o.per_sensor_clients && o.sensors > kMaxPerSensorClients)
    throw std::runtime_error(
        "--clients per-sensor opens three file descriptors per sensor, and libmosquitto "
        "refuses those above 1023: at most " +
        std::to_string(kMaxPerSensorClients) + " sensors; use the shared connection for more");
  mqtt::ClientOptions co;
  co.uri = o.broker;
  MqttSecurity security;
  security.ca_file = o.tls_ca;
  security.credentials_file = o.credentials;
  mqtt::apply_security(security, co);
  co.connect_timeout_ms = 10000;
  co.clean_session = true;
  co.max_inflight = 1000;
  // Unique across hosts and containers (two pid 1s), or the broker would kick one for another.
  char host[64] = {0};
  ::gethostname(host, sizeof host - 1);
  const uint64_t salt = splitmix64(
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
  const std::string prefix = "edgeflow-loadgen-" + std::string(host) + "-" +
                             std::to_string(::getpid()) + "-" + std::to_string(salt % 1000000);
  std::vector<std::unique_ptr<mqtt::Client>> clients;
  const int connections = o.per_sensor_clients ? o.sensors : 1;
  for (int c = 0; c < connections; ++c) {
    co.client_id = prefix + (o.per_sensor_clients ? "-" + sensor_id(c) : std::string());
    clients.push_back(mqtt::make_client("mosquitto", co, [](mqtt::Received&&) {}));
    clients.back()->connect();  // throws MqttError naming the broker and the cause
  }
  std::vector<std::string> topics;
  topics.reserve(static_cast<size_t>(o.sensors));
  for (int i = 0; i < o.sensors; ++i) topics.push_back(topic_of(o, i));

  Result r;
  r.connections = connections;
  const double total_rate = o.rate * o.sensors;
  // --count, or what --seconds holds at the rate asked. A generator more than a second behind
  // its rate stops then, having sent fewer.
  const int64_t limit_n =
      o.count > 0 ? o.count * o.sensors : static_cast<int64_t>(std::ceil(o.seconds * total_rate));
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  auto over = [&] {
    return (stop && stop->load()) || (o.count <= 0 && elapsed() >= o.seconds + 1.0);
  };
  const double wall0 = wall_seconds();
  int64_t next = 0;  // reading number n: sensor n % sensors, seq n / sensors, due n / rate
  while (next < limit_n && !over()) {
    const int64_t due =
        std::min<int64_t>(limit_n, static_cast<int64_t>(elapsed() * total_rate) + 1);
    for (; next < due; ++next) {
      // Behind its rate, a batch is the whole backlog: the stop and the clock are seen within.
      if ((next & 255) == 0 && over()) break;
      const int i = static_cast<int>(next % o.sensors);
      const int64_t seq = next / o.sensors;
      const std::string payload =
          reading(o, i, seq, wall0 + static_cast<double>(next) / total_rate);
      mqtt::Client& c = *clients[o.per_sensor_clients ? static_cast<size_t>(i) : 0];
      if (c.publish(topics[static_cast<size_t>(i)], payload.data(), payload.size(), o.qos, false,
                    1000)) {
        ++r.published;
      } else {
        ++r.failed;
      }
    }
    // Sleep until the next reading is due (at most 10 ms, so a stop is seen).
    const double wait = static_cast<double>(next) / total_rate - elapsed();
    if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(std::min(wait, 0.01)));
  }
  // QoS 1: one deadline for every connection's last acknowledgements, inside the time. QoS 0
  // counts what the client took: the broker acknowledges nothing.
  const auto flush_until = Clock::now() + std::chrono::seconds(10);
  for (auto& c : clients) {
    if (o.qos == 0) continue;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(flush_until - Clock::now()).count();
    if (!c->flush(static_cast<int>(std::max<int64_t>(0, left)))) {
      const uint64_t unacknowledged = c->stats().unacknowledged;
      r.failed += unacknowledged;
      r.published -= std::min<uint64_t>(r.published, unacknowledged);
    }
  }
  r.seconds = elapsed();
  for (auto& c : clients) c->disconnect();
  return r;
}

namespace {
std::atomic<bool> g_stop{false};
}  // namespace

int cmd_loadgen(const Options& o) {
  // main() blocks these for `run`; here Ctrl-C must end the run with its summary.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = true; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  Result r;
  try {
    r = run(o, &g_stop);
  } catch (const mqtt::MqttError& e) {
    std::fprintf(stderr, "edgeflow loadgen: %s; check --broker\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edgeflow loadgen: %s\n", e.what());
    return 2;
  }
  std::printf(
      "published %llu readings of %d sensors in %.1f s (%.0f/s) on %d connection%s, "
      "%llu failed\n",
      static_cast<unsigned long long>(r.published), o.sensors, r.seconds,
      r.seconds > 0 ? static_cast<double>(r.published) / r.seconds : 0.0, r.connections,
      r.connections == 1 ? "" : "s", static_cast<unsigned long long>(r.failed));
  return r.failed == 0 ? 0 : 1;
}

}  // namespace edgeflow::loadgen
