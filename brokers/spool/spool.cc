#include "brokers/spool/spool.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>

#include "runtime/clock.h"
#include "runtime/lazy_library.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

// libsqlite3 is loaded by the first spool: a process without one (validate, a relay, a
// cloud part without links) does not map it.
constinit LazyLibrary sqlite("libsqlite3.so.0", "libsqlite3-0", "the link spool");
EF_LAZY_FUNCTION(sqlite, sqlite3_bind_blob);
EF_LAZY_FUNCTION(sqlite, sqlite3_bind_int64);
EF_LAZY_FUNCTION(sqlite, sqlite3_bind_text);
EF_LAZY_FUNCTION(sqlite, sqlite3_busy_timeout);
EF_LAZY_FUNCTION(sqlite, sqlite3_close);
EF_LAZY_FUNCTION(sqlite, sqlite3_column_blob);
EF_LAZY_FUNCTION(sqlite, sqlite3_column_bytes);
EF_LAZY_FUNCTION(sqlite, sqlite3_column_int64);
EF_LAZY_FUNCTION(sqlite, sqlite3_errcode);
EF_LAZY_FUNCTION(sqlite, sqlite3_errmsg);
EF_LAZY_FUNCTION(sqlite, sqlite3_errstr);
EF_LAZY_FUNCTION(sqlite, sqlite3_exec);
EF_LAZY_FUNCTION(sqlite, sqlite3_extended_errcode);
EF_LAZY_FUNCTION(sqlite, sqlite3_extended_result_codes);
EF_LAZY_FUNCTION(sqlite, sqlite3_finalize);
EF_LAZY_FUNCTION(sqlite, sqlite3_free);
EF_LAZY_FUNCTION(sqlite, sqlite3_open_v2);
EF_LAZY_FUNCTION(sqlite, sqlite3_prepare_v2);
EF_LAZY_FUNCTION(sqlite, sqlite3_step);

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS out_links(link TEXT PRIMARY KEY, session INTEGER NOT NULL,
  last_seq INTEGER NOT NULL, acked INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS out_frames(link TEXT NOT NULL, seq INTEGER NOT NULL,
  at_us INTEGER NOT NULL, messages INTEGER NOT NULL, bytes BLOB NOT NULL,
  PRIMARY KEY(link, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS out_frames_age ON out_frames(at_us);
CREATE TABLE IF NOT EXISTS marks(link TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(link, stream)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS positions(source TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen(link TEXT NOT NULL, sender TEXT NOT NULL, session INTEGER NOT NULL,
  seq INTEGER NOT NULL, at_us INTEGER NOT NULL, PRIMARY KEY(link, sender, session)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox(id INTEGER PRIMARY KEY AUTOINCREMENT, link TEXT NOT NULL,
  at_us INTEGER NOT NULL, bytes BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS inbox_link ON inbox(link, id);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
)sql";

// A prepared statement that finalizes itself; bind() and step() in the obvious ways.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  bool ok() const { return s_ != nullptr; }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, uint64_t v) { return bind(i, static_cast<int64_t>(v)); }
  int step() { return s_ ? sqlite3_step(s_) : SQLITE_ERROR; }
  int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
  std::string text(int c) {
    const void* p = sqlite3_column_blob(s_, c);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(s_, c)) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

}  // namespace

Spool::Spool(const std::string& path, SpoolOptions options)
    : path_(path), options_(std::move(options)) {
  if (options_.sync != "full" && options_.sync != "normal" && options_.sync != "off")
    throw SpoolError("spool sync must be full, normal or off (got '" + options_.sync + "')");
  std::error_code ec;
  std::filesystem::path folder = std::filesystem::path(path_).parent_path();
  if (!folder.empty()) std::filesystem::create_directories(folder, ec);
  if (ec)
    throw SpoolError("cannot create the spool folder '" + folder.string() + "': " + ec.message() +
                     "; check data_dir and its permissions");
  try {
    open_db();
  } catch (const SpoolError& e) {
    // A damaged database (a truncated file, garbage) must not keep the device from running:
    // move it aside for inspection, say what was lost, start afresh.
    if (last_code_ != SQLITE_CORRUPT && last_code_ != SQLITE_NOTADB) throw;
    std::string aside = path_ + ".damaged-" + std::to_string(wall_us() / 1000000);
    logger().error("{}; moved it to {} and started a new spool (its frames are lost)", e.what(),
                   aside);
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
    std::filesystem::rename(path_, aside, ec);
    for (const char* suffix : {"-wal", "-shm"}) {
      std::filesystem::rename(path_ + suffix, aside + suffix, ec);
    }
    open_db();
    error_ = "spool was damaged and restarted; the old one is " + aside;
  }
}

Spool::~Spool() {
  if (db_) sqlite3_close(db_);
}

void Spool::open_db() {
  int rc =
      sqlite3_open_v2(path_.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
    throw SpoolError("cannot open the spool '" + path_ + "': " + why +
                     "; check that data_dir is writable");
  }
  sqlite3_busy_timeout(db_, 5000);
  sqlite3_extended_result_codes(db_, 1);
  exec("PRAGMA journal_mode=WAL");
  // Debian builds SQLite with secure_delete on: every page an acknowledged frame frees would
  // be zeroed and written again (bench/spool_bench: acknowledging 64 KiB frames at 0.04x).
  exec("PRAGMA secure_delete=OFF");
  std::string sync = "PRAGMA synchronous=" + options_.sync;
  exec(sync.c_str());
  // A quick structural check: a truncated or overwritten file fails here, not mid-run.
  {
    Stmt check(db_, "PRAGMA quick_check");
    if (!check.ok() || check.step() != SQLITE_ROW || check.text(0) != "ok") {
      if ((sqlite3_errcode(db_) & 0xff) == SQLITE_READONLY) fail("cannot read the spool");
      last_code_ = SQLITE_CORRUPT;
      throw SpoolError("spool " + path_ + ": the file is damaged (" +
                       (check.ok() ? check.text(0) : std::string(sqlite3_errmsg(db_))) + ")");
    }
  }
  exec(kSchema);
  {
    Stmt total(db_, "SELECT coalesce(sum(length(bytes)), 0) FROM out_frames");
    if (total.step() == SQLITE_ROW) total_bytes_ = total.i64(0);
  }
  Stmt c(db_, "SELECT name, value FROM counters");
  while (c.step() == SQLITE_ROW) {
    if (c.text(0) == "dropped_frames") dropped_frames_ = c.i64(1);
    if (c.text(0) == "dropped_messages") dropped_messages_ = c.i64(1);
  }
}

void Spool::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string why = msg ? msg : "unknown error";
    sqlite3_free(msg);
    fail(why);
  }
}

void Spool::fail(const std::string& what) {
  int code = db_ ? sqlite3_extended_errcode(db_) : SQLITE_ERROR;
  std::string why = what;
  int primary = code & 0xff;
  last_code_ = primary;
  if (primary == SQLITE_FULL) {
    why += " (the disk is full: free space under " +
           std::filesystem::path(path_).parent_path().string() + " or lower spool.max_bytes)";
  } else if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM) {
    why +=
        " (the spool cannot be written: is the file system read-only, or data_dir owned by "
        "another user?)";
  } else if (primary == SQLITE_IOERR) {
    why += " (an I/O error: check the SD card / disk)";
  }
  throw SpoolError("spool " + path_ + ": " + why);
}

Spool::Outgoing Spool::outgoing(const std::string& link) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = outgoing_.find(link);
  if (it != outgoing_.end()) return it->second;
  Outgoing o;
  Stmt q(db_, "SELECT session, last_seq, acked FROM out_links WHERE link=?");
  q.bind(1, link);
  if (q.step() == SQLITE_ROW) {
    o.session = q.i64(0);
    o.last_seq = q.i64(1);
    o.acked = q.i64(2);
  } else {
    std::random_device rd;
    o.session = ((static_cast<uint64_t>(rd()) << 31) ^ rd()) & 0x7fffffffffffffffull;
    if (o.session == 0) o.session = 1;
    Stmt ins(db_, "INSERT INTO out_links(link, session, last_seq, acked) VALUES(?,?,0,0)");
    ins.bind(1, link).bind(2, o.session);
    if (ins.step() != SQLITE_DONE) fail("cannot record link " + link);
  }
  outgoing_[link] = o;
  return o;
}

void Spool::append(const std::string& link, uint64_t seq, const std::string& frame,
                   uint32_t messages, const std::map<std::string, uint64_t>& stream_marks,
                   int64_t now_us) {
  outgoing(link);
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t before = total_bytes_;
  try {
    exec("BEGIN IMMEDIATE");
    {
      Stmt ins(db_, "INSERT INTO out_frames(link, seq, at_us, messages, bytes) VALUES(?,?,?,?,?)");
      ins.bind(1, link).bind(2, seq).bind(3, now_us).bind(4, static_cast<int64_t>(messages));
      ins.blob(5, frame);
      if (ins.step() != SQLITE_DONE) fail("cannot append a frame of link " + link);
      total_bytes_ += frame.size();
      Stmt upd(db_, "UPDATE out_links SET last_seq=? WHERE link=?");
      upd.bind(1, seq).bind(2, link);
      if (upd.step() != SQLITE_DONE) fail("cannot append a frame of link " + link);
      for (const auto& [stream, mark] : stream_marks) {
        Stmt m(db_,
               "INSERT INTO marks(link, stream, seq) VALUES(?,?,?) ON CONFLICT(link, stream) "
               "DO UPDATE SET seq=max(seq, excluded.seq)");
        m.bind(1, link).bind(2, stream).bind(3, mark);
        if (m.step() != SQLITE_DONE) fail("cannot append a frame of link " + link);
      }
      enforce_limits_locked(now_us);
    }
    exec("COMMIT");
  } catch (const SpoolError& e) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    total_bytes_ = before;
    error_ = e.what();
    throw;
  }
  outgoing_[link].last_seq = seq;
  error_.clear();
}

