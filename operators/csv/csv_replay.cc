// csv.replay — replays a CSV file of readings as a source: one reading per row, stamped with
// the event time read from one of its columns, as fast as possible or paced like the original.
//
// Ports: none -> out (reading: each column but the time column becomes a field named after it;
// numbers as doubles, text_columns as strings; an empty or "nan" cell leaves its field out).
// Options: path (required; relative to the pipeline file's folder), time_column (required),
// time_format (strptime format read as UTC, or unix / unix_ms), speed (0: as fast as possible;
// 1: real time; 60: one minute of event time per wall second), delimiter, text_columns.
// The first line is the header. A bad row (wrong number of cells, a time that does not match,
// text in a number column, a time earlier than the row before: event time must rise) goes to
// the error output with its file and line, and replay goes on.
// Each reading's seq is its line number, so it is the same on every replay: under a service
// (`edgeflow edge`) the source resumes after the last line the disk spool holds.
//
//   - id: sensors
//     op: csv.replay
//     on: edge
//     with: { path: data/sf-temps.csv, time_column: date, time_format: "%Y/%m/%d %H:%M:%S",
//             speed: 3600 }
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "operators/csv/csv_reader.h"
#include "runtime/diagnostics.h"
#include "runtime/duration.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

// Bounded work per generate() call, counting bad rows too, so that a source never holds its
// thread for long.
constexpr int kRowsPerCall = 256;

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

