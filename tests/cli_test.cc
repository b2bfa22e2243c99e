// The edgeflow binary driven as a user drives it: exit codes, messages, the example
// pipelines and their results checked against independent computations.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/support/process.h"

namespace edgeflow {
namespace {

using edgeflow::testing::edgeflow_binary;
using edgeflow::testing::pipeline_data;
using edgeflow::testing::ProcessResult;
using edgeflow::testing::read_file;
using edgeflow::testing::run_process;
using edgeflow::testing::source_dir;
using json = nlohmann::json;

ProcessResult edgeflow(std::vector<std::string> args, double timeout = 120) {
  args.insert(args.begin(), edgeflow_binary());
  return run_process(args, timeout);
}

std::string pipeline(const std::string& name) { return source_dir() + "/pipelines/" + name; }

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

TEST(Cli, VersionAndHelp) {
  ProcessResult v = edgeflow({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("edgeflow 0."), std::string::npos) << v.out;
  for (std::string sub : {"validate", "run", "ops"}) {
    ProcessResult sv = edgeflow({sub, "--version"});
    EXPECT_EQ(sv.exit_code, 0) << sub;
    EXPECT_NE(sv.out.find("edgeflow 0."), std::string::npos) << sub;
    ProcessResult h = edgeflow({sub, "--help"});
    EXPECT_EQ(h.exit_code, 0) << sub;
    EXPECT_NE(h.out.find("Usage"), std::string::npos) << sub;
  }
  EXPECT_EQ(edgeflow({}).exit_code, 2);
  EXPECT_EQ(edgeflow({"frobnicate"}).exit_code, 2);
}

TEST(Cli, EveryExamplePipelineValidates) {
  for (std::string name : {"weather-station.yaml", "sf-daily.yaml", "sf-warm-hours.yaml"}) {
    ProcessResult r = edgeflow({"validate", pipeline(name)});
    EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.err;
    EXPECT_NE(r.out.find(": ok, pipeline"), std::string::npos) << r.out;
  }
}

TEST(Cli, InvalidFileExitsWith2AndNamesThePlace) {
  std::string file = source_dir() + "/tests/pipelines/broken/05-unknown-operator.yaml";
  ProcessResult r = edgeflow({"validate", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(file + ":4:9: stage 'sensors': unknown operator 'weather.simulat'"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("did you mean 'weather.simulate'?"), std::string::npos) << r.err;
  EXPECT_EQ(edgeflow({"run", file}).exit_code, 2);
  ProcessResult missing = edgeflow({"validate", "/nonexistent/pipeline.yaml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot read the file: No such file or directory"), std::string::npos);
}

// The registrars survive static linking into the real binary: every operator is there.
TEST(Cli, ListsEveryRegisteredOperator) {
  ProcessResult r = edgeflow({"ops"});
  ASSERT_EQ(r.exit_code, 0);
  for (std::string op : {"csv.replay", "file.write", "filter", "log", "map", "weather.aggregate",
                         "weather.simulate"}) {
    EXPECT_NE(r.out.find(op + " "), std::string::npos) << op << " missing from:\n" << r.out;
  }
  ProcessResult one = edgeflow({"ops", "weather.aggregate"});
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_NE(one.out.find("allowed_lateness"), std::string::npos);
  EXPECT_EQ(edgeflow({"ops", "weather.agregate"}).exit_code, 2);
}

TEST(Cli, OperatorDocsAreCurrent) {
  ProcessResult r = edgeflow({"ops", "--markdown"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, read_file(source_dir() + "/docs/operators.md"))
      << "docs/operators.md is stale: run `edgeflow ops --markdown > docs/operators.md`";
}

struct DayStats {
  int count = 0;
  double min = 1e300, max = -1e300, sum = 0;
};

// Daily figures of sf-temps.csv computed here, independently of edgeflow's CSV reader and
// windows: the date is the first 10 characters of the date column.
std::map<std::string, DayStats> independent_daily_stats() {
  std::istringstream in(read_file(pipeline_data("sf-temps.csv")));
  std::map<std::string, DayStats> days;
  std::string line;
  std::getline(in, line);  // header: temp,date
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    size_t comma = line.find(',');
    double temp = std::stod(line.substr(0, comma));
    std::string day = line.substr(comma + 1, 10);  // 2010/01/01
    day[4] = day[7] = '-';
    DayStats& d = days[day];
    d.count++;
    d.min = std::min(d.min, temp);
    d.max = std::max(d.max, temp);
    d.sum += temp;
  }
  return days;
}

TEST(Cli, SfDailyAggregatesMatchAnIndependentComputation) {
  ASSERT_FALSE(read_file(pipeline_data("sf-temps.csv")).empty()) << "pipelines/data/sf-temps.csv";
  ProcessResult r = edgeflow({"run", pipeline("sf-daily.yaml"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto expected = independent_daily_stats();
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), expected.size()) << "one aggregate per day";
  for (const json& j : lines) {
    std::string day = j["window_start"].get<std::string>().substr(0, 10);
    ASSERT_TRUE(expected.count(day)) << day;
    const DayStats& d = expected[day];
    EXPECT_EQ(j["temp_count"].get<int>(), d.count) << day;
    EXPECT_DOUBLE_EQ(j["temp_min"].get<double>(), d.min) << day;
    EXPECT_DOUBLE_EQ(j["temp_max"].get<double>(), d.max) << day;
    EXPECT_NEAR(j["temp_mean"].get<double>(), d.sum / d.count, 1e-9) << day;
  }
}

TEST(Cli, SfWarmHoursWritesTheHoursAbove20C) {
  ASSERT_FALSE(read_file(pipeline_data("sf-temps.csv")).empty()) << "pipelines/data/sf-temps.csv";
  std::string dir = edgeflow::testing::make_temp_dir();
  std::string out = dir + "/warm.jsonl", report = dir + "/report.json";
  ProcessResult r = edgeflow({"run", pipeline("sf-warm-hours.yaml"), "--quiet", "--set",
                              "out.path=" + out, "--report", report});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(read_file(pipeline_data("sf-temps.csv")));
  std::string line;
  std::getline(in, line);
  int hot = 0;
  while (std::getline(in, line))
    if (!line.empty() && (std::stod(line) - 32) * 5 / 9 > 20) ++hot;
  auto lines = json_lines(read_file(out));
  ASSERT_EQ(static_cast<int>(lines.size()), hot);
  ASSERT_GT(hot, 0);
  EXPECT_GT(lines[0]["temp_c"].get<double>(), 20);
  EXPECT_FALSE(lines[0].contains("temp")) << "map dropped it";
  EXPECT_EQ(lines[0]["node"], "edge");
  EXPECT_EQ(lines[0]["ts"].get<std::string>().back(), 'Z');

  json rep = json::parse(read_file(report));
  EXPECT_EQ(rep["pipeline"], "sf-warm-hours");
  for (const json& s : rep["stages"]) {
    for (std::string key : {"in", "out", "errors", "cpu_seconds", "queue_high_water"})
      EXPECT_TRUE(s.contains(key)) << key;
    if (s["stage"] == "out") {
      EXPECT_EQ(s["in"].get<int>(), hot);
    }
    if (s["stage"] == "replay") {
      EXPECT_EQ(s["out"].get<int>(), 8759);
    }
  }
}

TEST(Cli, WeatherStationPrintsAggregatesFromEachEdgeNode) {
  ProcessResult r = edgeflow({"run", pipeline("weather-station.yaml"), "--for", "3s"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (std::string node : {" pi-1 minute ", " pi-2 minute "}) {
    EXPECT_NE(r.out.find(node), std::string::npos) << node << " in:\n" << r.out;
  }
  EXPECT_NE(r.out.find("temperature_mean="), std::string::npos);
  EXPECT_NE(r.out.find("dew_point="), std::string::npos);
  EXPECT_NE(r.err.find("finished (--for 3s)"), std::string::npos) << r.err;
}

// Ctrl-C: everything accepted reaches the file, and the exit code says a signal ended it.
TEST(Cli, InterruptFlushesEveryAcceptedMessage) {
  std::string dir = edgeflow::testing::make_temp_dir();
  std::string file = dir + "/p.yaml", out = dir + "/out.jsonl", report = dir + "/report.json";
  edgeflow::testing::write_file(file, R"(
pipeline: endless
stages:
  - {id: sensors, op: weather.simulate, with: {period: 10ms}}
  - {id: out, op: file.write, from: sensors, with: {path: out.jsonl}}
)");
  // --foreground: without it timeout signals the child and then its whole process group, and
  // a second SIGINT means "exit at once" to edgeflow.
  ProcessResult r = run_process({"timeout", "--foreground", "--preserve-status", "-s", "INT", "2",
                                 edgeflow_binary(), "run", file, "--report", report},
                                60);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  EXPECT_NE(r.err.find("SIGINT received"), std::string::npos) << r.err;
  json rep = json::parse(read_file(report));
  int accepted = -1;
  for (const json& s : rep["stages"])
    if (s["stage"] == "sensors") accepted = s["out"].get<int>();
  EXPECT_GT(accepted, 10);
  EXPECT_EQ(static_cast<int>(json_lines(read_file(out)).size()), accepted);
}

TEST(Cli, MissingInputFileExits1NamingThePath) {
  ProcessResult r =
      edgeflow({"run", pipeline("sf-daily.yaml"), "--set", "replay.path=/nonexistent/temps.csv"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("stage 'replay'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/temps.csv"), std::string::npos) << r.err;
}

TEST(Cli, BadSetAndBadForAreUsageErrors) {
  EXPECT_EQ(edgeflow({"run", pipeline("sf-daily.yaml"), "--set", "nonsense"}).exit_code, 2);
  EXPECT_EQ(edgeflow({"run", pipeline("sf-daily.yaml"), "--for", "soon"}).exit_code, 2);
  ProcessResult r = edgeflow({"run", pipeline("sf-daily.yaml"), "--set", "daily.window=-1d"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("option 'window' must be > 0s (got -1d)"), std::string::npos) << r.err;
  // A typo in the stage name is an error, not a --set quietly ignored.
  r = edgeflow({"run", pipeline("sf-daily.yaml"), "--set", "dialy.window=2d"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--set dialy.window: no stage 'dialy'"), std::string::npos) << r.err;
}

// `edgeflow operator add|remove`: the digest file the dashboard checks, mode 0600; and a
// cloud config naming a file others may read is refused with the chmod that fixes it.
TEST(Cli, OperatorFileIsPrivateAndHoldsOneDigestPerOperator) {
  const std::string dir = edgeflow::testing::make_temp_dir();
  const std::string file = dir + "/operators.digest";
  ProcessResult shrt =
      run_process({edgeflow_binary(), "operator", "add", file, "bob"}, 20, "short\n");
  EXPECT_EQ(shrt.exit_code, 2) << shrt.err;
  EXPECT_NE(shrt.err.find("at least 8 characters"), std::string::npos) << shrt.err;
  for (const char* name : {"alice", "bob"}) {
    ProcessResult r =
        run_process({edgeflow_binary(), "operator", "add", file, name}, 20, "long enough 1\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string text = read_file(file);
  EXPECT_TRUE(std::regex_search(text, std::regex("(^|\n)alice:edgeflow:[0-9a-f]{32}\n"))) << text;
  EXPECT_EQ(text.find("long enough"), std::string::npos) << "the password itself is kept";
  ASSERT_EQ(run_process({edgeflow_binary(), "operator", "remove", file, "alice"}, 20).exit_code, 0);
  text = read_file(file);
  EXPECT_EQ(text.find("alice:"), std::string::npos) << text;
  EXPECT_NE(text.find("bob:edgeflow:"), std::string::npos) << text;
  ProcessResult colon =
      run_process({edgeflow_binary(), "operator", "add", file, "a:b"}, 20, "long enough 1\n");
  EXPECT_EQ(colon.exit_code, 2) << colon.err;

  chmod(file.c_str(), 0644);
  edgeflow::testing::write_file(dir + "/cloud.yaml",
                                "node: cloud\nbroker: tcp://127.0.0.1:1\ndata_dir: " + dir +
                                    "/data\noperators: operators.digest\n");
  ProcessResult loose =
      run_process({edgeflow_binary(), "cloud", "--config", dir + "/cloud.yaml"}, 20);
  EXPECT_EQ(loose.exit_code, 2) << loose.err;
  EXPECT_NE(loose.err.find("chmod 600 " + file), std::string::npos) << loose.err;
}

}  // namespace
}  // namespace edgeflow
