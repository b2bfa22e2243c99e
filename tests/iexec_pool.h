// The iExec pool of the end-to-end tests: a real mosquitto on a free loopback port, the
// edgeflow binary run as one process per node (the scheduler on `cloud`, one iexec.worker per
// edge node), apps that are small sh scripts in a registry the test writes, and tasks
// submitted with `edgeflow task submit` as a user would, signed by the pool's one listed
// requester. Every wait is bounded; nothing asserts on how long something took.
//
// Worker keys are made by the test and sorted: w1 always has the lowest address. The scheduler
// hands a replicate to the worker with the most free slots, then the highest score, then the
// lowest address, so tests that need one particular worker in the first replicates (the liar,
// the tampered node) put it on w1 and get the same hand-out on every run.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/embedded_broker.h"
#include "crypto/crypto.h"
#include "iexec/protocol.h"
#include "tests/support/process.h"

namespace edgeflow {

using edgeflow::testing::edgeflow_binary;
using edgeflow::testing::make_temp_dir;
using edgeflow::testing::Process;
using edgeflow::testing::ProcessResult;
using edgeflow::testing::read_file;
using edgeflow::testing::run_process;
using edgeflow::testing::source_dir;
using edgeflow::testing::write_file;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr char kPipeline[] = "iexec-e2e";
constexpr char kBase[] = "edgeflow/iexec-e2e/iexec/default";
constexpr double kWait = 60;  // the bound of every wait; a healthy run needs a few seconds

// The lines every test app ends with: the iExec interface of IEXEC.md.
constexpr char kComputed[] =
    "echo '{\"deterministic-output-path\":\"/iexec_out/result.txt\"}' > "
    "\"$IEXEC_OUT/computed.json\"\n";

inline bool eventually(const std::function<bool()>& done, double seconds = kWait) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

inline std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

inline std::string hex_sha256(const std::string& bytes) { return crypto::sha256(bytes).hex(); }

// Every "score N -> M" the scheduler logged for `worker`, in order.
inline std::vector<std::pair<int, int>> score_changes(const std::string& log,
                                                      const std::string& worker) {
  std::vector<std::pair<int, int>> out;
  const std::regex re("worker " + worker + " score ([0-9]+) -> ([0-9]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
       ++it)
    out.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  return out;
}

inline std::set<std::string> as_set(const json& array) {
  std::set<std::string> s;
  for (const json& j : array) s.insert(j.get<std::string>());
  return s;
}

// A test's own MQTT client: records everything on the topics it watches.
class Watcher {
 public:
  Watcher(const std::string& uri, const std::vector<std::string>& topics) {
    static std::atomic<int> n{0};
    mqtt::ClientOptions o;
    o.uri = uri;
    o.client_id = "iexec-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
    probe_ = "edgeflow-test/probe/" + o.client_id;
    client_ = mqtt::make_client("mosquitto", o, [this](mqtt::Received&& r) {
      std::lock_guard<std::mutex> lock(mu_);
      got_.push_back(std::move(r));
      cv_.notify_all();
    });
    client_->connect();
    for (const std::string& t : topics) client_->subscribe(t, 1);
    client_->subscribe(probe_, 1);
  }
  ~Watcher() { client_->disconnect(); }

  // The subscriptions are in place once a message on the last one comes back.
  bool ready() {
    publish(probe_, "probe");
    return wait_for([&](const mqtt::Received& r) { return r.topic == probe_; }).has_value();
  }

  void publish(const std::string& topic, const std::string& payload) {
    client_->publish(topic, payload.data(), payload.size(), 1, false, 5000);
  }

  // The first message so far (or to come, within `seconds`) that `match` accepts.
  std::optional<mqtt::Received> wait_for(const std::function<bool(const mqtt::Received&)>& match,
                                         double seconds = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<mqtt::Received> found;
    cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] {
      for (const mqtt::Received& r : got_)
        if (match(r)) return found.emplace(r), true;
      return false;
    });
    return found;
  }

  std::vector<mqtt::Received> all() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<mqtt::Received> got_;
  std::string probe_;
  std::unique_ptr<mqtt::Client> client_;  // last: its thread stops before the rest goes
};

// A message on the scheduler topic, opened (nullopt: not a valid envelope).
std::optional<iexec::Opened> opened(const mqtt::Received& r) {
  std::string why;
  return iexec::open_message(r.payload, &why);
}

// An event on the events topic with this kind whose text holds `part`.
std::function<bool(const mqtt::Received&)> event(const std::string& kind,
                                                 const std::string& part = "") {
  return [=](const mqtt::Received& r) {
    if (r.topic != std::string(kBase) + "/events") return false;
    json j = json::parse(r.payload, nullptr, false);
    return !j.is_discarded() && j.value("kind", "") == kind &&
           contains(j.value("text", "") + " " + j.value("worker", ""), part);
  };
}

// One worker node of the pool: its stage options that differ from the defaults.
struct WorkerNode {
  std::string node;      // w1, w2, ...
  std::string apps;      // registry; "" = the pool's
  std::string work_dir;  // "" = DIR/work/{node}
  bool keep_work_dirs = false;
};

