// weather.aggregate through the one-operator harness: output records, timers, origins, late
// readings and option errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

constexpr int64_t kS = 1'000'000;
// 2026-06-01T00:00:00Z: a whole number of minutes since the epoch, so windows start on it.
constexpr int64_t kT0 = 1'780'272'000 * kS;

std::vector<std::string> keys(const Message& m) {
  std::vector<std::string> out;
  for (const Field& f : m.fields) out.push_back(f.key);
  return out;
}

double number(const Message& m, const std::string& key) {
  const Value* v = find_field(m.fields, key);
  EXPECT_TRUE(v && v->is_number()) << "no number '" << key << "' in " << to_json(m.fields);
  return v && v->number() ? *v->number() : -999;
}

std::string text(const Message& m, const std::string& key) {
  const Value* v = find_field(m.fields, key);
  return v && v->string() ? *v->string() : "<missing " + key + ">";
}

TEST(WeatherAggregate, TumblingWindowCountsMinMeanMax) {
  OperatorHarness h("weather.aggregate", "{window: 60s, fields: [temperature, pressure]}");
  h.push_reading(kT0 + 0 * kS, {{"temperature", 20.0}, {"pressure", 1013.0}});
  h.push_reading(kT0 + 10 * kS, {{"temperature", 22.0}, {"pressure", 1012.0}});
  h.push_reading(kT0 + 30 * kS, {{"temperature", 24.5}, {"pressure", 1014.5}});
  EXPECT_TRUE(h.output().empty());  // the minute is not over
  h.push_reading(kT0 + 60 * kS, {{"temperature", 18.0}, {"pressure", 1010.0}});
  ASSERT_EQ(h.output().size(), 1u);  // closed by the watermark, before end of input
  h.push_reading(kT0 + 70 * kS, {{"temperature", 19.0}});  // pressure missing: not counted
  h.finish();

  const auto& out = h.output();
  ASSERT_EQ(out.size(), 2u);
  const Message& first = *out[0];
  EXPECT_EQ(keys(first),
            (std::vector<std::string>{"window_start", "window_end", "count", "temperature_min",
                                      "temperature_mean", "temperature_max", "pressure_min",
                                      "pressure_mean", "pressure_max"}));
  EXPECT_EQ(text(first, "window_start"), "2026-06-01T00:00:00Z");
  EXPECT_EQ(text(first, "window_end"), "2026-06-01T00:01:00Z");
  EXPECT_EQ(*find_field(first.fields, "count"), Value(int64_t{3}));
  EXPECT_DOUBLE_EQ(number(first, "temperature_min"), 20.0);
  EXPECT_DOUBLE_EQ(number(first, "temperature_mean"), 66.5 / 3);
  EXPECT_DOUBLE_EQ(number(first, "temperature_max"), 24.5);
  EXPECT_DOUBLE_EQ(number(first, "pressure_mean"), 3039.5 / 3);
  EXPECT_EQ(first.event_time_us, kT0 + 60 * kS);
  EXPECT_EQ(first.origin, "edge");
  EXPECT_EQ(first.stream, "under-test");

  const Message& second = *out[1];
  EXPECT_EQ(*find_field(second.fields, "count"), Value(int64_t{2}));
  EXPECT_DOUBLE_EQ(number(second, "temperature_mean"), 18.5);
  EXPECT_DOUBLE_EQ(number(second, "pressure_max"), 1010.0);
  EXPECT_TRUE(h.errors().empty());
}

TEST(WeatherAggregate, EveryStatInTheOrderGiven) {
  OperatorHarness h("weather.aggregate",
                    "{window: 1m, fields: [t], stats: [last, count, stddev, sum, first, min]}");
  h.push_reading(kT0 + 20 * kS, {{"t", 21.0}});
  h.push_reading(kT0 + 10 * kS, {{"t", 20.5}});  // out of order, still within the window
  h.push_reading(kT0 + 40 * kS, {{"t", 23.5}});
  h.push_reading(kT0 + 50 * kS, {{"t", "n/a"}, {"other", 1}});  // no numeric field: an error
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  const Message& m = *h.output()[0];
  EXPECT_EQ(keys(m),
            (std::vector<std::string>{"window_start", "window_end", "count", "t_last", "t_count",
                                      "t_stddev", "t_sum", "t_first", "t_min"}));
  EXPECT_EQ(*find_field(m.fields, "t_count"), Value(int64_t{3}));
  EXPECT_DOUBLE_EQ(number(m, "t_last"), 23.5);
  EXPECT_DOUBLE_EQ(number(m, "t_first"), 20.5);
  EXPECT_DOUBLE_EQ(number(m, "t_sum"), 65.0);
  EXPECT_NEAR(number(m, "t_stddev"), 1.6072751268321592, 1e-12);  // mean 21.6667, n - 1 = 2
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_NE(h.errors()[0].find("none of the fields to aggregate (t)"), std::string::npos)
      << h.errors()[0];
  EXPECT_EQ(h.output("error").size(), 1u);
}

