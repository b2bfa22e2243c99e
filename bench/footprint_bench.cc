// Footprint (issue 13): the peak RSS and CPU time of edgeflow processes beside a hand-written
// libmosquitto relay, in the same run. Every figure is one whole process, started with
// fork/exec and measured by wait4: ru_maxrss (peak RSS) and ru_utime + ru_stime (CPU time).
//
//   hand relay      build/bench/mosquitto_relay (bench/hand_relay.h, publishing from the
//                   message callback; it links only libmosquitto), under load. Every ratio is
//                   against its peak RSS.
//   edgeflow relay  `edgeflow run relay.yaml --quiet --for Ns`: the same relay as a pipeline
//                   (mqtt.subscribe {format: json} -> map {set: temp_f} -> mqtt.publish), under
//                   the same load.
//   edge parts      `edgeflow run pipelines/X.yaml --node EDGE --broker URI --for Ns --quiet`
//                   for each example pipeline with an edge node. Its cloud part runs beside it
//                   (not measured): an edge part holds its link messages until the receiving
//                   node has subscribed, so without it the edge would only wait.
//   start-up        `edgeflow --version` and `edgeflow validate pipelines/weather-station.yaml`,
//                   20 runs each: median wall time and highest peak RSS, against issue 13's
//                   20 ms and 10 MiB.
//
// Load: a libmosquitto publisher in this process sends 100-byte JSON readings to bench/in at a
// fixed rate (2000/s) from the first warm-up reading the relay passes until 0.5 s before the
// relay's end; a libmosquitto counter here counts the readings arriving at bench/out with
// temp_f. A fresh embedded mosquitto on a free loopback port for every run.
//
// Two things to know when reading the figures. ru_maxrss also covers the forked copy of this
// process before exec (the kernel keeps the larger), so no figure can show less than this
// process's resident anonymous memory at fork: the `floor` line (/bin/true started the same
// way) gives it. And where the memory is: below the table, the largest of /proc/PID/smaps
// snapshots taken every 250 ms during each run, by mapping. No timed assertions: exit 1 only
// when a process fails to run or a relay relays nothing.
//
//   build/bench/footprint_bench [--quick] [--seconds N] [--rate R] [--qos Q]
#include <fcntl.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/hand_relay.h"
#include "brokers/mqtt/embedded_broker.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;
using bench::kInTopic;
using bench::kOutTopic;
using bench::kWindow;
using bench::now_ns;

constexpr char kUsage[] = "footprint_bench [--quick] [--seconds N] [--rate R] [--qos Q]";
constexpr int kStartupRuns = 20;
constexpr double kStartupTargetMs = 20;
constexpr double kStartupTargetMiB = 10;
constexpr int64_t kSampleEveryNs = 250'000'000;  // smaps snapshots
constexpr int64_t kLoadStopsBeforeEndNs = 500'000'000;

double mib(int64_t kb) { return static_cast<double>(kb) / 1024.0; }

// ---- where a process's RSS is: /proc/PID/smaps ----

struct Smaps {
  int64_t rss_kb = 0, anon_kb = 0;
  int libraries = 0;                                // shared objects mapped
  std::vector<std::pair<int64_t, std::string>> by;  // kB per mapping name, largest first
  double at_s = 0;                                  // since the process started
};

// Empty (rss_kb 0) when the process has gone.
Smaps read_smaps(pid_t pid) {
  Smaps s;
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  std::map<std::string, int64_t> rss;
  std::set<std::string> libraries;
  std::string line, name;
  while (std::getline(in, line)) {
    // A mapping's header: "start-end perms offset dev inode [name]"; then "Key: value kB".
    const size_t colon = line.find(':');
    const size_t dash = line.find('-');
    if (dash != std::string::npos && (colon == std::string::npos || dash < colon) &&
        line.find(' ') > dash) {
      std::istringstream h(line);
      std::string range, perms, offset, dev, inode;
      h >> range >> perms >> offset >> dev >> inode;
      std::getline(h >> std::ws, name);
      if (name.empty()) name = "[anon]";
      if (name[0] == '/') {
        if (name.find(".so") != std::string::npos) libraries.insert(name);
        name = fs::path(name).filename().string();
      }
      continue;
    }
    int64_t kb = 0;
    if (line.rfind("Rss:", 0) == 0) {
      kb = std::atoll(line.c_str() + 4);
      rss[name] += kb;
      s.rss_kb += kb;
    } else if (line.rfind("Anonymous:", 0) == 0) {
      s.anon_kb += std::atoll(line.c_str() + 10);
    }
  }
  for (const auto& [n, kb] : rss) s.by.emplace_back(kb, n);
  std::sort(s.by.begin(), s.by.end(), [](const auto& a, const auto& b) { return a > b; });
  s.libraries = static_cast<int>(libraries.size());
  return s;
}

