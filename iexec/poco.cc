// The PoCo ledger (poco.h): iExec's Proof-of-Contribution contract and the scheduler rules of
// iexec-core, ported rule for rule (../shared/IEXEC.md). What each part ports:
//   submit()            IexecPoco1Facet.matchOrders (dealid) + IexecPoco2Facet.initialize (taskid,
//                       deadlines)
//   assign()            iexec-core ReplicatesService/ConsensusHelper: the replication prediction
//   contribute()        IexecPoco2Facet.contribute + checkConsensus (group and total weights)
//   reveal()            IexecPoco2Facet.reveal
//   upload()            iexec-core's result upload, checked against the revealed resultDigest
//   try_finalize()      IexecPoco2Facet.finalize + distributeRewards (scores)
//   reopen()            IexecPoco2Facet.reopen
//   tick() timeouts     IexecPoco2Facet.claim (final deadline) and iexec-core's contribution
//                       timeout; lost workers are iexec-core's WorkerService
//   replicate_status()  iexec-core's ReplicateStatus transitions
//   journal             ours: JSON lines replayed through the same code paths on open.
// Choices beyond the contract: a WORKER_LOST replicate whose worker comes back may still
// contribute before the deadline; winners may reveal after an upload (RESULT_UPLOADED is still
// the contract's REVEALING); after replay, live workers count as seen at the last record's time.
// Ledger::Impl, the rules shared with the replay, is in poco_internal.h; the journal is in
// poco_journal.cc.
#include "iexec/poco.h"

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "iexec/poco_internal.h"

