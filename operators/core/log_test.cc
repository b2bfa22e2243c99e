#include <gtest/gtest.h>

#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

TEST(Log, PassesMessagesOnUnchanged) {
  OperatorHarness h("log", "{every: 2, to: stderr}");
  h.push_reading(1'000'000, {{"temperature", 21.5}});
  h.push_reading(2'000'000, {{"temperature", 22.5}});
  h.finish();
  ASSERT_EQ(h.output().size(), 2u);
  EXPECT_EQ(*find_field(h.output()[1]->fields, "temperature"), Value(22.5));
}

TEST(Log, RejectsUnknownFormat) {
  std::string problems = OperatorHarness::option_problems("log", "{format: xml}");
  EXPECT_NE(problems.find("option 'format' must be one of the known values (got 'xml')"),
            std::string::npos)
      << problems;
}

}  // namespace
}  // namespace edgeflow
