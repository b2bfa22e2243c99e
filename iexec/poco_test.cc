// The PoCo ledger against the contract's numbers (IEXEC.md), on a fake clock (a plain int64).
#include "iexec/poco.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "iexec/poco_test_support.h"
#include "iexec/wide_math.h"

namespace edgeflow::iexec {
namespace {

using crypto::keccak256;
using crypto::Packed;
using crypto::sha256;
using testing::addr;
using testing::count;
using testing::kAppSha;
using testing::kRef;
using testing::kScheduler;
using testing::kSec;
using testing::req;
using testing::rhash;
using testing::rseal;

const LedgerEvent* find(const std::vector<LedgerEvent>& ev, LedgerEvent::Kind k) {
  for (const LedgerEvent& e : ev) {
    if (e.kind == k) return &e;
  }
  return nullptr;
}

struct Env {
  explicit Env(LedgerOptions o = {}) : l(kScheduler, std::move(o)) {}
  Ledger l;
  int64_t now = 1'000;

  void add_workers(int first, int n, int slots = 1) {
    for (int i = first; i < first + n; ++i)
      l.register_worker(addr(i), slots, {{"app", kAppSha}}, now);
  }
  std::string contribute(const Address& w, const Hash32& task, const Hash32& digest) {
    return l.contribute(w, task, rhash(task, digest), rseal(w, task, digest), now);
  }
  std::string reveal(const Address& w, const Hash32& task, const Hash32& digest) {
    return l.reveal(w, task, digest, now);
  }
  // Workers holding a replicate of the task that has not contributed yet.
  std::vector<Address> holders(const Hash32& task) const {
    std::vector<Address> out;
    for (const Replicate& r : l.task(task)->replicates) {
      if (r.contribution == ContributionStatus::kUnset && r.status < ReplicateStatus::kAborted) {
        out.push_back(r.worker);
      }
    }
    return out;
  }
  TaskStatus status(const Hash32& task) const { return l.task(task)->status; }
  int64_t score(int i) const { return l.worker(addr(i))->score; }

