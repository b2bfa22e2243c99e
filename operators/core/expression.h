// A numeric expression over field names, compiled once by muparser and evaluated per message:
// `temperature > 30 && humidity < 40`, `temperature * 9 / 5 + 32`. Comparisons and && || give
// 1 or 0. Plain class with no runtime dependency; filter and map use it through
// RecordExpression.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgeflow {

// What muparser (or our own check) found wrong in an expression; the message names the
// position (0-based, as muparser counts) and quotes the expression.
class ExpressionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class FieldExpression {
 public:
  // Compiles `text`; throws ExpressionError when it does not compile, when it assigns ('=' for
  // '=='), or when it holds several comma-separated results.
  explicit FieldExpression(std::string text);
  FieldExpression(FieldExpression&&) noexcept;
  FieldExpression& operator=(FieldExpression&&) noexcept;
  ~FieldExpression();

  const std::string& text() const { return text_; }
  // Names the expression reads, in the order they first appear.
  const std::vector<std::string>& variables() const;
  // Sets variables()[index] for the next evaluate().
  void set(size_t index, double value);
  // The result for the values set; NaN when muparser fails (it does not, for an expression
  // that compiled) so that evaluation never throws.
  double evaluate() noexcept;

 private:
  struct Compiled;  // muparser binds variables by address: keep it where it never moves
  std::string text_;
  std::unique_ptr<Compiled> compiled_;
};

// One line on what expressions may hold, for error hints.
extern const char* const kExpressionHint;

}  // namespace edgeflow