namespace edgeflow::iexec {

// ---------------------------------------------------------------------------------------------
// Names.

const char* to_string(TaskStatus s) {
  switch (s) {
    case TaskStatus::kInitialized:
      return "INITIALIZED";
    case TaskStatus::kRunning:
      return "RUNNING";
    case TaskStatus::kConsensusReached:
      return "CONSENSUS_REACHED";
    case TaskStatus::kAtLeastOneRevealed:
      return "AT_LEAST_ONE_REVEALED";
    case TaskStatus::kResultUploaded:
      return "RESULT_UPLOADED";
    case TaskStatus::kFinalized:
      return "FINALIZED";
    case TaskStatus::kCompleted:
      return "COMPLETED";
    case TaskStatus::kContributionTimeout:
      return "CONTRIBUTION_TIMEOUT";
    case TaskStatus::kReopened:
      return "REOPENED";
    case TaskStatus::kFinalDeadlineReached:
      return "FINAL_DEADLINE_REACHED";
    case TaskStatus::kFailed:
      return "FAILED";
  }
  return "?";
}

bool is_final(TaskStatus s) {
  return s == TaskStatus::kCompleted || s == TaskStatus::kFinalized || s == TaskStatus::kFailed;
}

namespace {
constexpr std::pair<ReplicateStatus, const char*> kReplicateNames[] = {
    {ReplicateStatus::kCreated, "CREATED"},
    {ReplicateStatus::kStarting, "STARTING"},
    {ReplicateStatus::kStarted, "STARTED"},
    {ReplicateStatus::kAppDownloading, "APP_DOWNLOADING"},
    {ReplicateStatus::kAppDownloaded, "APP_DOWNLOADED"},
    {ReplicateStatus::kDataDownloading, "DATA_DOWNLOADING"},
    {ReplicateStatus::kDataDownloaded, "DATA_DOWNLOADED"},
    {ReplicateStatus::kComputing, "COMPUTING"},
    {ReplicateStatus::kComputed, "COMPUTED"},
    {ReplicateStatus::kContributing, "CONTRIBUTING"},
    {ReplicateStatus::kContributed, "CONTRIBUTED"},
    {ReplicateStatus::kRevealing, "REVEALING"},
    {ReplicateStatus::kRevealed, "REVEALED"},
    {ReplicateStatus::kResultUploading, "RESULT_UPLOADING"},
    {ReplicateStatus::kResultUploaded, "RESULT_UPLOADED"},
    {ReplicateStatus::kCompleting, "COMPLETING"},
    {ReplicateStatus::kCompleted, "COMPLETED"},
    {ReplicateStatus::kAborted, "ABORTED"},
    {ReplicateStatus::kFailed, "FAILED"},
    {ReplicateStatus::kWorkerLost, "WORKER_LOST"},
};
}  // namespace

const char* to_string(ReplicateStatus s) {
  for (const auto& [status, name] : kReplicateNames) {
    if (status == s) return name;
  }
  return "?";
}

std::optional<ReplicateStatus> parse_replicate_status(const std::string& s) {
  for (const auto& [status, name] : kReplicateNames) {
    if (s == name) return status;
  }
  return std::nullopt;
}

const char* to_string(ContributionStatus s) {
  switch (s) {
    case ContributionStatus::kUnset:
      return "UNSET";
    case ContributionStatus::kContributed:
      return "CONTRIBUTED";
    case ContributionStatus::kProved:
      return "PROVED";
    case ContributionStatus::kRejected:
      return "REJECTED";
  }
  return "?";
}

const char* to_string(LedgerEvent::Kind k) {
  switch (k) {
    case LedgerEvent::kTaskCreated:
      return "task_created";
    case LedgerEvent::kAssigned:
      return "assigned";
    case LedgerEvent::kContributed:
      return "contributed";
    case LedgerEvent::kConsensus:
      return "consensus";
    case LedgerEvent::kRevealed:
      return "revealed";
    case LedgerEvent::kResultUploaded:
      return "result_uploaded";
    case LedgerEvent::kFinalized:
      return "finalized";
    case LedgerEvent::kReopened:
      return "reopened";
    case LedgerEvent::kFailed:
      return "failed";
    case LedgerEvent::kScore:
      return "score";
    case LedgerEvent::kWorkerLost:
      return "worker_lost";
    case LedgerEvent::kReplicateFailed:
      return "replicate_failed";
    case LedgerEvent::kBalance:
      return "balance";
  }
  return "?";
}

const Replicate* Task::replicate(const Address& worker) const {
  for (const Replicate& r : replicates) {
    if (r.worker == worker) return &r;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Workers.

void Ledger::register_worker(const Address& worker, int slots,
                             std::vector<std::pair<std::string, Hash32>> apps, int64_t now) {
  json japps = json::array();
  for (const auto& [name, sha] : apps) japps.push_back({enc_str(name), sha.hex()});
  Impl::journal(*this, {{"op", "register"},
                        {"worker", worker.hex()},
                        {"slots", slots},
                        {"apps", japps},
                        {"t", now}});
  WorkerInfo& w = workers_[worker];  // a returning worker keeps its score
  w.address = worker;
  w.slots = slots;
  w.apps = std::move(apps);
  w.last_seen_us = std::max(w.last_seen_us, now);
  w.lost = false;
}

void Ledger::heartbeat(const Address& worker, int64_t now) { Impl::touch(*this, worker, now); }

// ---------------------------------------------------------------------------------------------
// Balances.

void Ledger::deposit(const Address& account, int64_t amount, int64_t now) {
  if (amount <= 0) throw std::invalid_argument("a deposit must be positive");
  // All the money in the ledger stays below 2^62, so no reward or seizure can overflow.
  constexpr int64_t kMaxMoney = int64_t(1) << 62;
  int64_t total = amount;
  for (const auto& [addr, acc] : accounts_) total += std::min(acc.balance + acc.locked, kMaxMoney);
  if (amount > kMaxMoney || total > kMaxMoney)
    throw std::invalid_argument("a deposit past the ledger's limit of 2^62 in all");
  Impl::journal(*this,
                {{"op", "deposit"}, {"account", account.hex()}, {"amount", amount}, {"t", now}});
  Account& a = accounts_[account];
  a.balance += amount;
  Impl::emit(*this, LedgerEvent::kBalance, Hash32{}, account,
             "deposit " + std::to_string(amount) + ", balance " + std::to_string(a.balance));
}

const Account* Ledger::account(const Address& a) const {
  auto it = accounts_.find(a);
  return it == accounts_.end() ? nullptr : &it->second;
}

std::string Ledger::can_pay(const TaskRequest& request) const {
  if (request.price < 0) return "a negative price";
  if (request.price == 0) return "";
  if (request.payer.is_zero())
    return "app '" + request.app + "' costs " + std::to_string(request.price) +
           ": the request must be signed by the requester who pays";
  const Account* a = account(request.payer);
  const int64_t balance = a ? a->balance : 0;
  if (balance >= request.price) return "";
  return "requester " + request.payer.hex() + " has a balance of " + std::to_string(balance) +
         ", less than the price " + std::to_string(request.price) + " of app '" + request.app + "'";
}

bool Ledger::can_stake(const Address& worker, int pending) const {
  if (options_.stake <= 0) return true;
  const Account* a = account(worker);
  // Each pending replicate will lock a stake when it contributes.
  return a && a->balance / options_.stake > pending;
}

// ---------------------------------------------------------------------------------------------
// Tasks.

Hash32 Ledger::submit(const TaskRequest& request, int64_t now, bool* created) {
  Hash32 dealid = deal_id(scheduler_, request.request_id);
  Hash32 taskid = task_id(dealid);
  if (created) *created = false;
  if (tasks_.count(taskid)) return taskid;
  if (request.time_ref_us <= 0) {
    throw std::invalid_argument("task request " + request.request_id.hex() +
                                ": time_ref_us must be positive");
  }
  if (std::string why = can_pay(request); !why.empty())
    throw std::invalid_argument("task request " + request.request_id.hex() + ": " + why);
  Impl::journal(*this, {{"op", "submit"}, {"request", request_to_json(request)}, {"t", now}});
  Task t;
  t.taskid = taskid;
  t.dealid = dealid;
  t.index = 0;
  t.request = request;
  t.request.trust = std::max<uint32_t>(request.trust, 1);  // the contract treats 0 as 1
  t.created_us = now;
  t.contribution_deadline_us = now + options_.contribution_ratio * request.time_ref_us;
  t.final_deadline_us = now + options_.final_ratio * request.time_ref_us;
  if (request.price > 0) Impl::lock(*this, request.payer, request.price, taskid, "price");
  tasks_.emplace(taskid, std::move(t));
  order_.push_back(taskid);
  if (created) *created = true;
  Impl::emit(
      *this, LedgerEvent::kTaskCreated, taskid, Address{},
      "app " + request.app + ", trust " + std::to_string(std::max<uint32_t>(request.trust, 1)));
  return taskid;
}

std::vector<Assignment> Ledger::assign(int64_t now) {
  std::vector<Assignment> out;
  std::map<Address, int> busy;
  for (const auto& [id, t] : tasks_) {
    if (is_final(t.status)) continue;  // a finished task's stragglers are told to stop
    for (const Replicate& r : t.replicates) {
      if (is_pending(r)) ++busy[r.worker];
    }
  }
  for (const Hash32& id : order_) {
    Task& t = tasks_.at(id);
    if (!is_active(t.status) || now >= t.contribution_deadline_us) continue;
    while (Impl::needs_more(*this, t)) {
      const WorkerInfo* best = nullptr;
      int best_free = 0;
      for (const auto& [addr, w] : workers_) {
        if (w.lost || now - w.last_seen_us >= options_.lost_after_us) continue;
        if (!runs_app(w, t.request) || t.replicate(addr) || !can_stake(addr, busy[addr])) continue;
        int free = w.slots - busy[addr];
        if (free <= 0) continue;
        // Most free slots, then highest score; map order makes the lowest address win ties.
        if (!best || free > best_free || (free == best_free && w.score > best->score)) {
          best = &w;
          best_free = free;
        }
      }
      if (!best) break;
      Impl::journal(
          *this,
          {{"op", "assign"}, {"task", id.hex()}, {"worker", best->address.hex()}, {"t", now}});
      Impl::hand_out(*this, t, best->address, now);
      ++busy[best->address];
      out.push_back({id, best->address});
    }
  }
  return out;
}

std::string Ledger::contribute(const Address& worker, const Hash32& taskid,
                               const Hash32& result_hash, const Hash32& result_seal, int64_t now) {
  Impl::touch(*this, worker, now);
  auto it = tasks_.find(taskid);
  if (it == tasks_.end()) return "unknown task " + taskid.hex();
  Task& t = it->second;
  if (!is_active(t.status)) {
    return "task " + taskid.hex() + " is " + to_string(t.status) + ": contributions are closed";
  }
  if (now >= t.contribution_deadline_us) {
    return "task " + taskid.hex() + ": the contribution deadline has passed";
  }
  Replicate* r = Impl::find_replicate(t, worker);
  if (!r) return "worker " + worker.hex() + " holds no replicate of task " + taskid.hex();
  if (r->contribution != ContributionStatus::kUnset) {
    return "worker " + worker.hex() + " already contributed to task " + taskid.hex();
  }
  // WORKER_LOST is accepted: the worker came back with a result before the deadline, which is
  // worth as much as anyone's (the contract would accept it too).
  if (r->status == ReplicateStatus::kFailed || r->status == ReplicateStatus::kAborted) {
    return "worker " + worker.hex() + "'s replicate of task " + taskid.hex() + " is " +
           to_string(r->status) + ": it cannot contribute";
  }
  if (result_hash.is_zero() || result_seal.is_zero()) {
    return "contribution to task " + taskid.hex() + ": resultHash and resultSeal must be non-zero";
  }
  // The stake the contribution locks: the option's now, the journal's on replay (the option
  // may have changed since).
  const int64_t stake = replaying_ ? replay_stake_ : std::max<int64_t>(options_.stake, 0);
  if (stake > 0) {
    const Account* a = account(worker);
    const int64_t balance = a ? a->balance : 0;
    if (balance < stake)
      return "worker " + worker.hex() + " has a balance of " + std::to_string(balance) +
             ", less than the stake " + std::to_string(stake) + " of a contribution";
  }
  Impl::journal(*this, {{"op", "contribute"},
                        {"worker", worker.hex()},
                        {"task", taskid.hex()},
                        {"hash", result_hash.hex()},
                        {"seal", result_seal.hex()},
                        {"stake", stake},
                        {"t", now}});
  if (stake > 0) {
    Impl::lock(*this, worker, stake, taskid, "stake");
    r->stake = stake;
  }
  // IexecPoco2Facet.contribute: the group's weight grows geometrically, the total with it.
  int64_t w = Impl::current_weight(*this, worker);
  int64_t& group = t.group_weight[result_hash];
  constexpr int64_t kCap = int64_t(1) << 62;  // uint256 on chain; saturate well before int64 ends
  const int64_t room = kCap - std::max(group, t.total_weight);
  int64_t product = 0, delta = 0;
  if (__builtin_mul_overflow(std::max<int64_t>(group, 1), w, &product) ||
      __builtin_sub_overflow(product, group, &delta))
    delta = w > 0 ? room : 0;  // past int64: saturate, as past the cap
  delta = std::max<int64_t>(0, std::min<int64_t>(delta, room));
  group += int64_t(delta);
  t.total_weight += int64_t(delta);
  t.contributors.push_back(worker);
  r->contribution = ContributionStatus::kContributed;
  r->result_hash = result_hash;
  r->result_seal = result_seal;
  r->weight = w;
  if (r->status < ReplicateStatus::kContributed || is_terminal(r->status)) {
    r->status = ReplicateStatus::kContributed;
  }
  Impl::emit(*this, LedgerEvent::kContributed, taskid, worker, result_hash.hex());

  if (consensus_holds(group, t.total_weight, t.request.trust)) {
    t.status = TaskStatus::kConsensusReached;
    t.consensus = result_hash;
    t.reveal_deadline_us = now + options_.reveal_ratio * t.request.time_ref_us;
    t.reveal_count = 0;
    t.winner_count = 0;
    for (const Replicate& x : t.replicates) {
      if (x.contribution == ContributionStatus::kContributed && x.result_hash == t.consensus) {
        ++t.winner_count;
      }
    }
    Impl::emit(*this, LedgerEvent::kConsensus, taskid, Address{},
               "consensus " + result_hash.hex() + ": " + plural(t.winner_count, "winner") +
                   " must reveal");
  }
  return "";
}

std::string Ledger::reveal(const Address& worker, const Hash32& taskid, const Hash32& result_digest,
                           int64_t now) {
  Impl::touch(*this, worker, now);
  auto it = tasks_.find(taskid);
  if (it == tasks_.end()) return "unknown task " + taskid.hex();
  Task& t = it->second;
  // RESULT_UPLOADED is still the contract's REVEALING: late winners may reveal after an upload.
  if (!is_revealing(t.status)) {
    return "task " + taskid.hex() + " is " + to_string(t.status) + ": not in its reveal phase";
  }
  if (now >= t.reveal_deadline_us)
    return "task " + taskid.hex() + ": the reveal deadline has passed";
  Replicate* r = Impl::find_replicate(t, worker);
  if (!r) return "worker " + worker.hex() + " holds no replicate of task " + taskid.hex();
  if (r->contribution == ContributionStatus::kProved) {
    return "worker " + worker.hex() + " already revealed for task " + taskid.hex();
  }
  if (r->contribution != ContributionStatus::kContributed) {
    return "worker " + worker.hex() + " has no open contribution to task " + taskid.hex() +
           " (it is " + to_string(r->contribution) + ")";
  }
  if (r->result_hash != t.consensus) {
    return "worker " + worker.hex() + " contributed " + r->result_hash.hex() +
           ", not the consensus " + t.consensus.hex() + ": only winners reveal";
  }
  if (crypto::Packed().add(taskid).add(result_digest).keccak() != r->result_hash) {
    return "reveal refused: keccak256(taskid || resultDigest) does not match worker " +
           worker.hex() + "'s resultHash (wrong digest)";
  }
  if (crypto::Packed().add(worker).add(taskid).add(result_digest).keccak() != r->result_seal) {
    return "reveal refused: keccak256(worker || taskid || resultDigest) does not match worker " +
           worker.hex() + "'s resultSeal";
  }
  Impl::journal(*this, {{"op", "reveal"},
                        {"worker", worker.hex()},
                        {"task", taskid.hex()},
                        {"digest", result_digest.hex()},
                        {"t", now}});
  r->contribution = ContributionStatus::kProved;
  r->result_digest = result_digest;
  if (r->status < ReplicateStatus::kRevealed || is_terminal(r->status)) {
    r->status = ReplicateStatus::kRevealed;
  }
  ++t.reveal_count;
  t.result_digest = result_digest;
  if (t.status == TaskStatus::kConsensusReached) t.status = TaskStatus::kAtLeastOneRevealed;
  Impl::emit(*this, LedgerEvent::kRevealed, taskid, worker, result_digest.hex());
  Impl::try_finalize(*this, t, now);
  return "";
}

std::string Ledger::upload(const Address& worker, const Hash32& taskid,
                           std::vector<std::pair<std::string, std::string>> files, bool folder,
                           std::optional<std::string> callback_data, int64_t now) {
  Impl::touch(*this, worker, now);
  auto it = tasks_.find(taskid);
  if (it == tasks_.end()) return "unknown task " + taskid.hex();
  Task& t = it->second;
  const Replicate* r = t.replicate(worker);
  if (!r || r->contribution != ContributionStatus::kProved) {
    return "worker " + worker.hex() + " has not revealed a result of task " + taskid.hex() +
           ": only a winner that revealed may upload";
  }
  // One upload is kept; the others (and late ones) are accepted and ignored.
  if (t.status == TaskStatus::kResultUploaded || t.status == TaskStatus::kFinalized ||
      t.status == TaskStatus::kCompleted) {
    return "";
  }
  if (t.status != TaskStatus::kAtLeastOneRevealed) {
    return "task " + taskid.hex() + " is " + to_string(t.status) + ": no upload expected";
  }
  bool empty = files.empty() && !callback_data;
  if (!empty) {
    Hash32 digest;
    try {
      digest = callback_data ? digest_callback(*callback_data) : digest_files(files, folder);
    } catch (const std::exception& e) {
      return std::string("upload for task ") + taskid.hex() + " refused: " + e.what();
    }
    if (digest != t.result_digest) {
      return "upload for task " + taskid.hex() + " does not match the revealed resultDigest: got " +
             digest.hex() + ", revealed " + t.result_digest.hex();
    }
  }
  Impl::journal(*this, {{"op", "upload"},
                        {"worker", worker.hex()},
                        {"task", taskid.hex()},
                        {"files", files_to_json(files)},
                        {"folder", folder},
                        {"callback", callback_data ? json(b64_encode(*callback_data)) : json()},
                        {"t", now}});
  if (!empty) {
    t.result_files = std::move(files);
    t.result_is_folder = folder;
    t.callback_data = std::move(callback_data);
  }
  t.status = TaskStatus::kResultUploaded;
  Impl::emit(*this, LedgerEvent::kResultUploaded, taskid, worker,
             empty ? "empty upload: the output was too large to ship" : "");
  Impl::try_finalize(*this, t, now);
  return "";
}

std::string Ledger::replicate_status(const Address& worker, const Hash32& taskid,
                                     ReplicateStatus status, const std::string& cause,
                                     int64_t now) {
  Impl::touch(*this, worker, now);
  auto it = tasks_.find(taskid);
  if (it == tasks_.end()) return "unknown task " + taskid.hex();
  Task& t = it->second;
  Replicate* r = Impl::find_replicate(t, worker);
  if (!r) return "worker " + worker.hex() + " holds no replicate of task " + taskid.hex();
  if (status == r->status) return "";  // a duplicate (a retried message)
  if (is_terminal(r->status)) {
    return std::string("replicate of task ") + taskid.hex() + " on worker " + worker.hex() +
           " is " + to_string(r->status) + ": no status may follow it";
  }
  if (status == ReplicateStatus::kWorkerLost) {
    return "WORKER_LOST is decided by the scheduler; a worker cannot report it";
  }
  bool failing = status == ReplicateStatus::kFailed || status == ReplicateStatus::kAborted;
  if (failing && r->status == ReplicateStatus::kCompleted) {
    return std::string("status ") + to_string(status) + " after COMPLETED is out of order";
  }
  if (!failing) {
    if (status < r->status) {
      return std::string("status ") + to_string(status) + " after " + to_string(r->status) +
             " is out of order";
    }
    // The contribution and the reveal are what make those statuses true, not the report.
    if (status >= ReplicateStatus::kContributed && r->contribution == ContributionStatus::kUnset) {
      return std::string("status ") + to_string(status) + " needs an accepted contribution first";
    }
    if (status >= ReplicateStatus::kRevealed && status <= ReplicateStatus::kResultUploaded &&
        r->contribution != ContributionStatus::kProved) {
      return std::string("status ") + to_string(status) + " needs an accepted reveal first";
    }
  }
  Impl::journal(*this, {{"op", "status"},
                        {"worker", worker.hex()},
                        {"task", taskid.hex()},
                        {"status", to_string(status)},
                        {"cause", enc_str(cause)},
                        {"t", now}});
  r->status = status;
  if (failing) {
    r->cause = cause;
    Impl::emit(*this, LedgerEvent::kReplicateFailed, taskid, worker,
               cause.empty() ? to_string(status) : cause);
  }
  return "";
}

void Ledger::expel(const Address& worker, int64_t now) {
  auto it = workers_.find(worker);
  if (it == workers_.end() || it->second.lost) return;
  Impl::journal(*this, {{"op", "lost"}, {"worker", worker.hex()}, {"t", now}});
  Impl::mark_lost(*this, it->second);
}

void Ledger::tick(int64_t now) {
  // Liveness depends on heartbeats, which are not journaled: each decision is journaled and
  // replayed as such, so a replayed tick skips this part.
  if (!replaying_) {
    for (auto& [addr, w] : workers_) {
      if (w.lost || now - w.last_seen_us < options_.lost_after_us) continue;
      Impl::journal(*this, {{"op", "lost"}, {"worker", addr.hex()}, {"t", now}});
      Impl::mark_lost(*this, w);
    }
  }
  size_t before = events_.size();
  for (const Hash32& id : order_) {
    Task& t = tasks_.at(id);
    if (is_final(t.status)) continue;
    if (now >= t.final_deadline_us) {  // IexecPoco2Facet.claim
      Impl::fail(*this, t, TaskStatus::kFinalDeadlineReached, Impl::final_cause(t));
    } else if (is_active(t.status) && now >= t.contribution_deadline_us) {
      Impl::fail(*this, t, TaskStatus::kContributionTimeout, Impl::timeout_cause(*this, t));
    } else if (t.status == TaskStatus::kConsensusReached && now >= t.reveal_deadline_us) {
      Impl::reopen(*this, t);
    } else {
      Impl::try_finalize(*this, t, now);
    }
  }
  // Every change above emits an event; a tick that changed nothing needs no record.
  if (events_.size() > before) Impl::journal(*this, {{"op", "tick"}, {"t", now}});
}

void Ledger::mark_completed(const Hash32& taskid, int64_t now) {
  auto it = tasks_.find(taskid);
  if (it == tasks_.end() || it->second.status != TaskStatus::kFinalized) return;
  Impl::journal(*this, {{"op", "completed"}, {"task", taskid.hex()}, {"t", now}});
  it->second.status = TaskStatus::kCompleted;
}

std::vector<LedgerEvent> Ledger::take_events() {
  std::vector<LedgerEvent> out;
  out.swap(events_);
  return out;
}

std::vector<LedgerEvent> Ledger::resume_events() const {
  std::vector<LedgerEvent> out;
  for (const Hash32& id : order_) {
    const Task& t = tasks_.at(id);
    if (is_revealing(t.status) && t.reveal_count < t.winner_count) {
      out.push_back({LedgerEvent::kConsensus, id, Address{},
                     "resumed: " + std::to_string(t.winner_count - t.reveal_count) +
                         " winner(s) still to reveal"});
    } else if (t.status == TaskStatus::kFinalized) {
      out.push_back({LedgerEvent::kFinalized, id, Address{}, "resumed: not published yet"});
    } else if (is_active(t.status)) {
      for (const Replicate& r : t.replicates) {
        if (r.contribution == ContributionStatus::kUnset &&
            r.status <= ReplicateStatus::kComputed) {
          out.push_back({LedgerEvent::kAssigned, id, r.worker, "resumed"});
        }
      }
    }
  }
  return out;
}

const Task* Ledger::task(const Hash32& taskid) const {
  auto it = tasks_.find(taskid);
  return it == tasks_.end() ? nullptr : &it->second;
}

const WorkerInfo* Ledger::worker(const Address& worker) const {
  auto it = workers_.find(worker);
  return it == workers_.end() ? nullptr : &it->second;
}

}  // namespace edgeflow::iexec