  // A whole honest round: every replicate handed out agrees, reveals; the callback is uploaded.
  Hash32 honest_round(const std::string& id, uint32_t trust) {
    Hash32 t = l.submit(req(id, trust), now);
    l.assign(now);
    std::string cb = "result of " + id;
    Hash32 digest = keccak256(cb);
    std::vector<Address> hs = holders(t);
    for (const Address& w : hs) EXPECT_EQ(contribute(w, t, digest), "");
    EXPECT_EQ(status(t), TaskStatus::kConsensusReached) << id;
    for (const Address& w : hs) EXPECT_EQ(reveal(w, t, digest), "");
    EXPECT_EQ(l.upload(hs[0], t, {}, false, cb, now), "");
    EXPECT_EQ(status(t), TaskStatus::kFinalized) << id;
    l.mark_completed(t, now);
    l.take_events();
    return t;
  }
};

TEST(PocoWeight, FormulaForScores0To12) {
  for (int64_t s = 0; s <= 11; ++s) EXPECT_EQ(Ledger::weight_of_score(s), 2) << s;
  EXPECT_EQ(Ledger::weight_of_score(12), 3);
  EXPECT_EQ(Ledger::weight_of_score(15), 4);
  EXPECT_EQ(Ledger::weight_of_score(30), 9);
}

TEST(PocoIds, DealAndTaskIdsAndIdempotentSubmit) {
  Env e;
  bool created = false;
  TaskRequest r = req("t", 0);
  Hash32 t = e.l.submit(r, e.now, &created);
  EXPECT_TRUE(created);
  Hash32 deal = Packed().add(kScheduler).add(r.request_id).keccak();
  EXPECT_EQ(t, Packed().add(deal).add_uint256(0).keccak());
  EXPECT_EQ(e.l.task(t)->dealid, deal);
  EXPECT_EQ(e.l.task(t)->request.trust, 1u);  // trust 0 is 1
  EXPECT_EQ(e.l.task(t)->contribution_deadline_us, e.now + 7 * kRef);
  EXPECT_EQ(e.l.task(t)->final_deadline_us, e.now + 10 * kRef);
  EXPECT_EQ(count(e.l.take_events(), LedgerEvent::kTaskCreated), 1);
  EXPECT_EQ(e.l.submit(r, e.now + 5, &created), t);
  EXPECT_FALSE(created);
  EXPECT_TRUE(e.l.take_events().empty());
  EXPECT_EQ(e.l.task(t)->created_us, e.now);
}

// Fresh workers, all agreeing: the contract's table.
TEST(PocoConsensus, TableOfAgreeingContributions) {
  const std::pair<uint32_t, int> table[] = {{1, 1}, {2, 1}, {3, 2}, {5, 3}, {10, 4}, {100, 7}};
  for (auto [trust, needed] : table) {
    Env e;
    e.add_workers(1, 8);
    Hash32 t = e.l.submit(req("t", trust), e.now);
    e.l.assign(e.now);
    std::vector<Address> hs = e.holders(t);
    ASSERT_GE(int(hs.size()), needed) << "trust " << trust;
    Hash32 digest = keccak256("r");
    for (int i = 0; i < needed; ++i) {
      EXPECT_EQ(e.status(t), TaskStatus::kRunning) << "trust " << trust << " after " << i;
      ASSERT_EQ(e.contribute(hs[i], t, digest), "");
    }
    EXPECT_EQ(e.status(t), TaskStatus::kConsensusReached) << "trust " << trust;
    EXPECT_EQ(e.l.task(t)->winner_count, needed);
    EXPECT_EQ(e.l.task(t)->consensus, rhash(t, digest));
    EXPECT_EQ(e.l.task(t)->reveal_deadline_us, e.now + 2 * kRef);
    // Group 2^n, total 2^n + 1.
    EXPECT_EQ(e.l.task(t)->group_weight.at(rhash(t, digest)), int64_t(1) << needed);
    EXPECT_EQ(e.l.task(t)->total_weight, (int64_t(1) << needed) + 1);
    if (int(hs.size()) > needed) {  // a contribution after consensus is refused
      EXPECT_EQ(e.contribute(hs[needed], t, digest),
                "task " + t.hex() + " is CONSENSUS_REACHED: contributions are closed");
    }
  }
}

TEST(PocoAssign, ReplicationCountsWithSixFreshWorkers) {
  const std::pair<uint32_t, size_t> table[] = {{1, 1}, {2, 1}, {3, 2}, {5, 3}, {10, 5}};
  for (auto [trust, replicates] : table) {
    Env e;
    e.add_workers(1, 6);
    Hash32 t = e.l.submit(req("t", trust), e.now);
    auto out = e.l.assign(e.now);
    EXPECT_EQ(out.size(), replicates) << "trust " << trust;
    EXPECT_EQ(e.l.task(t)->replicates.size(), replicates);
    EXPECT_EQ(e.status(t), TaskStatus::kRunning);
    EXPECT_TRUE(e.l.assign(e.now).empty());  // the prediction is satisfied
    auto ev = e.l.take_events();
    EXPECT_EQ(count(ev, LedgerEvent::kAssigned), int(replicates));
  }
}

TEST(PocoFlow, ThreeHonestWorkersRevealUploadFinalize) {
  Env e;
  e.add_workers(1, 3);
  Hash32 t = e.l.submit(req("t", 5), e.now);
  ASSERT_EQ(e.l.assign(e.now).size(), 3u);
  std::string bytes = "42\n";
  Hash32 digest = sha256(bytes);  // one file: its sha256
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(e.status(t), TaskStatus::kRunning);
    ASSERT_EQ(e.contribute(addr(i), t, digest), "");
    EXPECT_EQ(e.l.task(t)->replicate(addr(i))->status, ReplicateStatus::kContributed);
    EXPECT_EQ(e.l.task(t)->replicate(addr(i))->weight, 2);
  }
  // trust 5: 8 * 5 > 9 * 4 after three, 4 * 5 > 5 * 4 fails after two.
  ASSERT_EQ(e.status(t), TaskStatus::kConsensusReached);
  EXPECT_EQ(e.l.task(t)->winner_count, 3);
  auto ev = e.l.take_events();
  EXPECT_EQ(count(ev, LedgerEvent::kContributed), 3);
  EXPECT_EQ(count(ev, LedgerEvent::kConsensus), 1);