// ---- child processes ----

struct Outcome {
  bool ok = false;  // ran and exited 0
  std::string why;  // when not ok
  double rss_mib = 0, cpu_ms = 0, wall_s = 0;
  Smaps smaps;  // the largest snapshot (when sampled)
};

std::string log_tail(const std::string& path, size_t lines = 6) {
  std::ifstream in(path);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += "\n      | " + all[i];
  return out;
}

// fork/exec with stdout and stderr in `log`. The child gets SIGTERM if this process dies.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const char* log_path = log.c_str();
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // This process has threads (libmosquitto's, the broker's): only async-signal-safe calls.
    const int fd = ::open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int null = ::open("/dev/null", O_RDONLY);
    if (fd >= 0) ::dup2(fd, 1), ::dup2(fd, 2);
    if (null >= 0) ::dup2(null, 0);
    ::close_range(3, ~0U, 0);  // not our clients' sockets
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::execv(args[0], args.data());
    static const char kFailed[] = "exec failed\n";
    [[maybe_unused]] ssize_t n = ::write(2, kFailed, sizeof kFailed - 1);
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` (started at start_ns) to exit; SIGKILL after timeout_ms. With `sample`, takes
// a smaps snapshot every 250 ms and keeps the largest. Sets *exited once it is gone.
Outcome wait_child(pid_t pid, int64_t start_ns, int64_t timeout_ms, bool sample,
                   std::atomic<bool>* exited = nullptr) {
  Outcome o;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  const int64_t deadline = start_ns + timeout_ms * 1'000'000;
  int64_t next_sample = start_ns + 100'000'000;
  bool killed = false;
  for (;;) {
    const int64_t now = now_ns();
    if (now >= deadline) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    const int64_t until = sample ? std::min(deadline, next_sample) : deadline;
    const int wait_ms = static_cast<int>(std::max<int64_t>(0, (until - now) / 1'000'000));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      if (::poll(&p, 1, wait_ms) > 0) break;
    } else {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(wait_ms, 2)));
    }
    if (sample && now_ns() >= next_sample) {
      Smaps s = read_smaps(pid);
      s.at_s = static_cast<double>(now_ns() - start_ns) / 1e9;
      if (s.rss_kb > o.smaps.rss_kb) o.smaps = std::move(s);
      next_sample += kSampleEveryNs;
    }
  }
  int status = 0;
  rusage ru{};
  while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  o.wall_s = static_cast<double>(now_ns() - start_ns) / 1e9;
  if (pidfd >= 0) ::close(pidfd);
  if (exited) exited->store(true);
  o.rss_mib = mib(ru.ru_maxrss);
  o.cpu_ms = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
             static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  if (killed) {
    o.why = "killed after " + std::to_string(timeout_ms / 1000) + " s";
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    o.ok = true;
  } else if (WIFEXITED(status)) {
    o.why = "exit status " + std::to_string(WEXITSTATUS(status));
  } else {
    o.why = std::string("killed by ") + ::strsignal(WTERMSIG(status));
  }
  return o;
}

// A process we run beside the measured one (a pipeline's cloud part): SIGTERM, then SIGKILL.
// Its failure before we stopped it is the run's failure.
std::string stop_companion(pid_t pid, const std::string& log) {
  siginfo_t info{};
  const bool gone =
      ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid == pid;
  if (!gone) ::kill(pid, SIGTERM);
  Outcome o = wait_child(pid, now_ns(), 15'000, false);
  if (gone && !o.ok) return "cloud part ended early: " + o.why + log_tail(log);
  return "";
}

// ---- load generator and counter (libmosquitto, in this process) ----

struct Side {
  std::mutex mu;
  std::condition_variable cv;
  bool connected = false, subscribed = false;
  int64_t in_flight = 0;                   // publisher: not yet acknowledged or written
  int64_t counted = 0, warm = 0, bad = 0;  // counter

  static void on_connect(mosquitto*, void* obj, int rc) {
    auto* s = static_cast<Side*>(obj);
    std::lock_guard<std::mutex> lock(s->mu);
    s->connected = rc == 0;
    s->cv.notify_all();
  }
  static void on_subscribe(mosquitto*, void* obj, int, int, const int*) {
    auto* s = static_cast<Side*>(obj);
    std::lock_guard<std::mutex> lock(s->mu);
    s->subscribed = true;
    s->cv.notify_all();
  }
  static void on_publish(mosquitto*, void* obj, int) {
    auto* s = static_cast<Side*>(obj);
    std::lock_guard<std::mutex> lock(s->mu);
    --s->in_flight;
    s->cv.notify_all();
  }
  static void on_message(mosquitto*, void* obj, const mosquitto_message* msg) {
    auto* s = static_cast<Side*>(obj);
    std::string_view p(static_cast<const char*>(msg->payload),
                       static_cast<size_t>(msg->payloadlen));
    std::lock_guard<std::mutex> lock(s->mu);
    if (p.find("\"temp_f\"") == std::string_view::npos) ++s->bad;
    if (p.find("\"warm\"") != std::string_view::npos) {
      ++s->warm;
    } else {
      ++s->counted;
    }
    s->cv.notify_all();
  }
  template <class Pred>
  bool wait_for(int ms, Pred pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(ms), pred);
  }
};

class Client {
 public:
  Client(const char* id, Side* side, int port) {
    m_ = mosquitto_new(id, true, side);
    mosquitto_int_option(m_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(m_, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_max_inflight_messages_set(m_, kWindow);
    mosquitto_connect_callback_set(m_, Side::on_connect);
    mosquitto_subscribe_callback_set(m_, Side::on_subscribe);
    mosquitto_publish_callback_set(m_, Side::on_publish);
    mosquitto_message_callback_set(m_, Side::on_message);
    if (mosquitto_connect(m_, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(m_) != MOSQ_ERR_SUCCESS ||
        !side->wait_for(5000, [&] { return side->connected; }))
      throw std::runtime_error(std::string(id) + ": cannot connect to the broker");
  }
  ~Client() {
    mosquitto_disconnect(m_);
    mosquitto_loop_stop(m_, false);
    mosquitto_destroy(m_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  mosquitto* get() { return m_; }

 private:
  mosquitto* m_ = nullptr;
};

struct Load {
  int64_t sent = 0;
  bool started = false;  // a warm-up reading came through the relay
};

// Runs in a thread of its own while the main thread waits for the relay process: warm-up
// readings every 100 ms until one comes out, then `rate` readings a second until 0.5 s before
// the relay's end (or until it exits).
void drive_load(mosquitto* pub, Side& gen, Side& counter, int qos, int rate, int64_t start_ns,
                int seconds, const std::atomic<bool>& exited, Load& load) {
  const int64_t stop_at = start_ns + int64_t{seconds} * 1'000'000'000 - kLoadStopsBeforeEndNs;
  auto publish = [&](const std::string& p) {
    {
      std::unique_lock<std::mutex> lock(gen.mu);
      if (!gen.cv.wait_for(lock, std::chrono::seconds(1), [&] { return gen.in_flight < kWindow; }))
        return false;
      ++gen.in_flight;
    }
    mosquitto_publish(pub, nullptr, kInTopic, static_cast<int>(p.size()), p.data(), qos, false);
    return true;
  };
  const std::string warm = bench::reading_json(-1, true);
  while (!load.started && !exited.load() && now_ns() < stop_at) {
    publish(warm);
    load.started = counter.wait_for(100, [&] { return counter.warm > 0; });
  }
  if (!load.started) return;
  const int64_t t0 = now_ns();
  while (!exited.load()) {
    const int64_t now = now_ns();
    if (now >= stop_at) break;
    const int64_t due = static_cast<int64_t>(static_cast<double>(now - t0) / 1e9 * rate);
    while (load.sent < due && publish(bench::reading_json(load.sent, false))) ++load.sent;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// ---- the runs ----

struct Row {
  std::string name;
  Outcome o;
  std::string messages;  // what it moved
  bool relay = false;    // a relay: fails when it relays nothing
  int64_t relayed = 0;
};

struct Bench {
  std::string edgeflow = FOOTPRINT_EDGEFLOW;
  std::string relay = FOOTPRINT_RELAY;
  fs::path source = FOOTPRINT_SOURCE_DIR;
  fs::path tmp;
  int seconds = 5;
  int rate = 2000;
  int qos = 1;

  std::string for_arg() const { return std::to_string(seconds) + "s"; }
  std::string log(const std::string& name) const { return (tmp / (name + ".log")).string(); }
  int64_t timeout_ms() const { return (int64_t{seconds} + 30) * 1000; }

  // A relay process (argv with PORT/URI filled in by make_argv) under the load.
  Row run_relay(
      const std::string& name,
      const std::function<std::vector<std::string>(const mqtt::EmbeddedBroker&)>& make_argv) const {
    Row row;
    row.name = name;
    row.relay = true;
    mqtt::EmbeddedBrokerOptions bo;
    bo.persistence = false;
    mqtt::EmbeddedBroker broker(bo);
    broker.start();
    Side counter, gen;
    Client sub("footprint-counter", &counter, broker.port());
    Client pub("footprint-loadgen", &gen, broker.port());
    mosquitto_subscribe(sub.get(), nullptr, kOutTopic, qos);
    if (!counter.wait_for(5000, [&] { return counter.subscribed; }))
      throw std::runtime_error("counter: not subscribed");

    const std::string log_path = log(name);
    std::atomic<bool> exited{false};
    Load load;
    const int64_t start = now_ns();
    const pid_t pid = spawn(make_argv(broker), log_path);
    std::thread loader(
        [&] { drive_load(pub.get(), gen, counter, qos, rate, start, seconds, exited, load); });
    row.o = wait_child(pid, start, timeout_ms(), true, &exited);
    loader.join();
    // The last readings still on their way to the counter.
    int64_t seen = -1, seen_at = now_ns();
    for (;;) {
      int64_t c;
      {
        std::lock_guard<std::mutex> lock(counter.mu);
        c = counter.counted;
      }
      if (c >= load.sent || now_ns() - seen_at > 500'000'000) break;
      if (c != seen) seen = c, seen_at = now_ns();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::lock_guard<std::mutex> lock(counter.mu);
    row.relayed = counter.counted;
    row.messages = std::to_string(counter.counted) + " of " + std::to_string(load.sent) +
                   " relayed to bench/out";
    if (!load.started) row.messages += " (no warm-up reading came through)";
    if (counter.bad) row.messages += ", " + std::to_string(counter.bad) + " without temp_f";
    if (!row.o.ok) row.o.why += log_tail(log_path);
    return row;
  }

  Row hand_relay() const {
    return run_relay("hand relay (mosquitto_relay)", [&](const mqtt::EmbeddedBroker& b) {
      return std::vector<std::string>{relay, "127.0.0.1", std::to_string(b.port()),
                                      std::to_string(qos), std::to_string(seconds)};
    });
  }

  Row pipeline_relay() const {
    return run_relay("edgeflow relay pipeline", [&](const mqtt::EmbeddedBroker& b) {
      const fs::path file = tmp / "relay.yaml";
      std::ofstream(file) << bench::relay_pipeline(b.uri(), qos);
      return std::vector<std::string>{edgeflow, "run",     file.string(), "--quiet",
                                      "--for",  for_arg(), "--broker",    b.uri()};
    });
  }

  // An example pipeline's edge part; its cloud part (when it has one) runs beside it.
  struct Example {
    std::string file;               // under pipelines/
    std::string node;               // the edge node run and measured
    std::string cloud;              // the node run beside it ("": none, no stage on the cloud)
    std::vector<std::string> sets;  // --set, {tmp} = the bench's temporary folder
  };

  Row edge_part(const Example& ex) const {
    Row row;
    const std::string stem = fs::path(ex.file).stem().string();
    row.name = stem + " --node " + ex.node;
    mqtt::EmbeddedBrokerOptions bo;
    bo.persistence = false;
    mqtt::EmbeddedBroker broker(bo);
    broker.start();
    const std::string file = (source / "pipelines" / ex.file).string();
    std::vector<std::string> sets;
    for (std::string s : ex.sets) {
      const size_t at = s.find("{tmp}");
      if (at != std::string::npos) s.replace(at, 5, tmp.string());
      sets.push_back("--set");
      sets.push_back(s);
    }
    pid_t cloud = -1;
    const std::string cloud_log = log(stem + "-" + ex.cloud);
    if (!ex.cloud.empty()) {
      std::vector<std::string> argv{edgeflow, "run",      file,         "--node",
                                    ex.cloud, "--broker", broker.uri(), "--quiet"};
      argv.insert(argv.end(), sets.begin(), sets.end());
      cloud = spawn(argv, cloud_log);
    }
    const std::string report = (tmp / (stem + "-report.json")).string();
    std::vector<std::string> argv{edgeflow,  "run",      file,         "--node",
                                  ex.node,   "--broker", broker.uri(), "--for",
                                  for_arg(), "--quiet",  "--report",   report};
    argv.insert(argv.end(), sets.begin(), sets.end());
    const std::string log_path = log(stem + "-" + ex.node);
    const int64_t start = now_ns();
    const pid_t pid = spawn(argv, log_path);
    row.o = wait_child(pid, start, timeout_ms(), true);
    if (!row.o.ok) row.o.why += log_tail(log_path);
    if (cloud > 0) {
      const std::string why = stop_companion(cloud, cloud_log);
      if (!why.empty() && row.o.ok) row.o.ok = false, row.o.why = why;
    }
    row.messages = report_messages(report);
    return row;
  }

  // What the edge part moved, from its --report: the messages it sent on its links, or when it
  // has none, what reached its last stage.
  static std::string report_messages(const std::string& path) {
    std::ifstream in(path);
    nlohmann::json r = nlohmann::json::parse(in, nullptr, false);
    if (r.is_discarded() || !r.is_object()) return "- (no report)";
    int64_t sent = 0;
    int links = 0;
    for (const auto& l : r.value("links", nlohmann::json::array()))
      if (l.value("direction", "") == "send") sent += l.value("messages", int64_t{0}), ++links;
    std::string ended = r.value("ended_by", "");
    ended = ended.empty() ? "" : " (ended: " + ended + ")";
    if (links > 0)
      return std::to_string(sent) + " sent on " + std::to_string(links) + " link(s)" + ended;
    const auto stages = r.value("stages", nlohmann::json::array());
    if (stages.empty()) return "-" + ended;
    const auto& last = stages.back();
    return std::to_string(last.value("in", int64_t{0})) + " into '" +
           last.value("stage", std::string()) + "', no links" + ended;
  }

  // One command, kStartupRuns times: median wall ms, highest peak RSS, median CPU ms.
  struct Startup {
    std::string name;
    double wall_ms = 0, rss_mib = 0, cpu_ms = 0;
    std::string why;  // a run that failed
  };

  Startup startup(const std::string& name, const std::vector<std::string>& argv) const {
    Startup s;
    s.name = name;
    std::vector<double> walls, cpus;
    const std::string log_path = log("startup");
    for (int i = 0; i < kStartupRuns; ++i) {
      const int64_t start = now_ns();
      Outcome o = wait_child(spawn(argv, log_path), start, 30'000, false);
      if (!o.ok) {
        s.why = o.why + log_tail(log_path);
        return s;
      }
      walls.push_back(o.wall_s * 1e3);
      cpus.push_back(o.cpu_ms);
      s.rss_mib = std::max(s.rss_mib, o.rss_mib);
    }
    std::sort(walls.begin(), walls.end());
    std::sort(cpus.begin(), cpus.end());
    s.wall_ms = walls[walls.size() / 2];
    s.cpu_ms = cpus[cpus.size() / 2];
    return s;
  }
};

// The example pipelines with an edge part, read from pipelines/*.yaml: their edge node, their
// cloud node, and --set for every file they would write into the source tree.
std::vector<Bench::Example> examples() {
  return {
      {"weather-station.yaml", "pi-1", "cloud", {}},
      {"weather-mqtt.yaml", "pi-1", "cloud", {}},
      {"fleet-weather.yaml",
       "pi-1",
       "cloud",
       {"readings.path={tmp}/readings.jsonl", "days.path={tmp}/daily.jsonl"}},
      {"iexec-worker-pool.yaml",
       "pi-1",
       "cloud",
       {"worker.wallet={tmp}/{node}.key", "scheduler.wallet={tmp}/scheduler.key",
        "scheduler.journal={tmp}/poco.journal"}},
      // No nodes: every stage runs on the default edge node, and the input ends in well under
      // a second (a year of hourly readings replayed as fast as possible).
      {"sf-daily.yaml", "edge", "", {}},
      {"sf-warm-hours.yaml", "edge", "", {"out.path={tmp}/warm-hours.jsonl"}},
      // The camera: OpenCV on the edge (vision.motion), or only capture and the link's JPEG
      // encoding on it (-cloud). The synthetic scene brings a new object every 6 s, so a
      // shorter run may see no motion event (0 sent on the links): the cost is there anyway.
      {"surveillance-camera.yaml", "cam-1", "cloud", {}},
      {"surveillance-camera-cloud.yaml", "cam-1", "cloud", {}},
  };
}

void print_smaps(const Row& r) {
  const Smaps& s = r.o.smaps;
  if (s.rss_kb == 0) {
    std::printf("  %-40s no snapshot (ended within 100 ms)\n", r.name.c_str());
    return;
  }
  std::string top;
  for (size_t i = 0; i < s.by.size() && i < 6; ++i) {
    char part[96];
    std::snprintf(part, sizeof part, "%s%s %.1f", i ? ", " : "", s.by[i].second.c_str(),
                  mib(s.by[i].first));
    top += part;
  }
  std::printf("  %-40s %5.1f MiB at %.1f s: anon %.1f, files %.1f, %d .so; %s\n", r.name.c_str(),
              mib(s.rss_kb), s.at_s, mib(s.anon_kb), mib(s.rss_kb - s.anon_kb), s.libraries,
              top.c_str());
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  Bench b;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      b.seconds = 2;
    } else if (a == "--seconds" && i + 1 < argc) {
      b.seconds = std::atoi(argv[++i]);
    } else if (a == "--rate" && i + 1 < argc) {
      b.rate = std::atoi(argv[++i]);
    } else if (a == "--qos" && i + 1 < argc) {
      b.qos = std::atoi(argv[++i]);
    } else {
      b.seconds = 0;
      break;
    }
  }
  if (b.seconds < 1 || b.rate < 1 || b.qos < 0 || b.qos > 1) {
    std::fprintf(stderr, "usage: %s\n", kUsage);
    return 2;
  }
  std::string tmpl = (fs::temp_directory_path() / "footprint_bench.XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  b.tmp = tmpl;
  mosquitto_lib_init();
  std::printf(
      "footprint_bench: %d s per run; relays under %d readings/s of ~100 bytes at QoS %d\n"
      "edgeflow: %s\n",
      b.seconds, b.rate, b.qos, b.edgeflow.c_str());

  bool failed = false;
  std::vector<Row> rows;
  try {
    std::fprintf(stderr, "  hand relay...\n");
    rows.push_back(b.hand_relay());
    std::fprintf(stderr, "  edgeflow relay pipeline...\n");
    rows.push_back(b.pipeline_relay());
    std::set<std::string> measured;
    std::vector<std::string> skipped;
    for (const Bench::Example& ex : examples()) {
      measured.insert(ex.file);
      if (!fs::exists(b.source / "pipelines" / ex.file)) {
        skipped.push_back("pipelines/" + ex.file + ": no such file");
        continue;
      }
      std::fprintf(stderr, "  %s --node %s...\n", ex.file.c_str(), ex.node.c_str());
      rows.push_back(b.edge_part(ex));
    }
    for (const auto& e : fs::directory_iterator(b.source / "pipelines"))
      if (e.path().extension() == ".yaml" && !measured.count(e.path().filename().string()))
        skipped.push_back("pipelines/" + e.path().filename().string() +
                          ": not in footprint_bench's list (add its edge node to examples())");

    std::fprintf(stderr, "  start-up...\n");
    const std::string weather = (b.source / "pipelines" / "weather-station.yaml").string();
    std::vector<Bench::Startup> starts{
        b.startup("edgeflow --version", {b.edgeflow, "--version"}),
        b.startup("edgeflow validate weather-station.yaml", {b.edgeflow, "validate", weather}),
    };
    // The floor: what any child started from this process shows at least.
    const int64_t floor_start = now_ns();
    const Outcome floor =
        wait_child(spawn({"/bin/true"}, b.log("floor")), floor_start, 10'000, false);

    // ---- the table ----
    const double hand_rss = rows[0].o.ok ? rows[0].o.rss_mib : 0;
    std::printf("\n%-42s %12s %7s %8s %7s  %s\n", "process", "peak RSS MiB", "x hand", "CPU ms",
                "wall s", "messages");
    for (const Row& r : rows) {
      char ratio[16] = "-";
      if (hand_rss > 0) std::snprintf(ratio, sizeof ratio, "%.2f", r.o.rss_mib / hand_rss);
      std::printf("%-42s %12.1f %7s %8.0f %7.2f  %s%s%s\n", r.name.c_str(), r.o.rss_mib, ratio,
                  r.o.cpu_ms, r.o.wall_s, r.messages.c_str(),
                  r.o.ok ? "" : "  FAILED: ", r.o.ok ? "" : r.o.why.c_str());
      if (!r.o.ok || (r.relay && r.relayed == 0)) failed = true;
    }
    for (const std::string& s : skipped) std::printf("skipped %s\n", s.c_str());

    const std::string title = "start-up (" + std::to_string(kStartupRuns) + " runs each)";
    std::printf("\n%-42s %14s %12s %7s %13s\n", title.c_str(), "median wall ms", "max RSS MiB",
                "x hand", "median CPU ms");
    for (const Bench::Startup& s : starts) {
      if (!s.why.empty()) {
        std::printf("%-42s FAILED: %s\n", s.name.c_str(), s.why.c_str());
        failed = true;
        continue;
      }
      char ratio[16] = "-";
      if (hand_rss > 0) std::snprintf(ratio, sizeof ratio, "%.2f", s.rss_mib / hand_rss);
      const bool met = s.wall_ms < kStartupTargetMs && s.rss_mib < kStartupTargetMiB;
      std::printf("%-42s %14.1f %12.1f %7s %13.1f  [target < %.0f ms, < %.0f MiB: %s]\n",
                  s.name.c_str(), s.wall_ms, s.rss_mib, ratio, s.cpu_ms, kStartupTargetMs,
                  kStartupTargetMiB, met ? "met" : "MISSED");
    }
    std::printf(
        "floor: /bin/true started the same way peaks at %.1f MiB (the forked copy of this "
        "process; no figure can show less)\n",
        floor.rss_mib);

    std::printf(
        "\nwhere the RSS is: the largest /proc/PID/smaps snapshot (every 250 ms), MiB by "
        "mapping\n");
    for (const Row& r : rows) print_smaps(r);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "footprint_bench: %s\n", e.what());
    failed = true;
  }
  mosquitto_lib_cleanup();
  std::error_code ec;
  fs::remove_all(b.tmp, ec);
  return failed ? 1 : 0;
}
