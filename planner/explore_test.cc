// `on: [edge, cloud]` in the loader and the placement exploration of `plan --explore`, on a
// hand-made profile: nothing runs.
#include "planner/explore.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/blob_encoders.h"
#include "runtime/operator.h"
#include "runtime/placement.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

// A source of raw camera frames, for the placement the loader would refuse.
struct TestFrames : Operator {
  explicit TestFrames(const Options&) {}
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "test.explore-frames";
    s.summary = "raw frames, for explore_test";
    s.outputs = {{"out", "frame", "raw frames"}};
    return s;
  }
};
EF_REGISTER_OPERATOR(TestFrames)

const std::string kNodes = R"(nodes:
  pi-1: {tier: edge, device: rpi-3b, network: wifi, solar: {panel_w: 60, battery_wh: 185, lat: 45}}
  pi-2: {tier: edge, device: rpi-3b, network: wifi, solar: {panel_w: 60, battery_wh: 185, lat: 45}}
  hq: {tier: cloud, device: cloud-vm, network: ethernet}
)";

const std::string kWeather = "pipeline: explore-weather\n" + kNodes + R"(stages:
  - {id: sensors, op: weather.simulate, on: edge}
  - id: minute
    op: weather.aggregate
    on: [edge, cloud]
    from: sensors
    with: {window: 60s, fields: [temperature], stats: [mean]}
  - {id: show, op: log, on: cloud, from: minute}
)";

PipelineSpec load(const std::string& text, std::vector<OptionOverride> overrides = {}) {
  LoadResult r = load_pipeline_text(text, "explore.yaml", ".", overrides);
  EXPECT_TRUE(r.pipeline) << r.diags.str();
  return r.pipeline ? *r.pipeline : PipelineSpec{};
}

PortProfile port(uint64_t messages, double bytes_each) {
  // One frame a message on a link: the flushes of a stage that emits one message a turn.
  return {"out", messages, static_cast<uint64_t>(static_cast<double>(messages) * bytes_each),
          messages};
}

// An hour of both edge copies: each sensor 1 reading/s of 120 bytes; the aggregate one
// 300-byte message per 60 readings at `aggregate_cpu_s` a reading; log 10 µs a message.
PipelineProfile weather_profile(double aggregate_cpu_s) {
  PipelineProfile p;
  p.pipeline = "explore-weather";
  StageProfile sensors{"sensors", "weather.simulate", 2, true, 0, 7200, 7200 * 5e-6,
                       1.0,       {port(7200, 120)}};
  StageProfile minute{"minute", "weather.aggregate",    2, false,           7200,
                      120,      7200 * aggregate_cpu_s, 0, {port(120, 300)}};
  StageProfile show{"show", "log", 1, false, 120, 120, 120 * 10e-6, 0, {port(120, 300)}};
  p.stages = {sensors, minute, show};
  p.links = {true, 50e-6, 50e-6, 120};
  return p;
}

PredictOptions june() {
  PredictOptions o;
  o.month = 6;
  return o;
}

const Candidate& find(const std::vector<Candidate>& cs, const std::string& stage,
                      const std::string& on) {
  for (const Candidate& c : cs)
    if (c.chosen(stage) && *c.chosen(stage) == on) return c;
  ADD_FAILURE() << "no candidate with " << stage << "@" << on;
  static const Candidate none;
  return none;
}

TEST(MovableStage, RunsOnItsFirstChoiceAndKeepsTheOthers) {
  PipelineSpec p = load(kWeather);
  const StageSpec* minute = p.stage("minute");
  ASSERT_TRUE(minute);
  EXPECT_EQ(minute->on, "edge");
  EXPECT_EQ(minute->on_choices, (std::vector<std::string>{"edge", "cloud"}));
  EXPECT_EQ(minute->on_mark.line, 10);  // the first choice
  EXPECT_EQ(minute->on_mark.column, 10);
  EXPECT_TRUE(p.stage("sensors")->on_choices.empty());
  EXPECT_EQ(movable_stages(p), std::vector<std::string>{"minute"});

  // Placed exactly as `on: edge`.
  std::string pinned = kWeather;
  pinned.replace(pinned.find("[edge, cloud]"), 13, "edge");
  PipelineSpec q = load(pinned);
  EXPECT_TRUE(movable_stages(q).empty());
  Plan a = place(p), b = place(q);
  ASSERT_EQ(a.instances.size(), b.instances.size());
  for (size_t i = 0; i < a.instances.size(); ++i)
    EXPECT_EQ(a.instances[i].name, b.instances[i].name);
  ASSERT_EQ(a.links.size(), 1u);
  EXPECT_EQ(a.links[0].name, "minute->show");

  // `--set minute.on=cloud` pins it.
  PipelineSpec set = load(kWeather, {{"minute", "on", "cloud"}});
  EXPECT_EQ(set.stage("minute")->on, "cloud");
  EXPECT_TRUE(set.stage("minute")->on_choices.empty());
}