  e.now += kSec / 10;
  ASSERT_EQ(e.reveal(addr(1), t, digest), "");
  EXPECT_EQ(e.status(t), TaskStatus::kAtLeastOneRevealed);
  EXPECT_EQ(e.l.task(t)->result_digest, digest);
  EXPECT_EQ(e.l.task(t)->replicate(addr(1))->contribution, ContributionStatus::kProved);
  EXPECT_EQ(e.l.task(t)->replicate(addr(1))->status, ReplicateStatus::kRevealed);
  // Uploads: only a worker that revealed, only the revealed digest.
  EXPECT_NE(e.l.upload(addr(2), t, {{"out.txt", bytes}}, false, std::nullopt, e.now), "");
  std::string bad = e.l.upload(addr(1), t, {{"out.txt", "41\n"}}, false, std::nullopt, e.now);
  EXPECT_NE(bad.find("does not match the revealed resultDigest"), std::string::npos) << bad;
  ASSERT_EQ(e.l.upload(addr(1), t, {{"out.txt", bytes}}, false, std::nullopt, e.now), "");
  EXPECT_EQ(e.status(t), TaskStatus::kResultUploaded);  // waits for the other winners
  ASSERT_EQ(e.reveal(addr(2), t, digest), "");
  EXPECT_EQ(e.status(t), TaskStatus::kResultUploaded);
  ASSERT_EQ(e.reveal(addr(3), t, digest), "");
  EXPECT_EQ(e.status(t), TaskStatus::kFinalized);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(e.score(i), 1);
  ev = e.l.take_events();
  EXPECT_EQ(count(ev, LedgerEvent::kRevealed), 3);
  EXPECT_EQ(count(ev, LedgerEvent::kResultUploaded), 1);
  EXPECT_EQ(count(ev, LedgerEvent::kScore), 3);
  EXPECT_EQ(find(ev, LedgerEvent::kScore)->text, "0 -> 1");
  EXPECT_EQ(ev.back().kind, LedgerEvent::kFinalized);
  const Task& task = *e.l.task(t);
  ASSERT_EQ(task.result_files.size(), 1u);
  EXPECT_EQ(task.result_files[0].second, bytes);
  EXPECT_FALSE(task.result_is_folder);
  // A later upload is accepted and ignored; a reveal is refused once final.
  EXPECT_EQ(e.l.upload(addr(2), t, {{"other", "x"}}, false, std::nullopt, e.now), "");
  EXPECT_EQ(e.l.task(t)->result_files[0].first, "out.txt");
  EXPECT_NE(e.reveal(addr(2), t, digest), "");
  e.l.mark_completed(t, e.now);
  EXPECT_EQ(e.status(t), TaskStatus::kCompleted);
}

TEST(PocoFlow, FolderUploadDigest) {
  Env e;
  e.add_workers(1, 1);
  Hash32 t = e.l.submit(req("t", 1), e.now);
  e.l.assign(e.now);
  std::vector<std::pair<std::string, std::string>> files = {{"a", "A result"},
                                                            {"b", "Another result"}};
  Hash32 digest = Packed().add(sha256("A result")).add(sha256("Another result")).keccak();
  ASSERT_EQ(e.contribute(addr(1), t, digest), "");
  ASSERT_EQ(e.reveal(addr(1), t, digest), "");
  EXPECT_EQ(e.status(t), TaskStatus::kAtLeastOneRevealed);  // waits for the upload
  ASSERT_EQ(e.l.upload(addr(1), t, files, true, std::nullopt, e.now), "");
  EXPECT_EQ(e.status(t), TaskStatus::kFinalized);
  EXPECT_TRUE(e.l.task(t)->result_is_folder);
  EXPECT_EQ(e.score(1), 0);  // a sole contributor gains nothing
}

// Builds scores of 3 on workers first..first+n-1 with three rounds they all win.
void build_scores(Env& e, int n, uint32_t trust) {
  for (int round = 0; round < 3; ++round) e.honest_round("warm-up " + std::to_string(round), trust);
  for (int i = 1; i <= n; ++i) ASSERT_EQ(e.score(i), 3);
}

TEST(PocoFlow, DissenterIsExcludedAndLosesScore) {
  Env e;
  e.add_workers(1, 4);
  build_scores(e, 4, 10);
  e.l.take_events();
  Hash32 t = e.l.submit(req("t", 3), e.now);
  e.l.assign(e.now);
  std::string cb = "good";
  Hash32 good = keccak256(cb), other = keccak256("other");
  ASSERT_EQ(e.l.task(t)->replicates.size(), 2u);
  ASSERT_EQ(e.contribute(addr(1), t, other), "");
  ASSERT_EQ(e.contribute(addr(2), t, good), "");
  EXPECT_EQ(e.status(t), TaskStatus::kRunning);  // 2 * 3 > 5 * 2 fails
  // Two groups: the prediction asks for everyone left.
  ASSERT_EQ(e.l.assign(e.now).size(), 2u);
  ASSERT_EQ(e.contribute(addr(3), t, good), "");
  EXPECT_EQ(e.status(t), TaskStatus::kRunning);  // 4 * 3 > 7 * 2 fails
  ASSERT_EQ(e.contribute(addr(4), t, good), "");
  ASSERT_EQ(e.status(t), TaskStatus::kConsensusReached);  // 8 * 3 > 11 * 2
  EXPECT_EQ(e.l.task(t)->winner_count, 3);
  std::string why = e.reveal(addr(1), t, other);
  EXPECT_NE(why.find("only winners reveal"), std::string::npos) << why;
  for (int i = 2; i <= 4; ++i) ASSERT_EQ(e.reveal(addr(i), t, good), "");
  ASSERT_EQ(e.l.upload(addr(3), t, {}, false, cb, e.now), "");
  ASSERT_EQ(e.status(t), TaskStatus::kFinalized);
  EXPECT_EQ(*e.l.task(t)->callback_data, cb);
  EXPECT_EQ(e.score(1), 2);  // 3 * 2 / 3
  for (int i = 2; i <= 4; ++i) EXPECT_EQ(e.score(i), 4);
  auto ev = e.l.take_events();
  EXPECT_EQ(count(ev, LedgerEvent::kScore), 4);
  bool saw = false;
  for (const LedgerEvent& x : ev) {
    if (x.kind == LedgerEvent::kScore && x.worker == addr(1)) saw = x.text == "3 -> 2";
  }
  EXPECT_TRUE(saw);
}

TEST(PocoRefusals, Contributions) {
  Env e;
  e.add_workers(1, 3);
  Hash32 t = e.l.submit(req("t", 3), e.now);
  ASSERT_EQ(e.l.assign(e.now).size(), 2u);  // addr(1), addr(2); addr(3) holds nothing
  Hash32 d = keccak256("d");
  EXPECT_EQ(e.contribute(addr(3), t, d),
            "worker " + addr(3).hex() + " holds no replicate of task " + t.hex());
  EXPECT_NE(e.contribute(addr(1), keccak256("nope"), d).find("unknown task"), std::string::npos);
  EXPECT_NE(e.l.contribute(addr(1), t, Hash32{}, rseal(addr(1), t, d), e.now).find("non-zero"),
            std::string::npos);
  ASSERT_EQ(e.contribute(addr(1), t, d), "");
  // A replayed contribution (the same message again) and a second, different one.
  EXPECT_EQ(e.contribute(addr(1), t, d),
            "worker " + addr(1).hex() + " already contributed to task " + t.hex());
  EXPECT_NE(e.contribute(addr(1), t, keccak256("other")).find("already contributed"),
            std::string::npos);
  EXPECT_EQ(e.l.task(t)->contributors.size(), 1u);
  // After the contribution deadline.
  e.now += 7 * kRef;
  EXPECT_NE(e.contribute(addr(2), t, d).find("deadline"), std::string::npos);
}

TEST(PocoRefusals, RevealsAndFinalizeAtTheRevealDeadlineWithoutUpload) {
  Env e;
  e.add_workers(1, 2);
  Hash32 t = e.l.submit(req("t", 3), e.now);
  ASSERT_EQ(e.l.assign(e.now).size(), 2u);
  Hash32 d = keccak256("d");
  ASSERT_EQ(e.contribute(addr(1), t, d), "");
  EXPECT_NE(e.reveal(addr(1), t, d).find("not in its reveal phase"), std::string::npos);
  // addr(2) sends the right hash with a seal made for another worker.
  ASSERT_EQ(e.l.contribute(addr(2), t, rhash(t, d), rseal(addr(1), t, d), e.now), "");
  ASSERT_EQ(e.status(t), TaskStatus::kConsensusReached);
  std::string why = e.reveal(addr(1), t, keccak256("wrong"));
  EXPECT_NE(why.find("resultHash"), std::string::npos) << why;
  why = e.reveal(addr(2), t, d);
  EXPECT_NE(why.find("resultSeal"), std::string::npos) << why;
  ASSERT_EQ(e.reveal(addr(1), t, d), "");
  EXPECT_NE(e.reveal(addr(1), t, d).find("already revealed"), std::string::npos);
  // No upload, one winner never reveals: finalize at the reveal deadline with no result files.
  e.now += 2 * kRef - 1;
  e.l.tick(e.now);
  EXPECT_EQ(e.status(t), TaskStatus::kAtLeastOneRevealed);
  e.now += 1;
  EXPECT_NE(e.reveal(addr(2), t, d).find("reveal deadline"), std::string::npos);
  e.l.tick(e.now);
  EXPECT_EQ(e.status(t), TaskStatus::kFinalized);
  EXPECT_TRUE(e.l.task(t)->result_files.empty());
  EXPECT_EQ(e.score(1), 1);
  EXPECT_EQ(e.score(2), 0);  // 0 * 2 / 3
}

TEST(PocoFlow, ReopenWhenNoWinnerReveals) {
  Env e;
  e.add_workers(1, 3);
  build_scores(e, 3, 5);  // trust 5: three replicates, all agree
  e.l.take_events();
  Hash32 t = e.l.submit(req("t", 1), e.now);
  auto out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  Address first = out[0].worker;
  EXPECT_EQ(first, addr(1));  // every tie broken by the lowest address
  Hash32 d = keccak256("cb");
  ASSERT_EQ(e.contribute(first, t, d), "");
  ASSERT_EQ(e.status(t), TaskStatus::kConsensusReached);
  int64_t deadline = e.l.task(t)->reveal_deadline_us;
  e.l.tick(deadline - 1);
  EXPECT_EQ(e.status(t), TaskStatus::kConsensusReached);
  e.now = deadline;
  e.l.tick(e.now);
  ASSERT_EQ(e.status(t), TaskStatus::kReopened);
  const Task& task = *e.l.task(t);
  EXPECT_EQ(task.replicate(first)->contribution, ContributionStatus::kRejected);
  EXPECT_EQ(task.total_weight, 1);
  EXPECT_EQ(task.group_weight.at(rhash(t, d)), 0);
  EXPECT_TRUE(task.consensus.is_zero());
  EXPECT_EQ(task.reveal_deadline_us, 0);
  EXPECT_EQ(task.winner_count, 0);
  EXPECT_EQ(count(e.l.take_events(), LedgerEvent::kReopened), 1);
  EXPECT_NE(e.contribute(first, t, d).find("already contributed"), std::string::npos);
  // Another worker; never the rejected one.
  out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  Address second = out[0].worker;
  EXPECT_NE(second, first);
  EXPECT_EQ(e.status(t), TaskStatus::kRunning);
  ASSERT_EQ(e.contribute(second, t, d), "");
  ASSERT_EQ(e.status(t), TaskStatus::kConsensusReached);
  EXPECT_EQ(e.l.task(t)->winner_count, 1);
  ASSERT_EQ(e.reveal(second, t, d), "");
  ASSERT_EQ(e.l.upload(second, t, {}, false, std::nullopt, e.now), "");  // empty: too large
  ASSERT_EQ(e.status(t), TaskStatus::kFinalized);
  EXPECT_TRUE(e.l.task(t)->result_files.empty());
  EXPECT_FALSE(e.l.task(t)->callback_data);
  EXPECT_EQ(e.l.worker(first)->score, 2);   // rejected: 3 * 2 / 3
  EXPECT_EQ(e.l.worker(second)->score, 4);  // two contributors: +1
}

TEST(PocoTimeouts, TooFewWorkersFailsWithAClearCause) {
  Env e;
  e.add_workers(1, 2);
  Hash32 t = e.l.submit(req("t", 10), e.now);
  ASSERT_EQ(e.l.assign(e.now).size(), 2u);  // all it can
  Hash32 d = keccak256("d");
  ASSERT_EQ(e.contribute(addr(1), t, d), "");
  ASSERT_EQ(e.contribute(addr(2), t, d), "");
  EXPECT_EQ(e.status(t), TaskStatus::kRunning);
  EXPECT_TRUE(e.l.assign(e.now).empty());
  e.l.take_events();
  int64_t deadline = e.l.task(t)->contribution_deadline_us;
  e.l.tick(deadline - 1);
  EXPECT_EQ(e.status(t), TaskStatus::kRunning);
  EXPECT_TRUE(e.l.take_events().empty());
  e.l.tick(deadline);
  ASSERT_EQ(e.status(t), TaskStatus::kFailed);
  const std::string& cause = e.l.task(t)->cause;
  EXPECT_NE(cause.find("no consensus before the contribution deadline: trust 10 needs about 4 "
                       "agreeing workers of weight 2, got 2 contributions (1 group)"),
            std::string::npos)
      << cause;
  EXPECT_NE(cause.find("2 live workers run app 'app' (2 workers registered)"), std::string::npos)
      << cause;
  EXPECT_NE(cause.find("too few workers"), std::string::npos) << cause;
  auto ev = e.l.take_events();
  ASSERT_EQ(count(ev, LedgerEvent::kFailed), 1);
  EXPECT_EQ(find(ev, LedgerEvent::kFailed)->text, cause);
  e.l.tick(deadline + kSec);  // once
  EXPECT_TRUE(e.l.take_events().empty());
}

TEST(PocoTimeouts, FinalDeadlineWhileRevealing) {
  LedgerOptions o;
  o.final_ratio = 8;  // final (8x) before the end of a late reveal window (6.5x + 2x)
  Env e(o);
  e.add_workers(1, 2);
  int64_t created = e.now;
  Hash32 t = e.l.submit(req("t", 3), e.now);
  e.l.assign(e.now);
  e.now = created + 13 * kRef / 2;
  Hash32 d = keccak256("d");
  ASSERT_EQ(e.contribute(addr(1), t, d), "");
  ASSERT_EQ(e.contribute(addr(2), t, d), "");
  ASSERT_EQ(e.reveal(addr(1), t, d), "");
  e.l.tick(created + 8 * kRef - 1);
  EXPECT_EQ(e.status(t), TaskStatus::kAtLeastOneRevealed);
  e.l.tick(created + 8 * kRef);
  ASSERT_EQ(e.status(t), TaskStatus::kFailed);
  EXPECT_EQ(e.l.task(t)->cause,
            "final deadline passed while the task was AT_LEAST_ONE_REVEALED: 1 of 2 winners "
            "revealed, no result uploaded");
  EXPECT_EQ(count(e.l.take_events(), LedgerEvent::kFailed), 1);
  EXPECT_NE(e.reveal(addr(2), t, d), "");
}

// Taken off the scheduler's workers: list: lost at once (journaled), its replicate to another.
TEST(PocoWorkers, AnExpelledWorkerIsLostAtOnceAndItsReplicateGoesElsewhere) {
  Env e;
  e.add_workers(1, 2);
  Hash32 t = e.l.submit(req("t", 1), e.now);
  auto out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].worker, addr(1));
  e.l.take_events();
  e.l.expel(addr(1), e.now);
  EXPECT_TRUE(e.l.worker(addr(1))->lost);
  EXPECT_EQ(e.l.task(t)->replicate(addr(1))->status, ReplicateStatus::kWorkerLost);
  EXPECT_EQ(count(e.l.take_events(), LedgerEvent::kWorkerLost), 1);
  out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker, addr(2));
  e.l.expel(addr(1), e.now);  // once
  EXPECT_EQ(count(e.l.take_events(), LedgerEvent::kWorkerLost), 0);
}