TEST(WeatherAggregate, SlidingWindowsOverlap) {
  OperatorHarness h("weather.aggregate",
                    "{window: 60s, slide: 30s, fields: [temperature], stats: [mean]}");
  h.push_reading(kT0 + 10 * kS, {{"temperature", 20.0}});
  h.push_reading(kT0 + 40 * kS, {{"temperature", 22.0}});
  h.push_reading(kT0 + 70 * kS, {{"temperature", 24.0}});
  h.finish();
  const auto& out = h.output();
  ASSERT_EQ(out.size(), 4u);
  const char* starts[] = {"2026-05-31T23:59:30Z", "2026-06-01T00:00:00Z", "2026-06-01T00:00:30Z",
                          "2026-06-01T00:01:00Z"};
  const int64_t counts[] = {1, 2, 2, 1};
  const double means[] = {20, 21, 23, 24};
  for (size_t i = 0; i < out.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(text(*out[i], "window_start"), starts[i]);
    EXPECT_EQ(*find_field(out[i]->fields, "count"), Value(counts[i]));
    EXPECT_DOUBLE_EQ(number(*out[i], "temperature_mean"), means[i]);
  }
  EXPECT_EQ(text(*out[3], "window_end"), "2026-06-01T00:02:00Z");
}

TEST(WeatherAggregate, InterleavedOriginsGetTheirOwnWindows) {
  OperatorHarness h("weather.aggregate", "{window: 60s, fields: [temperature], stats: [mean]}",
                    "cloud");
  h.push_reading(kT0 + 5 * kS, {{"temperature", 10.0}}, "pi-1");
  h.push_reading(kT0 + 6 * kS, {{"temperature", 30.0}}, "pi-2");
  h.push_reading(kT0 + 50 * kS, {{"temperature", 12.0}}, "pi-1");
  h.push_reading(kT0 + 55 * kS, {{"temperature", 34.0}}, "pi-2");
  h.push_reading(kT0 + 65 * kS, {{"temperature", 14.0}}, "pi-1");
  // pi-1 passed the minute, pi-2 has not: only pi-1's window is out.
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.output()[0]->origin, "pi-1");
  EXPECT_DOUBLE_EQ(number(*h.output()[0], "temperature_mean"), 11.0);
  // pi-2 is behind pi-1 but not late: its own watermark counts.
  h.push_reading(kT0 + 58 * kS, {{"temperature", 35.0}}, "pi-2");
  h.push_reading(kT0 + 61 * kS, {{"temperature", 40.0}}, "pi-2");
  ASSERT_EQ(h.output().size(), 2u);
  const Message& pi2 = *h.output()[1];
  EXPECT_EQ(pi2.origin, "pi-2");
  EXPECT_EQ(*find_field(pi2.fields, "count"), Value(int64_t{3}));
  EXPECT_DOUBLE_EQ(number(pi2, "temperature_mean"), 33.0);
  h.finish();
  ASSERT_EQ(h.output().size(), 4u);
  EXPECT_TRUE(h.errors().empty());
  // Second minute of each origin, each under its own name.
  std::vector<std::string> origins = {h.output()[2]->origin, h.output()[3]->origin};
  std::sort(origins.begin(), origins.end());
  EXPECT_EQ(origins, (std::vector<std::string>{"pi-1", "pi-2"}));
  for (int i = 2; i < 4; ++i) {
    const Message& m = *h.output()[i];
    EXPECT_EQ(text(m, "window_start"), "2026-06-01T00:01:00Z");
    EXPECT_DOUBLE_EQ(number(m, "temperature_mean"), m.origin == "pi-1" ? 14.0 : 40.0);
  }
}

