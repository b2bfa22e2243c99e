// iExec task execution with Proof-of-Contribution, end to end: a real mosquitto on a free
// loopback port, the edgeflow binary run as one process per node (the scheduler on `cloud`,
// one iexec.worker per edge node), apps that are small sh scripts in a registry the test
// writes, and tasks submitted with `edgeflow task submit` as a user would. Every wait is
// bounded; nothing asserts on how long something took.
//
// Worker keys are made by the test and sorted: w1 always has the lowest address. The scheduler
// hands a replicate to the worker with the most free slots, then the highest score, then the
// lowest address, so tests that need one particular worker in the first replicates (the liar,
// the tampered node) put it on w1 and get the same hand-out on every run.
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
namespace {

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

bool eventually(const std::function<bool()>& done, double seconds = kWait) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

std::string hex_sha256(const std::string& bytes) { return crypto::sha256(bytes).hex(); }

// Every "score N -> M" the scheduler logged for `worker`, in order.
std::vector<std::pair<int, int>> score_changes(const std::string& log, const std::string& worker) {
  std::vector<std::pair<int, int>> out;
  const std::regex re("worker " + worker + " score ([0-9]+) -> ([0-9]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
       ++it)
    out.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  return out;
}

std::set<std::string> as_set(const json& array) {
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
  };
  void write_registry(const std::string& path, const std::vector<AppEntry>& apps) {
    std::string y = "apps:\n";
    for (const AppEntry& a : apps) {
      y += "  " + a.name + ":\n    path: \"" + a.path + "\"\n    sha256: " + a.sha256 + "\n";
      y += "    limits: {" + (a.limits.empty() ? std::string("timeout: 30s") : a.limits) + "}\n";
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
      << "]}\n"
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

  ProcessResult submit(const std::vector<std::string>& args) {
    std::vector<std::string> argv{edgeflow_binary(), "task", "submit", pipeline_file()};
    argv.insert(argv.end(), args.begin(), args.end());
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
  std::vector<WorkerNode> workers_;
  std::map<std::string, std::string> address_;  // node -> worker address
  std::vector<std::string> listed_;             // the scheduler's workers: (empty: all)
  std::vector<AppEntry> apps_;
  std::map<std::string, std::unique_ptr<Process>> nodes_;
};

// Shell lines that wait (at most 60 s) until `path` exists: an app gated by the test, so
// "killed mid-task" holds however slow the machine is.
std::string wait_for_file(const std::string& path) {
  return "i=0\nwhile [ ! -e \"" + path + "\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n";
}

// The app most tests run: prints "hello ARGS".
constexpr char kHello[] = "printf 'hello %s\\n' \"$*\" > \"$IEXEC_OUT/result.txt\"\n";

// Trust 5 needs 3 agreeing fresh workers (weights 2: group 2, 4, 8 against total 9, since
// 8 x 5 > 9 x 4); the replication rule hands exactly 3 replicates, all honest.
TEST_F(IexecPool, ThreeHonestWorkersReachConsensusAndFinalize) {
  make_workers(3);
  add_app("hello", std::string(kHello) + kComputed);
  write_pipeline();
  ASSERT_TRUE(start_pool());

  json r = submit_and_wait({"--app", "hello", "--arg", "edge", "--trust", "5"}, 0);
  const std::string expected = "hello edge\n";
  EXPECT_EQ(r.value("status", ""), "COMPLETED") << r.dump(2);
  EXPECT_EQ(r.value("trust", 0), 5);
  EXPECT_EQ(as_set(r["winners"]),
            (std::set<std::string>{address_["w1"], address_["w2"], address_["w3"]}));
  EXPECT_EQ(r.value("result_digest", ""), hex_sha256(expected));
  EXPECT_EQ(r["output"], (json{{"result.txt", expected}})) << r.dump(2);
  ASSERT_EQ(r["contributors"].size(), 3u) << r.dump(2);
  for (const json& c : r["contributors"]) {
    EXPECT_EQ(c["contribution"], "PROVED");
    EXPECT_EQ(c["weight"], 2);  // fresh workers
  }
  // The scheduler vouches for the result with its key: anyone can check it.
  const std::string task = r.value("task", "");
  auto sig = crypto::parse_signature(r.value("result_signature", ""));
  ASSERT_TRUE(sig) << r.dump(2);
  auto signer = crypto::recover_eip191(
      iexec::result_hash(*crypto::parse_hash32(task),
                         *crypto::parse_hash32(r.value("result_digest", ""))),
      *sig);
  ASSERT_TRUE(signer);
  EXPECT_EQ(signer->hex(), scheduler_);

  // The same result reached the scheduler's results output.
  for (const WorkerNode& w : workers_)
    EXPECT_EQ(scores_of(address_[w.node]), (std::vector<std::pair<int, int>>{{0, 1}})) << w.node;
  ASSERT_TRUE(stop_node("cloud"));
  json rec = record_of("results.jsonl", task);
  EXPECT_EQ(rec.value("status", ""), "COMPLETED") << rec.dump();
  EXPECT_EQ(rec.value("output", ""), expected);
  EXPECT_EQ(rec.value("result_digest", ""), hex_sha256(expected));
  EXPECT_EQ(rec["winners"].size(), 3u);
}

// A liar among honest workers is outvoted, excluded from the winners and loses score.
//
// Why four workers and not three: every worker below score 12 weighs 2, and a group grows
// 2, 4, 8 (delta = max(group, 1) x 2 - group) while the total starts at 1. With one liar and
// two honest workers, the liar's contribution adds 2 to the total, so the honest pair ends at
// group 4 of total 7, and 4 x trust > 7 x (trust - 1) only holds for trust <= 2 — where a
// single contribution (2 x 2 > 3 x 1) already decides, before the liar could take part. With
// three honest workers at trust 3: liar 2 (total 3: 6 > 6 fails, no consensus on the lie),
// honest 2 (total 5), honest 4 (total 7: 12 > 14 fails), honest 8 (total 11: 24 > 22) —
// consensus, three winners, the liar's contribution on record under another resultHash.
// Trust 3 hands out two replicates first (pending 4 of 5: 12 > 10), then one per
// disagreement; the liar is w1 (lowest address) and shares the top score after the warm-up,
// so it is always in the first two.
TEST_F(IexecPool, LiarIsOutvotedAndLosesScore) {
  make_workers(4);
  // The liar's task folders live under a path with "liar" in it; the app then lies.
  workers_[0].work_dir = dir_ + "/work/liar-{node}";
  add_app("hello", std::string(kHello) + kComputed);
  add_app("answer",
          "case \"$IEXEC_OUT\" in *liar*) a=41 ;; *) a=42 ;; esac\n"
          "echo \"answer $a\" > \"$IEXEC_OUT/result.txt\"\n" +
              std::string(kComputed));
  write_pipeline();
  ASSERT_TRUE(start_pool());
  const std::string liar = address_["w1"];

  // Warm-up: an honest task the liar takes part in, so its score is above 0 (a loser's score
  // becomes score x 2 / 3, and 0 x 2 / 3 is still 0: nothing would show the penalty).
  json warm = submit_and_wait({"--app", "hello", "--arg", "warm-up", "--trust", "3"}, 0);
  ASSERT_EQ(warm.value("status", ""), "COMPLETED") << warm.dump(2);
  ASSERT_TRUE(as_set(warm["winners"]).count(liar)) << "the liar must take part: " << warm.dump(2);
  ASSERT_EQ(scores_of(liar), (std::vector<std::pair<int, int>>{{0, 1}}));

  json r = submit_and_wait({"--app", "answer", "--trust", "3"}, 0);
  ASSERT_EQ(r.value("status", ""), "COMPLETED") << r.dump(2);
  EXPECT_EQ(r["output"], (json{{"result.txt", "answer 42\n"}})) << r.dump(2);
  EXPECT_EQ(r.value("result_digest", ""), hex_sha256("answer 42\n"));
  EXPECT_EQ(as_set(r["winners"]),
            (std::set<std::string>{address_["w2"], address_["w3"], address_["w4"]}))
      << r.dump(2);

  // The liar contributed, with the hash of its own answer, and was not proved.
  const auto task = *crypto::parse_hash32(r.value("task", ""));
  const std::string honest_hash = iexec::result_hash(task, crypto::sha256("answer 42\n")).hex();
  const std::string lie_hash = iexec::result_hash(task, crypto::sha256("answer 41\n")).hex();
  ASSERT_EQ(r["contributors"].size(), 4u) << r.dump(2);
  for (const json& c : r["contributors"]) {
    if (c["worker"] == liar) {
      EXPECT_EQ(c["result_hash"], lie_hash);
      EXPECT_NE(c["contribution"], "PROVED");
    } else {
      EXPECT_EQ(c["result_hash"], honest_hash);
      EXPECT_EQ(c["contribution"], "PROVED");
    }
  }

  // Losers keep two thirds of their score: 1 -> 0. Winners gained a point.
  auto liar_scores = scores_of(liar, 2);
  ASSERT_EQ(liar_scores.size(), 2u) << scheduler_log();
  EXPECT_LT(liar_scores[1].second, liar_scores[1].first);
  EXPECT_EQ(liar_scores[1], (std::pair<int, int>{1, 0}));
  for (const char* w : {"w2", "w3", "w4"}) {
    auto s = scores_of(address_[w], std::string(w) == "w2" ? 2 : 1);
    ASSERT_FALSE(s.empty()) << w;
    EXPECT_EQ(s.back().second, s.back().first + 1) << w;
  }
}

// Trust 100 needs 7 agreeing fresh workers; with 2, the task waits for the contribution
// deadline (7 x time_ref) and fails with a cause that says why.
TEST_F(IexecPool, TrustAboveThePoolFailsAtTheContributionDeadline) {
  make_workers(2);
  add_app("hello", std::string(kHello) + kComputed);
  write_pipeline();
  ASSERT_TRUE(start_pool());

  json r = submit_and_wait({"--app", "hello", "--trust", "100", "--time-ref", "1s"}, 1);
  EXPECT_EQ(r.value("status", ""), "FAILED") << r.dump(2);
  const std::string cause = r.value("cause", "");
  EXPECT_TRUE(contains(cause, "contribution deadline")) << cause;
  EXPECT_TRUE(contains(cause, "too few workers")) << cause;
  EXPECT_TRUE(contains(cause, "trust 100")) << cause;
  EXPECT_EQ(r["contributors"].size(), 2u) << r.dump(2);  // both worked, neither could decide
  EXPECT_TRUE(r["winners"].empty());
  ASSERT_TRUE(stop_node("cloud"));
  EXPECT_EQ(record_of("results.jsonl", r.value("task", "")).value("status", ""), "FAILED");
}

// An app that times out and one that exits non-zero still yield a contribution over the same
// error.txt on every honest worker, so the task completes by consensus on the error.
TEST_F(IexecPool, FailingAndTimedOutAppsCompleteByConsensusOnTheError) {
  make_workers(3);
  add_app("sleepy", "sleep 30\n" + std::string(kHello) + kComputed, "timeout: 500ms");
  add_app("failing", "echo 'no such sensor' >&2\nexit 3\n");
  write_pipeline();
  ASSERT_TRUE(start_pool());

  const std::pair<const char*, const char*> cases[] = {
      {"sleepy", "app 'sleepy' timed out after 500ms\n"},
      {"failing", "app 'failing' exited with code 3\n"},
  };
  for (const auto& [app, error] : cases) {
    json r = submit_and_wait({"--app", app, "--trust", "3"}, 0);
    EXPECT_EQ(r.value("status", ""), "COMPLETED") << r.dump(2);
    EXPECT_EQ(r["output"], (json{{"error.txt", error}})) << r.dump(2);
    EXPECT_EQ(r.value("result_digest", ""), hex_sha256(error));
    EXPECT_EQ(r["winners"].size(), 2u) << r.dump(2);
  }
}

// A node whose copy of the app changed after it was registered refuses to run it: its
// replicate FAILS with a sha256 mismatch, the app never starts, and the task goes to another
// worker and completes without it.
TEST_F(IexecPool, TamperedAppIsRefusedBeforeItRuns) {
  make_workers(3);  // w1 (lowest address) gets one of the two first replicates of trust 3
  // The app leaves a marker in its task folder (the only place it may write), which the
  // workers keep: a marker below a worker's work_dir says the app ran there.
  for (WorkerNode& w : workers_) w.keep_work_dirs = true;
  const std::string body = std::string("touch \"$HOME/ran\"\n") + kHello + kComputed;
  add_app("marker", body);
  // w1's own copy and registry, with the right sha256; then the file changes on its disk.
  fs::create_directories(dir_ + "/w1-apps");
  const std::string copy = dir_ + "/w1-apps/marker.sh";
  const std::string sha = write_app(copy, body);
  ASSERT_EQ(sha, apps_[0].sha256);
  write_registry(dir_ + "/w1-apps/apps.yaml", {{"marker", copy, sha, ""}});
  write_app(copy, "touch \"$HOME/tampered\"\n" + body);
  workers_[0].apps = dir_ + "/w1-apps/apps.yaml";
  write_pipeline();

  Watcher watch(broker_.uri(), {std::string(kBase) + "/events"});
  ASSERT_TRUE(watch.ready());
  ASSERT_TRUE(start_pool());
  json r = submit_and_wait({"--app", "marker", "--arg", "x", "--trust", "3"}, 0);
  EXPECT_EQ(r.value("status", ""), "COMPLETED") << r.dump(2);
  EXPECT_EQ(as_set(r["winners"]), (std::set<std::string>{address_["w2"], address_["w3"]}));
  for (const json& c : r["contributors"]) EXPECT_NE(c["worker"], address_["w1"]);

  // The scheduler heard of the refusal, and w1's replicates output has it: FAILED, sha256
  // mismatch.
  EXPECT_TRUE(watch.wait_for(event("replicate_failed", "sha256 mismatch")));
  ASSERT_TRUE(stop_node("w1"));
  json failed = record_of("replicates-w1.jsonl", r.value("task", ""));
  EXPECT_EQ(failed.value("status", ""), "FAILED") << failed.dump() << node("w1").err();
  EXPECT_TRUE(contains(failed.value("cause", ""), "sha256 mismatch")) << failed.dump();
  // The app never ran on w1 (neither the registered body nor the tampered line), and did on
  // the two others: the markers work.
  auto markers = [&](const std::string& node) {
    std::set<std::string> found;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir_ + "/work/" + node, ec), end; !ec && it != end;
         it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name == "ran" || name == "tampered") found.insert(name);
    }
    return found;
  };
  EXPECT_EQ(markers("w1"), std::set<std::string>{});
  EXPECT_EQ(markers("w2"), std::set<std::string>{"ran"});
  EXPECT_EQ(markers("w3"), std::set<std::string>{"ran"});
}

