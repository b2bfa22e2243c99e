// iexec.run through the harness: the shipped forecast app on weather aggregates, batching per
// origin, the end-of-input flush, and an app that fails.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "crypto/crypto.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

std::string source_dir() {
  const char* d = std::getenv("EDGEFLOW_SOURCE_DIR");
  return d ? d : std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

std::string field_text(const Message& m, const char* key) {
  const Value* v = find_field(m.fields, key);
  const std::string* s = v ? std::get_if<std::string>(&v->v) : nullptr;
  return s ? *s : "";
}

class IexecRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = ::testing::TempDir() + "/iexec_run_" + std::to_string(::getpid());
    std::filesystem::create_directories(work_);
  }
  void TearDown() override { std::filesystem::remove_all(work_); }
  std::string options(const std::string& extra) {
    return "{app: forecast, apps: " + source_dir() + "/apps/registry.yaml, work_dir: " + work_ +
           ", slots: 2" + extra + "}";
  }
  static void push_windows(OperatorHarness& h, const std::string& origin, int n, double p0) {
    for (int i = 0; i < n; ++i)
      h.push_reading(int64_t(i + 1) * 60'000'000,
                     {{"window_end", "2026-01-01T00:0" + std::to_string(i + 1) + ":00Z"},
                      {"temperature_mean", 10.0 + i},
                      {"pressure_mean", p0 + 0.5 * i}},
                     origin);
  }
  std::string work_;
};

TEST_F(IexecRunTest, ForecastsEachOriginsBatchInTheSandbox) {
  OperatorHarness h("iexec.run", options(", batch: 4"), "pi-1", "local-forecast");
  push_windows(h, "pi-1", 4, 1000.0);  // a full batch: runs at once
  push_windows(h, "pi-2", 3, 1010.0);  // a partial batch: runs at the end of input
  ASSERT_EQ(h.output().size(), 1u);
  h.finish();
  ASSERT_EQ(h.output().size(), 2u) << (h.errors().empty() ? "" : h.errors().front());
  EXPECT_TRUE(h.errors().empty());
  for (const MessagePtr& m : h.output()) {
    EXPECT_EQ(field_text(*m, "status"), "ok") << field_text(*m, "cause");
    const std::string out = field_text(*m, "output");
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["outlook"], "rising pressure: fair") << out;
    // The digest is sha256 of the output file, as IEXEC.md says for a single file.
    EXPECT_EQ(field_text(*m, "result_digest"), crypto::sha256(out).hex());
  }
  EXPECT_EQ(h.output()[0]->origin, "pi-1");
  EXPECT_EQ(h.output()[1]->origin, "pi-2");
  EXPECT_EQ(nlohmann::json::parse(field_text(*h.output()[1], "output"))["windows"], 3);
}

TEST_F(IexecRunTest, AnAppErrorIsARecordAndAnErrorNotACrash) {
  const std::string app = work_ + "/fail.sh";
  { std::ofstream(app) << "#!/bin/sh\necho broken >&2\nexit 3\n"; }
  std::filesystem::permissions(app, std::filesystem::perms(0755));
  {
    std::ofstream(work_ + "/registry.yaml")
        << "apps:\n  fail:\n    path: fail.sh\n    sha256: " << crypto::sha256_file(app).hex()
        << "\n";
  }
  OperatorHarness h(
      "iexec.run",
      "{app: fail, apps: " + work_ + "/registry.yaml, work_dir: " + work_ + "/tasks, batch: 1}",
      "pi-1", "local-fail");
  h.push_reading(60'000'000, {{"x", 1}}, "pi-1");
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(field_text(*h.output()[0], "status"), "app_error");
  EXPECT_NE(field_text(*h.output()[0], "cause").find("exited with code 3"), std::string::npos)
      << field_text(*h.output()[0], "cause");
  // error.txt is the result, so the digest is there even for a failure.
  EXPECT_FALSE(field_text(*h.output()[0], "result_digest").empty());
  EXPECT_EQ(h.errors().size(), 1u);
}

TEST_F(IexecRunTest, UnknownAppFailsAtOpenNamingTheRegistry) {
  OperatorHarness h(
      "iexec.run",
      "{app: nope, apps: " + source_dir() + "/apps/registry.yaml, work_dir: " + work_ + "}",
      "pi-1");
  try {
    h.open();
    FAIL() << "expected OperatorError";
  } catch (const OperatorError& e) {
    EXPECT_NE(std::string(e.what()).find("registry.yaml"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace edgeflow
