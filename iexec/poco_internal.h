// What the PoCo ledger's files share (poco.cc, the public calls and the task lifecycle;
// poco_journal.cc, the journal's open, replay and record encoding): the status predicates, the
// journal's encoders, and Ledger::Impl, the rules the live calls and the replay both run.
// Private to those files, so the rules stay in one place when the code is split.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "iexec/poco.h"
#include "iexec/wide_math.h"

namespace edgeflow::iexec {

using nlohmann::json;

namespace detail {

inline bool is_active(TaskStatus s) {  // the contract's ACTIVE: contributions open
  return s == TaskStatus::kInitialized || s == TaskStatus::kRunning || s == TaskStatus::kReopened;
}

inline bool is_revealing(TaskStatus s) {  // the contract's REVEALING
  return s == TaskStatus::kConsensusReached || s == TaskStatus::kAtLeastOneRevealed ||
         s == TaskStatus::kResultUploaded;
}

inline bool is_terminal(ReplicateStatus s) {
  return s == ReplicateStatus::kAborted || s == ReplicateStatus::kFailed ||
         s == ReplicateStatus::kWorkerLost;
}

// Still computing: nothing contributed and neither ended nor lost. Holds a slot of its worker.
inline bool is_pending(const Replicate& r) {
  return r.contribution == ContributionStatus::kUnset && !is_terminal(r.status) &&
         r.status != ReplicateStatus::kCompleted;
}

inline bool is_contribution_live(const Replicate& r) {  // counts in the weights (not rejected)
  return r.contribution == ContributionStatus::kContributed ||
         r.contribution == ContributionStatus::kProved;
}

// The contract's consensus test, in 128 bits: weights are int64 and trust uint32.
inline bool consensus_holds(int64_t group, int64_t total, uint32_t trust) {
  return mul_u64(uint64_t(group), trust) > mul_u64(uint64_t(total), trust - 1);
}

inline bool runs_app(const WorkerInfo& w, const TaskRequest& r) {
  for (const auto& [name, sha] : w.apps) {
    if (name == r.app && sha == r.app_sha256) return true;
  }
  return false;
}

inline std::string plural(int64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// The journal's encoding of bytes, text and requests (defined in poco_journal.cc).
std::string b64_encode(const std::string& in);
std::string b64_decode(const std::string& in);
json enc_str(const std::string& s);
std::string dec_str(const json& j);
Hash32 get_hash(const json& j, const char* field);
Address get_address(const json& j, const char* field);
json files_to_json(const std::vector<std::pair<std::string, std::string>>& files);
std::vector<std::pair<std::string, std::string>> files_from_json(const json& j);
json request_to_json(const TaskRequest& r);
TaskRequest request_from_json(const json& j);

}  // namespace detail

// The ledger's files call these by their plain names, as when they were file-local.
using detail::b64_decode;
using detail::b64_encode;
using detail::consensus_holds;
using detail::dec_str;
using detail::enc_str;
using detail::files_from_json;
using detail::files_to_json;
using detail::get_address;
using detail::get_hash;
using detail::is_active;
using detail::is_contribution_live;
using detail::is_pending;
using detail::is_revealing;
using detail::is_terminal;
using detail::plural;
using detail::request_from_json;
using detail::request_to_json;
using detail::runs_app;

// ---------------------------------------------------------------------------------------------
// The rules shared by the live calls and the replay.

struct Ledger::Impl {
  static void emit(Ledger& l, LedgerEvent::Kind kind, const Hash32& taskid, const Address& worker,
                   std::string text = {}) {
    l.events_.push_back(LedgerEvent{kind, taskid, worker, std::move(text)});
  }

  static Replicate* find_replicate(Task& t, const Address& worker) {
    return const_cast<Replicate*>(t.replicate(worker));
  }

