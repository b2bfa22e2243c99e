// The PoCo ledger's journal (poco.h): opening it (lock, torn last line, header), replaying its
// JSON lines through the ledger's own calls, and the encoding of the requests and bytes it
// holds. Apart from poco.cc so the task lifecycle reads without the persistence around it.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "iexec/poco.h"
#include "iexec/poco_internal.h"

namespace edgeflow::iexec {
namespace detail {

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
          {"requester", enc_str(r.requester)},
          {"price", r.price},
          {"payer", r.payer.hex()}};
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
  r.price = j.value("price", int64_t{0});  // journals from before balances have neither
  if (j.contains("payer")) r.payer = get_address(j, "payer");
  return r;
}

}  // namespace detail

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
  } else if (op == "deposit") {
    l.deposit(get_address(rec, "account"), rec.at("amount").get<int64_t>(), t);
  } else if (op == "contribute") {
    l.replay_stake_ = rec.value("stake", int64_t{0});
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

}  // namespace edgeflow::iexec