TEST(WeatherAggregate, ASilentSensorsWindowIsEmittedAfterIdleTimeoutAndOnlyOnce) {
  OperatorHarness h("weather.aggregate",
                    "{window: 60s, fields: [temperature], stats: [mean], idle_timeout: 90s}",
                    "cloud");
  h.set_clock(kT0);
  h.push_reading(kT0 + 5 * kS, {{"temperature", 10.0}}, "sensor-1");  // then silent
  for (int k = 1; k <= 8; ++k) {  // sensor-2 every 10 s of wall time, within its first minute
    h.advance_clock(10 * kS);
    h.push_reading(kT0 + 6 * k * kS, {{"temperature", 20.0}}, "sensor-2");
  }
  EXPECT_TRUE(h.output().empty());  // 80 s: nobody idle yet
  h.advance_clock(10 * kS);         // sensor-1 silent for 90 s of a busy stage
  h.push_reading(kT0 + 95 * kS, {{"temperature", 21.0}}, "sensor-2");
  ASSERT_EQ(h.output().size(), 2u);
  EXPECT_EQ(h.output()[0]->origin, "sensor-1");  // forgotten: its window closed
  EXPECT_DOUBLE_EQ(number(*h.output()[0], "temperature_mean"), 10.0);
  EXPECT_EQ(h.output()[1]->origin, "sensor-2");  // its first minute, by its own watermark
  // A redelivery of sensor-1's reading is late, not a second aggregate of that minute.
  h.push_reading(kT0 + 5 * kS, {{"temperature", 10.0}}, "sensor-1");
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_NE(h.errors()[0].find("late reading"), std::string::npos) << h.errors()[0];
  EXPECT_NE(h.errors()[0].find("raise idle_timeout"), std::string::npos) << h.errors()[0];
  h.finish();
  // End of input: sensor-2's second minute only; sensor-1's timer went with its state.
  ASSERT_EQ(h.output().size(), 3u);
  EXPECT_EQ(h.output()[2]->origin, "sensor-2");
  EXPECT_DOUBLE_EQ(number(*h.output()[2], "temperature_mean"), 21.0);
}

// A broker down or a link's backlog: nothing arrives for ten idle_timeouts, then the backlog
// does. The sensors were not idle, the input was: their windows stay open and take it.
TEST(WeatherAggregate, AStallOfTheWholeInputIsNotIdleness) {
  OperatorHarness h("weather.aggregate",
                    "{window: 60s, fields: [temperature], stats: [count], idle_timeout: 90s}",
                    "cloud");
  h.set_clock(kT0);
  h.push_reading(kT0 + 5 * kS, {{"temperature", 10.0}}, "sensor-1");
  h.push_reading(kT0 + 6 * kS, {{"temperature", 20.0}}, "sensor-2");
  h.advance_clock(900 * kS);
  h.push_reading(kT0 + 30 * kS, {{"temperature", 21.0}}, "sensor-2");
  h.push_reading(kT0 + 31 * kS, {{"temperature", 11.0}}, "sensor-1");
  EXPECT_TRUE(h.output().empty()) << "a window was closed by the stall";
  EXPECT_TRUE(h.errors().empty()) << h.errors()[0];
  h.finish();
  ASSERT_EQ(h.output().size(), 2u);
  for (const MessagePtr& m : h.output())
    EXPECT_EQ(*find_field(m->fields, "temperature_count"), Value(int64_t{2})) << m->origin;
}

TEST(WeatherAggregate, IdleTimeoutShorterThanAWindowIsRefused) {
  const std::string problems = OperatorHarness::option_problems(
      "weather.aggregate", "{window: 60s, fields: [temperature], idle_timeout: 30s}");
  EXPECT_NE(problems.find("must be 0s or at least window + allowed_lateness"), std::string::npos)
      << problems;
}

