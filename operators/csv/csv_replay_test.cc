#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/operator.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

constexpr int64_t k2024 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z in µs
constexpr int64_t kSecond = 1'000'000;

class CsvReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "edgeflow-csv-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `text` to a CSV file in the temp folder; returns the options to replay it.
  std::string file(const std::string& text, const std::string& extra = "") {
    path_ = (dir_ / "in.csv").string();
    std::ofstream(path_) << text;
    return "{path: \"" + path_ + "\", time_column: time" + extra + "}";
  }

  static double number(const MessagePtr& m, const std::string& field) {
    const Value* v = find_field(m->fields, field);
    return v && v->number() ? *v->number() : -999;
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(CsvReplayTest, ReplaysRowsAsReadings) {
  OperatorHarness h("csv.replay",
                    file("time,temperature,humidity\n"
                         "2024-01-01T00:00:00,21.5,40\n"
                         "2024-01-01T00:00:10,22,\n"),
                    "pi-1", "sensors");
  EXPECT_EQ(h.step().kind, SourceStep::kDone);
  const auto& out = h.output();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]->event_time_us, k2024);
  EXPECT_EQ(out[0]->origin, "pi-1");
  EXPECT_EQ(out[0]->stream, "sensors");
  EXPECT_EQ(out[0]->fields, (Fields{{"temperature", 21.5}, {"humidity", 40.0}}));
  EXPECT_EQ(out[1]->event_time_us, k2024 + 10 * kSecond);
  EXPECT_EQ(out[1]->fields, (Fields{{"temperature", 22.0}}))
      << "an empty cell leaves its field out";
  EXPECT_TRUE(h.errors().empty());
}

TEST_F(CsvReplayTest, ReportsBadRowsWithTheirLineAndGoesOn) {
  OperatorHarness h("csv.replay", file("time,temperature\n"
                                       "2024-01-01T00:00:05,21.5\n"
                                       "2024-01-01T00:00:06,21.6,7\n"
                                       "\n"
                                       "2024-01-01 00:00:07,21.7\n"
                                       "2024-01-01T00:00:08,warm\n"
                                       "2024-01-01T00:00:01,21.9\n"
                                       "2024-01-01T00:00:09,22.0\n"));
  h.run_source(10);
  ASSERT_EQ(h.output().size(), 2u);
  EXPECT_EQ(number(h.output()[1], "temperature"), 22.0);
  ASSERT_EQ(h.errors().size(), 4u);
  EXPECT_EQ(h.errors()[0],
            path_ + ":3: 3 cells where the header has 2 columns (time, temperature)");
  EXPECT_EQ(h.errors()[1], path_ +
                               ":5: column 'time': '2024-01-01 00:00:07' does not match "
                               "time_format '%Y-%m-%dT%H:%M:%S'");
  EXPECT_EQ(h.errors()[2], path_ +
                               ":6: column 'temperature': 'warm' is not a number (list the "
                               "column in text_columns to keep text)");
  EXPECT_EQ(h.errors()[3], path_ +
                               ":7: column 'time': 2024-01-01T00:00:01 is earlier than the row "
                               "before; rows must be in time order");
  EXPECT_EQ(h.output("error").size(), 4u);
}

TEST_F(CsvReplayTest, KeepsTextColumnsAsText) {
  OperatorHarness h("csv.replay", file("station;time;temperature;sky\n"
                                       "\"Oakland; CA\";1704067200;21.5;clear\n",
                                       ", time_format: unix, delimiter: ';', "
                                       "text_columns: [station, sky]"));
  h.run_source(10);
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.output()[0]->event_time_us, k2024);
  EXPECT_EQ(h.output()[0]->fields,
            (Fields{{"station", "Oakland; CA"}, {"temperature", 21.5}, {"sky", "clear"}}));
  EXPECT_TRUE(h.errors().empty());
}

