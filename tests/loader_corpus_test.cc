// Every file under tests/pipelines/broken/ must fail to load with exactly the diagnostics in
// its .expected file. EDGEFLOW_UPDATE_GOLDEN=1 rewrites them (then read the diff!).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "runtime/pipeline.h"
#include "tests/support/process.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;
using edgeflow::testing::read_file;
using edgeflow::testing::source_dir;

std::vector<fs::path> corpus() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(source_dir() + "/tests/pipelines/broken"))
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(LoaderCorpus, HoldsAtLeast25BrokenFiles) { EXPECT_GE(corpus().size(), 25u); }

TEST(LoaderCorpus, EveryBrokenFileGivesItsExpectedDiagnostics) {
  bool update = std::getenv("EDGEFLOW_UPDATE_GOLDEN") != nullptr;
  for (const fs::path& file : corpus()) {
    SCOPED_TRACE(file.filename().string());
    std::string name = file.filename().string();
    LoadResult r = load_pipeline_text(read_file(file), name, file.parent_path());
    ASSERT_FALSE(r.pipeline) << "loaded without errors";
    std::string got = r.diags.str();
    fs::path expected_path = file;
    expected_path.replace_extension(".expected");
    if (update) edgeflow::testing::write_file(expected_path, got);
    EXPECT_EQ(got, read_file(expected_path));
    // Every line points at the file, and at a line when the problem has one.
    for (const Diagnostic& d : r.diags.items()) EXPECT_EQ(d.file, name);
  }
}

// Mutations of the valid example pipelines: loading never crashes, never hangs, and either
// succeeds or says what is wrong.
TEST(LoaderCorpus, MutatedPipelinesNeverCrash) {
  std::vector<std::string> seeds;
  for (const auto& e : fs::directory_iterator(source_dir() + "/pipelines"))
    if (e.path().extension() == ".yaml") seeds.push_back(read_file(e.path()));
  for (const fs::path& f : corpus()) seeds.push_back(read_file(f));
  ASSERT_FALSE(seeds.empty());
  std::mt19937 rng(2026);
  const std::string alphabet =
      std::string(" :-[]{}\n\t#'\"&*!|>%@`,?0123456789abcxyz.") + '\0' + '\xff';
  int failed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < edits && !text.empty(); ++k) {
      size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          text.erase(at, 1 + rng() % 8);
          break;
        default:
          text.insert(at, std::string(1 + rng() % 3, alphabet[rng() % alphabet.size()]));
      }
    }
    LoadResult r = load_pipeline_text(text, "mutant.yaml", "/nonexistent");
    if (!r.pipeline) {
      ++failed;
      ASSERT_FALSE(r.diags.empty());
    }
  }
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace edgeflow

namespace edgeflow {
namespace {

TEST(LoaderLimits, TooManyStagesIsOneClearError) {
  std::string yaml = "pipeline: huge\nstages:\n  - {id: s0, op: weather.simulate}\n";
  for (int i = 1; i <= 1000; ++i)
    yaml += "  - {id: s" + std::to_string(i) + ", op: log, from: s" + std::to_string(i - 1) + "}\n";
  LoadResult r = load_pipeline_text(yaml, "huge.yaml", ".");
  ASSERT_FALSE(r.pipeline);
  ASSERT_EQ(r.diags.size(), 1u) << r.diags.str();
  EXPECT_NE(r.diags.str().find("the pipeline has 1001 stages; at most 1000 are allowed"),
            std::string::npos);
}

// The `on:` value is what the user must fix: the error points at it, not at the stage, and
// names the closest node or tier.
TEST(LoaderPlacement, OnNamingNoNodePointsAtTheValueWithTheNearestName) {
  LoadResult r = load_pipeline_text(R"(pipeline: misplaced
nodes:
  pi-1: {tier: edge}
  gateway: {tier: cloud}
stages:
  - id: sensors
    op: weather.simulate
    on: pi-1
  - id: show
    op: log
    from: sensors
    on:   gatway
  - {id: keep, op: log, from: sensors, on: clod}
)",
                                    "misplaced.yaml", ".");
  ASSERT_FALSE(r.pipeline);
  ASSERT_EQ(r.diags.size(), 2u) << r.diags.str();
  const Diagnostic& node = r.diags.items()[0];
  EXPECT_EQ(node.stage, "show");
  EXPECT_EQ(node.mark.line, 12);
  EXPECT_EQ(node.mark.column, 11);
  EXPECT_EQ(node.message, "'on: gatway' names no node");
  EXPECT_EQ(node.hint, "did you mean 'gateway'?");
  const Diagnostic& tier = r.diags.items()[1];
  EXPECT_EQ(tier.stage, "keep");
  EXPECT_EQ(tier.mark.line, 13);
  EXPECT_EQ(tier.mark.column, 44);
  EXPECT_EQ(tier.hint, "did you mean 'cloud'?");
  EXPECT_NE(r.diags.str().find("misplaced.yaml:12:11: stage 'show': 'on: gatway' names no node\n"
                               "  hint: did you mean 'gateway'?"),
            std::string::npos)
      << r.diags.str();
}

}  // namespace
}  // namespace edgeflow