  // One record = one write() of the whole line, so a crash leaves at most a torn last line.
  static void journal(Ledger& l, json record) {
    if (l.replaying_ || l.journal_fd_ < 0) return;
    std::string line = record.dump() + "\n";
    ssize_t n;
    do {
      n = ::write(l.journal_fd_, line.data(), line.size());
    } while (n < 0 && errno == EINTR);
    if (n != ssize_t(line.size())) {
      std::string why = n < 0 ? std::strerror(errno) : "short write (disk full?)";
      throw LedgerError("ledger journal " + l.options_.journal_path + ": cannot append (" + why +
                        "); the ledger stops here: free space or fix the disk, then restart the "
                        "scheduler (the journal replays up to the last whole record)");
    }
    if (l.options_.fsync && ::fdatasync(l.journal_fd_) != 0) {
      throw LedgerError("ledger journal " + l.options_.journal_path +
                        ": fdatasync failed: " + std::strerror(errno));
    }
  }

  // Any message from a worker shows it is alive. Reviving a lost worker is a decision that
  // replay cannot derive (heartbeats are not journaled), so it is journaled on its own.
  static void touch(Ledger& l, const Address& worker, int64_t now) {
    auto it = l.workers_.find(worker);
    if (it == l.workers_.end()) return;
    WorkerInfo& w = it->second;
    w.last_seen_us = std::max(w.last_seen_us, now);
    if (w.lost) {
      journal(l, {{"op", "revive"}, {"worker", worker.hex()}, {"t", now}});
      w.lost = false;
    }
  }

  static void hand_out(Ledger& l, Task& t, const Address& worker, int64_t now) {
    Replicate r;
    r.worker = worker;
    r.status = ReplicateStatus::kCreated;
    r.assigned_us = now;
    t.replicates.push_back(r);
    t.status = TaskStatus::kRunning;
    emit(l, LedgerEvent::kAssigned, t.taskid, worker);
  }

  static int64_t current_weight(const Ledger& l, const Address& worker) {
    auto it = l.workers_.find(worker);
    return weight_of_score(it == l.workers_.end() ? 0 : it->second.score);
  }

  // iexec-core's prediction: count the pending workers as if they all agreed with the best
  // group; keep replicating unless that would reach the contract's consensus.
  static bool needs_more(const Ledger& l, const Task& t) {
    std::map<Hash32, int64_t> groups;
    int64_t all = 0, pending = 0, best = 0;
    for (const Replicate& r : t.replicates) {
      if (is_contribution_live(r)) {
        groups[r.result_hash] += r.weight;
        all += r.weight;
      } else if (is_pending(r)) {
        pending += current_weight(l, r.worker);
      }
    }
    for (const auto& [hash, w] : groups) best = std::max(best, w);
    best += pending;
    all += pending;
    return !consensus_holds(best, 1 + all, t.request.trust);
  }

  // Fresh-weight agreeing workers this trust needs, by the contract's formula.
  static int agreeing_needed(uint32_t trust, int64_t weight) {
    int64_t group = 0, total = 1;
    int n = 0;
    while (!consensus_holds(group, total, trust) && n < 1000) {
      int64_t delta = std::max<int64_t>(group, 1) * weight - group;
      group += delta;
      total += delta;
      ++n;
      if (group > (int64_t(1) << 60)) break;
    }
    return n;
  }

  static void fail(Ledger& l, Task& t, TaskStatus via, std::string cause) {
    t.status = via;  // the contract's intermediate state, then FAILED at once
    t.status = TaskStatus::kFailed;
    t.cause = std::move(cause);
    // IexecPoco2Facet.claim: the requester gets its price back, every worker its stake.
    if (t.request.price > 0)
      unlock(l, t.request.payer, t.request.price, t.taskid, "price refunded");
    for (Replicate& r : t.replicates)
      if (r.stake > 0) unlock(l, r.worker, r.stake, t.taskid, "stake returned");
    emit(l, LedgerEvent::kFailed, t.taskid, Address{}, t.cause);
  }