class CsvReplay : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "csv.replay";
    s.summary = "Replays the rows of a CSV file as readings, at their event times.";
    s.example =
        "- id: sensors\n  op: csv.replay\n"
        "  with: { path: data/sf-temps.csv, time_column: date, "
        "time_format: \"%Y/%m/%d %H:%M:%S\", speed: 3600 }";
    s.inputs = {};
    s.outputs = {{"out", "reading", "one reading per row, fields named after the columns"}};
    s.options = {
        opt_string("path", "CSV file; relative to the pipeline file's folder").require(),
        opt_string("time_column", "column holding each row's event time").require(),
        opt_string("time_format",
                   "strptime format of the time column, read as UTC; or unix, unix_ms")
            .def("'%Y-%m-%dT%H:%M:%S'"),
        opt_double("speed", "0: as fast as possible; 1: real time; 60: a minute per second")
            .def("0")
            .at_least(0),
        opt_string("delimiter", "one character between cells").def("','"),
        opt_list("text_columns", "columns kept as text rather than numbers").def("[]"),
    };
    return s;
  }

  explicit CsvReplay(const Options& o)
      : path_(o.resolve_path("path")),
        time_column_(o.get_string("time_column")),
        time_format_(o.get_string("time_format")),
        speed_(o.get_double("speed")),
        text_columns_(o.get_list("text_columns")) {
    if (!time_format_.valid()) {
      throw OptionError("time_format",
                        "'" + time_format_.text() + "' is neither unix, unix_ms nor a time format",
                        "write strptime fields, e.g. \"%Y-%m-%d %H:%M:%S\" (quoted: YAML reads "
                        "a leading % as a directive)");
    }
    const std::string& delimiter = o.get_string("delimiter");
    if (delimiter.size() != 1 || delimiter[0] == '"' || delimiter[0] == '\n') {
      throw OptionError("delimiter",
                        "must be one character other than '\"' (got '" + delimiter + "')",
                        "for a tab, write delimiter: \"\\t\"");
    }
    delimiter_ = delimiter[0];
  }

  void open(Context& ctx) override {
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec)) {
      errno = EISDIR;  // an ifstream opens a folder and only fails on reading
      fail_to_open();
    }
    file_.open(path_);
    if (!file_) fail_to_open();
    reader_ = std::make_unique<CsvReader>(file_, delimiter_);
    CsvRow header;
    if (!reader_->next(header)) {
      throw OperatorError("'" + path_ +
                          "' is empty; its first line must be the header (the column names)");
    }
    if (!header.problem.empty())
      throw OperatorError(where(header.line) + "header: " + header.problem);
    read_header(header);
    if (StageDurability* d = ctx.durability()) resume_after_ = d->resume_after();
  }

  SourceStep generate(Context& ctx) override {
    for (int rows = 0; rows < kRowsPerCall; ++rows) {
      if (!pending_ && !read_row(ctx)) {
        if (at_end_) {
          note_emitted(ctx);
          return SourceStep::done();
        }
        continue;  // a bad row, reported
      }
      if (pending_->line <= resume_after_) {  // delivered before a restart
        pending_.reset();
        continue;
      }
      if (speed_ > 0) {
        if (!paced_) {
          paced_ = true;
          first_event_us_ = pending_->event_time_us;
          wall_start_us_ = ctx.now_us();
        }
        int64_t due = replay_due_us(
            wall_start_us_, static_cast<double>(pending_->event_time_us - first_event_us_), speed_);
        if (due > ctx.now_us()) {
          note_emitted(ctx);
          return SourceStep::wait_until(due);
        }
      }
      std::shared_ptr<Message> m = ctx.make_message(pending_->event_time_us);
      m->seq = pending_->line;
      m->fields = std::move(pending_->fields);
      pending_.reset();
      last_emitted_ = m->seq;
      ctx.emit(std::move(m));
    }
    note_emitted(ctx);
    return SourceStep::emitted();
  }

 private:
  enum class Column { kTime, kNumber, kText };
  struct Row {
    int64_t event_time_us = 0;
    uint64_t line = 0;
    Fields fields;
  };

  void note_emitted(Context& ctx) {
    if (last_emitted_ == noted_) return;
    noted_ = last_emitted_;
    if (StageDurability* d = ctx.durability()) d->emitted(last_emitted_);
  }

  [[noreturn]] void fail_to_open() {
    int err = errno;  // before any allocation below can touch it
    throw OperatorError("cannot open '" + path_ + "': " + std::strerror(err) +
                        "; check 'path' (a relative path starts at the pipeline file's folder)");
  }

  std::string where(int line) const { return path_ + ":" + std::to_string(line) + ": "; }

  void read_header(const CsvRow& header) {
    names_ = header.cells;
    std::set<std::string> seen;
    for (const std::string& name : names_) {
      if (!seen.insert(name).second)
        throw OperatorError(where(header.line) + "column '" + name + "' appears twice");
    }
    auto require = [&](const std::string& column, const std::string& option) {
      if (seen.count(column)) return;
      std::string hint = nearest_name(column, names_);
      throw OperatorError("'" + path_ + "' has no column '" + column + "' (" + option +
                          "); its columns: " + join(names_) +
                          (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
    };
    require(time_column_, "time_column");
    for (const std::string& c : text_columns_) require(c, "text_columns");
    for (const std::string& name : names_) {
      bool text =
          std::find(text_columns_.begin(), text_columns_.end(), name) != text_columns_.end();
      columns_.push_back(name == time_column_ ? Column::kTime
                         : text               ? Column::kText
                                              : Column::kNumber);
    }
  }

  // Reads lines until a good row (into pending_: true), a bad one (reported: false) or the
  // end (at_end_: false).
  bool read_row(Context& ctx) {
    if (!reader_->next(row_)) {
      at_end_ = true;
      if (file_.bad())
        ctx.error(nullptr, path_ + ": read error after line " + std::to_string(row_.line));
      return false;
    }
    auto bad = [&](const std::string& what) {
      ctx.error(nullptr, where(row_.line) + what);
      return false;
    };
    if (!row_.problem.empty()) return bad(row_.problem);
    if (row_.cells.size() != names_.size()) {
      return bad(std::to_string(row_.cells.size()) + " cells where the header has " +
                 std::to_string(names_.size()) + " columns (" + join(names_) + ")");
    }
    Row row;
    row.fields.reserve(names_.size() - 1);
    for (size_t i = 0; i < names_.size(); ++i) {
      const std::string& cell = row_.cells[i];
      switch (columns_[i]) {
        case Column::kTime: {
          std::optional<int64_t> t = time_format_.parse_us(cell);
          if (!t) {
            return bad("column '" + names_[i] + "': '" + cell + "' does not match time_format '" +
                       time_format_.text() + "'");
          }
          if (has_last_ && *t < last_event_us_) {
            return bad("column '" + names_[i] + "': " + cell +
                       " is earlier than the row before; rows must be in time order");
          }
          row.event_time_us = *t;
          break;
        }
        case Column::kText:
          if (!cell.empty()) row.fields.push_back({names_[i], cell});
          break;
        case Column::kNumber: {
          if (cell.empty()) break;
          std::optional<double> v = parse_csv_number(cell);
          if (!v) {
            return bad("column '" + names_[i] + "': '" + cell +
                       "' is not a number (list the column in text_columns to keep text)");
          }
          if (!std::isnan(*v)) row.fields.push_back({names_[i], *v});
          break;
        }
      }
    }
    has_last_ = true;
    last_event_us_ = row.event_time_us;
    row.line = static_cast<uint64_t>(row_.line);
    pending_ = std::move(row);
    return true;
  }

  std::string path_;
  std::string time_column_;
  CsvTimeFormat time_format_;
  double speed_;
  char delimiter_ = ',';
  std::vector<std::string> text_columns_;

  std::ifstream file_;
  std::unique_ptr<CsvReader> reader_;  // reads file_, once open
  std::vector<std::string> names_;
  std::vector<Column> columns_;
  CsvRow row_;                  // reused: its cells keep their buffers from row to row
  std::optional<Row> pending_;  // read but not yet due
  bool at_end_ = false;
  uint64_t resume_after_ = 0;  // lines up to here were delivered before a restart
  uint64_t last_emitted_ = 0, noted_ = 0;
  bool has_last_ = false;
  int64_t last_event_us_ = 0;
  // Pacing: a row of event time t is due at wall_start_us_ + (t - first_event_us_) / speed.
  bool paced_ = false;
  int64_t first_event_us_ = 0;
  int64_t wall_start_us_ = 0;
};

EF_REGISTER_OPERATOR(CsvReplay)

}  // namespace
}  // namespace edgeflow