void Spool::enforce_limits_locked(int64_t now_us) {
  // A running total: a sum over the table on every append made appends slow down as frames
  // waited (bench/spool_bench, tail/head 0.3 at 2000 frames).
  uint64_t& total = total_bytes_;
  const int64_t too_old = now_us - options_.max_age_s * 1000000;
  uint64_t frames = 0, messages = 0;
  while (true) {
    Stmt oldest(db_,
                "SELECT link, seq, at_us, messages, length(bytes) FROM out_frames "
                "ORDER BY at_us, seq LIMIT 1");
    if (oldest.step() != SQLITE_ROW) break;
    if (total <= options_.max_bytes && oldest.i64(2) >= too_old) break;
    // Keep the frame just appended even when it alone passes max_bytes.
    Stmt count(db_, "SELECT count(*) FROM out_frames");
    if (count.step() == SQLITE_ROW && count.i64(0) <= 1) break;
    std::string link = oldest.text(0);
    int64_t seq = oldest.i64(1);
    Stmt del(db_, "DELETE FROM out_frames WHERE link=? AND seq=?");
    del.bind(1, link).bind(2, seq);
    if (del.step() != SQLITE_DONE) fail("cannot drop the oldest frame");
    total -= std::min<uint64_t>(total, oldest.i64(4));
    ++frames;
    messages += oldest.i64(3);
  }
  if (frames == 0) return;
  dropped_frames_ += frames;
  dropped_messages_ += messages;
  Stmt c(db_,
         "INSERT INTO counters(name, value) VALUES('dropped_frames', ?), ('dropped_messages', ?) "
         "ON CONFLICT(name) DO UPDATE SET value=CASE name WHEN 'dropped_frames' THEN ?1 ELSE ?2 "
         "END");
  c.bind(1, dropped_frames_).bind(2, dropped_messages_);
  if (c.step() != SQLITE_DONE) fail("cannot count dropped frames");
  // Once when it starts, then every thousand: a full spool drops on every append.
  if (dropped_frames_ - frames != 0 && dropped_frames_ / 1000 == (dropped_frames_ - frames) / 1000)
    return;
  logger().warn(
      "spool {}: full ({} bytes max, {} s max age): dropped the {} oldest frames ({} "
      "messages; {} so far)",
      path_, options_.max_bytes, options_.max_age_s, frames, messages, dropped_messages_);
}