TEST(PocoWorkers, LostWorkerIsReplacedAndMayStillContribute) {
  LedgerOptions o;
  o.lost_after_us = 5 * kSec;
  Env e(o);
  e.add_workers(1, 2);
  Hash32 t = e.l.submit(req("t", 1, 10 * kSec), e.now);
  auto out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].worker, addr(1));
  e.now += 3 * kSec;
  e.l.heartbeat(addr(2), e.now);
  e.l.tick(e.now);
  EXPECT_FALSE(e.l.worker(addr(1))->lost);
  e.now += 2 * kSec;  // addr(1) silent for 5 s
  e.l.heartbeat(addr(2), e.now);
  e.l.tick(e.now);
  EXPECT_TRUE(e.l.worker(addr(1))->lost);
  EXPECT_EQ(e.l.task(t)->replicate(addr(1))->status, ReplicateStatus::kWorkerLost);
  auto ev = e.l.take_events();
  ASSERT_EQ(count(ev, LedgerEvent::kWorkerLost), 1);
  e.l.tick(e.now + 1);
  EXPECT_EQ(count(e.l.take_events(), LedgerEvent::kWorkerLost), 0);  // once
  out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker, addr(2));
  // It comes back: alive again, but it never gets this task twice.
  e.l.heartbeat(addr(1), e.now);
  EXPECT_FALSE(e.l.worker(addr(1))->lost);
  EXPECT_TRUE(e.l.assign(e.now).empty());
  // Its late contribution is accepted while contributions are open (documented choice).
  Hash32 d = keccak256("d");
  ASSERT_EQ(e.contribute(addr(1), t, d), "");
  EXPECT_EQ(e.l.task(t)->replicate(addr(1))->status, ReplicateStatus::kContributed);
  EXPECT_EQ(e.status(t), TaskStatus::kConsensusReached);
  // Status reports after WORKER_LOST are refused (terminal); here it already contributed.
  EXPECT_NE(e.contribute(addr(2), t, d).find("contributions are closed"), std::string::npos);
}