// The pool is closed: a worker whose address is not in the scheduler's workers: list is
// refused when it says hello, and never gets a replicate, however many tasks there are.
TEST_F(IexecPool, AWorkerNotInTheListIsRefusedAndGetsNoTask) {
  make_workers(3);
  listed_ = {"w1", "w2"};
  add_app("hello", std::string(kHello) + kComputed);
  write_pipeline();
  Watcher watch(broker_.uri(), {std::string(kBase) + "/events"});
  ASSERT_TRUE(watch.ready());
  ASSERT_TRUE(start_pool());
  EXPECT_TRUE(watch.wait_for(event("refused", address_["w3"]))) << scheduler_log();
  EXPECT_TRUE(contains(scheduler_log(), "not in this scheduler's workers: list"))
      << scheduler_log();
  // Not only its hello: any message of w3's (here a status report) is refused.
  const crypto::Wallet w3 = crypto::Wallet::load(key_file("w3"));
  watch.publish(std::string(kBase) + "/scheduler",
                iexec::seal_message(w3, {{"type", "status"},
                                         {"task", crypto::keccak256("any").hex()},
                                         {"status", "COMPUTING"}}));
  EXPECT_TRUE(watch.wait_for(event("refused", "'status' from " + address_["w3"])))
      << scheduler_log();
  json r = submit_and_wait({"--app", "hello", "--arg", "x", "--trust", "1"}, 0);
  EXPECT_EQ(r.value("status", ""), "COMPLETED") << r.dump(2);
  for (const json& c : r["contributors"]) EXPECT_NE(c["worker"], address_["w3"]);
}