TEST(Explore, AggregatingAtTheEdgeSendsASixtiethOfTheMessages) {
  PipelineSpec p = load(kWeather);
  std::string error;
  std::vector<SkippedCandidate> skipped;
  auto cs = explore(p, weather_profile(20e-6), june(), Objective::kBytes, &error, &skipped);
  ASSERT_EQ(cs.size(), 2u) << error;
  EXPECT_TRUE(error.empty());
  EXPECT_TRUE(skipped.empty());
  EXPECT_EQ(cs[0].placement_text(), "minute@edge");
  EXPECT_EQ(cs[0].rank, 1);
  EXPECT_EQ(cs[1].placement_text(), "minute@cloud");
  EXPECT_EQ(cs[1].rank, 2);

  // Pinned stages stay where the file puts them.
  for (const Candidate& c : cs) {
    EXPECT_NE(c.prediction.placement.find("sensors@edge"), std::string::npos);
    EXPECT_NE(c.prediction.placement.find("show@cloud"), std::string::npos);
  }

  // minute@edge: pi-1 and pi-2 each send 1/60 aggregate a second; minute@cloud: each sends
  // its reading every second. Each message is one link frame, whose header is 23 bytes
  // (msgpack: array 1, format 1, "pi-1" 1+4, session 9, sequence 5, end 1, count 1).
  //   edge:  2 x (1/60) x (300 + 23) x 86400 =    930,240 bytes a day
  //   cloud: 2 x 1      x (120 + 23) x 86400 = 24,710,400 bytes a day
  // ratio 60 x 143 / 323 = 26.56.
  const Candidate& edge = cs[0];
  const Candidate& cloud = cs[1];
  ASSERT_EQ(edge.prediction.links.size(), 2u);  // pi-1 -> hq, pi-2 -> hq
  ASSERT_EQ(cloud.prediction.links.size(), 2u);
  double edge_msgs = 0, cloud_msgs = 0;
  for (const LinkPrediction& l : edge.prediction.links) edge_msgs += l.messages_per_s;
  for (const LinkPrediction& l : cloud.prediction.links) cloud_msgs += l.messages_per_s;
  EXPECT_NEAR(edge_msgs, 2.0 / 60, 1e-12);
  EXPECT_NEAR(cloud_msgs, 2.0, 1e-12);
  EXPECT_NEAR(edge.bytes_per_day, 930240, 930240 * 0.02);
  EXPECT_NEAR(cloud.bytes_per_day, 24710400, 24710400 * 0.02);
  EXPECT_NEAR(cloud.bytes_per_day / edge.bytes_per_day, 26.56, 26.56 * 0.03);
  EXPECT_GT(edge.wire_bytes_per_day, edge.bytes_per_day);

  // The edge's radio wakes 60 times less often and the aggregate costs next to no CPU: the
  // edge placement is better on both counts, so it alone is on the frontier.
  EXPECT_EQ(edge.edge_nodes_with_energy, 2);
  EXPECT_LT(edge.edge_wh_per_day, cloud.edge_wh_per_day);
  EXPECT_TRUE(edge.frontier);
  EXPECT_FALSE(cloud.frontier);
  EXPECT_TRUE(edge.has_autonomy);
  EXPECT_GT(edge.min_autonomy_h, cloud.min_autonomy_h);
  EXPECT_TRUE(edge.all_positive);  // 60 W in June at 45 N against about 1.5 W
  EXPECT_TRUE(edge.saturated.empty());

  auto by_autonomy = explore(p, weather_profile(20e-6), june(), Objective::kAutonomy, &error);
  ASSERT_EQ(by_autonomy.size(), 2u) << error;
  EXPECT_EQ(by_autonomy[0].placement_text(), "minute@edge");
}

