// iExec task execution with Proof-of-Contribution, end to end (the pool: tests/iexec_pool.h):
// consensus, liars, failing and tampered apps, and restarts of the scheduler and workers.
// Who may join and ask (closed pool, requesters, forged messages): iexec_access_test.cc.
#include <gtest/gtest.h>

#include "tests/iexec_pool.h"

namespace edgeflow {
namespace {

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
