#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/operator.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

class FileWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "edgeflow-file-write-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string options(const std::string& extra = "") {
    return "{path: \"" + (dir_ / "out.jsonl").string() + "\"" + extra + "}";
  }

  std::vector<std::string> text_lines() {
    std::ifstream in(dir_ / "out.jsonl");
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  std::vector<nlohmann::json> lines() {
    std::vector<nlohmann::json> out;
    for (const std::string& line : text_lines()) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  fs::path dir_;
};

TEST_F(FileWriteTest, WritesOneObjectPerMessage) {
  OperatorHarness h("file.write", options(), "pi-1");
  h.push_reading(1'262'304'000'000'000, {{"temperature", 47.8}, {"station", "roof"}});
  auto event = std::make_shared<Message>();
  event->stream = "motion";
  event->origin = "pi-2";
  event->event_time_us = 1'262'304'001'500'000;
  event->fields = {{"boxes", int64_t{2}}};
  event->blob.type = "image/jpeg";
  event->blob.bytes = std::make_shared<const std::string>(std::string(1234, '\xff'));
  h.push(event);
  h.finish();

  // Key order is part of the format: the fields as they came, then ts, node, stream.
  ASSERT_EQ(text_lines().size(), 2u);
  EXPECT_EQ(text_lines()[0], R"({"temperature":47.8,"station":"roof","ts":"2010-01-01T00:00:00Z",)"
                             R"("node":"pi-1","stream":"input"})");
  std::vector<nlohmann::json> got = lines();
  EXPECT_EQ(got[1]["boxes"], 2);
  EXPECT_EQ(got[1]["blob_type"], "image/jpeg");
  EXPECT_EQ(got[1]["blob_bytes"], 1234);
  EXPECT_LT(text_lines()[1].size(), 200u) << "the blob's bytes are never written";
  EXPECT_EQ(got[1]["ts"], "2010-01-01T00:00:01.500Z");
  EXPECT_EQ(got[1]["node"], "pi-2");
  EXPECT_EQ(got[1]["stream"], "motion");
  EXPECT_TRUE(h.errors().empty());
}

TEST_F(FileWriteTest, ReplacesOrAppends) {
  {
    OperatorHarness h("file.write", options());
    h.push_reading(1, {{"n", int64_t{1}}});
    h.finish();
  }
  {
    OperatorHarness h("file.write", options(", append: true"));
    h.push_reading(2, {{"n", int64_t{2}}});
    h.finish();
  }
  std::vector<nlohmann::json> got = lines();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1]["n"], 2);
  {
    OperatorHarness h("file.write", options());
    h.push_reading(3, {{"n", int64_t{3}}});
    h.finish();
  }
  got = lines();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["n"], 3);
}

TEST_F(FileWriteTest, ALoneRecordReachesTheFileAtTheEndOfItsTurn) {
  // The harness makes each push one turn. No later record and no clock tick is needed.
  OperatorHarness h("file.write", options());
  h.push_reading(1, {{"n", int64_t{1}}});
  EXPECT_EQ(lines().size(), 1u);
  h.push_reading(2, {{"n", int64_t{2}}});
  EXPECT_EQ(lines().size(), 2u);
  h.finish();
}

TEST_F(FileWriteTest, UnwritablePathFailsAtOpen) {
  std::string path = (dir_ / "no-such-folder" / "out.jsonl").string();
  OperatorHarness h("file.write", "{path: \"" + path + "\"}");
  try {
    h.open();
    FAIL() << "open() should throw";
  } catch (const OperatorError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  "cannot open '" + path + "' for writing: No such file or directory; ", 0),
              0u)
        << e.what();
  }
}

TEST(FileWrite, PathIsRequired) {
  EXPECT_NE(OperatorHarness::option_problems("file.write", "{append: true}")
                .find("missing required option 'path'"),
            std::string::npos);
}

}  // namespace
}  // namespace edgeflow