TEST_F(CsvReplayTest, ReadsUnixTimes) {
  OperatorHarness seconds("csv.replay", file("time,v\n1704067200.25,1\n", ", time_format: unix"));
  seconds.run_source(10);
  ASSERT_EQ(seconds.output().size(), 1u);
  EXPECT_EQ(seconds.output()[0]->event_time_us, k2024 + kSecond / 4);

  OperatorHarness millis("csv.replay", file("time,v\n1704067200123,1\n", ", time_format: unix_ms"));
  millis.run_source(10);
  ASSERT_EQ(millis.output().size(), 1u);
  EXPECT_EQ(millis.output()[0]->event_time_us, k2024 + 123'000);
}

TEST_F(CsvReplayTest, PacesByEventTime) {
  OperatorHarness h("csv.replay", file("time,v\n"
                                       "2024-01-01T00:00:00,1\n"
                                       "2024-01-01T00:00:00,2\n"
                                       "2024-01-01T00:00:01,3\n"
                                       "2024-01-01T00:01:00,4\n",
                                       ", speed: 1"));
  const int64_t start = h.now_us();
  SourceStep s = h.step();
  EXPECT_EQ(s.kind, SourceStep::kWaitUntil);
  EXPECT_EQ(s.wake_us, start + kSecond);
  EXPECT_EQ(h.output().size(), 2u) << "rows due now go at once";

  h.advance_clock(kSecond - 1);
  s = h.step();
  EXPECT_EQ(s.kind, SourceStep::kWaitUntil);
  EXPECT_EQ(s.wake_us, start + kSecond);
  EXPECT_EQ(h.output().size(), 2u) << "not yet due";

  h.advance_clock(1);
  s = h.step();
  EXPECT_EQ(h.output().size(), 3u);
  EXPECT_EQ(s.kind, SourceStep::kWaitUntil);
  EXPECT_EQ(s.wake_us, start + 60 * kSecond);

  h.set_clock(start + 60 * kSecond);
  EXPECT_EQ(h.step().kind, SourceStep::kDone);
  EXPECT_EQ(h.output().size(), 4u);
}

TEST_F(CsvReplayTest, SpeedSixtyPlaysAMinutePerSecond) {
  OperatorHarness h("csv.replay", file("time,v\n"
                                       "2024-01-01T00:00:00,1\n"
                                       "2024-01-01T00:01:00,2\n"
                                       "2024-01-01T01:00:00,3\n",
                                       ", speed: 60"));
  const int64_t start = h.now_us();
  EXPECT_EQ(h.step().wake_us, start + kSecond);
  h.advance_clock(kSecond);
  EXPECT_EQ(h.step().wake_us, start + 60 * kSecond);
  EXPECT_EQ(h.output().size(), 2u);
}

TEST_F(CsvReplayTest, EmitsAtMost256RowsPerCall) {
  std::string text = "time,v\n";
  for (int i = 0; i < 600; ++i)
    text += std::to_string(1704067200 + i) + "," + std::to_string(i) + "\n";
  OperatorHarness h("csv.replay", file(text, ", time_format: unix"));
  EXPECT_EQ(h.step().kind, SourceStep::kEmitted);
  EXPECT_EQ(h.output().size(), 256u);
  EXPECT_EQ(h.step().kind, SourceStep::kEmitted);
  EXPECT_EQ(h.step().kind, SourceStep::kDone);
  EXPECT_EQ(h.output().size(), 600u);
  EXPECT_EQ(number(h.output()[599], "v"), 599.0);
}

// A file with a line of megabytes (a binary, a log without line ends) is a bad row at its
// line, with the cap named, and replay goes on.
TEST_F(CsvReplayTest, OverLongLineIsAnErrorNamingFileLineAndCap) {
  OperatorHarness h("csv.replay", file("time,temperature\n"
                                       "2024-01-01T00:00:05,21.5\n" +
                                       std::string(3 << 20, '9') +
                                       "\n"
                                       "2024-01-01T00:00:09,22.0\n"));
  h.run_source(10);
  ASSERT_EQ(h.output().size(), 2u);
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_EQ(h.errors()[0], path_ + ":3: line is longer than the 1048576-byte limit of a CSV line");
}

TEST_F(CsvReplayTest, OverLongHeaderFailsAtOpen) {
  OperatorHarness h("csv.replay", file(std::string(2 << 20, 't') + "\n"));
  try {
    h.open();
    FAIL() << "open() should throw";
  } catch (const OperatorError& e) {
    EXPECT_EQ(std::string(e.what()),
              path_ + ":1: header: line is longer than the 1048576-byte limit of a CSV line");
  }
}

TEST_F(CsvReplayTest, MissingTimeColumnFailsAtOpenNamingTheColumns) {
  OperatorHarness h("csv.replay", file("tme,temperature\n1,2\n"));
  try {
    h.open();
    FAIL() << "open() should throw";
  } catch (const OperatorError& e) {
    EXPECT_EQ(std::string(e.what()), "'" + path_ +
                                         "' has no column 'time' (time_column); its columns: "
                                         "tme, temperature; did you mean 'tme'?");
  }
}

TEST_F(CsvReplayTest, UnknownTextColumnFailsAtOpen) {
  OperatorHarness h("csv.replay", file("time,temperature\n", ", text_columns: [station]"));
  EXPECT_THROW(h.open(), OperatorError);
}

TEST_F(CsvReplayTest, MissingFileFailsAtOpen) {
  std::string path = (dir_ / "absent.csv").string();
  OperatorHarness h("csv.replay", "{path: \"" + path + "\", time_column: time}");
  try {
    h.open();
    FAIL() << "open() should throw";
  } catch (const OperatorError& e) {
    EXPECT_EQ(
        std::string(e.what()).rfind("cannot open '" + path + "': No such file or directory; ", 0),
        0u)
        << e.what();
  }
}

TEST_F(CsvReplayTest, BadOptionsAreLoadErrors) {
  std::string options = "{path: x.csv, time_column: time";
  EXPECT_NE(OperatorHarness::option_problems("csv.replay", options + ", speed: -1}")
                .find("option 'speed' must be >= 0"),
            std::string::npos);
  EXPECT_NE(OperatorHarness::option_problems("csv.replay", options + ", delimiter: ';;'}")
                .find("option 'delimiter': must be one character"),
            std::string::npos);
  EXPECT_NE(OperatorHarness::option_problems("csv.replay", options + ", time_format: iso}")
                .find("option 'time_format': 'iso' is neither unix, unix_ms nor a time format"),
            std::string::npos);
  EXPECT_EQ(OperatorHarness::option_problems("csv.replay", options + "}"), "");
}

// The year of hourly San Francisco temperatures that ships in the repository
// (pipelines/data/README.md names its source).
TEST(CsvReplay, ReplaysTheSanFranciscoTemperatures) {
  const char* source_dir = std::getenv("EDGEFLOW_SOURCE_DIR");
  fs::path path = fs::path(source_dir ? source_dir : ".") / "pipelines" / "data" / "sf-temps.csv";
  ASSERT_TRUE(fs::exists(path)) << path << " is absent: it ships in the repository";
  OperatorHarness h("csv.replay", "{path: \"" + path.string() +
                                      "\", time_column: date, time_format: \"%Y/%m/%d %H:%M:%S\"}");
  h.run_source(1000);
  EXPECT_TRUE(h.errors().empty()) << h.errors()[0];
  ASSERT_EQ(h.output().size(), 8759u);
  EXPECT_EQ(h.output()[0]->event_time_us, 1'262'304'000'000'000);  // 2010-01-01T00:00:00Z
  EXPECT_EQ(h.output()[0]->fields, (Fields{{"temp", 47.8}}));
}

}  // namespace
}  // namespace edgeflow