TEST(PocoReplicates, StatusOrdering) {
  Env e;
  e.add_workers(1, 2);
  Hash32 t = e.l.submit(req("t", 1), e.now);
  e.l.assign(e.now);
  const Address w = addr(1);
  auto st = [&](ReplicateStatus s) { return e.l.replicate_status(w, t, s, "", e.now); };
  EXPECT_EQ(st(ReplicateStatus::kStarting), "");
  EXPECT_EQ(st(ReplicateStatus::kComputing), "");
  EXPECT_EQ(st(ReplicateStatus::kComputing), "");  // duplicate
  EXPECT_EQ(st(ReplicateStatus::kStarted), "status STARTED after COMPUTING is out of order");
  EXPECT_NE(st(ReplicateStatus::kWorkerLost), "");
  EXPECT_NE(st(ReplicateStatus::kContributed).find("needs an accepted contribution"),
            std::string::npos);
  EXPECT_NE(e.l.replicate_status(addr(2), t, ReplicateStatus::kStarting, "", e.now)
                .find("holds no replicate"),
            std::string::npos);
  EXPECT_EQ(st(ReplicateStatus::kContributing), "");
  Hash32 d = keccak256("d");
  ASSERT_EQ(e.contribute(w, t, d), "");
  EXPECT_EQ(e.l.task(t)->replicate(w)->status, ReplicateStatus::kContributed);
  EXPECT_EQ(st(ReplicateStatus::kContributed), "");  // the worker's own report: a duplicate
  EXPECT_EQ(st(ReplicateStatus::kComputed), "status COMPUTED after CONTRIBUTED is out of order");
  EXPECT_NE(st(ReplicateStatus::kRevealed).find("needs an accepted reveal"), std::string::npos);
  ASSERT_EQ(e.reveal(w, t, d), "");
  EXPECT_EQ(e.l.task(t)->replicate(w)->status, ReplicateStatus::kRevealed);
  EXPECT_EQ(st(ReplicateStatus::kResultUploading), "");
  EXPECT_EQ(st(ReplicateStatus::kAborted), "");
  EXPECT_NE(st(ReplicateStatus::kCompleted).find("no status may follow"), std::string::npos);
  EXPECT_EQ(st(ReplicateStatus::kAborted), "");  // duplicate of a terminal status
}

