// iexec_bench, part 2: tasks per second through the full protocol. The real edgeflow binary
// runs a scheduler and three workers over an embedded mosquitto; requests are published at once
// and timed to their COMPLETED results, against Sandbox::run on 3 threads without any protocol.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "bench/iexec_bench_support.h"
#include "brokers/mqtt/client.h"
#include "brokers/mqtt/embedded_broker.h"
#include "crypto/crypto.h"
#include "iexec/app.h"
#include "iexec/protocol.h"

#ifndef IEXEC_BENCH_EDGEFLOW
#define IEXEC_BENCH_EDGEFLOW "edgeflow"
#endif

namespace edgeflow::iexec_bench {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// 2. Tasks per second through the protocol

struct PoolStats {
  bool ok = false;
  int32_t tasks = 0, completed = 0, failed = 0;
  double seconds = 0;  // first publish .. last COMPLETED (baseline: first run .. last run)
  double mean_latency_ms = 0, p50_latency_ms = 0, max_latency_ms = 0;
  double replicates_per_task = 0;  // contributors in the results
  double cpu_ms_per_task = 0;      // edgeflow (and its apps) over the timed window
  double ready_seconds = 0;        // spawn .. pool ready (warm-up done)
  double rss_kb_per_task = 0;      // edgeflow's VmRSS growth over the timed window, per task
  char note[240] = {};
  double rate() const { return seconds > 0 ? completed / seconds : 0; }
};

PoolStats run_baseline(const App& app, int tasks, const std::string& root) {
  iexec::AppSpec spec;
  spec.name = "bench";
  spec.path = app.path;
  spec.sha256 = app.sha256;
  iexec::SandboxOptions so;
  so.work_root = make_temp_dir(root, "base-");
  iexec::Sandbox sandbox(so);
  std::atomic<int> next{0}, bad{0};
  std::mutex mu;
  std::string cause;
  std::vector<double> lat;
  const int64_t t0 = now_ns();
  auto worker = [&] {
    for (int i; (i = next.fetch_add(1)) < tasks;) {
      iexec::RunRequest req;
      req.app = &spec;
      req.taskid = task_id(static_cast<uint64_t>(i));
      iexec::RunResult r = sandbox.run(req);
      std::lock_guard<std::mutex> lock(mu);
      lat.push_back(static_cast<double>(now_ns() - t0) / 1e6);
      if (r.outcome != iexec::RunOutcome::kOk) {
        ++bad;
        cause = r.cause;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  PoolStats s;
  s.seconds = static_cast<double>(now_ns() - t0) / 1e9;
  s.tasks = tasks;
  s.failed = bad.load();
  s.completed = tasks - s.failed;
  s.ok = s.failed == 0;
  s.mean_latency_ms = mean_of(lat);  // all "submitted" at t0, as the protocol's are
  s.p50_latency_ms = quantile(lat, 0.5);
  s.max_latency_ms = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  s.replicates_per_task = 1;
  if (!s.ok) set_note(s, std::to_string(s.failed) + " failed: " + cause);
  fs::remove_all(so.work_root);
  return s;
}

// user + system of a process and of the children it reaped (the apps), in ms.
double proc_cpu_ms(pid_t pid) {
  std::string s = read_text("/proc/" + std::to_string(pid) + "/stat");
  size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 2));
  std::vector<std::string> f;
  for (std::string w; in >> w;) f.push_back(w);
  // After the name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
  if (f.size() < 15) return 0;
  double ticks = 0;
  for (int i = 11; i <= 14; ++i) ticks += std::atof(f[static_cast<size_t>(i)].c_str());
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double proc_rss_kb(pid_t pid) {
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6);
  return 0;
}

// Messages from the client's thread, stamped on arrival.
struct Inbox {
  struct Item {
    std::string topic, payload;
    int64_t at_ns;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> q;
  void push(mqtt::Received&& r) {
    const int64_t t = now_ns();
    {
      std::lock_guard<std::mutex> lock(mu);
      q.push_back({std::move(r.topic), std::move(r.payload), t});
    }
    cv.notify_all();
  }
  // Takes what arrived, waiting up to timeout_ms for something.
  std::deque<Item> take(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !q.empty(); });
    std::deque<Item> out;
    out.swap(q);
    return out;
  }
};

struct Edgeflow {
  pid_t pid = -1;
  std::string log;
  // Alive: has not exited yet (reaps it when it has).
  bool alive() {
    if (pid <= 0) return false;
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      pid = -1;
      return false;
    }
    return true;
  }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    const int64_t until = now_ns() + 10'000'000'000;
    while (alive() && now_ns() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      pid = -1;
    }
  }
  ~Edgeflow() { stop(); }
};

