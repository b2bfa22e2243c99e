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
//   - id: archive
//     op: file.write
//     from: minute
//     with: { path: data/minute.jsonl, append: true }
#include <cerrno>
#include <cstdio>
#include <cstring>
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

  void open(Context&) override {
    file_ = std::fopen(path_.c_str(), append_ ? "a" : "w");
    if (!file_) {
      int err = errno;  // before any allocation below can touch it
      throw OperatorError("cannot open '" + path_ + "' for writing: " + std::strerror(err) +
                          "; check that its folder exists and is writable, or change 'path'");
    }
    std::setvbuf(file_, nullptr, _IOFBF, kBufferBytes);
  }

  void process(int, MessagePtr m, Context& ctx) override {
    if (!file_) return;  // open() failed and threw: the stage does not run
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
    }
  }

  std::string path_;
  bool append_;
  std::FILE* file_ = nullptr;
  bool unflushed_ = false;  // lines written since the last flush
  Fields line_fields_;      // reused per message, with the line, to spare allocations
  std::string line_;
};

EF_REGISTER_OPERATOR(FileWrite)

}  // namespace
}  // namespace edgeflow
