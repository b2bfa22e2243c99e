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
#include "iexec/poco.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "iexec/wide_math.h"

namespace edgeflow::iexec {

using nlohmann::json;

namespace {

bool is_active(TaskStatus s) {  // the contract's ACTIVE: contributions open
  return s == TaskStatus::kInitialized || s == TaskStatus::kRunning || s == TaskStatus::kReopened;
}

bool is_revealing(TaskStatus s) {  // the contract's REVEALING
  return s == TaskStatus::kConsensusReached || s == TaskStatus::kAtLeastOneRevealed ||
         s == TaskStatus::kResultUploaded;
}

bool is_terminal(ReplicateStatus s) {
  return s == ReplicateStatus::kAborted || s == ReplicateStatus::kFailed ||
         s == ReplicateStatus::kWorkerLost;
}

// Still computing: nothing contributed and neither ended nor lost. Holds a slot of its worker.
bool is_pending(const Replicate& r) {
  return r.contribution == ContributionStatus::kUnset && !is_terminal(r.status) &&
         r.status != ReplicateStatus::kCompleted;
}

bool is_contribution_live(const Replicate& r) {  // counts in the weights (not rejected)
  return r.contribution == ContributionStatus::kContributed ||
         r.contribution == ContributionStatus::kProved;
}

// The contract's consensus test, in 128 bits: weights are int64 and trust uint32.
bool consensus_holds(int64_t group, int64_t total, uint32_t trust) {
  return mul_u64(uint64_t(group), trust) > mul_u64(uint64_t(total), trust - 1);
}

// ---- base64, for the bytes journaled (inputs, result files, callback data) ----
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v =
        uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    for (int k = 3; k >= 0; --k) out += kB64[(v >> (6 * k)) & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += rest == 2 ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string b64_decode(const std::string& in) {
  if (in.size() % 4 != 0) throw std::runtime_error("bad base64 (length)");
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = in[i + k];
      uint32_t d;
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
        d = 0;
      } else if (pad) {
        throw std::runtime_error("bad base64 (padding)");
      } else if (const char* p = std::strchr(kB64, c); p && c) {
        d = uint32_t(p - kB64);
      } else {
        throw std::runtime_error("bad base64 (character)");
      }
      v = v << 6 | d;
    }
    out += char(v >> 16);
    if (pad < 2) out += char((v >> 8) & 0xff);
    if (pad < 1) out += char(v & 0xff);
  }
  return out;
}

// Text fields (app names, args, causes) are usually UTF-8 and stay readable in the journal;
// anything else is stored as {"b64": ..} so the journal replays the exact bytes.
json enc_str(const std::string& s) {
  try {
    (void)json(s).dump();
    return s;
  } catch (const json::exception&) {
    return json{{"b64", b64_encode(s)}};
  }
}

std::string dec_str(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  return b64_decode(j.at("b64").get<std::string>());
}

Hash32 get_hash(const json& j, const char* field) {
  auto h = crypto::parse_hash32(j.at(field).get<std::string>());
  if (!h) throw std::runtime_error(std::string("bad 32-byte hex in \"") + field + "\"");
  return *h;
}

Address get_address(const json& j, const char* field) {
  auto a = crypto::parse_address(j.at(field).get<std::string>());
  if (!a) throw std::runtime_error(std::string("bad address in \"") + field + "\"");
  return *a;
}

json files_to_json(const std::vector<std::pair<std::string, std::string>>& files) {
  json out = json::array();
  for (const auto& [name, bytes] : files) {
    out.push_back({{"name", enc_str(name)}, {"b64", b64_encode(bytes)}});
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> files_from_json(const json& j) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const json& f : j) {
    out.emplace_back(dec_str(f.at("name")), b64_decode(f.at("b64").get<std::string>()));
  }
  return out;
}

json request_to_json(const TaskRequest& r) {
  json args = json::array();
  for (const std::string& a : r.args) args.push_back(enc_str(a));
  json inputs = json::array();
  for (const TaskInput& in : r.inputs) {
    inputs.push_back({{"name", enc_str(in.name)}, {"b64", b64_encode(in.bytes)}});
  }
  return {{"id", r.request_id.hex()},
          {"app", enc_str(r.app)},
          {"sha256", r.app_sha256.hex()},
          {"args", args},
          {"inputs", inputs},
          {"trust", r.trust},
          {"time_ref_us", r.time_ref_us},
          {"requester", enc_str(r.requester)}};
}