std::vector<Spool::Frame> Spool::read(const std::string& link, uint64_t after, size_t max_frames,
                                      size_t max_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Frame> out;
  Stmt q(db_, "SELECT seq, bytes FROM out_frames WHERE link=? AND seq>? ORDER BY seq LIMIT ?");
  q.bind(1, link).bind(2, after).bind(3, static_cast<int64_t>(max_frames));
  size_t bytes = 0;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    Frame f;
    f.seq = q.i64(0);
    f.bytes = q.text(1);
    bytes += f.bytes.size();
    out.push_back(std::move(f));
    if (bytes >= max_bytes) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail("cannot read link " + link);
  return out;
}

void Spool::acknowledge(const std::string& link, uint64_t seq) {
  outgoing(link);
  std::lock_guard<std::mutex> lock(mu_);
  Outgoing& o = outgoing_[link];
  if (seq <= o.acked) return;
  try {
    exec("BEGIN IMMEDIATE");
    uint64_t freed = 0;
    {
      Stmt sum(db_,
               "SELECT coalesce(sum(length(bytes)), 0) FROM out_frames WHERE link=? AND seq<=?");
      sum.bind(1, link).bind(2, seq);
      if (sum.step() == SQLITE_ROW) freed = sum.i64(0);
    }
    Stmt del(db_, "DELETE FROM out_frames WHERE link=? AND seq<=?");
    del.bind(1, link).bind(2, seq);
    if (del.step() != SQLITE_DONE) fail("cannot remove acknowledged frames");
    Stmt upd(db_, "UPDATE out_links SET acked=? WHERE link=?");
    upd.bind(1, seq).bind(2, link);
    if (upd.step() != SQLITE_DONE) fail("cannot remove acknowledged frames");
    exec("COMMIT");
    total_bytes_ -= std::min(total_bytes_, freed);
  } catch (const SpoolError& e) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    error_ = e.what();
    throw;
  }
  o.acked = seq;
}

