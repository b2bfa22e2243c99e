#include <gtest/gtest.h>

#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

TEST(Filter, KeepsMessagesWhereTheExpressionIsTrue) {
  OperatorHarness h("filter", "{where: \"temperature > 30 && humidity < 40\"}");
  h.push_reading(1, {{"temperature", 31.0}, {"humidity", 35.0}});
  h.push_reading(2, {{"temperature", 29.0}, {"humidity", 35.0}});
  h.push_reading(3, {{"temperature", int64_t{35}}, {"humidity", 45.0}});
  h.push_reading(4, {{"temperature", int64_t{40}}, {"humidity", int64_t{10}}});
  h.finish();
  ASSERT_EQ(h.output().size(), 2u);
  EXPECT_EQ(h.output()[0]->event_time_us, 1);
  EXPECT_EQ(h.output()[1]->event_time_us, 4);
  EXPECT_TRUE(h.errors().empty());
}

TEST(Filter, PassesTheSameMessageOn) {
  OperatorHarness h("filter", "{where: \"door\"}");
  auto m = std::make_shared<Message>();
  m->fields = {{"door", true}};
  const Message* sent = m.get();
  h.push(std::move(m));
  auto closed = std::make_shared<Message>();
  closed->fields = {{"door", false}};
  h.push(std::move(closed));
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.output()[0].get(), sent);
}

TEST(Filter, BadExpressionIsAnOptionError) {
  std::string problems = OperatorHarness::option_problems("filter", "{where: \"temperature >\"}");
  EXPECT_NE(problems.find("option 'where': Unexpected end of expression at position 14 in "
                          "\"temperature >\""),
            std::string::npos)
      << problems;
  EXPECT_NE(problems.find("hint:"), std::string::npos) << problems;
}

TEST(Filter, AssignmentIsAnOptionError) {
  std::string problems = OperatorHarness::option_problems("filter", "{where: \"status = 1\"}");
  EXPECT_NE(problems.find("option 'where': '=' assigns a value; to compare, write '=='"),
            std::string::npos)
      << problems;
}

TEST(Filter, WhereIsRequired) {
  std::string problems = OperatorHarness::option_problems("filter", "{}");
  EXPECT_NE(problems.find("missing required option 'where'"), std::string::npos) << problems;
}

TEST(Filter, MissingFieldGoesToTheErrorOutput) {
  OperatorHarness h("filter", "{where: \"temperature > 30 && humidity < 40\"}");
  h.push_reading(1, {{"temperature", 31.0}});
  h.push_reading(2, {{"temperature", 31.0}, {"humidity", 20.0}});
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.output()[0]->event_time_us, 2);
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_EQ(h.errors()[0],
            "where: field 'humidity' is missing (needed by 'temperature > 30 && humidity < 40')");
  ASSERT_EQ(h.output("error").size(), 1u);
  EXPECT_EQ(h.output("error")[0]->event_time_us, 1);
}

TEST(Filter, TextFieldGoesToTheErrorOutput) {
  OperatorHarness h("filter", "{where: \"temperature > 30\"}");
  h.push_reading(1, {{"temperature", "hot"}});
  h.finish();
  EXPECT_TRUE(h.output().empty());
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_EQ(h.errors()[0],
            "where: field 'temperature' is not a number (got \"hot\", needed by "
            "'temperature > 30')");
}

TEST(Filter, NaNResultGoesToTheErrorOutput) {
  OperatorHarness h("filter", "{where: \"sqrt(x)\"}");
  h.push_reading(1, {{"x", -1.0}});
  h.finish();
  EXPECT_TRUE(h.output().empty());
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_EQ(h.errors()[0], "where: 'sqrt(x)' gives NaN for x=-1");
}

}  // namespace
}  // namespace edgeflow
