// Who may join an iExec pool and ask it for work, end to end (the pool: tests/iexec_pool.h):
// a worker off the workers: list, the requesters: list, and forged or replayed contributions.
#include <gtest/gtest.h>

#include "tests/iexec_pool.h"

namespace edgeflow {
namespace {

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

// A scheduler names its workers and its requesters, or says, in so many words, that its pool
// or its door is open.
TEST(IexecScheduler, AClosedPoolNeedsItsWorkersAndRequestersListsOrExplicitOpenness) {
  const std::string dir = make_temp_dir();
  auto validate = [&](const std::string& extra) {
    write_file(dir + "/p.yaml",
               "pipeline: closed\nnodes: {cloud: {tier: cloud}}\nstages:\n"
               "  - id: scheduler\n    op: iexec.scheduler\n    on: cloud\n"
               "    with: {wallet: s.key, create_wallet: true, apps: \"" +
                   source_dir() + "/apps/registry.yaml\", journal: j" + extra + "}\n");
    return run_process({edgeflow_binary(), "validate", dir + "/p.yaml"}, 30);
  };
  const std::string a1 = "[\"0x00000000000000000000000000000000000000a1\"]";
  const std::string requesters = ", requesters: " + a1;
  ProcessResult none = validate(requesters);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_TRUE(contains(none.err, "option 'workers': is needed: the pool is closed by default"))
      << none.err;
  EXPECT_EQ(validate(", open_pool: true" + requesters).exit_code, 0);
  EXPECT_EQ(validate(", workers: " + a1 + requesters).exit_code, 0);
  ProcessResult both = validate(", open_pool: true, workers: " + a1 + requesters);
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_TRUE(contains(both.err, "cannot be true with a workers: list")) << both.err;

  const std::string workers = ", workers: " + a1;
  ProcessResult no_requesters = validate(workers);
  EXPECT_EQ(no_requesters.exit_code, 2);
  EXPECT_TRUE(contains(no_requesters.err,
                       "option 'requesters': is needed: requests are refused unless signed"))
      << no_requesters.err;
  EXPECT_EQ(validate(workers + ", open_requests: true").exit_code, 0);
  ProcessResult both_doors = validate(workers + requesters + ", open_requests: true");
  EXPECT_EQ(both_doors.exit_code, 2);
  EXPECT_TRUE(contains(both_doors.err, "cannot be true with a requesters: list")) << both_doors.err;
  ProcessResult bad = validate(workers + ", requesters: [\"pi-1\"]");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "'pi-1' is not an address")) << bad.err;
}

// Only the listed requester's tasks run: an unsigned request and one signed by another key
// are refused with a FAILED status that says why (the requester waiting sees it), enter no
// ledger and reach no worker.
TEST_F(IexecPool, OnlyTheListedRequestersTasksRun) {
  make_workers(1);
  add_app("hello", std::string(kHello) + kComputed);
  write_pipeline();
  ASSERT_TRUE(start_pool());

  const std::string listed_key = requester_key_;
  requester_key_.clear();  // unsigned
  json unsigned_result = submit_and_wait({"--app", "hello", "--arg", "a", "--trust", "1"}, 1);
  EXPECT_EQ(unsigned_result.value("status", ""), "FAILED") << unsigned_result.dump(2);
  EXPECT_TRUE(contains(unsigned_result.value("cause", ""), "an unsigned request"))
      << unsigned_result.dump(2);

  const std::string stranger_key = dir_ + "/keys/stranger.key";
  const crypto::Wallet stranger = crypto::Wallet::generate();
  stranger.save(stranger_key);
  json stranger_result = submit_and_wait(
      {"--wallet", stranger_key, "--app", "hello", "--arg", "b", "--trust", "1"}, 1);
  EXPECT_EQ(stranger_result.value("status", ""), "FAILED") << stranger_result.dump(2);
  EXPECT_TRUE(contains(
      stranger_result.value("cause", ""),
      "requester " + stranger.address().hex() + " is not in this scheduler's requesters: list"))
      << stranger_result.dump(2);

  requester_key_ = listed_key;
  json listed = submit_and_wait({"--app", "hello", "--arg", "c", "--trust", "1"}, 0);
  EXPECT_EQ(listed.value("status", ""), "COMPLETED") << listed.dump(2);
  EXPECT_EQ(listed["output"], (json{{"result.txt", "hello c\n"}})) << listed.dump(2);

  // The refused requests reached no worker and no ledger: one task ran, one result.
  ASSERT_TRUE(stop_node("w1"));
  ASSERT_TRUE(stop_node("cloud"));
  const std::vector<json> results = json_lines(read_file(dir_ + "/results.jsonl"));
  ASSERT_EQ(results.size(), 1u) << read_file(dir_ + "/results.jsonl");
  EXPECT_EQ(results[0].value("status", ""), "COMPLETED");
  const std::vector<json> replicates = json_lines(read_file(dir_ + "/replicates-w1.jsonl"));
  EXPECT_FALSE(replicates.empty());
  for (const json& r : replicates)
    EXPECT_EQ(r.value("task", ""), listed.value("task", "")) << r.dump();
}