TEST(PocoReplicates, FailedFreesTheSlotAndTheTaskMoves) {
  Env e;
  e.add_workers(1, 2);
  Hash32 t = e.l.submit(req("t", 1), e.now);
  ASSERT_EQ(e.l.assign(e.now)[0].worker, addr(1));
  e.l.take_events();
  ASSERT_EQ(e.l.replicate_status(addr(1), t, ReplicateStatus::kFailed, "exited with code 3", e.now),
            "");
  EXPECT_EQ(e.l.task(t)->replicate(addr(1))->cause, "exited with code 3");
  auto ev = e.l.take_events();
  ASSERT_EQ(count(ev, LedgerEvent::kReplicateFailed), 1);
  EXPECT_EQ(find(ev, LedgerEvent::kReplicateFailed)->text, "exited with code 3");
  auto out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker, addr(2));
  EXPECT_NE(e.contribute(addr(1), t, keccak256("d")).find("FAILED"), std::string::npos);
  // Its slot is free for another task.
  Hash32 t2 = e.l.submit(req("t2", 1), e.now);
  out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].taskid, t2);
  EXPECT_EQ(out[0].worker, addr(1));
}

TEST(PocoAssign, SlotsAndPreferences) {
  Env e;
  e.add_workers(1, 1, 1);
  Hash32 a = e.l.submit(req("a", 1), e.now);
  Hash32 b = e.l.submit(req("b", 1), e.now);
  auto out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].taskid, a);  // oldest first
  EXPECT_TRUE(e.l.assign(e.now).empty());
  ASSERT_EQ(e.contribute(addr(1), a, keccak256("d")), "");  // frees the slot
  out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].taskid, b);

  // More free slots wins over a lower address; a 3-slot worker takes three tasks at once.
  Env f;
  f.add_workers(1, 1, 1);
  f.add_workers(2, 1, 3);
  for (int i = 0; i < 4; ++i) f.l.submit(req("t" + std::to_string(i), 1), f.now);
  out = f.l.assign(f.now);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].worker, addr(2));  // 3 free
  EXPECT_EQ(out[1].worker, addr(2));  // 2 free
  EXPECT_EQ(out[2].worker, addr(1));  // 1 free each: the lowest address
  EXPECT_EQ(out[3].worker, addr(2));
}