TaskRequest request_from_json(const json& j) {
  TaskRequest r;
  r.request_id = get_hash(j, "id");
  r.app = dec_str(j.at("app"));
  r.app_sha256 = get_hash(j, "sha256");
  for (const json& a : j.at("args")) r.args.push_back(dec_str(a));
  for (const json& in : j.at("inputs")) {
    r.inputs.push_back({dec_str(in.at("name")), b64_decode(in.at("b64").get<std::string>())});
  }
  r.trust = j.at("trust").get<uint32_t>();
  r.time_ref_us = j.at("time_ref_us").get<int64_t>();
  r.requester = dec_str(j.at("requester"));
  return r;
}

bool runs_app(const WorkerInfo& w, const TaskRequest& r) {
  for (const auto& [name, sha] : w.apps) {
    if (name == r.app && sha == r.app_sha256) return true;
  }
  return false;
}

std::string plural(int64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

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
    emit(l, LedgerEvent::kFailed, t.taskid, Address{}, t.cause);
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

// ---------------------------------------------------------------------------------------------
// Journal open and replay.

Ledger::Ledger(const Address& scheduler, LedgerOptions options)
    : scheduler_(scheduler), options_(std::move(options)) {
  if (options_.journal_path.empty()) return;
  try {
    Impl::open_journal(*this);
  } catch (...) {
    if (journal_fd_ >= 0) ::close(journal_fd_);
    journal_fd_ = -1;
    throw;
  }
}

Ledger::~Ledger() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
}

void Ledger::Impl::open_journal(Ledger& l) {
  const std::string& path = l.options_.journal_path;
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    std::string folder = std::filesystem::path(path).parent_path().string();
    if (folder.empty()) folder = ".";
    if (err == ENOENT) {
      throw LedgerError("cannot open the ledger journal " + path + ": its folder " + folder +
                        " does not exist; create it (mkdir -p " + folder +
                        ") or choose another journal path");
    }
    throw LedgerError(
        "cannot open the ledger journal " + path + ": " + std::strerror(err) +
        (err == EACCES ? "; give the scheduler's user write access to " + folder : std::string()));
  }
  l.journal_fd_ = fd;
  // Two schedulers appending to one journal would interleave their histories.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    throw LedgerError("ledger journal " + path +
                      " is in use by another process (locked); stop the other scheduler or "
                      "choose another journal path");
  }

  std::string data;
  char buf[1 << 16];
  for (off_t off = 0;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw LedgerError("cannot read the ledger journal " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    data.append(buf, size_t(n));
    off += n;
  }

  struct Line {
    size_t begin, end;
    bool newline;
  };
  std::vector<Line> lines;
  for (size_t pos = 0; pos < data.size();) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) {
      lines.push_back({pos, data.size(), false});
      break;
    }
    lines.push_back({pos, nl, true});
    pos = nl + 1;
  }
  auto text = [&](const Line& ln) {
    return std::string_view(data).substr(ln.begin, ln.end - ln.begin);
  };

  // A crash while writing leaves the last line without its newline or cut mid-JSON: drop it.
  if (!lines.empty()) {
    const Line& last = lines.back();
    bool torn = !last.newline || json::parse(text(last), nullptr, false).is_discarded();
    if (torn) {
      if (::ftruncate(fd, off_t(last.begin)) != 0) {
        throw LedgerError("cannot truncate the torn last record of the ledger journal " + path +
                          ": " + std::strerror(errno));
      }
      l.recovered_warning_ = "dropped a torn last record at line " + std::to_string(lines.size()) +
                             " of " + path +
                             " (a crash while writing); everything before it was kept";
      lines.pop_back();
    }
  }

  if (lines.empty()) {
    journal(l, {{"journal", "edgeflow-poco"}, {"version", 1}, {"scheduler", l.scheduler_.hex()}});
    return;
  }

  auto where = [&](size_t i) { return path + ":" + std::to_string(i + 1); };
  json header = json::parse(text(lines[0]), nullptr, false);
  auto field = [&](const char* key) {
    auto it = header.find(key);
    return it != header.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (header.is_discarded() || !header.is_object() || field("journal") != "edgeflow-poco") {
    throw LedgerError(where(0) +
                      ": not an edgeflow PoCo ledger journal (no header line); "
                      "choose another journal path or move this file away");
  }
  if (header.find("version") == header.end() || header["version"] != 1) {
    throw LedgerError(where(0) + ": journal version " + header.value("version", json()).dump() +
                      " is not supported by this scheduler (version 1)");
  }
  std::string owner = field("scheduler");
  auto owner_addr = crypto::parse_address(owner);
  if (!owner_addr || *owner_addr != l.scheduler_) {
    throw LedgerError("journal " + path + " belongs to scheduler " + owner +
                      ", this scheduler is " + l.scheduler_.hex() +
                      "; use its key or another journal path");
  }

  l.replaying_ = true;
  int64_t last_t = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].begin == lines[i].end) continue;  // a blank line holds nothing
    json rec = json::parse(text(lines[i]), nullptr, false);
    if (rec.is_discarded() || !rec.is_object()) {
      l.replaying_ = false;
      throw LedgerError(where(i) +
                        ": unparsable journal record (not the last line, so not a "
                        "torn write: the file was damaged); restore it from a backup, or cut "
                        "the file at this line to keep the history before it");
    }
    try {
      apply_record(l, rec);
      last_t = std::max(last_t, rec.at("t").get<int64_t>());
    } catch (const std::exception& e) {
      l.replaying_ = false;
      throw LedgerError(where(i) + ": cannot replay journal record: " + e.what() +
                        " (was it written by another version, or with other LedgerOptions?)");
    }
  }
  l.replaying_ = false;
  l.events_.clear();  // history, not news: resume_events() says what to redo
  // Heartbeats are not journaled: a worker that was not lost counts as seen when the journal
  // was last written, so it has lost_after_us from then to show up again.
  for (auto& [addr, w] : l.workers_) {
    if (!w.lost) w.last_seen_us = std::max(w.last_seen_us, last_t);
  }
}

