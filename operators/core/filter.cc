// filter — passes on the records for which a numeric expression over their fields is true.
//
// Ports: in (record) -> out (same: the messages kept, unchanged and uncopied).
// Options: where (required): an expression over field names, compiled once by muparser; a
// comparison or && || gives 1 or 0, and any nonzero result keeps the message. Ints and bools
// count as numbers; expressions name fields of letters, digits and '_' (muparser's names).
// A message lacking a field the expression reads, or holding text there, goes to the error
// output rather than being silently dropped, so that a misspelt field name shows.
//
//   - id: hot-and-dry
//     op: filter
//     from: sensors
//     with: { where: "temperature > 30 && humidity < 40" }
#include <optional>
#include <string>

#include "operators/core/record_expression.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

class Filter : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "filter";
    s.summary = "Passes on the records for which an expression over their fields is true.";
    s.example =
        "- id: hot-and-dry\n  op: filter\n  from: sensors\n"
        "  with: { where: \"temperature > 30 && humidity < 40\" }";
    s.inputs = {{"in", "record", "records to test"}};
    s.outputs = {{"out", "same", "the records for which 'where' is nonzero, unchanged"}};
    s.options = {
        opt_string("where", "expression over field names, e.g. temperature > 30 && humidity < 40")
            .require(),
    };
    return s;
  }

  explicit Filter(const Options& o) : where_("where", "", o.get_string("where")) {}

  void process(int, MessagePtr m, Context& ctx) override {
    std::optional<double> result = where_.evaluate(m->fields, problem_);
    if (!result) {
      ctx.error(m.get(), "where: " + problem_);
    } else if (*result != 0) {
      ctx.emit(std::move(m));
    }
  }

 private:
  RecordExpression where_;
  std::string problem_;  // reused: its buffer outlives one message
};

EF_REGISTER_OPERATOR(Filter)

}  // namespace
}  // namespace edgeflow
