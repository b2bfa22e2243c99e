// A FieldExpression taken from a stage option and evaluated against a message's fields: the
// part filter and map share. Compile errors become OptionErrors (reported at the option's line);
// a missing or non-numeric field at run time becomes a problem text for ctx.error().
#pragma once

#include <optional>
#include <string>

#include "operators/core/expression.h"
#include "runtime/schema.h"
#include "runtime/value.h"

namespace edgeflow {

class RecordExpression {
 public:
  // `label` prefixes the error message when one option holds several expressions
  // ("'temp_f': " for map's set).
  RecordExpression(const std::string& option, const std::string& label, std::string text);

  const std::string& text() const { return expression_.text(); }

  // The result for these fields, or nothing with `problem` saying which field is missing or
  // not a number, or that the result is not finite (so that no NaN travels on as data).
  std::optional<double> evaluate(const Fields& fields, std::string& problem);

 private:
  FieldExpression expression_;
};

}  // namespace edgeflow