// A scheduler names its workers or says, in so many words, that its pool is open.
TEST(IexecScheduler, AClosedPoolNeedsItsWorkersListOrAnExplicitOpenPool) {
  const std::string dir = make_temp_dir();
  auto validate = [&](const std::string& extra) {
    write_file(dir + "/p.yaml",
               "pipeline: closed\nnodes: {cloud: {tier: cloud}}\nstages:\n"
               "  - id: scheduler\n    op: iexec.scheduler\n    on: cloud\n"
               "    with: {wallet: s.key, create_wallet: true, apps: \"" +
                   source_dir() + "/apps/registry.yaml\", journal: j" + extra + "}\n");
    return run_process({edgeflow_binary(), "validate", dir + "/p.yaml"}, 30);
  };
  ProcessResult none = validate("");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_TRUE(contains(none.err, "option 'workers': is needed: the pool is closed by default"))
      << none.err;
  EXPECT_EQ(validate(", open_pool: true").exit_code, 0);
  EXPECT_EQ(validate(", workers: [\"0x00000000000000000000000000000000000000a1\"]").exit_code, 0);
  ProcessResult both =
      validate(", open_pool: true, workers: [\"0x00000000000000000000000000000000000000a1\"]");
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_TRUE(contains(both.err, "cannot be true with a workers: list")) << both.err;
}

