// weather.simulate through the harness: count, event-time spacing, reproducibility per node,
// plausible values over a day, and pacing against the fake clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

constexpr int64_t kS = 1'000'000;
constexpr int64_t kT0 = 1'780'272'000 * kS;  // 2026-06-01T00:00:00Z

double number(const Message& m, const std::string& key) {
  const Value* v = find_field(m.fields, key);
  EXPECT_TRUE(v && v->is_number()) << "no number '" << key << "'";
  return v && v->number() ? *v->number() : -999;
}

std::vector<double> series(const std::vector<MessagePtr>& out, const std::string& key) {
  std::vector<double> values;
  for (const MessagePtr& m : out) values.push_back(number(*m, key));
  return values;
}

std::vector<MessagePtr> simulate(const std::string& options, const std::string& node = "pi-1") {
  OperatorHarness h("weather.simulate", options, node);
  h.run_source(100000);
  return h.take();
}

TEST(WeatherSimulate, StopsAfterCountWithReadingFields) {
  OperatorHarness h("weather.simulate", "{count: 10, speed: 0}");
  size_t steps = h.run_source(100);
  EXPECT_EQ(steps, 1u);  // 10 readings fit in one call, which also reports done
  ASSERT_EQ(h.output().size(), 10u);
  std::vector<std::string> keys;
  for (const Field& f : h.output()[0]->fields) keys.push_back(f.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"temperature", "humidity", "pressure", "pitch", "roll",
                                            "yaw"}));
  EXPECT_EQ(h.output()[0]->origin, "edge");
  EXPECT_EQ(h.step().kind, SourceStep::kDone);  // and stays done
  EXPECT_EQ(h.output().size(), 10u);
}

TEST(WeatherSimulate, EventTimesStartAtStartAndAreSpacedByPeriod) {
  std::vector<MessagePtr> out =
      simulate("{count: 5, period: 2500ms, speed: 0, start: '2026-06-01T00:00:00Z'}");
  ASSERT_EQ(out.size(), 5u);
  for (size_t i = 0; i < out.size(); ++i)
    EXPECT_EQ(out[i]->event_time_us, kT0 + static_cast<int64_t>(i) * 2'500'000);

  // start: now is the fake clock at the first call
  OperatorHarness h("weather.simulate", "{count: 2, speed: 0}");
  h.set_clock(kT0 + 123);
  h.run_source(10);
  ASSERT_EQ(h.output().size(), 2u);
  EXPECT_EQ(h.output()[0]->event_time_us, kT0 + 123);
  EXPECT_EQ(h.output()[1]->event_time_us, kT0 + 123 + kS);
}

TEST(WeatherSimulate, SpeedZeroEmitsAtMost256PerCall) {
  OperatorHarness h("weather.simulate", "{count: 600, speed: 0}");
  EXPECT_EQ(h.step().kind, SourceStep::kEmitted);
  EXPECT_EQ(h.output().size(), 256u);
  EXPECT_EQ(h.step().kind, SourceStep::kEmitted);
  EXPECT_EQ(h.output().size(), 512u);
  EXPECT_EQ(h.step().kind, SourceStep::kDone);
  EXPECT_EQ(h.output().size(), 600u);
}

TEST(WeatherSimulate, SameSeedAndNodeRepeatDifferentNodeOrSeedDiffer) {
  const std::string options = "{count: 50, speed: 0, start: 2026-06-01T12:00:00Z}";
  std::vector<MessagePtr> a = simulate(options, "pi-1");
  std::vector<MessagePtr> again = simulate(options, "pi-1");
  std::vector<MessagePtr> other_node = simulate(options, "pi-2");
  std::vector<MessagePtr> other_seed =
      simulate("{count: 50, speed: 0, seed: 2, start: 2026-06-01T12:00:00Z}", "pi-1");
  for (const char* key : {"temperature", "humidity", "pressure", "pitch", "roll", "yaw"}) {
    SCOPED_TRACE(key);
    EXPECT_EQ(series(a, key), series(again, key));
    EXPECT_NE(series(a, key), series(other_node, key));
    EXPECT_NE(series(a, key), series(other_seed, key));
  }
}

TEST(WeatherSimulate, ADayLooksLikeWeather) {
  // One reading every 5 minutes over 24 h, starting at midnight at longitude 0 (solar = UTC).
  std::vector<MessagePtr> day = simulate(
      "{count: 288, period: 5m, speed: 0, start: 2026-06-01T00:00:00Z, temperature: 15, "
      "amplitude: 6, noise: 0.2}");
  ASSERT_EQ(day.size(), 288u);
  std::vector<double> t = series(day, "temperature");
  std::vector<double> rh = series(day, "humidity");
  std::vector<double> p = series(day, "pressure");

  // mean ± amplitude, plus noise (5 sigma of 0.2 °C)
  for (double v : t) {
    EXPECT_GE(v, 15 - 6 - 1.0);
    EXPECT_LE(v, 15 + 6 + 1.0);
  }
  auto hot = std::max_element(t.begin(), t.end()) - t.begin();
  auto cold = std::min_element(t.begin(), t.end()) - t.begin();
  double hot_hour = static_cast<double>(hot) * 5 / 60, cold_hour = static_cast<double>(cold) / 12;
  EXPECT_GE(hot_hour, 13.0);  // mid-afternoon
  EXPECT_LE(hot_hour, 17.0);
  EXPECT_GE(cold_hour, 3.5);  // around dawn
  EXPECT_LE(cold_hour, 8.0);
  EXPECT_GT(*std::max_element(t.begin(), t.end()) - *std::min_element(t.begin(), t.end()), 10.0);

  for (double v : rh) {
    EXPECT_GE(v, 0);
    EXPECT_LE(v, 100);
  }
  EXPECT_GT(rh[cold], rh[hot] + 20);  // humidity falls as the air warms
  for (double v : p) {
    EXPECT_GT(v, 970);
    EXPECT_LT(v, 1055);
  }
  // Smooth: five minutes apart, pressure moves by hundredths of a hectopascal, not tenths.
  for (size_t i = 1; i < p.size(); ++i) EXPECT_LT(std::fabs(p[i] - p[i - 1]), 0.2) << i;

  for (const MessagePtr& m : day) {
    EXPECT_LT(std::fabs(number(*m, "pitch")), 15);
    EXPECT_LT(std::fabs(number(*m, "roll")), 15);
    EXPECT_GE(number(*m, "yaw"), 0);
    EXPECT_LT(number(*m, "yaw"), 360);
  }
}

