// log — prints each message on one readable line, for demos and debugging.
//
// Ports: in (any) -> out (same: passes every message on unchanged).
// Options: format (text | json), every (print one message in N), stdout (or stderr).
//
//   - id: show
//     op: log
//     from: minute
//     with: { format: text }
#include <cstdio>
#include <string>

#include "runtime/duration.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

class Log : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "log";
    s.summary = "Prints each message on one readable line and passes it on.";
    s.example = "- id: show\n  op: log\n  from: minute\n  with: { format: text }";
    s.inputs = {{"in", "any", "messages to print"}};
    s.outputs = {{"out", "same", "the same messages, unchanged"}};
    s.options = {
        opt_enum("format", {"text", "json"},
                 "text: time node stream key=value...; json: one object")
            .def("text"),
        opt_int("every", "print one message in this many").def("1").at_least(1),
        opt_enum("to", {"stdout", "stderr"}, "where to print").def("stdout"),
    };
    return s;
  }

  explicit Log(const Options& o)
      : json_(o.get_string("format") == "json"),
        every_(o.get_int("every")),
        out_(o.get_string("to") == "stderr" ? stderr : stdout) {}

  void process(int, MessagePtr m, Context& ctx) override {
    if (count_++ % every_ == 0) print(*m);
    ctx.emit(std::move(m));
  }

  void close(Context&) override { std::fflush(out_); }

 private:
  void print(const Message& m) {
    line_.clear();
    if (json_) {
      Fields all = m.fields;
      set_field(all, "ts", format_iso8601(m.event_time_us));
      set_field(all, "node", m.origin);
      set_field(all, "stream", m.stream);
      append_json(line_, all);
    } else {
      line_ += format_iso8601(m.event_time_us) + " " + m.origin + " " + m.stream;
      for (const Field& f : m.fields) {
        line_ += " " + f.key + "=";
        if (auto d = f.value.number(); d && f.value.v.index() == 3) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%.2f", *d);  // readable, not round-trip
          line_ += buf;
        } else if (const std::string* s = f.value.string()) {
          line_ += *s;
        } else {
          append_json(line_, f.value);
        }
      }
      if (!m.blob.empty()) line_ += " [" + m.blob.type + "]";
    }
    line_ += '\n';
    std::fwrite(line_.data(), 1, line_.size(), out_);
  }

  bool json_;
  int64_t every_;
  std::FILE* out_;
  int64_t count_ = 0;
  std::string line_;
};

EF_REGISTER_OPERATOR(Log)

}  // namespace
}  // namespace edgeflow