  // Balances. `what` names the movement in the kBalance event.
  static void lock(Ledger& l, const Address& a, int64_t amount, const Hash32& task,
                   const std::string& what) {
    Account& acc = l.accounts_[a];
    acc.balance -= amount;
    acc.locked += amount;
    emit(l, LedgerEvent::kBalance, task, a,
         what + " " + std::to_string(amount) + " locked, balance " + std::to_string(acc.balance));
  }
  static void unlock(Ledger& l, const Address& a, int64_t amount, const Hash32& task,
                     const std::string& what) {
    Account& acc = l.accounts_[a];
    acc.locked -= amount;
    acc.balance += amount;
    emit(l, LedgerEvent::kBalance, task, a,
         what + " " + std::to_string(amount) + ", balance " + std::to_string(acc.balance));
  }
  // `amount` of what `from` has locked goes to `to`'s balance.
  static void pay(Ledger& l, const Address& from, const Address& to, int64_t amount,
                  const Hash32& task, const std::string& what) {
    l.accounts_[from].locked -= amount;
    Account& dest = l.accounts_[to];
    dest.balance += amount;
    emit(l, LedgerEvent::kBalance, task, to,
         what + " " + std::to_string(amount) + " from " + from.hex() + ", balance " +
             std::to_string(dest.balance));
  }

  // distributeRewards' money: the price is shared by the proved workers (the remainder of the
  // division, and the whole price if none was proved, to the scheduler's account); a proved
  // worker's stake comes back, any other contributor's is seized by the scheduler.
  static void settle_finalized(Ledger& l, Task& t) {
    std::vector<Address> proved;
    for (const Replicate& r : t.replicates)
      if (r.contribution == ContributionStatus::kProved) proved.push_back(r.worker);
    const int64_t price = t.request.price;
    if (price > 0) {
      const int64_t share = proved.empty() ? 0 : price / int64_t(proved.size());
      for (const Address& w : proved) pay(l, t.request.payer, w, share, t.taskid, "reward");
      const int64_t rest = price - share * int64_t(proved.size());
      if (rest > 0) pay(l, t.request.payer, l.scheduler_, rest, t.taskid, "rest of the price");
    }
    for (const Replicate& r : t.replicates) {
      if (r.stake <= 0) continue;
      if (r.contribution == ContributionStatus::kProved)
        unlock(l, r.worker, r.stake, t.taskid, "stake returned");
      else
        pay(l, r.worker, l.scheduler_, r.stake, t.taskid, "stake seized");
    }
  }

  // Replayed ticks rebuild this text, so it reads only journaled state: the lost flags (tick()
  // updates them before the tasks), never last_seen_us.
  static std::string timeout_cause(const Ledger& l, const Task& t) {
    int64_t capable = 0, weight = 0;
    for (const auto& [addr, w] : l.workers_) {
      if (!runs_app(w, t.request) || w.lost) continue;
      ++capable;
      weight = std::max(weight, weight_of_score(w.score));
    }
    if (weight == 0) weight = weight_of_score(0);
    int needed = agreeing_needed(t.request.trust, weight);
    std::set<Hash32> groups;
    int64_t rejected = 0, pending = 0;
    for (const Replicate& r : t.replicates) {
      if (is_contribution_live(r)) groups.insert(r.result_hash);
      if (r.contribution == ContributionStatus::kRejected) ++rejected;
      if (is_pending(r)) ++pending;
    }
    int64_t live = int64_t(t.contributors.size()) - rejected;
    std::string c = "no consensus before the contribution deadline: trust " +
                    std::to_string(t.request.trust) + " needs about " +
                    plural(needed, "agreeing worker") + " of weight " + std::to_string(weight) +
                    ", got " + plural(live, "contribution") + " (" +
                    plural(int64_t(groups.size()), "group") + ")";
    if (rejected) c += ", " + std::to_string(rejected) + " rejected for not revealing";
    if (pending) c += ", " + plural(pending, "replicate") + " still computing";
    c += "; " + plural(capable, "live worker") + " run app '" + t.request.app + "' (" +
         plural(int64_t(l.workers_.size()), "worker") + " registered)";
    if (capable < needed) {
      c += ": too few workers, register more workers that run '" + t.request.app +
           "' or lower the trust";
    } else if (groups.size() > 1) {
      c += ": the workers disagree, check that the app is deterministic";
    } else {
      c += ": the workers were too slow or failed, see their replicates";
    }
    return c;
  }

