// map — edits the fields of each record: computes new ones, renames, drops.
//
// Ports: in (record) -> out (same: the edited messages).
// Options (at least one):
//   set    — field -> expression, evaluated in the order written, each seeing the fields as set
//            so far; results are numbers (double). Same expressions as filter's `where`.
//   rename — old name -> new name, in the order written; overwrites a field already named new.
//   drop   — field names to remove (an absent one is not an error).
// They apply in that order: set, then rename, then drop, so a stage can compute from a field
// and drop it. A missing or non-numeric input field (set) or a missing field to rename sends
// the message to the error output instead. The message is edited in place when this stage
// holds the only reference (a straight chain), and copied otherwise.
//
//   - id: fahrenheit
//     op: map
//     from: sensors
//     with:
//       set: { temp_f: "temperature * 9 / 5 + 32" }
//       rename: { humidity: rh }
//       drop: [orientation]
#include <string>
#include <utility>
#include <vector>

#include "operators/core/record_expression.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

class Map : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "map";
    s.summary = "Sets fields from expressions, renames and drops fields of each record.";
    s.example =
        "- id: fahrenheit\n  op: map\n  from: sensors\n"
        "  with: { set: { temp_f: \"temperature * 9 / 5 + 32\" }, drop: [temperature] }";
    s.inputs = {{"in", "record", "records to edit"}};
    s.outputs = {{"out", "same", "the records, edited"}};
    s.options = {
        opt_map("set", "field -> expression, in order; e.g. {temp_f: \"temperature * 9 / 5 + 32\"}")
            .def("{}"),
        opt_map("rename", "old field name -> new field name, applied after set").def("{}"),
        opt_list("drop", "field names to remove, applied last").def("[]"),
    };
    return s;
  }

  explicit Map(const Options& o) : renames_(o.get_map("rename")), drops_(o.get_list("drop")) {
    for (const auto& [field, text] : o.get_map("set"))
      sets_.push_back({field, RecordExpression("set", "'" + field + "': ", text)});
    if (sets_.empty() && renames_.empty() && drops_.empty()) {
      throw OptionError("set", "map needs at least one of 'set', 'rename' or 'drop'",
                        "e.g. set: { temp_f: \"temperature * 9 / 5 + 32\" }");
    }
  }

  void process(int, MessagePtr in, Context& ctx) override {
    std::shared_ptr<Message> m = make_mutable(std::move(in));
    for (auto& [field, expression] : sets_) {
      std::optional<double> value = expression.evaluate(m->fields, problem_);
      if (!value) {
        ctx.error(m.get(), "set '" + field + "': " + problem_);
        return;
      }
      set_field(m->fields, field, *value);
    }
    for (const auto& [from, to] : renames_) {
      if (!rename(m->fields, from, to)) {
        ctx.error(m.get(), "rename: field '" + from + "' is missing");
        return;
      }
    }
    for (const std::string& field : drops_) erase_field(m->fields, field);
    ctx.emit(std::move(m));
  }

 private:
  // Keeps the field's place, so JSON output keeps the column order a user knows.
  static bool rename(Fields& fields, const std::string& from, const std::string& to) {
    Value* value = find_field(fields, from);
    if (!value) return false;
    if (from == to) return true;
    Value moved = std::move(*value);
    erase_field(fields, to);  // may shift `value`: find the field again below
    for (Field& f : fields) {
      if (f.key == from) {
        f.key = to;
        f.value = std::move(moved);
        break;
      }
    }
    return true;
  }

  struct Assignment {
    std::string field;
    RecordExpression expression;
  };
  std::vector<Assignment> sets_;
  std::vector<std::pair<std::string, std::string>> renames_;
  std::vector<std::string> drops_;
  std::string problem_;
};

EF_REGISTER_OPERATOR(Map)

}  // namespace
}  // namespace edgeflow
