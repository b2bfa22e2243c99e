// The Proof-of-Contribution ledger: what iExec's PoCo contract (IexecPoco2Facet.sol) keeps on
// chain, kept by the scheduler and ported rule for rule (../shared/IEXEC.md): deals and tasks,
// replicates, contributions grouped by resultHash with the contract's weights, consensus,
// reveal, finalize, reopen, worker scores, and deadlines on a clock the caller passes in
// (`now`, µs). Signatures are checked before calls reach it (the protocol layer); the ledger
// checks the rules and the hashes. Every accepted change is appended to a journal (JSON lines)
// and replayed on open, so the ledger survives a restart of the scheduler.
//
// Not thread-safe: the scheduler operator owns one and calls it from one thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "crypto/crypto.h"
#include "iexec/app.h"

namespace edgeflow::iexec {

using crypto::Address;
using crypto::Hash32;

// Task states of iexec-core. The contract's ACTIVE is INITIALIZED/RUNNING/REOPENED; its
// REVEALING is CONSENSUS_REACHED/AT_LEAST_ONE_REVEALED; COMPLETED is FINALIZED/COMPLETED.
enum class TaskStatus {
  kInitialized,       // accepted, no replicate handed out yet
  kRunning,           // replicates out, contributions open
  kConsensusReached,  // reveal phase
  kAtLeastOneRevealed,
  kResultUploaded,        // a winner's output matched the revealed digest
  kFinalized,             // scores updated; result ready to publish
  kCompleted,             // result published (mark_completed)
  kContributionTimeout,   // contribution deadline passed without consensus (then kFailed)
  kReopened,              // reveal deadline passed with no reveal: winners rejected (then kRunning)
  kFinalDeadlineReached,  // final deadline passed before finalize (then kFailed)
  kFailed,
};
const char* to_string(TaskStatus s);  // "RUNNING", "CONSENSUS_REACHED", ...
bool is_final(TaskStatus s);          // kCompleted, kFinalized, kFailed

// Replicate states a worker reports, in this order (IEXEC.md); or one of the last three.
enum class ReplicateStatus {
  kCreated,  // handed out by the scheduler, nothing reported yet
  kStarting,
  kStarted,
  kAppDownloading,
  kAppDownloaded,
  kDataDownloading,
  kDataDownloaded,
  kComputing,
  kComputed,
  kContributing,
  kContributed,
  kRevealing,
  kRevealed,
  kResultUploading,
  kResultUploaded,
  kCompleting,
  kCompleted,
  kAborted,
  kFailed,
  kWorkerLost,
};
const char* to_string(ReplicateStatus s);  // "COMPUTING", ...
std::optional<ReplicateStatus> parse_replicate_status(const std::string& s);

// The contract's per-worker contribution state.
enum class ContributionStatus { kUnset, kContributed, kProved, kRejected };
const char* to_string(ContributionStatus s);

// Identifiers (IEXEC.md): dealid = keccak256(scheduler || request id), one task per deal,
// taskid = keccak256(dealid || uint256 index). A requester that knows the scheduler's address
// can compute its task id before the scheduler answers.
inline Hash32 deal_id(const Address& scheduler, const Hash32& request_id) {
  return crypto::Packed().add(scheduler).add(request_id).keccak();
}
inline Hash32 task_id(const Hash32& dealid, uint64_t index = 0) {
  return crypto::Packed().add(dealid).add_uint256(index).keccak();
}

struct TaskRequest {
  Hash32 request_id;  // chosen by the requester; submitting the same id again is the same task
  std::string app;
  Hash32 app_sha256;
  std::vector<std::string> args;
  std::vector<TaskInput> inputs;
  uint32_t trust = 1;                // >= 1
  int64_t time_ref_us = 60'000'000;  // the category's time reference; deadlines are ratios of it
  std::string requester;             // free text for people: "task submit", a stage id
  // IEXEC.md's rewards as plain balances: the price is locked from the payer's balance when
  // the task is accepted, paid to the proved winners at finalization, refunded if it fails.
  int64_t price = 0;
  Address payer;  // the key that signed the request; needed when price > 0
};

struct Replicate {
  Address worker;
  ReplicateStatus status = ReplicateStatus::kCreated;
  ContributionStatus contribution = ContributionStatus::kUnset;
  Hash32 result_hash, result_seal, result_digest;
  int64_t weight = 0;  // the worker's weight when it contributed
  int64_t stake = 0;   // locked from the worker's balance by its contribution
  int64_t assigned_us = 0;
  std::string cause;  // why it failed
};

struct Task {
  Hash32 taskid, dealid;
  uint64_t index = 0;
  TaskRequest request;
  TaskStatus status = TaskStatus::kInitialized;
  int64_t created_us = 0;
  int64_t contribution_deadline_us = 0;    // created + 7 x time_ref
  int64_t reveal_deadline_us = 0;          // consensus + 2 x time_ref
  int64_t final_deadline_us = 0;           // created + 10 x time_ref
  std::map<Hash32, int64_t> group_weight;  // the contract's m_groupweight
  int64_t total_weight = 1;                // m_totalweight, starts at 1
  std::vector<Address> contributors;       // in contribution order
  Hash32 consensus;                        // the winning resultHash
  int winner_count = 0, reveal_count = 0;
  Hash32 result_digest;               // revealed
  std::vector<Replicate> replicates;  // in hand-out order
  // The uploaded result (files digest-checked, or callback data), for publishing.
  std::vector<std::pair<std::string, std::string>> result_files;
  bool result_is_folder = false;
  std::optional<std::string> callback_data;
  std::string cause;  // why it failed, for people: "consensus needs ... at trust 5; ..."