TEST(WeatherAggregate, LateReadingGoesToTheErrorOutput) {
  OperatorHarness h("weather.aggregate",
                    "{window: 60s, allowed_lateness: 10s, fields: [temperature], stats: [mean]}");
  h.push_reading(kT0 + 0 * kS, {{"temperature", 10.0}});
  h.push_reading(kT0 + 65 * kS, {{"temperature", 50.0}});
  h.push_reading(kT0 + 30 * kS, {{"temperature", 20.0}});  // late but within 10s: counted
  EXPECT_TRUE(h.output().empty());
  h.push_reading(kT0 + 75 * kS, {{"temperature", 50.0}});  // watermark 75s >= 60s + 10s
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_DOUBLE_EQ(number(*h.output()[0], "temperature_mean"), 15.0);

  h.push_reading(kT0 + 50 * kS, {{"temperature", 99.0}});
  ASSERT_EQ(h.errors().size(), 1u);
  const std::string& e = h.errors()[0];
  for (const char* part :
       {"late reading", "2026-06-01T00:00:50Z", "[2026-06-01T00:00:00Z, 2026-06-01T00:01:00Z)",
        "allowed_lateness 10s", "raise allowed_lateness above 15s"}) {
    EXPECT_NE(e.find(part), std::string::npos) << "no '" << part << "' in: " << e;
  }
  const auto& errors = h.output("error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]->event_time_us, kT0 + 50 * kS);

  h.finish();
  ASSERT_EQ(h.output().size(), 2u);
  EXPECT_DOUBLE_EQ(number(*h.output()[1], "temperature_mean"), 50.0);  // 99 was not counted
}

TEST(WeatherAggregate, DewPointFromWindowMeansEvenWithoutMeanStat) {
  OperatorHarness h("weather.aggregate",
                    "{window: 60s, fields: [temperature, humidity], "
                    "stats: [max]}");
  h.push_reading(kT0 + 1 * kS, {{"temperature", 20.0}, {"humidity", 50.0}});
  h.push_reading(kT0 + 2 * kS, {{"temperature", 22.0}, {"humidity", 60}});  // int humidity
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  const Message& m = *h.output()[0];
  EXPECT_EQ(keys(m).back(), "dew_point");
  // Magnus, T = 21 °C, RH = 55 %: g = ln(0.55) + 17.62 * 21 / (243.12 + 21) = 0.803117,
  // Td = 243.12 * g / (17.62 - g) = 11.6106 °C.
  EXPECT_NEAR(number(m, "dew_point"), 11.6106, 1e-4);
  EXPECT_DOUBLE_EQ(number(m, "humidity_max"), 60.0);
}

TEST(WeatherAggregate, NoDewPointWithoutBothFields) {
  OperatorHarness h("weather.aggregate", "{window: 60s, fields: [temperature, pressure]}");
  h.push_reading(kT0, {{"temperature", 20.0}, {"humidity", 50.0}});
  h.finish();
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(find_field(h.output()[0]->fields, "dew_point"), nullptr);
  // pressure never came: its stats are null rather than a made-up number
  EXPECT_TRUE(find_field(h.output()[0]->fields, "pressure_mean")->is_null());
}

TEST(WeatherAggregate, RejectsSlideLongerThanWindow) {
  std::string problems = OperatorHarness::option_problems(
      "weather.aggregate", "{window: 60s, slide: 90s, fields: [temperature]}");
  EXPECT_NE(problems.find("option 'slide': must be <= window (got slide 90s, window 1m)"),
            std::string::npos)
      << problems;
}

TEST(WeatherAggregate, UnknownStatSuggestsTheNearestOne) {
  std::string problems = OperatorHarness::option_problems(
      "weather.aggregate", "{window: 60s, fields: [temperature], stats: [min, stdev]}");
  EXPECT_NE(problems.find("option 'stats' has unknown item 'stdev'"), std::string::npos)
      << problems;
  EXPECT_NE(problems.find("did you mean 'stddev'?"), std::string::npos) << problems;
}

TEST(WeatherAggregate, RejectsBadOptions) {
  EXPECT_NE(OperatorHarness::option_problems("weather.aggregate", "{fields: [t]}")
                .find("missing required option 'window'"),
            std::string::npos);
  EXPECT_NE(OperatorHarness::option_problems("weather.aggregate", "{window: 0s, fields: [t]}")
                .find("option 'window' must be > 0s"),
            std::string::npos);
  EXPECT_NE(OperatorHarness::option_problems("weather.aggregate", "{window: 1m, fields: []}")
                .find("option 'fields': must name at least one field"),
            std::string::npos);
  EXPECT_NE(OperatorHarness::option_problems("weather.aggregate",
                                             "{window: 1m, fields: [t], allowed_lateness: -1s}")
                .find("option 'allowed_lateness' must be >= 0s"),
            std::string::npos);
  EXPECT_NE(
      OperatorHarness::option_problems("weather.aggregate", "{window: 1d, slide: 1s, fields: [t]}")
          .find("option 'slide': is too small"),
      std::string::npos);
  EXPECT_EQ(OperatorHarness::option_problems("weather.aggregate", "{window: 1m, fields: [t]}"), "");
}

}  // namespace
}  // namespace edgeflow
