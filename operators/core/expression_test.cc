#include "operators/core/expression.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>

namespace edgeflow {
namespace {

std::string error_of(const std::string& text) {
  try {
    FieldExpression e(text);
  } catch (const ExpressionError& e) {
    return e.what();
  }
  return "";
}

TEST(FieldExpression, FindsVariablesInOrderOfFirstUse) {
  FieldExpression e("temperature > 30 && humidity < 40 || temperature > 35");
  EXPECT_EQ(e.variables(), (std::vector<std::string>{"temperature", "humidity"}));
}

TEST(FieldExpression, EvaluatesWithTheValuesSet) {
  FieldExpression e("temperature > 30 && humidity < 40");
  e.set(0, 31);
  e.set(1, 35);
  EXPECT_EQ(e.evaluate(), 1.0);
  e.set(1, 45);
  EXPECT_EQ(e.evaluate(), 0.0);
}

TEST(FieldExpression, KeepsItsVariablesBoundWhenMoved) {
  FieldExpression first("t * 9 / 5 + 32");
  FieldExpression moved(std::move(first));
  std::vector<FieldExpression> grown;
  grown.push_back(std::move(moved));
  grown.emplace_back("x + 1");  // reallocates the vector
  grown[0].set(0, 100);
  EXPECT_DOUBLE_EQ(grown[0].evaluate(), 212.0);
}

TEST(FieldExpression, ReportsSyntaxErrorsWithPositionAndText) {
  EXPECT_EQ(error_of("temperature >"),
            "Unexpected end of expression at position 14 in \"temperature >\"");
  EXPECT_EQ(error_of("(a + b"), "Missing parenthesis at position 6 in \"(a + b\"");
  EXPECT_NE(error_of("a and b").find("Unexpected variable \"and\" found at position 2"),
            std::string::npos);
}

TEST(FieldExpression, RejectsAssignmentButNotComparisons) {
  EXPECT_EQ(error_of("status = 1"),
            "'=' assigns a value; to compare, write '==' (at position 7) in \"status = 1\"");
  EXPECT_EQ(error_of("a == 1 && b <= 2 && c >= 3 && d != 4"), "");
}

TEST(FieldExpression, RejectsSeveralResults) {
  EXPECT_NE(error_of("a, b").find("this gives 2 separated by ','"), std::string::npos);
  EXPECT_EQ(error_of("max(a, b)"), "");
}

TEST(FieldExpression, RejectsEmptyText) { EXPECT_NE(error_of(""), ""); }

TEST(FieldExpression, DivisionByZeroIsNotFinite) {
  FieldExpression e("a / b");
  e.set(0, 1);
  e.set(1, 0);
  EXPECT_FALSE(std::isfinite(e.evaluate()));
}

}  // namespace
}  // namespace edgeflow