std::map<std::string, uint64_t> Spool::stream_marks(const std::string& link) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, uint64_t> out;
  Stmt q(db_, "SELECT stream, seq FROM marks WHERE link=?");
  q.bind(1, link);
  while (q.step() == SQLITE_ROW) out[q.text(0)] = q.i64(1);
  return out;
}

void Spool::set_position(const std::string& source, uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt q(db_,
         "INSERT INTO positions(source, seq) VALUES(?,?) ON CONFLICT(source) DO UPDATE SET "
         "seq=excluded.seq");
  q.bind(1, source).bind(2, seq);
  if (q.step() != SQLITE_DONE) {
    error_ =
        "spool " + path_ + ": cannot record the position of " + source + ": " + sqlite3_errmsg(db_);
  }
}

uint64_t Spool::position(const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt q(db_, "SELECT seq FROM positions WHERE source=?");
  q.bind(1, source);
  return q.step() == SQLITE_ROW ? q.i64(0) : 0;
}

Spool::Verdict Spool::receive(const std::string& link, const std::string& sender, uint64_t session,
                              uint64_t seq, uint64_t floor, const std::string& frame,
                              int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  try {
    exec("BEGIN IMMEDIATE");
    Stmt q(db_, "SELECT seq FROM seen WHERE link=? AND sender=? AND session=?");
    q.bind(1, link).bind(2, sender).bind(3, session);
    // A session never seen starts at frame 1 like any other: its first frames may have been
    // published before this receiver subscribed, and accepting a later one (acknowledging
    // everything before it) would lose them. A frame that carries its own sequence as the
    // floor (the first of a sender's round) says the frames before it are gone or confirmed.
    int64_t last = 0;
    if (q.step() == SQLITE_ROW) last = q.i64(0);
    Verdict v = Verdict::kAccepted;
    if (static_cast<int64_t>(seq) <= last) v = Verdict::kDuplicate;
    if (static_cast<int64_t>(seq) > last + 1 && floor != seq) v = Verdict::kOutOfOrder;
    if (v != Verdict::kAccepted) {
      exec("ROLLBACK");
      return v;
    }
    Stmt up(db_,
            "INSERT INTO seen(link, sender, session, seq, at_us) VALUES(?,?,?,?,?) "
            "ON CONFLICT(link, sender, session) DO UPDATE SET seq=excluded.seq, "
            "at_us=excluded.at_us");
    up.bind(1, link).bind(2, sender).bind(3, session).bind(4, seq).bind(5, now_us);
    if (up.step() != SQLITE_DONE) fail("cannot record a received frame of link " + link);
    Stmt in(db_, "INSERT INTO inbox(link, at_us, bytes) VALUES(?,?,?)");
    in.bind(1, link).bind(2, now_us).blob(3, frame);
    if (in.step() != SQLITE_DONE) fail("cannot keep a received frame of link " + link);
    // Old sessions of a sender (earlier spools) are forgotten after a week.
    Stmt old(db_, "DELETE FROM seen WHERE link=? AND sender=? AND session<>? AND at_us<?");
    old.bind(1, link)
        .bind(2, sender)
        .bind(3, session)
        .bind(4, static_cast<int64_t>(now_us - 7 * 86400 * 1000000ll));
    old.step();
    exec("COMMIT");
    error_.clear();
    return v;
  } catch (const SpoolError& e) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    error_ = e.what();
    throw;
  }
}