TEST(Explore, AHeavyAggregateTradesBytesForEdgeEnergy) {
  // 50 ms of CPU a reading: 0.05 / 0.12 (rpi-3b speed) = 0.42 busy cores x 0.575 W = 0.24 W
  // on each edge node, more than the radio saves (about 0.038 W of wake-ups a second).
  PipelineSpec p = load(kWeather);
  std::string error;
  auto bytes = explore(p, weather_profile(0.05), june(), Objective::kBytes, &error);
  ASSERT_EQ(bytes.size(), 2u) << error;
  EXPECT_EQ(bytes[0].placement_text(), "minute@edge");
  EXPECT_TRUE(bytes[0].frontier);
  EXPECT_TRUE(bytes[1].frontier);  // fewer edge Wh, more bytes: both on the frontier
  const Candidate& edge = find(bytes, "minute", "edge");
  const Candidate& cloud = find(bytes, "minute", "cloud");
  EXPECT_NEAR(edge.edge_wh_per_day - cloud.edge_wh_per_day, 2 * 24 * (0.24 - 0.038), 2 * 24 * 0.05);

  auto energy = explore(p, weather_profile(0.05), june(), Objective::kEnergy, &error);
  ASSERT_EQ(energy.size(), 2u) << error;
  EXPECT_EQ(energy[0].placement_text(), "minute@cloud");
  auto autonomy = explore(p, weather_profile(0.05), june(), Objective::kAutonomy, &error);
  ASSERT_EQ(autonomy.size(), 2u) << error;
  EXPECT_EQ(autonomy[0].placement_text(), "minute@cloud");

  std::string table = explore_table(energy, Objective::kEnergy, 10);
  EXPECT_NE(table.find("ranked by the edge nodes' Wh a day"), std::string::npos) << table;
  EXPECT_NE(table.find("rank  placement"), std::string::npos) << table;
  size_t first = table.find("   1  minute@cloud"), second = table.find("   2  minute@edge");
  EXPECT_NE(first, std::string::npos) << table;
  EXPECT_NE(second, std::string::npos) << table;
  EXPECT_LT(first, second);
  EXPECT_NE(table.find("MiB"), std::string::npos) << table;  // 23.6 MiB a day of readings
  EXPECT_NE(table.find("KiB"), std::string::npos) << table;  // 908 KiB of aggregates
  EXPECT_NE(table.find("yes  *\n"), std::string::npos) << table;
  // One row: the rest is counted, the frontier row beyond it shown anyway.
  std::string one = explore_table(energy, Objective::kEnergy, 1);
  EXPECT_NE(one.find("   2  minute@edge"), std::string::npos) << one;
}

TEST(Explore, StagesWithoutOnFollowTheirInputAndPinnedOnesStay) {
  PipelineSpec p = load("pipeline: follow\n" + kNodes + R"(stages:
  - {id: sensors, op: weather.simulate}
  - {id: minute, op: weather.aggregate, on: [cloud, edge], from: sensors,
     with: {window: 60s, fields: [temperature], stats: [mean]}}
  - {id: tap, op: log, from: minute}
  - {id: show, op: log, on: pi-2, from: minute}
)");
  EXPECT_EQ(p.stage("tap")->on, "cloud");  // as loaded: minute's first choice
  std::string error;
  auto cs = explore(p, PipelineProfile{}, june(), Objective::kBytes, &error);
  ASSERT_EQ(cs.size(), 2u) << error;
  for (const Candidate& c : cs) {
    const std::string& on = *c.chosen("minute");
    SCOPED_TRACE(on);
    const std::string& line = c.prediction.placement;
    EXPECT_EQ(line, "sensors@edge minute@" + on + " tap@" + on + " show@pi-2");
    EXPECT_EQ(apply_placement(p, c.placement).stage("tap")->on, on);
  }
  EXPECT_FALSE(cs[0].prediction.warnings.empty());  // the stages are not in the profile
}