class IexecPool : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_.start();
    dir_ = make_temp_dir();
    // Run as root, the sandbox runs apps as nobody, who must be able to cross this folder to reach
    // its task folder (and the markers and gate some apps use).
    ::chmod(dir_.c_str(), 0755);
    fs::create_directories(dir_ + "/keys");
    ProcessResult r =
        run_process({edgeflow_binary(), "wallet", "new", dir_ + "/keys/scheduler.key"}, 30);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    scheduler_ = r.out.substr(0, r.out.find('\n'));
    ASSERT_TRUE(crypto::parse_address(scheduler_)) << "not an address: " << r.out;
    // The pool's one listed requester, who signs what submit() sends.
    requester_key_ = dir_ + "/keys/requester.key";
    const crypto::Wallet requester = crypto::Wallet::generate();
    requester.save(requester_key_);
    requester_ = requester.address().hex();
  }

  void TearDown() override {
    nodes_.clear();  // kills what still runs
    if (HasFailure())
      std::cerr << "kept " << dir_ << " for inspection\n";
    else
      fs::remove_all(dir_);
  }

  // Key files for w1..wN, made here so the addresses are known and sorted (see the top).
  void make_workers(int n) {
    std::vector<crypto::Wallet> wallets;
    for (int i = 0; i < n; ++i) wallets.push_back(crypto::Wallet::generate());
    std::sort(wallets.begin(), wallets.end(),
              [](const auto& a, const auto& b) { return a.address() < b.address(); });
    for (int i = 0; i < n; ++i) {
      const std::string node = "w" + std::to_string(i + 1);
      wallets[i].save(key_file(node));
      workers_.push_back({node, "", ""});
      address_[node] = wallets[i].address().hex();
    }
  }

  std::string key_file(const std::string& node) const { return dir_ + "/keys/" + node + ".key"; }

  // The scheduler's workers: list (a closed pool): every worker node unless `listed_` says.
  std::string pool_list() const {
    std::string out;
    for (const WorkerNode& w : workers_) {
      if (!listed_.empty() && !std::count(listed_.begin(), listed_.end(), w.node)) continue;
      out += (out.empty() ? "\"" : ", \"") + address_.at(w.node) + "\"";
    }
    return out;
  }

  // An executable sh script; returns its sha256 (64 hex digits, as sha256sum prints it).
  std::string write_app(const std::string& path, const std::string& body) {
    write_file(path, "#!/bin/sh\n" + body);
    ::chmod(path.c_str(), 0755);
    return crypto::sha256_file(path).hex().substr(2);
  }

  struct AppEntry {
    std::string name, path, sha256, limits;
    int64_t price = 0;
  };
  void write_registry(const std::string& path, const std::vector<AppEntry>& apps) {
    std::string y = "apps:\n";
    for (const AppEntry& a : apps) {
      y += "  " + a.name + ":\n    path: \"" + a.path + "\"\n    sha256: " + a.sha256 + "\n";
      y += "    limits: {" + (a.limits.empty() ? std::string("timeout: 30s") : a.limits) + "}\n";
      if (a.price) y += "    price: " + std::to_string(a.price) + "\n";
    }
    write_file(path, y);
  }
  // Writes DIR/NAME.sh and the pool's registry DIR/apps.yaml with it (and earlier ones).
  void add_app(const std::string& name, const std::string& body, const std::string& limits = "") {
    const std::string path = dir_ + "/" + name + ".sh";
    apps_.push_back({name, path, write_app(path, body), limits});
    write_registry(dir_ + "/apps.yaml", apps_);
  }

  // The pipeline: the scheduler (results to DIR/results.jsonl) on cloud, one worker stage per
  // edge node (replicates to DIR/replicates-wN.jsonl), all on the test's broker.
  void write_pipeline() {
    std::ostringstream y;
    y << "pipeline: " << kPipeline << "\nnodes:\n  cloud: {tier: cloud}\n";
    for (const WorkerNode& w : workers_) y << "  " << w.node << ": {tier: edge}\n";
    y << "links: {mqtt: {broker: \"" << broker_.uri() << "\"}}\n"
      << "stages:\n"
      << "  - id: scheduler\n    op: iexec.scheduler\n    on: cloud\n"
      << "    with: {wallet: \"" << dir_ << "/keys/scheduler.key\", apps: \"" << dir_
      << "/apps.yaml\", journal: \"" << dir_ << "/poco.journal\", workers: [" << pool_list()
      << "], requesters: [\"" << requester_ << "\"]" << scheduler_extra_ << "}\n"
      << "  - id: results\n    op: file.write\n    on: cloud\n    from: scheduler.results\n"
      << "    with: {path: \"" << dir_ << "/results.jsonl\", append: true}\n";
    for (const WorkerNode& w : workers_) {
      y << "  - id: worker-" << w.node << "\n    op: iexec.worker\n    on: " << w.node << "\n"
        << "    with: {wallet: \"" << dir_ << "/keys/{node}.key\", create_wallet: true, apps: \""
        << (w.apps.empty() ? dir_ + "/apps.yaml" : w.apps) << "\", scheduler: \"" << scheduler_
        << "\", slots: 1, heartbeat: 1s, work_dir: \""
        << (w.work_dir.empty() ? dir_ + "/work/{node}" : w.work_dir) << "\""
        << (w.keep_work_dirs ? ", keep_work_dirs: true" : "") << "}\n"
        << "  - id: replicates-" << w.node << "\n    op: file.write\n    on: " << w.node
        << "\n    from: worker-" << w.node << ".replicates\n"
        << "    with: {path: \"" << dir_ << "/replicates-" << w.node << ".jsonl\", append: true}\n";
    }
    write_file(pipeline_file(), y.str());
  }
  std::string pipeline_file() const { return dir_ + "/p.yaml"; }

  Process& start_node(const std::string& node) {
    auto& p = nodes_[node];
    p.reset();  // a restart: the old process is gone first
    p = std::make_unique<Process>(
        std::vector<std::string>{edgeflow_binary(), "run", pipeline_file(), "--node", node});
    return *p;
  }
  Process& node(const std::string& name) { return *nodes_.at(name); }
  std::string scheduler_log() { return node("cloud").err(); }

  // The scheduler, then every worker, each registered with it (its hello arrived).
  ::testing::AssertionResult start_pool() {
    Process& s = start_node("cloud");
    if (!s.wait_for_err("of pool 'default'", kWait))
      return ::testing::AssertionFailure() << "scheduler did not start:\n" << s.err();
    for (const WorkerNode& w : workers_) start_node(w.node);
    for (const WorkerNode& w : workers_) {
      if (!listed_.empty() && !std::count(listed_.begin(), listed_.end(), w.node)) continue;
      const std::string joined = "worker " + address_[w.node] + " joined";
      if (!eventually([&] { return contains(s.err(), joined) || !node(w.node).running(); }) ||
          !contains(s.err(), joined))
        return ::testing::AssertionFailure() << w.node << " never joined:\n"
                                             << node(w.node).err() << "\nscheduler:\n"
                                             << s.err();
    }
    return ::testing::AssertionSuccess();
  }

  // Signed by the listed requester unless `args` name a --wallet or requester_key_ is "".
  ProcessResult submit(const std::vector<std::string>& args) {
    std::vector<std::string> argv{edgeflow_binary(), "task", "submit", pipeline_file()};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!requester_key_.empty() && !std::count(args.begin(), args.end(), "--wallet"))
      argv.insert(argv.end(), {"--wallet", requester_key_});
    return run_process(argv, kWait + 30);
  }
  // Submits with --wait and returns the printed result (an empty object if none).
  json submit_and_wait(std::vector<std::string> args, int expect_exit) {
    args.insert(args.end(), {"--wait", "60s"});
    ProcessResult r = submit(args);
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err << "\nscheduler:\n" << scheduler_log();
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j.is_discarded() ? json::object() : j;
  }

  // Stops a node as Ctrl-C would: its stages close, and it exits with 130.
  ::testing::AssertionResult stop_node(const std::string& name) {
    Process& p = node(name);
    p.signal(SIGINT);
    if (!p.wait(30))
      return ::testing::AssertionFailure() << name << " ignored SIGINT:\n" << p.err();
    if (p.exit_code() != 130)
      return ::testing::AssertionFailure() << name << " exited with " << p.exit_code() << ":\n"
                                           << p.err();
    return ::testing::AssertionSuccess();
  }

  // The line about `task` in a file a file.write stage wrote (an empty object if none).
  // file.write keeps a lone record in its buffer until the next one or its close, so read it
  // after stop_node() of the node that wrote it.
  json record_of(const std::string& file, const std::string& task) {
    for (const json& j : json_lines(read_file(dir_ + "/" + file)))
      if (j.value("task", "") == task) return j;
    return json::object();
  }

  // Waits until the scheduler logged a score change for `worker`; returns all of them.
  std::vector<std::pair<int, int>> scores_of(const std::string& worker, size_t at_least = 1) {
    eventually([&] { return score_changes(scheduler_log(), worker).size() >= at_least; });
    return score_changes(scheduler_log(), worker);
  }

  mqtt::EmbeddedBroker broker_;
  std::string dir_, scheduler_;
  std::string requester_, requester_key_;  // the scheduler's requesters: list, and its key
  std::string scheduler_extra_;            // more options of the scheduler (", stake: 5")
  std::vector<WorkerNode> workers_;
  std::map<std::string, std::string> address_;  // node -> worker address
  std::vector<std::string> listed_;             // the scheduler's workers: (empty: all)
  std::vector<AppEntry> apps_;
  std::map<std::string, std::unique_ptr<Process>> nodes_;
};

// Shell lines that wait (at most 60 s) until `path` exists: an app gated by the test, so
// "killed mid-task" holds however slow the machine is.
inline std::string wait_for_file(const std::string& path) {
  return "i=0\nwhile [ ! -e \"" + path + "\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n";
}

// The app most tests run: prints "hello ARGS".
constexpr char kHello[] = "printf 'hello %s\\n' \"$*\" > \"$IEXEC_OUT/result.txt\"\n";

}  // namespace edgeflow
