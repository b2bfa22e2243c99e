#include <gtest/gtest.h>

#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

std::vector<std::string> keys(const Message& m) {
  std::vector<std::string> out;
  for (const Field& f : m.fields) out.push_back(f.key);
  return out;
}

TEST(Map, SetsFieldsFromExpressions) {
  OperatorHarness h("map", "{set: {temp_f: \"temperature * 9 / 5 + 32\"}}");
  h.push_reading(1, {{"temperature", 100.0}, {"humidity", int64_t{40}}});
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  const Message& m = *h.output()[0];
  EXPECT_EQ(keys(m), (std::vector<std::string>{"temperature", "humidity", "temp_f"}));
  const Value* f = find_field(m.fields, "temp_f");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->v.index(), 3u) << "results are doubles";
  EXPECT_DOUBLE_EQ(*f->number(), 212.0);
}

TEST(Map, EachSetSeesTheFieldsSetBeforeIt) {
  OperatorHarness h("map", "{set: {b: \"a * 2\", c: \"b + 1\", a: \"c * 10\"}}");
  h.push_reading(1, {{"a", 1.0}});
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  const Message& m = *h.output()[0];
  EXPECT_EQ(keys(m), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*find_field(m.fields, "b"), Value(2.0));
  EXPECT_EQ(*find_field(m.fields, "c"), Value(3.0));
  EXPECT_EQ(*find_field(m.fields, "a"), Value(30.0));
}

TEST(Map, AppliesSetThenRenameThenDrop) {
  OperatorHarness h("map",
                    "{set: {temp_f: \"temperature * 9 / 5 + 32\"}, rename: {humidity: rh, "
                    "temp_f: fahrenheit}, drop: [temperature, pressure]}");
  h.push_reading(1, {{"temperature", 0.0}, {"humidity", 50.0}, {"station", "roof"}});
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  const Message& m = *h.output()[0];
  EXPECT_EQ(keys(m), (std::vector<std::string>{"rh", "station", "fahrenheit"}));
  EXPECT_EQ(*find_field(m.fields, "fahrenheit"), Value(32.0));
  EXPECT_EQ(*find_field(m.fields, "rh"), Value(50.0));
}

TEST(Map, RenameOverwritesAFieldOfTheNewName) {
  OperatorHarness h("map", "{rename: {raw: temperature}}");
  h.push_reading(1, {{"temperature", 1.0}, {"raw", 2.0}, {"humidity", 3.0}});
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  const Message& m = *h.output()[0];
  EXPECT_EQ(keys(m), (std::vector<std::string>{"temperature", "humidity"}));
  EXPECT_EQ(*find_field(m.fields, "temperature"), Value(2.0));
}

TEST(Map, EditsInPlaceWhenItHoldsTheOnlyReference) {
  OperatorHarness h("map", "{drop: [humidity]}");
  auto m = std::make_shared<Message>();
  m->fields = {{"temperature", 20.0}, {"humidity", 40.0}};
  const Message* sent = m.get();
  h.push(std::move(m));
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.output()[0].get(), sent);
  EXPECT_EQ(keys(*h.output()[0]), (std::vector<std::string>{"temperature"}));
}

TEST(Map, CopiesWhenTheMessageIsShared) {
  OperatorHarness h("map", "{set: {temperature: \"temperature + 1\"}}");
  auto m = std::make_shared<Message>();
  m->fields = {{"temperature", 20.0}};
  MessagePtr kept = m;  // another stage still reads it
  h.push(std::move(m));
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_NE(h.output()[0].get(), kept.get());
  EXPECT_EQ(*find_field(h.output()[0]->fields, "temperature"), Value(21.0));
  EXPECT_EQ(*find_field(kept->fields, "temperature"), Value(20.0));
}

TEST(Map, MissingFieldGoesToTheErrorOutput) {
  OperatorHarness h("map", "{set: {temp_f: \"temperature * 9 / 5 + 32\"}}");
  h.push_reading(1, {{"humidity", 40.0}});
  h.push_reading(2, {{"temperature", 10.0}});
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.output()[0]->event_time_us, 2);
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_EQ(h.errors()[0],
            "set 'temp_f': field 'temperature' is missing (needed by "
            "'temperature * 9 / 5 + 32')");
  EXPECT_EQ(h.output("error").size(), 1u);
}

TEST(Map, MissingFieldToRenameGoesToTheErrorOutput) {
  OperatorHarness h("map", "{rename: {humidity: rh}}");
  h.push_reading(1, {{"temperature", 10.0}});
  h.finish();
  EXPECT_TRUE(h.output().empty());
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_EQ(h.errors()[0], "rename: field 'humidity' is missing");
}

TEST(Map, DroppingAnAbsentFieldIsFine) {
  OperatorHarness h("map", "{drop: [pressure]}");
  h.push_reading(1, {{"temperature", 10.0}});
  h.finish();
  EXPECT_EQ(h.output().size(), 1u);
  EXPECT_TRUE(h.errors().empty());
}

TEST(Map, BadExpressionIsAnOptionErrorNamingTheField) {
  std::string problems =
      OperatorHarness::option_problems("map", "{set: {temp_f: \"temperature * \"}}");
  EXPECT_NE(problems.find("option 'set': 'temp_f': Unexpected end of expression"),
            std::string::npos)
      << problems;
}

TEST(Map, NeedsSomethingToDo) {
  std::string problems = OperatorHarness::option_problems("map", "{}");
  EXPECT_NE(problems.find("map needs at least one of 'set', 'rename' or 'drop'"), std::string::npos)
      << problems;
  EXPECT_NE(OperatorHarness::option_problems("map", "{set: {}}"), "");
}

}  // namespace
}  // namespace edgeflow
