// The PoCo ledger's journal: replay to the same state, a torn last line, a damaged one, another
// scheduler's journal, a second opener, and what is (not) journaled. On a fake clock.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "iexec/poco.h"
#include "iexec/poco_test_support.h"

namespace edgeflow::iexec {
namespace {

namespace fs = std::filesystem;
using crypto::keccak256;
using crypto::sha256;
using testing::addr;
using testing::count;
using testing::kAppSha;
using testing::kScheduler;
using testing::kSec;
using testing::req;
using testing::rhash;
using testing::rseal;

// ---------------------------------------------------------------------------------------------
// Journal.

class PocoJournal : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("poco_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "ledger.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  LedgerOptions options() const {
    LedgerOptions o;
    o.journal_path = path_;
    o.lost_after_us = 3 * kSec;
    return o;
  }
  std::vector<std::string> lines() const {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string s; std::getline(in, s);) out.push_back(s);
    return out;
  }
  void write_lines(const std::vector<std::string>& ls) const {
    std::ofstream out(path_, std::ios::trunc);
    for (const std::string& s : ls) out << s << "\n";
  }

  fs::path dir_;
  std::string path_;
};

std::string dump(const Ledger& l) {
  std::ostringstream o;
  for (const auto& [id, t] : l.tasks()) {
    o << "task " << id.hex() << " deal " << t.dealid.hex() << " " << to_string(t.status) << " c"
      << t.created_us << " cd" << t.contribution_deadline_us << " rd" << t.reveal_deadline_us
      << " fd" << t.final_deadline_us << " total " << t.total_weight << " consensus "
      << t.consensus.hex() << " w" << t.winner_count << " r" << t.reveal_count << " digest "
      << t.result_digest.hex() << " cause '" << t.cause << "'\n";
    o << "  request " << t.request.app << " " << t.request.app_sha256.hex() << " trust "
      << t.request.trust << " ref " << t.request.time_ref_us << " by " << t.request.requester;
    for (const auto& a : t.request.args) o << " arg " << a;
    for (const auto& in : t.request.inputs) o << " in " << in.name << "=" << in.bytes;
    o << "\n";
    for (const auto& [h, w] : t.group_weight) o << "  group " << h.hex() << " " << w << "\n";
    for (const auto& c : t.contributors) o << "  contributor " << c.hex() << "\n";
    for (const Replicate& r : t.replicates) {
      o << "  replicate " << r.worker.hex() << " " << to_string(r.status) << " "
        << to_string(r.contribution) << " " << r.result_hash.hex() << " " << r.result_seal.hex()
        << " " << r.result_digest.hex() << " w" << r.weight << " at" << r.assigned_us << " '"
        << r.cause << "'\n";
    }
    for (const auto& [n, b] : t.result_files) o << "  file " << n << "=" << b << "\n";
    o << "  folder " << t.result_is_folder << " callback "
      << (t.callback_data ? *t.callback_data : "-") << "\n";
  }
  for (const auto& [a, w] : l.workers()) {
    o << "worker " << a.hex() << " slots " << w.slots << " score " << w.score << " lost " << w.lost;
    for (const auto& [n, s] : w.apps) o << " app " << n << " " << s.hex();
    o << "\n";
  }
  return o.str();
}

TEST_F(PocoJournal, ReplayRestoresTheSameStateAndContinues) {
  auto l = std::make_unique<Ledger>(kScheduler, options());
  EXPECT_EQ(l->recovered_warning(), "");
  const int64_t T = 1'000'000'000;
  int64_t now = T;
  std::set<int> silent;
  auto at = [&](int64_t t) {  // move the clock; the live workers ping
    now = t;
    for (int i = 1; i <= 5; ++i) {
      if (!silent.count(i)) l->heartbeat(addr(i), now);
    }
  };
  auto contribute = [&](const Address& w, const Hash32& t, const Hash32& d) {
    return l->contribute(w, t, rhash(t, d), rseal(w, t, d), now);
  };
  auto pending = [&](const Hash32& t) {
    std::vector<Address> out;
    for (const Replicate& r : l->task(t)->replicates) {
      if (r.contribution == ContributionStatus::kUnset && r.status < ReplicateStatus::kAborted) {
        out.push_back(r.worker);
      }
    }
    return out;
  };
  for (int i = 1; i <= 5; ++i) {
    l->register_worker(addr(i), i == 5 ? 2 : 1, {{"app", kAppSha}, {"bin\xff", sha256("x")}}, now);
  }

  // C: trust 100 takes everyone; one dissents, one fails, one keeps computing; it times out.
  Hash32 c = l->submit(req("c", 100), now);
  ASSERT_EQ(l->assign(now).size(), 5u);
  Hash32 dc = keccak256("c");
  ASSERT_EQ(contribute(addr(1), c, dc), "");
  ASSERT_EQ(contribute(addr(2), c, dc), "");
  ASSERT_EQ(contribute(addr(3), c, keccak256("x")), "");
  ASSERT_EQ(l->replicate_status(addr(4), c, ReplicateStatus::kComputing, "", now), "");
  ASSERT_EQ(l->replicate_status(addr(4), c, ReplicateStatus::kFailed, "crash\xfe", now), "");

  // A: trust 3, two agree, reveal, upload files, finalize (+1 each), published.
  Hash32 a = l->submit(req("a", 3), now);
  ASSERT_EQ(l->assign(now).size(), 2u);
  std::vector<Address> ha = pending(a);
  Hash32 da = sha256(std::string("\0bin", 4));
  for (const Address& w : ha) ASSERT_EQ(contribute(w, a, da), "");
  for (const Address& w : ha) ASSERT_EQ(l->reveal(w, a, da, now), "");
  ASSERT_EQ(l->upload(ha[0], a, {{"out", std::string("\0bin", 4)}}, false, std::nullopt, now), "");
  ASSERT_EQ(l->task(a)->status, TaskStatus::kFinalized);
  l->mark_completed(a, now);

  // Worker 4 goes silent and is lost in the same tick that fails C.
  silent.insert(4);
  at(T + 8 * kSec);
  l->tick(now);
  ASSERT_EQ(l->task(c)->status, TaskStatus::kFailed);
  ASSERT_TRUE(l->worker(addr(4))->lost);

  // B: trust 1; the winner does not reveal, the task reopens, a second worker wins.
  Hash32 b = l->submit(req("b", 1), now);
  ASSERT_EQ(l->assign(now).size(), 1u);
  Address b1 = pending(b)[0];
  Hash32 db = keccak256("b");
  ASSERT_EQ(contribute(b1, b, db), "");
  at(T + 10 * kSec);
  l->tick(now);
  ASSERT_EQ(l->task(b)->status, TaskStatus::kReopened);
  ASSERT_EQ(l->assign(now).size(), 1u);
  Address b2 = pending(b)[0];
  ASSERT_EQ(contribute(b2, b, db), "");
  ASSERT_EQ(l->task(b)->status, TaskStatus::kConsensusReached);

  // E: trust 3, one of two winners revealed.
  Hash32 e = l->submit(req("e", 3), now);
  ASSERT_EQ(l->assign(now).size(), 2u);
  std::vector<Address> he = pending(e);
  std::string ecb = "e result";
  Hash32 de = keccak256(ecb);
  for (const Address& w : he) ASSERT_EQ(contribute(w, e, de), "");
  ASSERT_EQ(l->reveal(he[0], e, de, now), "");

  // D: trust 1, the first worker fails, the task moves.
  Hash32 d = l->submit(req("d", 1), now);
  ASSERT_EQ(l->assign(now).size(), 1u);
  Address d1 = pending(d)[0];
  ASSERT_EQ(l->replicate_status(d1, d, ReplicateStatus::kFailed, "no memory", now), "");
  ASSERT_EQ(l->assign(now).size(), 1u);
  ASSERT_FALSE(pending(d).empty());
  at(T + 11 * kSec);
  l->tick(now);  // nothing due

  const std::string before = dump(*l);
  std::vector<LedgerEvent> resume_before = l->resume_events();
  l.reset();

  l = std::make_unique<Ledger>(kScheduler, options());
  EXPECT_EQ(l->recovered_warning(), "");
  EXPECT_EQ(dump(*l), before);
  EXPECT_TRUE(l->take_events().empty());  // history is not news
  std::vector<LedgerEvent> resume = l->resume_events();
  ASSERT_EQ(resume.size(), resume_before.size());
  std::set<std::pair<Hash32, int>> kinds;
  for (const LedgerEvent& ev : resume) kinds.insert({ev.taskid, ev.kind});
  EXPECT_TRUE(kinds.count({b, LedgerEvent::kConsensus}));
  EXPECT_TRUE(kinds.count({e, LedgerEvent::kConsensus}));
  EXPECT_TRUE(kinds.count({d, LedgerEvent::kAssigned}));
  EXPECT_FALSE(kinds.count({a, LedgerEvent::kFinalized}));  // already published

  // Continue on the reopened ledger.
  at(now + kSec / 10);
  ASSERT_EQ(l->reveal(b2, b, db, now), "");
  ASSERT_EQ(l->upload(b2, b, {}, false, std::nullopt, now), "");
  ASSERT_EQ(l->task(b)->status, TaskStatus::kFinalized);
  ASSERT_EQ(l->reveal(he[1], e, de, now), "");
  ASSERT_EQ(l->upload(he[1], e, {}, false, ecb, now), "");
  ASSERT_EQ(l->task(e)->status, TaskStatus::kFinalized);
  EXPECT_EQ(count(l->take_events(), LedgerEvent::kFinalized), 2);
  const std::string after = dump(*l);
  EXPECT_NE(after, before);
  l.reset();
  l = std::make_unique<Ledger>(kScheduler, options());
  EXPECT_EQ(dump(*l), after);

  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::vector<std::string> ls = lines();
  ASSERT_FALSE(ls.empty());
  EXPECT_EQ(ls[0], "{\"journal\":\"edgeflow-poco\",\"scheduler\":\"" + kScheduler.hex() +
                       "\",\"version\":1}");
}

TEST_F(PocoJournal, TornLastLineIsDropped) {
  Hash32 t;
  {
    Ledger l(kScheduler, options());
    l.register_worker(addr(1), 1, {{"app", kAppSha}}, 10);
    t = l.submit(req("t", 1), 20);
  }
  const auto size = fs::file_size(path_);
  { std::ofstream(path_, std::ios::app) << "{\"op\":\"tick\",\"t\":"; }  // no newline
  {
    Ledger l(kScheduler, options());
    EXPECT_EQ(l.recovered_warning(), "dropped a torn last record at line 4 of " + path_ +
                                         " (a crash while writing); everything before it was kept");
    ASSERT_NE(l.task(t), nullptr);
    EXPECT_EQ(fs::file_size(path_), size);
    l.assign(30);  // appends after the cut
  }
  // An unparsable last line that did get its newline is torn too.
  { std::ofstream(path_, std::ios::app) << "{\"op\":\"contribute\",\"wor\n"; }
  {
    Ledger l(kScheduler, options());
    EXPECT_NE(l.recovered_warning().find("line 5"), std::string::npos) << l.recovered_warning();
    EXPECT_EQ(l.task(t)->replicates.size(), 1u);
  }
  Ledger l(kScheduler, options());
  EXPECT_EQ(l.recovered_warning(), "");
}

TEST_F(PocoJournal, CorruptMiddleLineIsAnError) {
  {
    Ledger l(kScheduler, options());
    l.register_worker(addr(1), 1, {{"app", kAppSha}}, 10);
    l.submit(req("t", 1), 20);
    l.assign(30);
  }
  std::vector<std::string> ls = lines();
  ASSERT_EQ(ls.size(), 4u);
  ls[2] = "{\"op\":\"submit\",";
  write_lines(ls);
  try {
    Ledger l(kScheduler, options());
    FAIL() << "no error";
  } catch (const LedgerError& e) {
    EXPECT_NE(std::string(e.what()).find(path_ + ":3: unparsable"), std::string::npos) << e.what();
  }
  // A well-formed record that does not replay names its line too.
  ls[2] = "{\"op\":\"assign\",\"task\":\"" + keccak256("x").hex() + "\",\"worker\":\"" +
          addr(1).hex() + "\",\"t\":5}";
  write_lines(ls);
  try {
    Ledger l(kScheduler, options());
    FAIL() << "no error";
  } catch (const LedgerError& e) {
    EXPECT_NE(std::string(e.what()).find(path_ + ":3: cannot replay"), std::string::npos)
        << e.what();
  }
}

TEST_F(PocoJournal, OtherSchedulersJournalIsRefused) {
  { Ledger l(kScheduler, options()); }
  try {
    Ledger l(addr(201), options());
    FAIL() << "no error";
  } catch (const LedgerError& e) {
    EXPECT_EQ(std::string(e.what()), "journal " + path_ + " belongs to scheduler " +
                                         kScheduler.hex() + ", this scheduler is " +
                                         addr(201).hex() + "; use its key or another journal path");
  }
}

TEST_F(PocoJournal, MissingFolderAndSecondOpener) {
  LedgerOptions o = options();
  o.journal_path = (dir_ / "missing" / "ledger.jsonl").string();
  try {
    Ledger l(kScheduler, o);
    FAIL() << "no error";
  } catch (const LedgerError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(o.journal_path), std::string::npos) << what;
    EXPECT_NE(what.find("mkdir -p"), std::string::npos) << what;
  }
  Ledger first(kScheduler, options());
  EXPECT_THROW(Ledger second(kScheduler, options()), LedgerError);
}

TEST_F(PocoJournal, HeartbeatsAreNotJournaledButRevivalsAre) {
  {
    Ledger l(kScheduler, options());
    l.register_worker(addr(1), 1, {{"app", kAppSha}}, 0);
    size_t n = lines().size();
    l.heartbeat(addr(1), kSec);
    l.tick(2 * kSec);  // changes nothing: no record
    EXPECT_EQ(lines().size(), n);
    l.tick(5 * kSec);  // lost
    ASSERT_TRUE(l.worker(addr(1))->lost);
    l.heartbeat(addr(1), 6 * kSec);  // revived
    EXPECT_EQ(lines().size(), n + 2);
  }
  Ledger l(kScheduler, options());
  EXPECT_FALSE(l.worker(addr(1))->lost);
  EXPECT_EQ(l.worker(addr(1))->last_seen_us, 6 * kSec);  // the last record's time
}

}  // namespace
}  // namespace edgeflow::iexec
