#include "operators/core/expression.h"

#include <muParser.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <string_view>

namespace edgeflow {

const char* const kExpressionHint =
    "write field names, numbers, + - * / ^, < <= > >= == !=, && ||, c ? a : b and functions "
    "such as abs(x), sqrt(x), min(a, b), max(a, b); e.g. temperature > 30 && humidity < 40";

struct FieldExpression::Compiled {
  mu::Parser parser;
  std::vector<std::string> names;
  std::deque<double> values;  // a deque never moves its elements: the parser holds their addresses

  // muparser calls this for each name it does not know, while it parses: every such name is a
  // field the expression reads.
  static double* bind_variable(const char* name, void* user_data) {
    auto* compiled = static_cast<Compiled*>(user_data);
    compiled->names.emplace_back(name);
    compiled->values.push_back(0.0);
    return &compiled->values.back();
  }
};

namespace {

std::string quoted(const std::string& text) { return " in \"" + text + "\""; }

// muparser accepts `a = 3` as an assignment whose value is 3: as a filter it would pass every
// message. A lone '=' in a field expression is always a typo for '=='.
void reject_assignment(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '=') continue;
    bool after_comparison =
        i > 0 && std::string_view("=<>!").find(text[i - 1]) != std::string_view::npos;
    bool before_equal = i + 1 < text.size() && text[i + 1] == '=';
    if (!after_comparison && !before_equal)
      throw ExpressionError("'=' assigns a value; to compare, write '==' (at position " +
                            std::to_string(i) + ")" + quoted(text));
    if (before_equal) ++i;  // skip the second '=' of '=='
  }
}

}  // namespace

FieldExpression::FieldExpression(std::string text)
    : text_(std::move(text)), compiled_(std::make_unique<Compiled>()) {
  reject_assignment(text_);
  try {
    compiled_->parser.SetVarFactory(Compiled::bind_variable, compiled_.get());
    compiled_->parser.SetExpr(text_);
    // muparser parses on first evaluation: do it now so that errors surface at load time.
    compiled_->parser.Eval();
    if (int n = compiled_->parser.GetNumResults(); n > 1) {
      throw ExpressionError("one expression gives one value; this gives " + std::to_string(n) +
                            " separated by ','" + quoted(text_));
    }
  } catch (const mu::ParserError& e) {
    std::string message = e.GetMsg();
    // Most muparser messages say where; a few ("Missing parenthesis") do not.
    if (message.find("position") == std::string::npos && e.GetPos() >= 0) {
      size_t pos = std::min(static_cast<size_t>(e.GetPos()), text_.size());
      message += " at position " + std::to_string(pos);
    }
    throw ExpressionError(message + quoted(text_));
  }
}

FieldExpression::FieldExpression(FieldExpression&&) noexcept = default;
FieldExpression& FieldExpression::operator=(FieldExpression&&) noexcept = default;
FieldExpression::~FieldExpression() = default;

const std::vector<std::string>& FieldExpression::variables() const { return compiled_->names; }

void FieldExpression::set(size_t index, double value) { compiled_->values[index] = value; }

double FieldExpression::evaluate() noexcept {
  try {
    return compiled_->parser.Eval();
  } catch (const mu::ParserError&) {
    return std::numeric_limits<double>::quiet_NaN();
  }
}

}  // namespace edgeflow
