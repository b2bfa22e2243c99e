// The disk spool of a node run by a service (`edgeflow edge`, `edgeflow cloud`): one SQLite
// database in WAL mode under the service's data_dir.
//
// Why SQLite and not segment files of our own: one transaction holds a link's outgoing frame,
// the high-water marks of the streams in it and (on the receiving side) the de-duplication
// state, so a power cut leaves all of them consistent; SQLite's WAL checksums its frames and
// drops a torn tail on recovery, which is the crash a solar device has. bench/spool_bench
// measures what that costs against a raw append-and-fsync loop.
//
// Sending side: frames wait here, in order, until every receiver acknowledged them.
// Receiving side: each accepted frame is committed with the de-duplication state in one
// transaction before it is acknowledged, and kept (the inbox) so that a restart after a crash
// replays what the stages after the receiver may not have finished.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;

namespace edgeflow {

// A spool that cannot be opened, read or written: the text names the file and the cause
// (disk full, read-only, damaged) and what to do.
class SpoolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SpoolOptions {
  // PRAGMA synchronous: "full" syncs every commit (survives a power cut), "normal" syncs at
  // WAL checkpoints (survives a crash of the process, may lose the last commits on power
  // loss), "off" leaves it to the kernel.
  std::string sync = "full";
  uint64_t max_bytes = 256ull << 20;  // outgoing frames kept; oldest dropped beyond
  int64_t max_age_s = 7 * 24 * 3600;  // outgoing frames older than this are dropped
  int64_t inbox_keep_s = 600;         // receiving side: accepted frames kept for replay
};

struct SpoolStats {
  uint64_t frames = 0;  // outgoing frames waiting for acknowledgement
  uint64_t bytes = 0;
  int64_t oldest_us = 0;          // wall time of the oldest waiting frame (0: none)
  uint64_t dropped_frames = 0;    // removed by max_bytes / max_age, oldest first
  uint64_t dropped_messages = 0;  // messages in them
  std::string error;              // the last failure to write, "" once a write succeeds
};

class Spool {
 public:
  // Opens or creates `path`. A damaged file is moved aside to `path.damaged-<time>` and a new
  // one started (the loss is logged); a folder that cannot be written throws SpoolError.
  Spool(const std::string& path, SpoolOptions options = {});
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  const std::string& path() const { return path_; }
  const SpoolOptions& options() const { return options_; }

  // --- Sending side, per link (its name, e.g. "minute->out") ---
  struct Outgoing {
    uint64_t session = 0;   // fixed for this spool and link: frames keep their identity
    uint64_t last_seq = 0;  // last frame appended
    uint64_t acked = 0;     // every frame up to here is acknowledged and gone
  };
  Outgoing outgoing(const std::string& link);
  // Appends frame `seq` (must be last_seq + 1) of `messages` messages with, per stream, the
  // highest message seq it holds; one transaction. Enforces max_bytes and max_age. Throws
  // SpoolError (and records it in stats().error) when the disk refuses.
  void append(const std::string& link, uint64_t seq, const std::string& frame, uint32_t messages,
              const std::map<std::string, uint64_t>& stream_marks, int64_t now_us);
  struct Frame {
    uint64_t seq = 0;
    std::string bytes;
  };
  // Frames after `after`, in order, at most `max_frames` and about `max_bytes`.
  std::vector<Frame> read(const std::string& link, uint64_t after, size_t max_frames,
                          size_t max_bytes = 4u << 20);
  // Every frame up to `seq` was acknowledged: removed.
  void acknowledge(const std::string& link, uint64_t seq);
  // Highest message seq per stream ever appended to `link`.
  std::map<std::string, uint64_t> stream_marks(const std::string& link);

  // --- Sources: the last position read, a fallback resume point ---
  void set_position(const std::string& source, uint64_t seq);
  uint64_t position(const std::string& source);

  // --- Receiving side, per link ---
  enum class Verdict { kAccepted, kDuplicate, kOutOfOrder };
  // kAccepted: the frame is the next of (sender, session) (frame 1 for a session not seen
  // before), or carries floor == seq (the sender holds nothing older), and is now committed
  // with the de-duplication state. kDuplicate: delivered before. kOutOfOrder: a frame is
  // missing before it; the sender will send again from there.
  Verdict receive(const std::string& link, const std::string& sender, uint64_t session,
                  uint64_t seq, uint64_t floor, const std::string& frame, int64_t now_us);
  // Highest accepted seq of (sender, session): what to acknowledge.
  uint64_t received(const std::string& link, const std::string& sender, uint64_t session);
  // Accepted frames still kept (after a crash: replayed), in acceptance order.
  std::vector<std::string> inbox(const std::string& link);
  // Drops inbox frames older than inbox_keep_s; `all` after a clean drain.
  void prune_inbox(const std::string& link, int64_t now_us, bool all = false);

  SpoolStats stats();
  // Total outgoing bytes and oldest frame per link (for the status).
  std::map<std::string, SpoolStats> link_stats();

 private:
  void open_db();
  void exec(const char* sql);
  void fail(const std::string& what);  // throws SpoolError with the SQLite cause
  void enforce_limits_locked(int64_t now_us);

  std::string path_;
  SpoolOptions options_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
  std::map<std::string, Outgoing> outgoing_;
  uint64_t dropped_frames_ = 0, dropped_messages_ = 0;
  std::string error_;
  int last_code_ = 0;
  uint64_t total_bytes_ =
      0;  // outgoing frame bytes, all links  // primary SQLite result code of the last failure
};

}  // namespace edgeflow