uint64_t Spool::received(const std::string& link, const std::string& sender, uint64_t session) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt q(db_, "SELECT seq FROM seen WHERE link=? AND sender=? AND session=?");
  q.bind(1, link).bind(2, sender).bind(3, session);
  return q.step() == SQLITE_ROW ? q.i64(0) : 0;
}

std::vector<std::string> Spool::inbox(const std::string& link) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  Stmt q(db_, "SELECT bytes FROM inbox WHERE link=? ORDER BY id");
  q.bind(1, link);
  while (q.step() == SQLITE_ROW) out.push_back(q.text(0));
  return out;
}

void Spool::prune_inbox(const std::string& link, int64_t now_us, bool all) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt q(db_, "DELETE FROM inbox WHERE link=? AND at_us<?");
  q.bind(1, link).bind(2, all ? INT64_MAX : now_us - options_.inbox_keep_s * 1000000);
  q.step();
}

SpoolStats Spool::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  SpoolStats s;
  Stmt q(db_,
         "SELECT count(*), coalesce(sum(length(bytes)),0), coalesce(min(at_us),0) "
         "FROM out_frames");
  if (q.step() == SQLITE_ROW) {
    s.frames = q.i64(0);
    s.bytes = q.i64(1);
    s.oldest_us = q.i64(2);
  }
  s.dropped_frames = dropped_frames_;
  s.dropped_messages = dropped_messages_;
  s.error = error_;
  return s;
}

std::map<std::string, SpoolStats> Spool::link_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, SpoolStats> out;
  Stmt q(db_,
         "SELECT link, count(*), coalesce(sum(length(bytes)),0), coalesce(min(at_us),0) "
         "FROM out_frames GROUP BY link");
  while (q.step() == SQLITE_ROW) {
    SpoolStats& s = out[q.text(0)];
    s.frames = q.i64(1);
    s.bytes = q.i64(2);
    s.oldest_us = q.i64(3);
  }
  return out;
}

}  // namespace edgeflow