void Ledger::Impl::apply_record(Ledger& l, const json& rec) {
  const std::string op = rec.at("op").get<std::string>();
  const int64_t t = rec.at("t").get<int64_t>();
  auto refused = [&](const std::string& why) {
    if (!why.empty()) throw std::runtime_error(op + " refused on replay: " + why);
  };
  auto find_task = [&]() -> Task& {
    auto it = l.tasks_.find(get_hash(rec, "task"));
    if (it == l.tasks_.end()) throw std::runtime_error("unknown task " + rec.at("task").dump());
    return it->second;
  };
  auto find_worker = [&]() -> WorkerInfo& {
    auto it = l.workers_.find(get_address(rec, "worker"));
    if (it == l.workers_.end()) {
      throw std::runtime_error("unknown worker " + rec.at("worker").dump());
    }
    return it->second;
  };

  if (op == "submit") {
    bool created = false;
    l.submit(request_from_json(rec.at("request")), t, &created);
    if (!created) throw std::runtime_error("the request was submitted twice");
  } else if (op == "register") {
    std::vector<std::pair<std::string, Hash32>> apps;
    for (const json& a : rec.at("apps")) {
      auto sha = crypto::parse_hash32(a.at(1).get<std::string>());
      if (!sha) throw std::runtime_error("bad app sha256");
      apps.emplace_back(dec_str(a.at(0)), *sha);
    }
    l.register_worker(get_address(rec, "worker"), rec.at("slots").get<int>(), std::move(apps), t);
  } else if (op == "assign") {
    Task& task = find_task();
    WorkerInfo& w = find_worker();
    if (task.replicate(w.address)) throw std::runtime_error("the worker already holds a replicate");
    hand_out(l, task, w.address, t);
  } else if (op == "contribute") {
    refused(l.contribute(get_address(rec, "worker"), get_hash(rec, "task"), get_hash(rec, "hash"),
                         get_hash(rec, "seal"), t));
  } else if (op == "reveal") {
    refused(
        l.reveal(get_address(rec, "worker"), get_hash(rec, "task"), get_hash(rec, "digest"), t));
  } else if (op == "upload") {
    std::optional<std::string> callback;
    if (!rec.at("callback").is_null()) callback = b64_decode(rec.at("callback").get<std::string>());
    refused(l.upload(get_address(rec, "worker"), get_hash(rec, "task"),
                     files_from_json(rec.at("files")), rec.at("folder").get<bool>(),
                     std::move(callback), t));
  } else if (op == "status") {
    auto status = parse_replicate_status(rec.at("status").get<std::string>());
    if (!status) throw std::runtime_error("unknown replicate status " + rec.at("status").dump());
    refused(l.replicate_status(get_address(rec, "worker"), get_hash(rec, "task"), *status,
                               dec_str(rec.at("cause")), t));
  } else if (op == "tick") {
    l.tick(t);
  } else if (op == "lost") {
    mark_lost(l, find_worker());
  } else if (op == "revive") {
    WorkerInfo& w = find_worker();
    w.lost = false;
    w.last_seen_us = std::max(w.last_seen_us, t);
  } else if (op == "completed") {
    Task& task = find_task();
    if (task.status != TaskStatus::kFinalized) throw std::runtime_error("task not FINALIZED");
    l.mark_completed(task.taskid, t);
  } else {
    throw std::runtime_error("unknown op \"" + op + "\"");
  }
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
        if (!runs_app(w, t.request) || t.replicate(addr)) continue;
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
  Impl::journal(*this, {{"op", "contribute"},
                        {"worker", worker.hex()},
                        {"task", taskid.hex()},
                        {"hash", result_hash.hex()},
                        {"seal", result_seal.hex()},
                        {"t", now}});
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