std::string edgeflow_binary() {
  const char* e = std::getenv("EDGEFLOW_BINARY");
  return e && *e ? e : IEXEC_BENCH_EDGEFLOW;
}

void spawn_edgeflow(Edgeflow& ef, const std::string& pipeline, const std::string& log) {
  const std::string bin = edgeflow_binary();
  ef.log = log;
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const char* argv[] = {bin.c_str(), "run", pipeline.c_str(), "--quiet", nullptr};
    ::execv(bin.c_str(), const_cast<char* const*>(argv));
    std::fprintf(stderr, "cannot execute %s: %s\n", bin.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  ef.pid = pid;
}

PoolStats run_protocol(const App& app, int tasks, int trust, bool fsync, const std::string& uri,
                       const std::string& root) {
  PoolStats s;
  s.tasks = tasks;
  const int64_t spawn_ns = now_ns();
  const std::string dir = make_temp_dir(root, "pool-");
  const std::string pipeline_name = "iexec-bench";
  write_text(dir + "/registry.yaml",
             "apps:\n  bench:\n    path: " + app.path +
                 "\n    sha256: " + app.sha256.hex().substr(2) + "\n",
             0644);
  crypto::Wallet sched = crypto::Wallet::generate();
  sched.save(dir + "/scheduler.key");
  write_text(dir + "/pipeline.yaml",
             "pipeline: " + pipeline_name +
                 "\n"
                 "nodes:\n"
                 "  w1: { tier: edge }\n"
                 "  w2: { tier: edge }\n"
                 "  w3: { tier: edge }\n"
                 "  cloud: { tier: cloud }\n"
                 "links: { mqtt: { broker: \"" +
                 uri +
                 "\" } }\n"
                 "stages:\n"
                 "  - id: scheduler\n"
                 "    op: iexec.scheduler\n"
                 "    on: cloud\n"
                 "    with: { wallet: scheduler.key, create_wallet: true, apps: registry.yaml,\n"
                 "            journal: poco.journal, time_ref: 60s, open_pool: true, "
                 "open_requests: true, fsync: " +
                 (fsync ? "true" : "false") +
                 " }\n"
                 "  - id: worker\n"
                 "    op: iexec.worker\n"
                 "    on: edge\n"
                 "    with: { wallet: \"{node}.key\", create_wallet: true, apps: registry.yaml,\n"
                 "            slots: 1, heartbeat: 1s, scheduler: \"" +
                 sched.address().hex() + "\", work_dir: \"" + dir + "/tasks/{node}\" }\n",
             0644);
  Edgeflow ef;
  spawn_edgeflow(ef, dir + "/pipeline.yaml", dir + "/edgeflow.log");
  auto fail = [&](const std::string& why) {
    std::string t = tail_of(ef.log, 3);
    std::replace(t.begin(), t.end(), '\n', ' ');
    set_note(s, why + " (" + dir + "; log: " + t + ")");
    s.ok = false;
    return s;
  };

  const iexec::Topics topics(pipeline_name, "default");
  Inbox inbox;
  mqtt::ClientOptions co;
  co.uri = uri;
  co.client_id = "iexec-bench-" + std::to_string(::getpid());
  auto client = mqtt::make_client("mosquitto", co,
                                  [&inbox](mqtt::Received&& m) { inbox.push(std::move(m)); });
  client->connect();
  client->subscribe(topics.announce(), 1);
  client->subscribe(topics.base + "/workers/+/online", 1);
  client->subscribe(topics.base + "/results/#", 1);

  std::map<crypto::Hash32, int64_t> published;  // taskid -> publish time
  std::map<crypto::Hash32, std::pair<int64_t, json>> results;
  bool announced = false;
  std::set<std::string> online;
  auto pump = [&](int timeout_ms) {
    for (Inbox::Item& it : inbox.take(timeout_ms)) {
      if (it.topic == topics.announce()) {
        announced = true;
      } else if (it.topic.size() > 7 && it.topic.compare(it.topic.size() - 7, 7, "/online") == 0) {
        if (it.payload == "true") online.insert(it.topic);
        if (it.payload == "false") online.erase(it.topic);
      } else if (it.topic.rfind(topics.base + "/results/", 0) == 0) {
        auto id = crypto::parse_hash32(it.topic.substr(topics.base.size() + 9));
        json j = json::parse(it.payload, nullptr, false);
        if (id && !j.is_discarded() && !results.count(*id))
          results.emplace(*id, std::make_pair(it.at_ns, std::move(j)));
      }
    }
  };
  uint64_t serial = 0;
  auto submit = [&](int n, int trust_level) {
    std::vector<crypto::Hash32> ids;
    for (int i = 0; i < n; ++i) {
      crypto::Hash32 id = crypto::Packed()
                              .add_uint256(static_cast<uint64_t>(::getpid()))
                              .add_uint256(static_cast<uint64_t>(now_ns()))
                              .add_uint256(++serial)
                              .keccak();
      json body = {{"type", "request"},         {"id", iexec::bin(id)},    {"app", "bench"},
                   {"args", json::array()},     {"inputs", json::array()}, {"trust", trust_level},
                   {"requester", "iexec_bench"}};
      const std::string msg = iexec::seal_unsigned(body);
      const crypto::Hash32 deal = crypto::Packed().add(sched.address()).add(id).keccak();
      const crypto::Hash32 taskid = crypto::Packed().add(deal).add_uint256(0).keccak();
      published[taskid] = now_ns();
      if (!client->publish(topics.requests(), msg.data(), msg.size(), 1, false, 10'000))
        throw std::runtime_error("the broker did not take request " + std::to_string(i));
      ids.push_back(taskid);
    }
    return ids;
  };
  // Waits until every id has a result; false on the deadline or when 30 s pass without one.
  auto await = [&](const std::vector<crypto::Hash32>& ids, int64_t deadline_ns) {
    size_t have = 0;
    int64_t progress_at = now_ns();
    for (;;) {
      size_t n = 0;
      for (const crypto::Hash32& id : ids) n += results.count(id);
      if (n == ids.size()) return true;
      if (n != have) have = n, progress_at = now_ns();
      if (now_ns() > deadline_ns || now_ns() - progress_at > 30'000'000'000) return false;
      if (!ef.alive()) return false;
      pump(200);
    }
  };

  // ---- the pool is ready ----
  const int64_t ready_deadline = now_ns() + 60'000'000'000;
  while (!(announced && online.size() == 3)) {
    if (!ef.alive()) return fail("edgeflow exited during start-up");
    if (now_ns() > ready_deadline)
      return fail("no announcement and 3 workers online within 60 s (announced " +
                  std::to_string(announced) + ", online " + std::to_string(online.size()) + ")");
    pump(100);
  }
  // One heartbeat: every worker has said hello after the scheduler subscribed.
  const int64_t hb = now_ns() + 1'200'000'000;
  while (now_ns() < hb) pump(static_cast<int>((hb - now_ns()) / 1'000'000) + 1);
  std::vector<crypto::Hash32> warm = submit(3, 1);
  if (!await(warm, now_ns() + 60'000'000'000)) return fail("warm-up tasks got no result");
  for (const crypto::Hash32& id : warm)
    if (results.at(id).second.value("status", "") != "COMPLETED")
      return fail("warm-up task: " + results.at(id).second.dump().substr(0, 160));
  s.ready_seconds = static_cast<double>(now_ns() - spawn_ns) / 1e9;

  // ---- timed ----
  const double cpu0 = proc_cpu_ms(ef.pid);
  const double rss0 = proc_rss_kb(ef.pid);
  const int64_t t0 = now_ns();
  std::vector<crypto::Hash32> ids = submit(tasks, trust);
  const bool all = await(ids, t0 + (60 + static_cast<int64_t>(tasks) * 2) * 1'000'000'000);
  const double cpu1 = ef.pid > 0 ? proc_cpu_ms(ef.pid) : cpu0;
  const double rss1 = ef.pid > 0 ? proc_rss_kb(ef.pid) : rss0;
  std::vector<double> lat;
  int64_t last = t0;
  int64_t contributors = 0;
  std::string first_failure;
  for (const crypto::Hash32& id : ids) {
    auto it = results.find(id);
    if (it == results.end()) continue;
    const json& j = it->second.second;
    if (j.value("status", "") == "COMPLETED") {
      ++s.completed;
      last = std::max(last, it->second.first);
      lat.push_back(static_cast<double>(it->second.first - published.at(id)) / 1e6);
      if (j.contains("contributors"))
        contributors += static_cast<int64_t>(j["contributors"].size());
    } else {
      ++s.failed;
      if (first_failure.empty()) first_failure = j.value("cause", j.dump().substr(0, 120));
    }
  }
  s.seconds = static_cast<double>(last - t0) / 1e9;
  s.mean_latency_ms = mean_of(lat);
  s.p50_latency_ms = quantile(lat, 0.5);
  s.max_latency_ms = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  s.replicates_per_task = s.completed ? static_cast<double>(contributors) / s.completed : 0;
  s.cpu_ms_per_task = s.completed ? (cpu1 - cpu0) / s.completed : 0;
  s.rss_kb_per_task = s.completed ? (rss1 - rss0) / s.completed : 0;
  client->disconnect();
  ef.stop();
  if (!all || s.completed != tasks) {
    return fail(std::to_string(s.completed) + " of " + std::to_string(tasks) + " COMPLETED, " +
                std::to_string(s.failed) + " FAILED" +
                (first_failure.empty() ? "" : ": " + first_failure) +
                (all ? "" : "; results missing"));
  }
  s.ok = true;
  if (!g_keep) fs::remove_all(dir);
  return s;
}

struct PoolVariant {
  PoolVariant(std::string k, std::string l, std::function<Forked<PoolStats>()> r)
      : key(std::move(k)), label(std::move(l)), run(std::move(r)) {}
  std::string key, label;
  std::function<Forked<PoolStats>()> run;
  bool failed = false;
  std::string failure;
  PoolStats best;
  std::vector<double> rates;
};

}  // namespace

bool protocol_part(const App& app, int tasks, int rounds, const std::string& root) {
  const int timeout_ms = (180 + tasks * 3) * 1000;
  auto with_broker = [=](int trust, bool fsync) {
    return [=] {
      mqtt::EmbeddedBrokerOptions bo;
      bo.persistence = false;
      mqtt::EmbeddedBroker broker(bo);
      broker.start();
      const std::string uri = broker.uri();
      return run_forked<PoolStats>(
          [&] { return run_protocol(app, tasks, trust, fsync, uri, root); }, timeout_ms);
    };
  };
  std::vector<PoolVariant> vs;
  vs.emplace_back("b", "Sandbox::run on 3 threads, no protocol", [=] {
    Forked<PoolStats> f =
        run_forked<PoolStats>([&] { return run_baseline(app, tasks, root); }, timeout_ms);
    f.result.cpu_ms_per_task = f.cpu_seconds * 1e3 / tasks;
    return f;
  });
  vs.emplace_back("t1", "protocol, trust 1, fsync true", with_broker(1, true));
  vs.emplace_back("t1n", "protocol, trust 1, fsync false", with_broker(1, false));
  vs.emplace_back("t3", "protocol, trust 3, fsync true", with_broker(3, true));
  vs.emplace_back("t3n", "protocol, trust 3, fsync false", with_broker(3, false));

  std::printf(
      "\n== 2. tasks/s through the protocol: %d tasks at once, 3 workers x 1 slot, sh app, %s ==\n",
      tasks, rounds == 1 ? "one round" : ("best of " + std::to_string(rounds)).c_str());
  std::printf("   edgeflow: %s\n", edgeflow_binary().c_str());
  for (int round = 0; round < rounds; ++round) {
    std::vector<PoolVariant*> order;
    for (PoolVariant& v : vs) order.push_back(&v);
    if (round % 2 == 1) std::reverse(order.begin(), order.end());
    for (PoolVariant* v : order) {
      if (v->failed) continue;
      Forked<PoolStats> f = v->run();
      if (!f.ok) {
        v->failed = true;
        v->failure = f.result.note[0] ? f.result.note : "the child failed";
      } else {
        v->rates.push_back(f.result.rate());
        if (f.result.rate() > v->best.rate()) v->best = f.result;
      }
      std::fprintf(stderr, "  round %d %-4s %-40s %s\n", round + 1, v->key.c_str(),
                   v->label.c_str(),
                   v->failed ? ("FAILED: " + v->failure).c_str()
                             : (fmt("%.1f", f.result.rate()) + " tasks/s").c_str());
    }
  }
  std::printf("%-4s %-40s %8s %8s %9s %9s %9s %8s %8s %8s %7s  %s\n", "", "variant", "tasks/s",
              "seconds", "lat mean", "lat p50", "lat max", "repl/tsk", "CPU ms/t", "RSS KB/t",
              "ready s", "rounds (tasks/s)");
  for (const PoolVariant& v : vs) {
    if (v.failed) {
      std::printf("%-4s %-40s FAILED: %s\n", v.key.c_str(), v.label.c_str(), v.failure.c_str());
      continue;
    }
    std::string all;
    for (double r : v.rates) all += (all.empty() ? "" : " ") + fmt("%.1f", r);
    const PoolStats& b = v.best;
    std::printf("%-4s %-40s %8.1f %8.2f %9.1f %9.1f %9.1f %8.2f %8.1f %8s %7s  %s\n", v.key.c_str(),
                v.label.c_str(), b.rate(), b.seconds, b.mean_latency_ms, b.p50_latency_ms,
                b.max_latency_ms, b.replicates_per_task, b.cpu_ms_per_task,
                v.key == "b" ? "-" : fmt("%.1f", b.rss_kb_per_task).c_str(),
                v.key == "b" ? "-" : fmt("%.1f", b.ready_seconds).c_str(), all.c_str());
  }
  std::printf(
      "(latency: result on results/<taskid> minus its request's publish, all published at once;\n"
      " baseline: end of each run minus the start. repl/tsk: contributors per completed task.\n"
      " CPU ms/t: user+system per task, apps included: edgeflow's over the timed window (not the\n"
      " broker's nor this bench's); the baseline child's whole run. RSS KB/t: edgeflow's VmRSS\n"
      " growth over the timed window per task. ready s: edgeflow spawned .. warm-up done.)\n");
  auto find = [&](const std::string& k) -> const PoolVariant* {
    for (const PoolVariant& v : vs)
      if (v.key == k && !v.failed) return &v;
    return nullptr;
  };
  auto ratio = [&](const std::string& a, const std::string& b, const std::string& meaning) {
    const PoolVariant* x = find(a);
    const PoolVariant* y = find(b);
    if (!x || !y || y->best.rate() <= 0) {
      std::printf("ratio: %s/%s n/a  (%s)\n", a.c_str(), b.c_str(), meaning.c_str());
      return;
    }
    std::printf("ratio: %s/%s %.2fx  (%s)\n", a.c_str(), b.c_str(), x->best.rate() / y->best.rate(),
                meaning.c_str());
  };
  ratio("t1", "b", "protocol trust 1 / sandbox alone on 3 threads");
  ratio("t1n", "b", "protocol trust 1 without fsync / sandbox alone");
  ratio("t3", "b", "protocol trust 3 / sandbox alone (one run per task)");
  ratio("t3n", "b", "protocol trust 3 without fsync / sandbox alone");
  ratio("t1n", "t1", "what fsync of the journal costs, trust 1");
  ratio("t3n", "t3", "what fsync of the journal costs, trust 3");
  ratio("t3", "t1", "trust 3 / trust 1");
  if (const PoolVariant* t3 = find("t3")) {
    if (const PoolVariant* b = find("b")) {
      const double need = t3->best.replicates_per_task;
      if (need > 0)
        std::printf(
            "ratio: t3/(b/%.2f) %.2fx  (trust 3 against the sandbox doing the same %.2f runs per "
            "task)\n",
            need, t3->best.rate() / (b->best.rate() / need), need);
    }
  }
  for (const PoolVariant& v : vs)
    if (v.failed) return false;
  return true;
}

}  // namespace edgeflow::iexec_bench
