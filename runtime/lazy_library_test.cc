#include "runtime/lazy_library.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <stdexcept>
#include <string>

namespace edgeflow {
namespace {

// A real library of every Linux system, for a plain function and a printf-like one.
constinit LazyLibrary libc("libc.so.6", "libc6", "a test");
constinit LazyLibrary nowhere("libedgeflow-nowhere.so.9", "edgeflow-nowhere", "a test of errors");
EF_LAZY_FUNCTION(libc, atoi);
EF_LAZY_FUNCTION(libc, snprintf);
EF_LAZY_FUNCTION(nowhere, atol);

TEST(LazyLibrary, CallsGoToTheLibraryLoadedOnFirstUse) {
  EXPECT_EQ(atoi("-1234"), -1234);
  char text[32];
  ASSERT_EQ(snprintf(text, sizeof text, "%s=%d %.1f", "n", 42, 2.5), 8);
  EXPECT_STREQ(text, "n=42 2.5");
}

TEST(LazyLibrary, AMissingLibraryNamesItsPackageAndWhatNeededIt) {
  try {
    atol("8");
    FAIL() << "a function of a missing library returned";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("libedgeflow-nowhere.so.9"), std::string::npos) << what;
    EXPECT_NE(what.find("a test of errors"), std::string::npos) << what;
    EXPECT_NE(what.find("apt-get install edgeflow-nowhere"), std::string::npos) << what;
  }
  EXPECT_THROW(atol("8"), std::runtime_error);  // again, not a crash the second time
}

TEST(LazyLibrary, AMissingSymbolIsNamed) {
  try {
    libc.symbol("edgeflow_no_such_function");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("edgeflow_no_such_function"), std::string::npos);
  }
}

}  // namespace
}  // namespace edgeflow