TEST(WeatherSimulate, LongitudeShiftsThePeakToLocalAfternoon) {
  // At 90° E local solar time runs 6 h ahead of UTC: the 15:00 peak comes at 09:00 UTC.
  std::vector<double> t = series(simulate("{count: 288, period: 5m, speed: 0, noise: 0, "
                                          "start: 2026-06-01T00:00:00Z, longitude: 90}"),
                                 "temperature");
  auto hot = std::max_element(t.begin(), t.end()) - t.begin();
  EXPECT_EQ(hot, 9 * 12);
  EXPECT_NEAR(t[hot], 21.0, 1e-9);
}

TEST(WeatherSimulate, HumidityHoldsTheDewPointSteadyAsTheAirWarms) {
  // Without noise, every reading's own dew point (Magnus) is the simulation's constant one:
  // 2 °C under the night's low of temperature - amplitude.
  std::vector<MessagePtr> day = simulate(
      "{count: 48, period: 30m, speed: 0, noise: 0, temperature: 10, amplitude: 5, "
      "start: 2026-06-01T00:00:00Z}");
  for (const MessagePtr& m : day) {
    double t = number(*m, "temperature"), rh = number(*m, "humidity");
    double g = std::log(rh / 100) + 17.62 * t / (243.12 + t);
    EXPECT_NEAR(243.12 * g / (17.62 - g), 3.0, 1e-9);
  }
}

TEST(WeatherSimulate, RealTimePacingFollowsTheFakeClock) {
  OperatorHarness h("weather.simulate", "{period: 1s, speed: 1}");
  const int64_t start = h.now_us();
  SourceStep s = h.step();
  EXPECT_EQ(h.output().size(), 1u);
  ASSERT_EQ(s.kind, SourceStep::kWaitUntil);
  EXPECT_EQ(s.wake_us, start + kS);

  s = h.step();  // the clock has not moved: nothing is due
  EXPECT_EQ(h.output().size(), 1u);
  EXPECT_EQ(s.kind, SourceStep::kWaitUntil);

  h.advance_clock(kS - 1);
  h.step();
  EXPECT_EQ(h.output().size(), 1u);
  h.advance_clock(1);
  s = h.step();
  EXPECT_EQ(h.output().size(), 2u);
  EXPECT_EQ(s.wake_us, start + 2 * kS);

  h.advance_clock(5 * kS);  // a slow consumer: the backlog comes out at once
  h.step();
  EXPECT_EQ(h.output().size(), 7u);
  EXPECT_EQ(h.output().back()->event_time_us, start + 6 * kS);
}

TEST(WeatherSimulate, SpeedSixtyRunsAMinutePerWallSecond) {
  OperatorHarness h("weather.simulate", "{period: 1s, speed: 60, count: 1000}");
  h.step();
  EXPECT_EQ(h.output().size(), 1u);
  h.advance_clock(kS);
  SourceStep s = h.step();
  EXPECT_EQ(h.output().size(), 61u);
  ASSERT_EQ(s.kind, SourceStep::kWaitUntil);
  EXPECT_EQ(s.wake_us, h.now_us() + kS / 60 + 1);  // ceil(1s / 60)

  // Reaching the count ends the source, with event times still 1 s apart.
  EXPECT_LT(h.run_source(1000), 1000u);
  ASSERT_EQ(h.output().size(), 1000u);
  EXPECT_EQ(h.output()[999]->event_time_us - h.output()[0]->event_time_us, 999 * kS);
}

TEST(WeatherSimulate, RejectsABadStart) {
  std::string problems =
      OperatorHarness::option_problems("weather.simulate", "{start: '2026-13-01T00:00:00Z'}");
  EXPECT_NE(problems.find("option 'start': must be 'now' or an ISO 8601 UTC time"),
            std::string::npos)
      << problems;
  EXPECT_EQ(
      OperatorHarness::option_problems("weather.simulate", "{start: '2026-06-01T02:00:00+02:00'}"),
      "");
  EXPECT_NE(OperatorHarness::option_problems("weather.simulate", "{speed: -1}")
                .find("option 'speed' must be >= 0"),
            std::string::npos);
}

TEST(WeatherSimulate, StartWithAnOffsetIsConvertedToUtc) {
  std::vector<MessagePtr> out =
      simulate("{count: 1, speed: 0, start: '2026-06-01T02:00:00.5+02:00'}");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->event_time_us, kT0 + 500'000);
}

}  // namespace
}  // namespace edgeflow