// A signed request names the pool it is for: the same bytes replayed to another pool (where
// the same requester is listed, and would pay) are refused there, and run nowhere.
TEST_F(IexecPool, ARequestSignedForAnotherPoolIsRefused) {
  make_workers(1);
  add_app("hello", std::string(kHello) + kComputed);
  write_pipeline();
  ASSERT_TRUE(start_pool());

  const iexec::Topics here(kPipeline, "default"), elsewhere("other-city", "default");
  const crypto::Wallet requester = crypto::Wallet::load(requester_key_);
  auto request = [&](const std::string& id, const iexec::Topics& to) {
    json body = {{"type", "request"},       {"id", iexec::bin(crypto::keccak256(id))},
                 {"app", "hello"},          {"args", json::array({id})},
                 {"inputs", json::array()}, {"trust", 1},
                 {"to", to.requests()}};
    return iexec::seal_message(requester, body);
  };
  Watcher watcher(broker_.uri(), {here.base + "/results/#"});
  ASSERT_TRUE(watcher.ready());
  watcher.publish(here.requests(), request("replayed", elsewhere));
  watcher.publish(here.requests(), request("meant-here", here));
  // The request meant for this pool runs; the replayed one is refused, naming both topics.
  auto done = watcher.wait_for([](const mqtt::Received& r) {
    return contains(r.payload, "COMPLETED") && contains(r.payload, "hello meant-here");
  });
  EXPECT_TRUE(done) << scheduler_log();
  EXPECT_TRUE(contains(scheduler_log(), "the request was signed for " + elsewhere.requests() +
                                            ", not for this pool's " + here.requests()))
      << scheduler_log();
  ASSERT_TRUE(stop_node("w1"));
  ASSERT_TRUE(stop_node("cloud"));
  const std::vector<json> results = json_lines(read_file(dir_ + "/results.jsonl"));
  ASSERT_EQ(results.size(), 1u) << read_file(dir_ + "/results.jsonl");
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

// A priced pool through the binary: the registry's price, the scheduler's stake and opening
// balances. The requester pays for one task and is refused the next; the worker is paid.
TEST_F(IexecPool, ARequesterPaysForATaskAndIsRefusedWhatItCannotPay) {
  make_workers(1);
  add_app("hello", std::string(kHello) + kComputed);
  apps_.back().price = 30;
  write_registry(dir_ + "/apps.yaml", apps_);
  scheduler_extra_ =
      ", stake: 5, accounts: {\"" + requester_ + "\": 40, \"" + address_["w1"] + "\": 10}";
  write_pipeline();
  ASSERT_TRUE(start_pool());

  json paid = submit_and_wait({"--app", "hello", "--arg", "a", "--trust", "1"}, 0);
  EXPECT_EQ(paid.value("status", ""), "COMPLETED") << paid.dump(2);
  json refused = submit_and_wait({"--app", "hello", "--arg", "b", "--trust", "1"}, 1);
  EXPECT_EQ(refused.value("status", ""), "FAILED") << refused.dump(2);
  EXPECT_TRUE(contains(refused.value("cause", ""), "requester " + requester_ +
                                                       " has a balance of 10, less than the "
                                                       "price 30 of app 'hello'"))
      << refused.dump(2);
  const std::string log = scheduler_log();
  EXPECT_TRUE(contains(log, "account " + requester_)) << log;
  EXPECT_TRUE(contains(log, "account " + address_["w1"])) << log;
  EXPECT_TRUE(contains(log, "reward 30 from " + requester_)) << log;
  EXPECT_TRUE(contains(log, "stake returned 5, balance 40")) << log;  // 10 + 30 paid
}

}  // namespace
}  // namespace edgeflow