  const Replicate* replicate(const Address& worker) const;
};

struct WorkerInfo {
  Address address;
  int slots = 1;  // tasks it runs at once (free CPU slots)
  int64_t score = 0;
  int64_t last_seen_us = 0;
  bool lost = false;
  std::vector<std::pair<std::string, Hash32>> apps;  // name, sha256 it can run
};

// Money in the ledger (any unit): what an address may spend, and what is locked in tasks.
struct Account {
  int64_t balance = 0;
  int64_t locked = 0;
};

struct Assignment {
  Hash32 taskid;
  Address worker;
};

struct LedgerEvent {
  enum Kind {
    kTaskCreated,
    kAssigned,  // a replicate handed to `worker`: send it the task
    kContributed,
    kConsensus,  // ask every winner (contributors of the consensus hash) to reveal
    kRevealed,
    kResultUploaded,
    kFinalized,  // publish the result
    kReopened,
    kFailed,  // publish the failure; `text` holds the cause
    kScore,   // `worker`'s score changed; `text` = "old -> new"
    kWorkerLost,
    kReplicateFailed,  // a worker could not run its replicate; `text` holds the cause
    kBalance,          // the account `worker` changed: `text` says how ("locked 10 ...")
  };
  Kind kind;
  Hash32 taskid;   // zero for worker events
  Address worker;  // zero for task events
  std::string text;
};
const char* to_string(LedgerEvent::Kind k);

struct LedgerOptions {
  std::string journal_path;            // "" = in memory only
  bool fsync = true;                   // fdatasync after each journal record
  int64_t lost_after_us = 60'000'000;  // a worker silent this long is lost
  int contribution_ratio = 7, reveal_ratio = 2, final_ratio = 10;  // x time_ref
  // Locked from a worker's balance by each contribution: returned when it is proved (or the
  // task fails), seized by the scheduler's account when it is not. 0 = no stakes.
  int64_t stake = 0;
};

// A journal that cannot be opened or replayed; names the file, the line and the fix.
class LedgerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Ledger {
 public:
  // Opens (creating it if missing) and replays the journal. A torn last line (a crash while
  // writing) is dropped with a warning in recovered_warning(); any other bad line throws.
  Ledger(const Address& scheduler, LedgerOptions options = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  const Address& scheduler() const { return scheduler_; }
  const std::string& recovered_warning() const { return recovered_warning_; }

  // --- workers ---
  // New or returning worker; keeps its score. Journaled.
  void register_worker(const Address& worker, int slots,
                       std::vector<std::pair<std::string, Hash32>> apps, int64_t now);
  void heartbeat(const Address& worker, int64_t now);  // not journaled
  // A worker the pool no longer admits (taken off the scheduler's list): lost from now, as
  // after a silence (journaled), so its pending replicates go to others.
  void expel(const Address& worker, int64_t now);
  static int64_t weight_of_score(int64_t score) {  // max(score / 3, 3) - 1
    return std::max<int64_t>(score / 3, 3) - 1;
  }

  // --- balances ---
  // Credits `amount` (> 0) to `account`. Journaled.
  void deposit(const Address& account, int64_t amount, int64_t now);
  const Account* account(const Address& a) const;  // null: never credited
  const std::map<Address, Account>& accounts() const { return accounts_; }
  // "" when the request's payer can pay its price, else why not (for the refusal).
  std::string can_pay(const TaskRequest& request) const;
  // Whether `worker` can lock the stake of one more contribution, besides those of its
  // `pending` replicates that have not contributed yet.
  bool can_stake(const Address& worker, int pending = 0) const;

  // --- tasks ---
  // dealid = keccak256(scheduler || request_id), taskid = keccak256(dealid || uint256 0).
  // Returns the taskid; *created is false when the request id was seen before. Locks the
  // price from the payer's balance; throws std::invalid_argument if can_pay() says no.
  Hash32 submit(const TaskRequest& request, int64_t now, bool* created = nullptr);
  // Hands out replicates (the replication rule of IEXEC.md) to live workers that have a free
  // slot, run the app (name and sha256), and hold no replicate of the task yet.
  std::vector<Assignment> assign(int64_t now);
  // Each returns "" when accepted, else the reason it was refused (for the error output).
  std::string contribute(const Address& worker, const Hash32& taskid, const Hash32& result_hash,
                         const Hash32& result_seal, int64_t now);
  std::string reveal(const Address& worker, const Hash32& taskid, const Hash32& result_digest,
                     int64_t now);
  // A winner's output; accepted when its digest equals the revealed resultDigest.
  std::string upload(const Address& worker, const Hash32& taskid,
                     std::vector<std::pair<std::string, std::string>> files, bool folder,
                     std::optional<std::string> callback_data, int64_t now);
  // A status the worker reports; must not go back in the order of ReplicateStatus.
  // kFailed/kAborted free the worker's slot; the task may be handed to another worker.
  std::string replicate_status(const Address& worker, const Hash32& taskid, ReplicateStatus status,
                               const std::string& cause, int64_t now);
  // Deadlines, lost workers, finalize after the reveal deadline. Call often (every 100 ms).
  void tick(int64_t now);
  // The result was published: kFinalized -> kCompleted.
  void mark_completed(const Hash32& taskid, int64_t now);

  // Events produced by every call since the last take_events(), in order.
  std::vector<LedgerEvent> take_events();
  // What a restarted scheduler must (re)do, since replay emits no events: kConsensus (worker
  // zero) for each revealing task with winners yet to reveal, kFinalized for each FINALIZED
  // task (publish it), kAssigned for each replicate still computing (kCreated..kComputed,
  // nothing contributed) of a task open to contributions (re-send it; workers ignore
  // duplicates). In submission order.
  std::vector<LedgerEvent> resume_events() const;

  const Task* task(const Hash32& taskid) const;
  const std::map<Hash32, Task>& tasks() const { return tasks_; }
  const WorkerInfo* worker(const Address& worker) const;
  const std::map<Address, WorkerInfo>& workers() const { return workers_; }

 private:
  // (implementation detail, see poco_internal.h)
  struct Impl;
  Address scheduler_;
  LedgerOptions options_;
  std::map<Hash32, Task> tasks_;
  std::map<Address, WorkerInfo> workers_;
  std::map<Address, Account> accounts_;
  int64_t replay_stake_ = 0;  // the stake a replayed contribution locked
  std::vector<LedgerEvent> events_;
  std::string recovered_warning_;
  std::vector<Hash32> order_;  // taskids in submission order: assign() serves the oldest first
  int journal_fd_ = -1;
  bool replaying_ = false;
};

}  // namespace edgeflow::iexec