TEST(PocoAssign, OnlyWorkersThatRunTheApp) {
  Env e;
  e.l.register_worker(addr(1), 4, {}, e.now);                                  // runs nothing
  e.l.register_worker(addr(2), 4, {{"app", sha256("another build")}}, e.now);  // other sha256
  e.l.register_worker(addr(3), 4, {{"other", kAppSha}}, e.now);                // other app
  Hash32 t = e.l.submit(req("t", 1), e.now);
  EXPECT_TRUE(e.l.assign(e.now).empty());
  e.l.register_worker(addr(4), 1, {{"app", kAppSha}}, e.now);
  auto out = e.l.assign(e.now);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker, addr(4));
  EXPECT_EQ(out[0].taskid, t);
  // A silent worker gets nothing.
  e.l.register_worker(addr(5), 1, {{"app", kAppSha}}, e.now);
  e.l.submit(req("t2", 1, 100 * kSec), e.now);
  EXPECT_TRUE(e.l.assign(e.now + 61 * kSec).empty());
  EXPECT_EQ(e.l.assign(e.now + kSec).size(), 1u);
}

}  // namespace
}  // namespace edgeflow::iexec

namespace edgeflow::iexec {
namespace {

// The portable 128-bit helpers against known answers, on every target.
TEST(WideMath, KnownProductsAndQuotients) {
  const uint64_t max = 0xffffffffffffffffu;
  EXPECT_EQ(mul_u64(max, max).hi, 0xfffffffffffffffeu);
  EXPECT_EQ(mul_u64(max, max).lo, 1u);
  EXPECT_EQ(mul_u64(0x100000000u, 0x100000000u).hi, 1u);
  EXPECT_EQ(mul_u64(0x100000000u, 0x100000000u).lo, 0u);
  EXPECT_EQ(mul_u64(0x123456789abcdef0u, 0x10u).hi, 1u);
  EXPECT_EQ(mul_u64(0x123456789abcdef0u, 0x10u).lo, 0x23456789abcdef00u);
  EXPECT_EQ(mul_u64(999999999999999999u, 1000000000000000000u).hi, 0xc097ce7bc90715u);
  EXPECT_EQ(mul_u64(999999999999999999u, 1000000000000000000u).lo, 0xa56ae85c589c0000u);
  EXPECT_EQ(mul_div_u64(max, max, max), max);
  EXPECT_EQ(mul_div_u64(1000000000000000000u, 999999999999999999u, 1000000000000000000u),
            999999999999999999u);
  EXPECT_EQ(mul_div_u64(7, 3, 2), 10u);
  EXPECT_EQ(mul_div_u64(0x7fffffffffffffffu, 4, 8), 0x3fffffffffffffffu);
  EXPECT_EQ(mul_div_u64(0x123456789abcdef0u, 0xfedcba9876543210u, max), 0x121fa00ad77d7422u);
  EXPECT_EQ(mul_div_u64(max, 0xffffffffu, 0x100000000u), 0xfffffffeffffffffu);
}

#ifdef __SIZEOF_INT128__
// And against the compiler's own 128-bit integers where it has them (x86-64, arm64; not
// armhf, where the helpers matter).
TEST(WideMath, ProductsAndQuotientsMatchInt128) {
  const uint64_t values[] = {0,
                             1,
                             2,
                             0xffffffffu,
                             0x100000000u,
                             999999999999999999u,
                             1000000000000000000u,
                             0x7fffffffffffffffu,
                             0xffffffffffffffffu,
                             0x123456789abcdef0u,
                             3037000499u};
  for (uint64_t a : values)
    for (uint64_t b : values) {
      const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
      const U128 m = mul_u64(a, b);
      EXPECT_EQ(m.hi, static_cast<uint64_t>(p >> 64)) << a << " * " << b;
      EXPECT_EQ(m.lo, static_cast<uint64_t>(p)) << a << " * " << b;
      for (uint64_t c : values) {
        if (c == 0 || p / c > 0xffffffffffffffffu) continue;  // the quotient must fit
        EXPECT_EQ(mul_div_u64(a, b, c), static_cast<uint64_t>(p / c))
            << a << " * " << b << " / " << c;
      }
    }
  EXPECT_TRUE(mul_u64(3, 5) > mul_u64(2, 7));
  EXPECT_FALSE(mul_u64(2, 7) > mul_u64(2, 7));
}
#endif  // __SIZEOF_INT128__

}  // namespace
}  // namespace edgeflow::iexec
