// file.write — appends each record to a JSON Lines file, one object per line, for later
// analysis (jq, pandas.read_json(lines=True)) or as a replay source.
//
// Ports: in (record); no data outputs.
// Options: path (required; relative to the pipeline file's folder), append (keep what the file
// holds; default false: start it afresh).
// Each line holds the message's fields, then `ts` (event time, ISO 8601 UTC), `node` (origin)
// and `stream`. A binary body is described by `blob_type` and `blob_bytes`, never written raw.
// Lines are buffered within a turn (a batch of records: a busy stream is written in large
// blocks) and flushed at the end of each turn, so a lone record reaches the file at once,
// `tail -f` follows, and a crash loses little.
//
// Under a service (`edgeflow cloud`, `edgeflow edge`) each flush is a commit: the file is
// synced, then its length and, per (origin, stream), the last event time written and how many
// messages had it are saved beside it. After a crash the file is cut back to the committed
// length, and messages the spool replays that are already in it are skipped: a kill -9
// neither loses nor repeats a line.
//
//   - id: archive
//     op: file.write
//     from: minute
//     with: { path: data/minute.jsonl, append: true }
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "runtime/duration.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;

class FileWrite : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "file.write";
    s.summary = "Writes each record as one JSON object per line (JSON Lines) to a file.";
    s.example =
        "- id: archive\n  op: file.write\n  from: minute\n  with: { path: data/minute.jsonl }";
    s.inputs = {{"in", "record", "records to write"}};
    s.outputs = {};
    s.options = {
        opt_string("path", "file to write; relative to the pipeline file's folder").require(),
        opt_bool("append", "add to the end of an existing file instead of replacing it")
            .def("false"),
    };
    return s;
  }

  explicit FileWrite(const Options& o)
      : path_(o.resolve_path("path")), append_(o.get_bool("append")) {}

  ~FileWrite() override {
    if (file_) std::fclose(file_);
  }

  void open(Context& ctx) override {
    bool resume = false;
    if (StageDurability* d = ctx.durability(); d && !d->state_dir().empty()) {
      state_path_ = d->state_dir() + "/file.write.state";
      resume = load_state();
    }
    file_ = std::fopen(path_.c_str(), append_ || resume ? "a" : "w");
    if (!file_) {
      int err = errno;  // before any allocation below can touch it
      throw OperatorError("cannot open '" + path_ + "' for writing: " + std::strerror(err) +
                          "; check that its folder exists and is writable, or change 'path'");
    }
    std::setvbuf(file_, nullptr, _IOFBF, kBufferBytes);
    if (!state_path_.empty() && !resume) commit(ctx);
  }

  void process(int, MessagePtr m, Context& ctx) override {
    if (!file_) return;  // open() failed and threw: the stage does not run
    if (!state_path_.empty() && already_written(*m)) return;
    // A copy so the line's own keys win over a field of the same name, as in log's JSON.
    line_fields_ = m->fields;
    if (!m->blob.empty()) {
      set_field(line_fields_, "blob_type", m->blob.type);
      // An in-process frame may have no encoded bytes yet: say nothing rather than "0".
      if (m->blob.bytes) set_field(line_fields_, "blob_bytes", m->blob.bytes->size());
    }
    set_field(line_fields_, "ts", format_iso8601(m->event_time_us));
    set_field(line_fields_, "node", m->origin);
    set_field(line_fields_, "stream", m->stream);
    line_.clear();
    append_json(line_, line_fields_);
    line_ += '\n';
    if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
      int err = errno;
      ctx.error(m.get(), "cannot write to '" + path_ + "': " + std::strerror(err));
      std::clearerr(file_);
      return;
    }
    unflushed_ = true;
  }

  // Not once a second: a sink is only called when a record arrives, so a time-based flush
  // would hold a lone record (the last result of a run) until the next one, maybe for ever.
  void turn_end(Context& ctx) override {
    if (file_ && unflushed_) flush(ctx);
  }

  void close(Context& ctx) override {
    if (!file_) return;
    flush(ctx);
    std::FILE* file = file_;
    file_ = nullptr;
    if (std::fclose(file) != 0) {
      int err = errno;
      ctx.error(nullptr, "cannot finish writing '" + path_ + "': " + std::strerror(err));
    }
  }

 private:
  void flush(Context& ctx) {
    unflushed_ = false;
    if (std::fflush(file_) != 0) {
      int err = errno;
      ctx.error(nullptr, "cannot write to '" + path_ + "': " + std::strerror(err));
      std::clearerr(file_);
      return;
    }
    if (!state_path_.empty()) commit(ctx);
  }

  // Per (origin, stream): the last event time in the file and how many messages had it.
  struct Mark {
    int64_t time = INT64_MIN;
    uint64_t count = 0;
  };

  // The messages of a stream rise in event time and a replay repeats them in order, so a
  // message older than the committed mark, or one of the first `count` at the mark itself,
  // is already in the file.
  bool already_written(const Message& m) {
    std::string key = m.origin + "\t" + m.stream;
    auto c = baseline_.find(key);
    Mark& p = pending_[key];
    if (c != baseline_.end()) {
      if (m.event_time_us < c->second.time) return true;
      if (m.event_time_us == c->second.time && ++replayed_at_mark_[key] <= c->second.count)
        return true;
    }
    if (m.event_time_us > p.time) {
      p.time = m.event_time_us;
      p.count = 1;
    } else if (m.event_time_us == p.time) {
      ++p.count;
    }
    return false;
  }

  // Reads the committed state and cuts the file back to it; false when there is none.
  bool load_state() {
    std::ifstream in(state_path_);
    std::string magic, key, path;
    uint64_t length = 0;
    if (!(in >> magic) || magic != "edgeflow-file-write-1") return false;
    in >> key >> std::ws;
    std::getline(in, path);
    if (key != "path" || path != path_) return false;  // another file: start afresh
    in >> key >> length;
    while (in >> key && key == "mark") {
      Mark mk;
      std::string id;
      in >> mk.time >> mk.count >> std::ws;
      std::getline(in, id);
      baseline_[id] = mk;
      pending_[id] = mk;
    }
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(path_, ec);
    if (!ec && size > length) {
      std::filesystem::resize_file(path_, length, ec);
      if (ec)
        throw OperatorError("cannot cut '" + path_ +
                            "' back to its committed length: " + ec.message());
    }
    return true;
  }

  // The file's lines are on disk before the state that counts them.
  void commit(Context& ctx) {
    if (fdatasync(fileno(file_)) != 0) {
      ctx.error(nullptr, "cannot sync '" + path_ + "': " + std::strerror(errno));
      return;
    }
    long length = std::ftell(file_);
    std::ostringstream out;
    out << "edgeflow-file-write-1\npath " << path_ << "\nlength " << length << "\n";
    for (const auto& [id, mk] : pending_)
      out << "mark " << mk.time << " " << mk.count << " " << id << "\n";
    const std::string text = out.str(), tmp = state_path_ + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 &&
              ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              fdatasync(fd) == 0;
    if (fd >= 0) ::close(fd);
    if (!ok || std::rename(tmp.c_str(), state_path_.c_str()) != 0) {
      ctx.error(nullptr,
                "cannot save the commit state '" + state_path_ + "': " + std::strerror(errno));
      return;
    }
  }

  std::string path_;
  bool append_;
  std::FILE* file_ = nullptr;
  bool unflushed_ = false;                // lines written since the last flush
  std::string state_path_;                // under a service: the commit state beside the output
  std::map<std::string, Mark> baseline_;  // committed before this start: what a replay repeats
  std::map<std::string, Mark> pending_;   // what the file holds now
  std::map<std::string, uint64_t> replayed_at_mark_;
  Fields line_fields_;  // reused per message, with the line, to spare allocations
  std::string line_;
};

EF_REGISTER_OPERATOR(FileWrite)

}  // namespace
}  // namespace edgeflow