  static std::string final_cause(const Task& t) {
    std::string c = std::string("final deadline passed while the task was ") + to_string(t.status);
    if (is_active(t.status)) {
      c += ": no consensus yet (" + plural(int64_t(t.contributors.size()), "contribution") + ")";
    } else {
      c += ": " + std::to_string(t.reveal_count) + " of " + plural(t.winner_count, "winner") +
           " revealed, " +
           (t.status == TaskStatus::kResultUploaded ? "result uploaded" : "no result uploaded");
    }
    return c;
  }

  // IexecPoco2Facet.finalize: all winners revealed, or the reveal deadline passed with at
  // least one reveal; we also wait for an upload until the reveal deadline.
  static void try_finalize(Ledger& l, Task& t, int64_t now) {
    if (t.status != TaskStatus::kAtLeastOneRevealed && t.status != TaskStatus::kResultUploaded) {
      return;
    }
    if (now >= t.final_deadline_us) return;
    bool deadline = now >= t.reveal_deadline_us;
    if (!(t.reveal_count == t.winner_count || (t.reveal_count > 0 && deadline))) return;
    if (t.status != TaskStatus::kResultUploaded && !deadline) return;
    t.status = TaskStatus::kFinalized;
    // distributeRewards: proved workers gain a point when there was more than one contributor,
    // everyone else (another hash, rejected, a winner that did not reveal) loses a third.
    bool several = t.contributors.size() > 1;
    for (const Address& a : t.contributors) {
      auto wit = l.workers_.find(a);
      const Replicate* r = t.replicate(a);
      if (wit == l.workers_.end() || !r) continue;
      int64_t old = wit->second.score;
      int64_t now_score =
          r->contribution == ContributionStatus::kProved ? (several ? old + 1 : old) : old * 2 / 3;
      if (now_score == old) continue;
      wit->second.score = now_score;
      emit(l, LedgerEvent::kScore, t.taskid, a,
           std::to_string(old) + " -> " + std::to_string(now_score));
    }
    settle_finalized(l, t);
    emit(l, LedgerEvent::kFinalized, t.taskid, Address{},
         std::to_string(t.reveal_count) + " of " + plural(t.winner_count, "winner") +
             " revealed; " +
             (t.result_files.empty() && !t.callback_data ? "no result files" : "result uploaded"));
  }

  // IexecPoco2Facet.reopen: nobody revealed in time; the winners are rejected.
  static void reopen(Ledger& l, Task& t) {
    int rejected = 0;
    for (Replicate& r : t.replicates) {
      if (r.contribution == ContributionStatus::kContributed && r.result_hash == t.consensus) {
        r.contribution = ContributionStatus::kRejected;
        ++rejected;
      }
    }
    int64_t& group = t.group_weight[t.consensus];
    t.total_weight -= group;
    group = 0;
    t.consensus = Hash32{};
    t.reveal_deadline_us = 0;
    t.winner_count = 0;
    t.status = TaskStatus::kReopened;
    emit(l, LedgerEvent::kReopened, t.taskid, Address{},
         "no winner revealed before the reveal deadline: " + plural(rejected, "worker") +
             " rejected, contributions open again");
  }

  static void mark_lost(Ledger& l, WorkerInfo& w) {
    w.lost = true;
    emit(l, LedgerEvent::kWorkerLost, Hash32{}, w.address);
    for (const Hash32& id : l.order_) {
      Task& t = l.tasks_.at(id);
      if (is_final(t.status)) continue;
      for (Replicate& r : t.replicates) {
        if (r.worker == w.address && is_pending(r)) r.status = ReplicateStatus::kWorkerLost;
      }
    }
  }

  static void open_journal(Ledger& l);
  static void apply_record(Ledger& l, const json& rec);
};

}  // namespace edgeflow::iexec
