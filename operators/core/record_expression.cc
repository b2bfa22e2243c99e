#include "operators/core/record_expression.h"

#include <cmath>

namespace edgeflow {
namespace {

FieldExpression compile(const std::string& option, const std::string& label, std::string text) {
  try {
    return FieldExpression(std::move(text));
  } catch (const ExpressionError& e) {
    throw OptionError(option, label + e.what(), kExpressionHint);
  }
}

}  // namespace

RecordExpression::RecordExpression(const std::string& option, const std::string& label,
                                   std::string text)
    : expression_(compile(option, label, std::move(text))) {}

std::optional<double> RecordExpression::evaluate(const Fields& fields, std::string& problem) {
  const std::vector<std::string>& names = expression_.variables();
  for (size_t i = 0; i < names.size(); ++i) {
    const Value* value = find_field(fields, names[i]);
    if (!value) {
      problem = "field '" + names[i] + "' is missing (needed by '" + text() + "')";
      return std::nullopt;
    }
    std::optional<double> number = value->number();
    if (!number) {
      problem = "field '" + names[i] + "' is not a number (got ";
      append_json(problem, *value);
      problem += ", needed by '" + text() + "')";
      return std::nullopt;
    }
    expression_.set(i, *number);
  }
  double result = expression_.evaluate();
  if (!std::isfinite(result)) {
    problem =
        "'" + text() + "' gives " + (std::isnan(result) ? "NaN" : "an infinite value") + " for";
    for (size_t i = 0; i < names.size(); ++i) {
      problem += (i == 0 ? " " : ", ") + names[i] + "=";
      append_json(problem, *find_field(fields, names[i]));
    }
    if (names.empty()) problem += " every message";
    return std::nullopt;
  }
  return result;
}

}  // namespace edgeflow
