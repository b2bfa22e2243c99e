// The planner as a user drives it: profile the weather station, plan its two placements, run
// each with a report (real MQTT links through the embedded mosquitto) and check the
// prediction against the measurement; the errors a user meets on the way.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace edgeflow {
namespace {

using edgeflow::testing::edgeflow_binary;
using edgeflow::testing::make_temp_dir;
using edgeflow::testing::ProcessResult;
using edgeflow::testing::read_file;
using edgeflow::testing::run_process;
using edgeflow::testing::source_dir;
using edgeflow::testing::write_file;
using json = nlohmann::json;

ProcessResult edgeflow(std::vector<std::string> args, double timeout = 120) {
  args.insert(args.begin(), edgeflow_binary());
  return run_process(args, timeout);
}

// The profile every test uses: 10 s of the weather station (10 simulated minutes per node).
// CTest runs each test in a process of its own, so each makes it: keep it short.
class Planner : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = make_temp_dir();
    file_ = dir_ + "/weather-station.yaml";
    write_file(file_, read_file(source_dir() + "/pipelines/weather-station.yaml"));
    ProcessResult r = edgeflow({"profile", file_, "--for", "10s"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    profile_ = json::parse(read_file(dir_ + "/weather-station.profile.json"));
  }
  static json plan(std::vector<std::string> extra) {
    std::vector<std::string> args = {"plan", file_, "--json", "--month", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    ProcessResult r = edgeflow(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
  }
  static json node(const json& plan, const std::string& name) {
    for (const json& n : plan["nodes"])
      if (n["node"] == name) return n;
    ADD_FAILURE() << "no node " << name;
    return json::object();
  }
  static double link_bytes(const json& plan) {
    double b = 0;
    for (const json& l : plan["links"]) b += l["bytes_per_day"].get<double>();
    return b;
  }
  static std::string dir_, file_;
  static json profile_;
};
std::string Planner::dir_, Planner::file_;
json Planner::profile_;

TEST_F(Planner, ProfileHoldsCostPerMessageAndEventTimeRates) {
  ASSERT_TRUE(profile_.contains("stages"));
  std::map<std::string, json> by;
  for (const json& s : profile_["stages"]) by[s["stage"]] = s;
  // weather.simulate ticks every simulated second at 60x: one reading a second in event
  // time, per node, whatever the wall clock did.
  EXPECT_NEAR(by["sensors"]["rate_per_copy"].get<double>(), 1.0, 0.01);
  EXPECT_EQ(by["sensors"]["copies"], 2);
  // A one-minute window per origin: about one aggregate per 60 readings (the last, partial
  // window of each node adds one).
  double per_in = by["minute"]["ports"][0]["out_per_in"].get<double>();
  EXPECT_GT(per_in, 1.0 / 62);
  EXPECT_LT(per_in, 1.0 / 50);
  EXPECT_GT(by["minute"]["cpu_ns_per_message"].get<double>(), 0);
  EXPECT_GT(by["sensors"]["ports"][0]["bytes_per_message"].get<double>(), 50);
  EXPECT_TRUE(profile_["links"]["measured"].get<bool>());
}

TEST_F(Planner, MovingTheWindowToTheCloudMultipliesTheLinkBytes) {
  json edge = plan({});
  json cloud = plan({"--set", "minute.on=cloud"});
  ASSERT_EQ(edge["links"].size(), 2u);  // pi-1 and pi-2 to the cloud
  ASSERT_EQ(cloud["links"].size(), 2u);
  for (const json& l : edge["links"]) {
    EXPECT_EQ(l["link"], "minute->show");
    EXPECT_EQ(l["to_node"], "cloud");
    // One aggregate a minute: 1440 a day.
    EXPECT_NEAR(l["messages_per_s"].get<double>() * 86400, 1440, 1440 * 0.2);
  }
  for (const json& l : cloud["links"]) {
    EXPECT_EQ(l["link"], "sensors->minute");
    EXPECT_NEAR(l["messages_per_s"].get<double>(), 1.0, 0.01);
  }
  // 60 readings of ~130 bytes for each aggregate of ~330: about 20x more bytes.
  double ratio = link_bytes(cloud) / link_bytes(edge);
  EXPECT_GT(ratio, 12);
  EXPECT_LT(ratio, 40);
  // The keys the issue names.
  for (const json& n : edge["nodes"])
    for (const char* k : {"node", "cpu_util", "watts", "wh_per_day", "harvest_wh_per_day",
                          "autonomy_h", "positive"})
      EXPECT_TRUE(n.contains(k)) << k;
}

TEST_F(Planner, TheSeedDeviceIsEnergyPositive) {
  // pi-1: a Raspberry Pi 3B, 60 W panel, 185 Wh battery at 36.8 N, in January.
  json p = plan({});
  json pi1 = node(p, "pi-1");
  EXPECT_EQ(pi1["device"], "rpi-3b");
  EXPECT_TRUE(pi1["positive"].get<bool>());
  EXPECT_GT(pi1["harvest_wh_per_day"].get<double>(), pi1["wh_per_day"].get<double>() * 2);
  // 185 Wh x 0.8 usable over about 1.4-1.5 W: 100-106 h, more than two days without sun.
  EXPECT_GT(pi1["autonomy_h"].get<double>(), 48);
  EXPECT_LT(pi1["autonomy_h"].get<double>(), 110);
  // pi-2 has no solar: no verdict, but watts from its profile.
  json pi2 = node(p, "pi-2");
  EXPECT_TRUE(pi2["positive"].is_null());
  EXPECT_GT(pi2["watts"].get<double>(), 0.3);
}

// A real run of each placement, with real MQTT links: the prediction at the rates its sources
// produced against what the links and stages counted.
void check_compare(const std::string& file, const std::string& dir,
                   std::vector<std::string> placement) {
  const std::string report = dir + "/report.json";
  std::vector<std::string> run = {"run", file, "--for", "12s", "--quiet", "--report", report};
  run.insert(run.end(), placement.begin(), placement.end());
  ProcessResult r = edgeflow(run, 90);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json rep = json::parse(read_file(report));
  ASSERT_TRUE(rep.contains("nodes"));
  std::vector<std::string> cmp = {"plan", file, "--json", "--compare", report};
  cmp.insert(cmp.end(), placement.begin(), placement.end());
  ProcessResult c = edgeflow(cmp);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json j = json::parse(c.out);
  ASSERT_EQ(j["links"].size(), 2u) << c.out;
  for (const json& l : j["links"]) {
    EXPECT_LT(std::abs(l["error_pct"]["messages_per_s"].get<double>()), 10) << l.dump();
    EXPECT_LT(std::abs(l["error_pct"]["payload_bytes_per_s"].get<double>()), 10) << l.dump();
    EXPECT_LT(std::abs(l["error_pct"]["wire_bytes_per_s"].get<double>()), 10) << l.dump();
  }
  // CPU, summed over the nodes, only within a factor of 5: CPU time per message on this
  // shared 2-core machine varied up to 4x between a profile and a run when other tests ran
  // beside them (identical copies in one run differ by a third). The factor still catches a
  // model off by the 60x of the simulation's speed-up, or a link end counted twice.
  double pred = 0, meas = 0;
  for (const json& n : j["nodes"]) {
    pred += n["predicted"]["cpu_core_seconds_per_s"].get<double>();
    meas += n["measured"]["cpu_core_seconds_per_s"].get<double>();
  }
  EXPECT_GT(meas, 0);
  EXPECT_GT(pred, meas / 5) << c.out;
  EXPECT_LT(pred, meas * 5) << c.out;
}

TEST_F(Planner, PredictionMatchesARunWithTheWindowAtTheEdge) { check_compare(file_, dir_, {}); }

TEST_F(Planner, PredictionMatchesARunWithTheWindowInTheCloud) {
  check_compare(file_, dir_, {"--set", "minute.on=cloud"});
}

TEST_F(Planner, ExploreRanksThePlacementsOfTheMovableWindow) {
  // The shipped file marks minute `on: [edge, cloud]`.
  json e = plan({"--explore"});
  ASSERT_EQ(e["candidates"].size(), 2u);
  json best = e["candidates"][0];
  EXPECT_EQ(best["rank"], 1);
  EXPECT_EQ(best["placement"]["minute"], "edge");
  EXPECT_TRUE(best["frontier"].get<bool>());
  EXPECT_EQ(e["candidates"][1]["placement"]["minute"], "cloud");
  EXPECT_GT(e["candidates"][1]["bytes_per_day"].get<double>(),
            10 * best["bytes_per_day"].get<double>());
  // The table names both, best first.
  ProcessResult r = edgeflow({"plan", file_, "--explore", "--objective", "autonomy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(r.out.find("minute@edge"), r.out.find("minute@cloud")) << r.out;
}

// Profiling on sample data: --set STAGE.op swaps the source for a replay of a file (here a
// year of hourly San Francisco temperatures that ships in the repository).
TEST(PlannerSample, ASourceSwappedForAFileIsProfiledAtTheFilesRate) {
  const std::string dir = make_temp_dir();
  const std::string file = dir + "/sample.yaml";
  write_file(file, R"(pipeline: sample
nodes: {pi: {tier: edge, device: rpi-3b}, cloud: {tier: cloud}}
stages:
  - {id: sensors, op: weather.simulate, on: edge, with: {period: 1s, speed: 60}}
  - {id: daily, op: weather.aggregate, on: edge, from: sensors,
     with: {window: 1d, fields: [temp], stats: [mean]}}
  - {id: show, op: log, on: cloud, from: daily}
)");
  ProcessResult r =
      edgeflow({"profile", file, "--for", "30s", "--set", "sensors.op=csv.replay", "--set",
                "sensors.path=" + source_dir() + "/pipelines/data/sf-temps.csv", "--set",
                "sensors.time_column=date", "--set", "sensors.time_format=%Y/%m/%d %H:%M:%S"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json p = json::parse(read_file(dir + "/sample.profile.json"));
  std::map<std::string, json> by;
  for (const json& s : p["stages"]) by[s["stage"]] = s;
  EXPECT_EQ(by["sensors"]["op"], "csv.replay");
  // Hourly rows: one reading an hour in event time, however fast the file was read.
  EXPECT_NEAR(by["sensors"]["rate_per_copy"].get<double>() * 3600, 1.0, 0.05);
  // A daily window: one mean per 24 readings.
  double per_in = by["daily"]["ports"][0]["out_per_in"].get<double>();
  EXPECT_NEAR(per_in * 24, 1.0, 0.1);
  // Planning the file as written: the replay stands in for its source, said in a warning.
  ProcessResult plan = edgeflow({"plan", file, "--json", "--month", "1"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  json j = json::parse(plan.out);
  ASSERT_EQ(j["links"].size(), 1u) << plan.out;
  EXPECT_NEAR(j["links"][0]["messages_per_s"].get<double>() * 86400, 1.0, 0.1);  // a mean a day
  ASSERT_EQ(j["warnings"].size(), 1u) << plan.out;
  EXPECT_NE(j["warnings"][0].get<std::string>().find("profiled as csv.replay, standing in for "
                                                     "weather.simulate"),
            std::string::npos);
}

TEST_F(Planner, SvgDrawsNodesStagesAndLinkBytes) {
  const std::string svg = dir_ + "/plan.svg";
  ProcessResult r = edgeflow({"plan", file_, "--svg", svg});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string s = read_file(svg);
  EXPECT_EQ(s.rfind("<svg", 0), 0u);
  for (const char* text : {"pi-1", "pi-2", "cloud", "minute", "weather.aggregate", "/day"})
    EXPECT_NE(s.find(text), std::string::npos) << text;
  EXPECT_NE(s.find("#d8f0d8"), std::string::npos);  // pi-1: energy-positive, green
}

TEST_F(Planner, ErrorsNameTheFix) {
  // No profile beside the file.
  const std::string other = dir_ + "/other.yaml";
  write_file(other, read_file(file_));
  ProcessResult r = edgeflow({"plan", other});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("edgeflow profile " + other), std::string::npos) << r.err;
  // A rate for a stage that is not a source.
  r = edgeflow({"plan", file_, "--rate", "minute=5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--rate takes SOURCE_STAGE=MESSAGES_PER_SECOND"), std::string::npos);
  // A move to a node that does not exist: the loader's error, with the nearest name.
  r = edgeflow({"plan", file_, "--set", "minute.on=pi-3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("pi-3"), std::string::npos) << r.err;
  // A report of another pipeline.
  const std::string bad = dir_ + "/bad-report.json";
  write_file(bad, R"({"pipeline": "something-else", "stages": [], "links": []})");
  r = edgeflow({"plan", file_, "--compare", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not 'weather-station'"), std::string::npos) << r.err;
  // A month out of range.
  EXPECT_EQ(edgeflow({"plan", file_, "--month", "13"}).exit_code, 2);
  // A higher rate scales the links: 2 readings a second doubles the aggregates.
  json base = plan({});
  json twice = plan({"--rate", "sensors=2"});
  EXPECT_NEAR(twice["links"][0]["messages_per_s"].get<double>(),
              2 * base["links"][0]["messages_per_s"].get<double>(), 1e-9);
}

}  // namespace
}  // namespace edgeflow
