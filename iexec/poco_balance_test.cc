// The PoCo ledger's balances (IEXEC.md's rewards as plain balances): a requester's price is
// locked when its task is accepted and shared by the proved workers at finalization; each
// contribution locks the worker's stake, returned when proved and seized by the scheduler's
// account when not; a failed task gives everything back; nobody spends what it does not have;
// and the journal brings every balance back after a restart.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "iexec/poco.h"
#include "iexec/poco_test_support.h"

namespace edgeflow::iexec {
namespace {

namespace fs = std::filesystem;
using crypto::keccak256;
using testing::addr;
using testing::kAppSha;
using testing::kRef;
using testing::kScheduler;
using testing::rhash;
using testing::rseal;

const Address kRequester = addr(100);
constexpr int64_t kStake = 5, kPrice = 30;

struct Pool {
  explicit Pool(const std::string& journal = "") : l(kScheduler, options(journal)) {}
  static LedgerOptions options(const std::string& journal) {
    LedgerOptions o;
    o.stake = kStake;
    o.journal_path = journal;
    return o;
  }
  Ledger l;
  int64_t now = 1'000;

  int64_t balance(const Address& a) const { return l.account(a) ? l.account(a)->balance : 0; }
  int64_t locked(const Address& a) const { return l.account(a) ? l.account(a)->locked : 0; }
  int64_t total() const {
    int64_t sum = 0;
    for (const auto& [a, acc] : l.accounts()) sum += acc.balance + acc.locked;
    return sum;
  }
  // Workers 1..n with 10 each, the requester with 100.
  void open_accounts(int n) {
    for (int i = 1; i <= n; ++i) {
      l.register_worker(addr(i), 1, {{"app", kAppSha}}, now);
      l.deposit(addr(i), 10, now);
    }
    l.deposit(kRequester, 100, now);
  }
  Hash32 submit(const std::string& id, uint32_t trust, int64_t price = kPrice) {
    TaskRequest r = testing::req(id, trust);
    r.price = price;
    r.payer = kRequester;
    return l.submit(r, now);
  }
  std::string contribute(const Address& w, const Hash32& t, const Hash32& digest) {
    return l.contribute(w, t, rhash(t, digest), rseal(w, t, digest), now);
  }
};

TEST(PocoBalances, ThePriceGoesToTheProvedWinnersAndTheirStakesComeBack) {
  Pool p;
  p.open_accounts(3);
  const int64_t total = p.total();
  const Hash32 t = p.submit("t", 3);  // fresh workers: 2 agreeing reach trust 3
  EXPECT_EQ(p.balance(kRequester), 70);
  EXPECT_EQ(p.locked(kRequester), kPrice);
  ASSERT_EQ(p.l.assign(p.now).size(), 2u);
  const std::string cb = "forecast";
  const Hash32 digest = keccak256(cb);
  for (int i = 1; i <= 2; ++i) {
    ASSERT_EQ(p.contribute(addr(i), t, digest), "");
    EXPECT_EQ(p.balance(addr(i)), 10 - kStake);
    EXPECT_EQ(p.locked(addr(i)), kStake);
  }
  for (int i = 1; i <= 2; ++i) ASSERT_EQ(p.l.reveal(addr(i), t, digest, p.now), "");
  ASSERT_EQ(p.l.upload(addr(1), t, {}, false, cb, p.now), "");
  ASSERT_EQ(p.l.task(t)->status, TaskStatus::kFinalized);
  for (int i = 1; i <= 2; ++i) {
    EXPECT_EQ(p.balance(addr(i)), 10 + kPrice / 2);
    EXPECT_EQ(p.locked(addr(i)), 0);
  }
  EXPECT_EQ(p.balance(addr(3)), 10);  // never held a replicate
  EXPECT_EQ(p.balance(kRequester), 70);
  EXPECT_EQ(p.locked(kRequester), 0);
  EXPECT_EQ(p.balance(kScheduler), 0);
  EXPECT_EQ(p.total(), total);
  EXPECT_GE(testing::count(p.l.take_events(), LedgerEvent::kBalance), 5);
}

TEST(PocoBalances, AWinnerThatNeverRevealsLosesItsStakeToTheScheduler) {
  Pool p;
  p.open_accounts(2);
  const int64_t total = p.total();
  const Hash32 t = p.submit("t", 3);
  ASSERT_EQ(p.l.assign(p.now).size(), 2u);
  const std::string cb = "forecast";
  const Hash32 digest = keccak256(cb);
  for (int i = 1; i <= 2; ++i) ASSERT_EQ(p.contribute(addr(i), t, digest), "");
  ASSERT_EQ(p.l.reveal(addr(1), t, digest, p.now), "");
  ASSERT_EQ(p.l.upload(addr(1), t, {}, false, cb, p.now), "");
  p.now = p.l.task(t)->reveal_deadline_us;  // worker 2 stays silent
  p.l.tick(p.now);
  ASSERT_EQ(p.l.task(t)->status, TaskStatus::kFinalized);
  EXPECT_EQ(p.balance(addr(1)), 10 + kPrice);  // the one proved worker takes the price
  EXPECT_EQ(p.balance(addr(2)), 10 - kStake);
  EXPECT_EQ(p.locked(addr(2)), 0);
  EXPECT_EQ(p.balance(kScheduler), kStake);
  EXPECT_EQ(p.total(), total);
}

TEST(PocoBalances, AFailedTaskGivesThePriceAndTheStakesBack) {
  Pool p;
  p.open_accounts(2);
  const Hash32 t = p.submit("t", 3);
  ASSERT_EQ(p.l.assign(p.now).size(), 2u);
  ASSERT_EQ(p.contribute(addr(1), t, keccak256("one")), "");
  ASSERT_EQ(p.contribute(addr(2), t, keccak256("two")), "");  // they disagree
  p.now = p.l.task(t)->contribution_deadline_us;
  p.l.tick(p.now);
  ASSERT_EQ(p.l.task(t)->status, TaskStatus::kFailed);
  EXPECT_EQ(p.balance(kRequester), 100);
  EXPECT_EQ(p.locked(kRequester), 0);
  for (int i = 1; i <= 2; ++i) {
    EXPECT_EQ(p.balance(addr(i)), 10);
    EXPECT_EQ(p.locked(addr(i)), 0);
  }
}

TEST(PocoBalances, NobodySpendsWhatItDoesNotHave) {
  Pool p;
  p.open_accounts(1);
  p.l.deposit(kRequester, 1000, p.now);  // 1100: pays for u and v below
  TaskRequest dear = testing::req("dear", 1);
  dear.price = 1101;
  dear.payer = kRequester;
  const std::string why = p.l.can_pay(dear);
  EXPECT_NE(why.find("requester " + kRequester.hex() +
                     " has a balance of 1100, less than the "
                     "price 1101 of app 'app'"),
            std::string::npos)
      << why;
  EXPECT_THROW(p.l.submit(dear, p.now), std::invalid_argument);
  EXPECT_EQ(p.l.task(task_id(deal_id(kScheduler, dear.request_id))), nullptr);
  EXPECT_EQ(p.balance(kRequester), 1100);
  TaskRequest unsigned_request = testing::req("unsigned", 1);
  unsigned_request.price = 1;
  EXPECT_NE(p.l.can_pay(unsigned_request).find("must be signed"), std::string::npos);
  EXPECT_EQ(p.l.can_pay(testing::req("free", 1)), "");  // price 0: nothing to pay

  // A worker short of the stake is given no replicate, and could not contribute anyway.
  p.l.register_worker(addr(2), 1, {{"app", kAppSha}}, p.now);
  p.l.deposit(addr(2), kStake - 1, p.now);
  EXPECT_FALSE(p.l.can_stake(addr(2)));
  EXPECT_TRUE(p.l.can_stake(addr(1)));
  const Hash32 t = p.submit("t", 5);  // wants every worker it can get
  for (const Assignment& a : p.l.assign(p.now)) EXPECT_NE(a.worker, addr(2));
  EXPECT_EQ(p.l.task(t)->replicate(addr(2)), nullptr);

  // A worker with two slots and one stake's worth is given one replicate, not two: the
  // second could never contribute.
  p.l.register_worker(addr(3), 2, {{"app", kAppSha}}, p.now);
  p.l.deposit(addr(3), kStake, p.now);
  p.submit("u", 5);
  p.submit("v", 5);
  int held = 0;
  for (const Assignment& a : p.l.assign(p.now)) held += a.worker == addr(3);
  EXPECT_EQ(held, 1);
  EXPECT_TRUE(p.l.can_stake(addr(3), 0));
  EXPECT_FALSE(p.l.can_stake(addr(3), 1));

  // No deposit takes the ledger past 2^62 in all, and a refused one leaves nothing.
  EXPECT_THROW(p.l.deposit(addr(4), int64_t(1) << 62, p.now), std::invalid_argument);
  EXPECT_EQ(p.l.account(addr(4)), nullptr);
}

TEST(PocoBalances, TheJournalBringsEveryBalanceBack) {
  const fs::path dir = fs::temp_directory_path() / ("poco_balance_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string journal = (dir / "ledger.jsonl").string();
  std::map<Address, Account> before;
  {
    Pool p(journal);
    p.open_accounts(2);
    const Hash32 t = p.submit("t", 3);
    ASSERT_EQ(p.l.assign(p.now).size(), 2u);
    const Hash32 digest = keccak256("x");
    for (int i = 1; i <= 2; ++i) ASSERT_EQ(p.contribute(addr(i), t, digest), "");
    ASSERT_EQ(p.l.reveal(addr(1), t, digest, p.now), "");
    p.now = p.l.task(t)->reveal_deadline_us;
    p.l.tick(p.now);
    ASSERT_EQ(p.l.task(t)->status, TaskStatus::kFinalized);
    p.submit("open", 1, 7);  // a price still locked at the restart
    before = p.l.accounts();
  }
  // Reopened with another stake: replay keeps what each contribution really locked.
  LedgerOptions o = Pool::options(journal);
  o.stake = 1;
  Ledger again(kScheduler, o);
  ASSERT_EQ(again.accounts().size(), before.size());
  for (const auto& [a, acc] : before) {
    ASSERT_NE(again.account(a), nullptr) << a.hex();
    EXPECT_EQ(again.account(a)->balance, acc.balance) << a.hex();
    EXPECT_EQ(again.account(a)->locked, acc.locked) << a.hex();
  }
  EXPECT_EQ(again.account(kRequester)->locked, 7);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace edgeflow::iexec