TEST(Explore, MoreThan4096PlacementsIsAnError) {
  std::string text = "pipeline: many\n" + kNodes + "stages:\n  - {id: s, op: weather.simulate}\n";
  std::string from = "s";
  for (int i = 0; i < 13; ++i) {
    std::string id = "l" + std::to_string(i);
    text += "  - {id: " + id + ", op: log, on: [edge, cloud], from: " + from + "}\n";
    from = id;
  }
  PipelineSpec p = load(text);
  std::string error = "stale";
  auto cs = explore(p, PipelineProfile{}, june(), Objective::kBytes, &error);
  EXPECT_TRUE(cs.empty());
  EXPECT_EQ(error.find("13 movable stages give 8192 placements (2 x 2 x 2"), 0u) << error;
  EXPECT_NE(error.find("at most 4096 are explored: pin some of them"), std::string::npos) << error;
}

TEST(Explore, APlacementTheLoaderWouldRefuseIsSkippedWithItsReason) {
  PipelineSpec p = load("pipeline: frames\n" + kNodes + R"(stages:
  - {id: cam, op: test.explore-frames, on: edge}
  - {id: look, op: log, on: [edge, cloud], from: cam}
)");
  // The rule itself, with and without an image encoder in the build.
  PipelineSpec away = apply_placement(p, {{"look", "cloud"}});
  EXPECT_EQ(placement_problem(away, place(away), false),
            "raw camera frames from 'cam' (on: edge) would cross a link to 'look' (on: cloud); "
            "frames cross links only encoded");
  EXPECT_EQ(placement_problem(away, place(away), true), "");
  PipelineSpec home = apply_placement(p, {{"look", "edge"}});
  EXPECT_EQ(placement_problem(home, place(home), false), "");

  // explore() applies it as this build stands: with the vision plugin's encoder linked in,
  // frames may cross and both placements are candidates; without it, one is skipped.
  const bool encodable = find_blob_encoder_for_port("frame") != nullptr;
  std::string error;
  std::vector<SkippedCandidate> skipped;
  auto cs = explore(p, PipelineProfile{}, june(), Objective::kBytes, &error, &skipped);
  ASSERT_EQ(cs.size(), encodable ? 2u : 1u) << error;
  EXPECT_EQ(cs[0].placement_text(), "look@edge");
  ASSERT_EQ(skipped.size(), encodable ? 0u : 1u);
  if (!encodable) {
    EXPECT_EQ(skipped[0].placement,
              (std::vector<std::pair<std::string, std::string>>{{"look", "cloud"}}));
    EXPECT_EQ(skipped[0].reason, placement_problem(away, place(away), false));
  }

  // When every placement is refused, the error says why (a pinned stage's node gone, reached
  // by hand: the loader refuses it).
  PipelineSpec all = p;
  all.stages[0].on = "pi-9";
  cs = explore(all, PipelineProfile{}, june(), Objective::kBytes, &error, &skipped);
  EXPECT_TRUE(cs.empty());
  EXPECT_EQ(skipped.size(), 2u);
  EXPECT_EQ(error.find("every one of the 2 placements is invalid; the first, look@edge: stage "
                       "'cam' on: pi-9 names no node of the pipeline"),
            0u)
      << error;
}

TEST(Explore, AnObjectiveWithNothingToRankByIsAnError) {
  // No solar on either edge node: autonomy cannot rank.
  std::string text = kWeather;
  const std::string solar = ", solar: {panel_w: 60, battery_wh: 185, lat: 45}";
  for (size_t at; (at = text.find(solar)) != std::string::npos;) text.erase(at, solar.size());
  PipelineSpec p = load(text);
  std::string error;
  EXPECT_TRUE(explore(p, weather_profile(20e-6), june(), Objective::kAutonomy, &error).empty());
  EXPECT_EQ(error.find("objective autonomy: no edge node has both a device: profile and a solar"),
            0u)
      << error;
  auto cs = explore(p, weather_profile(20e-6), june(), Objective::kEnergy, &error);
  ASSERT_EQ(cs.size(), 2u) << error;
  EXPECT_FALSE(cs[0].has_autonomy);
  std::string table = explore_table(cs, Objective::kEnergy, 0);
  EXPECT_NE(table.find(std::string(13, ' ') + "-" + std::string(9, ' ') + "-"), std::string::npos)
      << table;
}

TEST(Explore, ObjectiveNames) {
  for (Objective o : {Objective::kBytes, Objective::kEnergy, Objective::kAutonomy})
    EXPECT_EQ(parse_objective(objective_name(o)), o);
  EXPECT_FALSE(parse_objective("speed"));
}

}  // namespace
}  // namespace edgeflow
