// Fuzzes the pipeline loader (runtime/pipeline.h: load_pipeline_text) from the example
// pipelines: any text loads, or fails with diagnostics that name the file, never a crash, a
// hang or an exception; what loads can be placed onto nodes.
#include <gtest/gtest.h>

#include <cstdlib>

#include "fuzz/fuzz_harness.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {
namespace {

size_t g_loaded = 0;  // how deep the rounds reach: a run that never loads tests only YAML

void check(const std::string& in) {
  const char* root = std::getenv("EDGEFLOW_SOURCE_DIR");
  const std::string dir = std::string(root ? root : ".") + "/fuzz/corpus/loader";
  LoadResult r = load_pipeline_text(in, "fuzz.yaml", dir);
  if (r.pipeline) {
    ++g_loaded;
    EXPECT_TRUE(r.diags.empty());
    Plan plan = place(*r.pipeline);
    EXPECT_FALSE(plan.instances.empty());
    for (const PlanEdge& e : plan.edges) {
      EXPECT_GE(e.from, 0);
      EXPECT_LT(e.to, static_cast<int>(plan.instances.size()));
    }
    return;
  }
  ASSERT_FALSE(r.diags.empty()) << "neither a pipeline nor a diagnostic";
  for (const Diagnostic& d : r.diags.items()) {
    EXPECT_EQ(d.file, "fuzz.yaml");
    EXPECT_NE(d.message, "");
  }
  EXPECT_NE(r.diags.str(), "");
}

TEST(FuzzLoader, AnyTextLoadsOrSaysWhy) {
  fuzz::Target t;
  t.name = "loader";
  t.seeds = fuzz::load_corpus("loader");
  t.dictionary = {"pipeline: ",
                  "stages:\n",
                  "nodes:\n",
                  "links:\n",
                  "  - id: ",
                  "    op: ",
                  "    from: ",
                  "    on: ",
                  "    with: ",
                  "queue: ",
                  "{",
                  "}",
                  "[",
                  "]",
                  ": ",
                  "- ",
                  "\n",
                  "\n  ",
                  "&a ",
                  "*a",
                  "<<: *a",
                  "!!str ",
                  "!!binary ",
                  "---\n",
                  "...\n",
                  "|\n",
                  ">-\n",
                  "'",
                  "\"",
                  "#",
                  "~",
                  "null",
                  "true",
                  "-1",
                  "0",
                  "1e309",
                  ".nan",
                  "9223372036854775808",
                  "0x7f",
                  "1s",
                  "-5s",
                  "99999999999h",
                  "0.000001ms",
                  "edge",
                  "cloud",
                  "tier: edge",
                  "weather.simulate",
                  "weather.aggregate",
                  "csv.replay",
                  "mqtt.subscribe",
                  "file.write",
                  "filter",
                  "map",
                  "log",
                  "sensors.error",
                  "capacity: 0",
                  "overflow: spool",
                  "via: zmq",
                  "\t",
                  std::string(1, '\0'),
                  "\xff"};
  t.rounds = 12000;  // about a second
  const uint64_t rounds = fuzz::run(t, check);
  std::printf("fuzz loader: %zu of %llu inputs loaded\n", g_loaded,
              static_cast<unsigned long long>(rounds));
  if (rounds >= 1000) {  // not when replaying one round
    EXPECT_GT(g_loaded, 0u);
  }
}

}  // namespace
}  // namespace edgeflow