// Contributions are signed, and the scheduler checks who signed and what it already has: a
// real contribution sent again, one signed by another key than its `from`, and one from a key
// that never said hello are all refused, and the ledger counts none of them.
TEST_F(IexecPool, ForgedAndReplayedContributionsAreRefused) {
  make_workers(3);
  add_app("hello", std::string(kHello) + kComputed);
  write_pipeline();
  const std::string to_scheduler = std::string(kBase) + "/scheduler";
  Watcher watch(broker_.uri(), {to_scheduler, std::string(kBase) + "/events"});
  ASSERT_TRUE(watch.ready());
  ASSERT_TRUE(start_pool());

  // Trust 100 cannot be reached by 3 workers: contributions stay open for the whole test
  // (the contribution deadline is 7 x 30 s).
  ProcessResult s = submit({"--app", "hello", "--trust", "100", "--time-ref", "30s"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const std::string w1 = address_["w1"];
  for (const WorkerNode& w : workers_)
    ASSERT_TRUE(watch.wait_for(event("contributed", address_[w.node]))) << scheduler_log();

  // w1's real contribution, as it crossed the broker.
  auto captured = watch.wait_for([&](const mqtt::Received& r) {
    auto m = opened(r);
    return r.topic == to_scheduler && m && m->body["type"] == "contribute" && m->from.hex() == w1;
  });
  ASSERT_TRUE(captured);
  const json body = opened(*captured)->body;

  // (a) Replayed verbatim: a valid signature, but w1 already contributed.
  watch.publish(to_scheduler, captured->payload);
  EXPECT_TRUE(watch.wait_for(event("refused", "already contributed"))) << scheduler_log();

  // (b) Forged: the body says from w1, the signature is w2's (a worker of the pool).
  const crypto::Wallet w2 = crypto::Wallet::load(key_file("w2"));
  const std::vector<uint8_t> b = json::to_msgpack(body);
  json env = json::object();
  env["b"] = json::binary(b);
  env["s"] = iexec::bin(w2.sign_eip191(crypto::keccak256(b.data(), b.size())));
  const std::vector<uint8_t> forged = json::to_msgpack(env);
  watch.publish(to_scheduler, std::string(forged.begin(), forged.end()));
  EXPECT_TRUE(
      watch.wait_for(event("refused", "recovers to " + w2.address().hex() + ", not to " + w1)))
      << scheduler_log();

  // (c) Signed by a key that is not in the pool (it copies w1's result and authorization).
  const crypto::Wallet stranger = crypto::Wallet::generate();
  json copy = body;
  copy.erase("from");
  watch.publish(to_scheduler, iexec::seal_message(stranger, copy));
  EXPECT_TRUE(watch.wait_for(
      event("refused", stranger.address().hex() + ": not in this scheduler's workers: list")))
      << scheduler_log();

  // The refusals also reach the scheduler's log (its error output).
  EXPECT_TRUE(eventually([&] {
    return contains(scheduler_log(), stranger.address().hex() + ": not in this scheduler's");
  })) << scheduler_log();
  // Three refusals, and the ledger's journal holds one contribution per real worker only.
  size_t refused = 0;
  for (const auto& m : watch.all()) refused += event("refused")(m);
  EXPECT_EQ(refused, 3u);
  std::multiset<std::string> contributors;
  for (const json& j : json_lines(read_file(dir_ + "/poco.journal")))
    if (j.value("op", "") == "contribute") contributors.insert(j.value("worker", ""));
  EXPECT_EQ(contributors, (std::multiset<std::string>{w1, address_["w2"], address_["w3"]}));
}

// The scheduler is killed while the workers compute; they finish and contribute while it is
// down (their QoS 1 messages wait in its persistent session at the broker); a new scheduler
// process with the same key and journal picks the task up and completes it.
//
// Instead of sleeping, the app waits for a gate file the test creates once the scheduler is
// dead, so "killed mid-task" holds on any machine, however slow.
TEST_F(IexecPool, SchedulerRestartedMidTaskCompletesFromItsJournal) {
  make_workers(3);
  const std::string gate = dir_ + "/gate";
  add_app("gated", wait_for_file(gate) + kHello + kComputed);
  write_pipeline();
  const std::string to_scheduler = std::string(kBase) + "/scheduler";
  Watcher watch(broker_.uri(), {to_scheduler});
  ASSERT_TRUE(watch.ready());
  ASSERT_TRUE(start_pool());

  const std::string id = "0x" + std::string(60, '0') + "beef";
  ProcessResult s = submit({"--app", "gated", "--arg", "again", "--trust", "3", "--id", id});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const std::string task = s.out.substr(0, s.out.find('\n'));
  ASSERT_TRUE(crypto::parse_hash32(task)) << s.out;
  auto of_task = [&](const mqtt::Received& r, const char* type, const char* status) {
    auto m = opened(r);
    return r.topic == to_scheduler && m && m->body["type"] == type &&
           iexec::get_hash(m->body, "task").hex() == task &&
           (!status || m->body.value("status", "") == status);
  };
  ASSERT_TRUE(watch.wait_for([&](const auto& r) { return of_task(r, "status", "COMPUTING"); }))
      << scheduler_log();

  node("cloud").signal(SIGKILL);
  ASSERT_TRUE(node("cloud").wait(30));
  const std::string first_log = scheduler_log();
  EXPECT_FALSE(contains(first_log, "COMPLETED")) << first_log;

  // Both replicates finish and contribute with no scheduler running.
  write_file(gate, "open");
  ASSERT_TRUE(eventually([&] {
    int n = 0;
    for (const auto& r : watch.all()) n += of_task(r, "contribute", nullptr);
    return n >= 2;
  })) << node("w1").err();

  Process& restarted = start_node("cloud");
  ASSERT_TRUE(restarted.wait_for_err("of pool 'default'", kWait)) << restarted.err();
  // The same request id is the same task: this only waits for its result.
  json r = submit_and_wait({"--app", "gated", "--arg", "again", "--trust", "3", "--id", id}, 0);
  EXPECT_EQ(r.value("task", ""), task);
  EXPECT_EQ(r.value("status", ""), "COMPLETED") << r.dump(2) << restarted.err();
  EXPECT_EQ(r["output"], (json{{"result.txt", "hello again\n"}}));
  EXPECT_EQ(r["winners"].size(), 2u);
  EXPECT_TRUE(contains(restarted.err(), "3 worker(s) and 1 open task(s)")) << restarted.err();
  // Replayed, not redone: one submit in the journal.
  size_t submits = 0;
  for (const json& j : json_lines(read_file(dir_ + "/poco.journal")))
    submits += j.value("op", "") == "submit";
  EXPECT_EQ(submits, 1u);
}

// A worker killed while computing comes back with a new `boot` in its hello; the scheduler,
// which still counts it as computing, sends it the task again, and the task completes.
TEST_F(IexecPool, WorkerRestartedMidTaskIsSentItsTaskAgain) {
  make_workers(1);
  const std::string gate = dir_ + "/gate";
  add_app("gated", wait_for_file(gate) + kHello + kComputed);
  write_pipeline();
  const std::string to_scheduler = std::string(kBase) + "/scheduler";
  Watcher watch(broker_.uri(), {to_scheduler});
  ASSERT_TRUE(watch.ready());
  ASSERT_TRUE(start_pool());

  const std::string id = "0x" + std::string(60, '0') + "cafe";
  ProcessResult s = submit({"--app", "gated", "--arg", "twice", "--id", id});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const std::string task = s.out.substr(0, s.out.find('\n'));
  ASSERT_TRUE(watch.wait_for([&](const mqtt::Received& r) {
    auto m = opened(r);
    return m && m->body["type"] == "status" && m->body.value("status", "") == "COMPUTING";
  })) << scheduler_log();

  node("w1").signal(SIGKILL);
  ASSERT_TRUE(node("w1").wait(30));
  start_node("w1");
  ASSERT_TRUE(eventually([&] { return contains(scheduler_log(), "restarted; sending task"); }))
      << scheduler_log() << node("w1").err();
  write_file(gate, "open");
  json r = submit_and_wait({"--app", "gated", "--arg", "twice", "--id", id}, 0);
  EXPECT_EQ(r.value("task", ""), task);
  EXPECT_EQ(r.value("status", ""), "COMPLETED") << r.dump(2) << scheduler_log();
  EXPECT_EQ(r["output"], (json{{"result.txt", "hello twice\n"}}));
  EXPECT_EQ(r["winners"], (json{address_["w1"]}));
}

// A worker restarted between its contribution and the reveal request still reveals: it kept
// its contribution (digest and output) on disk. w1 contributes at once, is killed and
// restarted; w2 waits for a gate, and its contribution brings consensus (trust 3: two agreeing
// fresh workers), so the reveal request reaches the restarted w1.
TEST_F(IexecPool, WorkerRestartedAfterContributingStillReveals) {
  make_workers(2);
  const std::string gate = dir_ + "/gate";
  add_app("slow-on-w2", "case \"$IEXEC_OUT\" in */work/w2/*)\n" + wait_for_file(gate) +
                            ";; esac\n" + kHello + kComputed);
  write_pipeline();
  const std::string to_scheduler = std::string(kBase) + "/scheduler";
  Watcher watch(broker_.uri(), {to_scheduler});
  ASSERT_TRUE(watch.ready());
  ASSERT_TRUE(start_pool());

  const std::string id = "0x" + std::string(60, '0') + "f00d";
  ProcessResult s = submit({"--app", "slow-on-w2", "--arg", "kept", "--trust", "3", "--id", id});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  ASSERT_TRUE(watch.wait_for([&](const mqtt::Received& r) {
    auto m = opened(r);
    return m && m->body["type"] == "contribute" && m->from.hex() == address_["w1"];
  })) << scheduler_log();

  node("w1").signal(SIGKILL);
  ASSERT_TRUE(node("w1").wait(30));
  Process& again = start_node("w1");
  ASSERT_TRUE(again.wait_for_err("wait for their reveal", kWait)) << again.err();
  write_file(gate, "open");
  json r = submit_and_wait({"--app", "slow-on-w2", "--arg", "kept", "--trust", "3", "--id", id}, 0);
  EXPECT_EQ(r.value("status", ""), "COMPLETED") << r.dump(2) << scheduler_log();
  EXPECT_EQ(r["output"], (json{{"result.txt", "hello kept\n"}}));
  EXPECT_EQ(as_set(r["winners"]), (std::set<std::string>{address_["w1"], address_["w2"]}))
      << r.dump(2);
}

// The example shipped in pipelines/ runs (embedded broker, requests from the weather data)
// and completes tasks, with all its state redirected out of the repository.
TEST(IexecExample, WorkerPoolPipelineCompletesATask) {
  const std::string dir = make_temp_dir();
  ::chmod(dir.c_str(), 0755);
  ProcessResult r = run_process(
      {edgeflow_binary(), "run", source_dir() + "/pipelines/iexec-worker-pool.yaml", "--for", "15s",
       "--set", "scheduler.wallet=" + dir + "/scheduler.key", "--set",
       "scheduler.journal=" + dir + "/poco.journal", "--set",
       "worker.wallet=" + dir + "/{node}.key", "--set", "worker.work_dir=" + dir + "/work/{node}",
       "--set", "local-forecast.work_dir=" + dir + "/local/{node}"},
      90);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(std::regex_search(r.err, std::regex("task 0x[0-9a-f]{64} COMPLETED"))) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/poco.journal"));
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace edgeflow
