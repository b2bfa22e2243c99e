// WeatherWindow alone, without the runtime: window membership, statistics against values
// computed by hand, lateness, and per-origin independence.
#include "operators/weather/weather_window.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <stdexcept>
#include <vector>

namespace edgeflow {
namespace {

constexpr int64_t kS = 1'000'000;  // one second in µs
using Values = std::vector<std::optional<double>>;

WeatherWindow make_window(int64_t window_s, int64_t slide_s, int64_t lateness_s,
                          std::vector<std::string> fields = {"x"}) {
  return WeatherWindow({window_s * kS, slide_s * kS, lateness_s * kS, std::move(fields)});
}

std::vector<int64_t> starts_s(const std::vector<WindowResult>& results) {
  std::vector<int64_t> out;
  for (const WindowResult& r : results) out.push_back(r.start_us / kS);
  return out;
}

TEST(WeatherWindow, TumblingStatsMatchHandComputedValues) {
  WeatherWindow w = make_window(10, 10, 0);
  const double xs[] = {2, 4, 4, 4, 5, 5, 7, 9};
  for (int i = 0; i < 8; ++i) w.add("pi-1", i * kS, Values{xs[i]});
  w.add("pi-1", 12 * kS, Values{100.0});  // next window; moves the watermark past 10s

  std::vector<WindowResult> closed = w.close_due("pi-1");
  ASSERT_EQ(closed.size(), 1u);
  const WindowResult& r = closed[0];
  EXPECT_EQ(r.origin, "pi-1");
  EXPECT_EQ(r.start_us, 0);
  EXPECT_EQ(r.end_us, 10 * kS);
  EXPECT_EQ(r.count, 8);
  const FieldStats& x = r.fields.at(0);
  EXPECT_EQ(x.count(), 8);
  EXPECT_DOUBLE_EQ(x.min(), 2);
  EXPECT_DOUBLE_EQ(x.max(), 9);
  EXPECT_DOUBLE_EQ(x.sum(), 40);
  EXPECT_DOUBLE_EQ(x.mean(), 5);
  // Squared deviations sum to 32; the sample variance divides by n - 1 = 7.
  EXPECT_NEAR(x.stddev(), 2.138089935299395, 1e-12);
  EXPECT_DOUBLE_EQ(x.first(), 2);
  EXPECT_DOUBLE_EQ(x.last(), 9);
  EXPECT_EQ(w.open_windows(), 1u);  // the window holding 100
}

TEST(WeatherWindow, StddevIsZeroForOneReadingAndExactForSmallSpreadOnLargeValues) {
  FieldStats one;
  one.add(1013.25, 0);
  EXPECT_EQ(one.stddev(), 0);

  // Pressure-like values: the spread (0.01) is tiny next to the magnitude.
  FieldStats p;
  for (double v : {1013.20, 1013.21, 1013.22}) p.add(v, 0);
  EXPECT_NEAR(p.stddev(), 0.01, 1e-9);
  EXPECT_NEAR(p.mean(), 1013.21, 1e-9);
}

TEST(WeatherWindow, SlidingReadingJoinsEveryWindowCoveringIt) {
  WeatherWindow w = make_window(60, 20, 5);
  WeatherWindow::Placement p = w.add("pi-1", 65 * kS, Values{1.0});
  EXPECT_FALSE(p.late);
  // Windows [20,80), [40,100), [60,120) contain 65s; each closes 5s after its end.
  EXPECT_EQ(p.opened_close_times_us, (std::vector<int64_t>{85 * kS, 105 * kS, 125 * kS}));

  p = w.add("pi-1", 79 * kS, Values{3.0});  // same three windows: none new
  EXPECT_TRUE(p.opened_close_times_us.empty());
  p = w.add("pi-1", 80 * kS, Values{5.0});  // leaves [20,80), opens [80,140)
  EXPECT_EQ(p.opened_close_times_us, (std::vector<int64_t>{145 * kS}));

  std::vector<WindowResult> closed = w.close_all();
  EXPECT_EQ(starts_s(closed), (std::vector<int64_t>{20, 40, 60, 80}));
  EXPECT_EQ(closed[0].count, 2);
  EXPECT_DOUBLE_EQ(closed[0].fields[0].mean(), 2);
  EXPECT_EQ(closed[1].count, 3);
  EXPECT_DOUBLE_EQ(closed[1].fields[0].mean(), 3);
  EXPECT_EQ(closed[3].count, 1);
  EXPECT_DOUBLE_EQ(closed[3].fields[0].sum(), 5);
}

TEST(WeatherWindow, WindowsAlignToTheEpochAlsoBefore1970) {
  WeatherWindow w = make_window(60, 60, 0);
  w.add("pi-1", -5 * kS, Values{1.0});
  w.add("pi-1", 59 * kS, Values{2.0});
  std::vector<WindowResult> closed = w.close_all();
  EXPECT_EQ(starts_s(closed), (std::vector<int64_t>{-60, 0}));
}

TEST(WeatherWindow, OriginsHaveTheirOwnWindowsAndWatermarks) {
  WeatherWindow w = make_window(60, 60, 0);
  w.add("pi-1", 10 * kS, Values{1.0});
  w.add("pi-2", 20 * kS, Values{10.0});
  w.add("pi-2", 30 * kS, Values{20.0});
  w.add("pi-1", 70 * kS, Values{2.0});

  // pi-1 has passed 60s; pi-2 has not, so its first window stays open.
  std::vector<WindowResult> a = w.close_due("pi-1");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].origin, "pi-1");
  EXPECT_EQ(a[0].count, 1);
  EXPECT_TRUE(w.close_due("pi-2").empty());
  EXPECT_EQ(w.watermark("pi-1"), 70 * kS);
  EXPECT_EQ(w.watermark("pi-2"), 30 * kS);
  EXPECT_EQ(w.watermark("pi-3"), std::nullopt);

  // pi-1's watermark does not make pi-2's readings late.
  EXPECT_FALSE(w.add("pi-2", 40 * kS, Values{30.0}).late);
  std::vector<WindowResult> rest = w.close_all();
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].origin, "pi-1");
  EXPECT_EQ(rest[0].start_us, 60 * kS);
  EXPECT_EQ(rest[1].origin, "pi-2");
  EXPECT_EQ(rest[1].count, 3);
  EXPECT_DOUBLE_EQ(rest[1].fields[0].mean(), 20);
}

TEST(WeatherWindow, OutOfOrderReadingsWithinLatenessCountAndLaterOnesAreLate) {
  WeatherWindow w = make_window(60, 60, 10);
  w.add("pi-1", 0, Values{1.0});
  w.add("pi-1", 65 * kS, Values{100.0});
  EXPECT_TRUE(w.close_due("pi-1").empty());  // [0,60) waits until 70s

  WeatherWindow::Placement p = w.add("pi-1", 30 * kS, Values{3.0});
  EXPECT_FALSE(p.late);

  w.add("pi-1", 75 * kS, Values{100.0});
  std::vector<WindowResult> closed = w.close_due("pi-1");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].count, 2);
  EXPECT_DOUBLE_EQ(closed[0].fields[0].mean(), 2);

  p = w.add("pi-1", 50 * kS, Values{5.0});
  EXPECT_TRUE(p.late);
  EXPECT_EQ(p.window_start_us, 0);
  EXPECT_EQ(p.window_end_us, 60 * kS);
  EXPECT_EQ(p.frontier_us, 75 * kS);
  EXPECT_TRUE(p.opened_close_times_us.empty());
  // Nothing of the late reading was kept: only [60,120) is open, with its two readings.
  std::vector<WindowResult> rest = w.close_all();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].count, 2);
}

TEST(WeatherWindow, SlidingReadingGoesIntoItsOpenWindowsOnly) {
  WeatherWindow w = make_window(60, 30, 0);
  w.add("pi-1", 0, Values{1.0});
  w.add("pi-1", 61 * kS, Values{2.0});
  w.close_due("pi-1");  // [-30,30) and [0,60)

  // 40s falls in [0,60) (closed) and [30,90) (open): accepted there.
  EXPECT_FALSE(w.add("pi-1", 40 * kS, Values{4.0}).late);
  // 20s falls in [-30,30) and [0,60): both closed.
  WeatherWindow::Placement p = w.add("pi-1", 20 * kS, Values{8.0});
  EXPECT_TRUE(p.late);
  EXPECT_EQ(p.window_start_us, 0);  // the most recently closed of the two

  std::vector<WindowResult> rest = w.close_all();
  ASSERT_EQ(starts_s(rest), (std::vector<int64_t>{30, 60}));
  EXPECT_EQ(rest[0].count, 2);
  EXPECT_DOUBLE_EQ(rest[0].fields[0].sum(), 6);
}

TEST(WeatherWindow, FirstAndLastFollowEventTimeNotArrival) {
  WeatherWindow w = make_window(60, 60, 60);
  w.add("pi-1", 30 * kS, Values{3.0});
  w.add("pi-1", 10 * kS, Values{1.0});
  w.add("pi-1", 50 * kS, Values{5.0});
  w.add("pi-1", 20 * kS, Values{2.0});
  w.add("pi-1", 50 * kS, Values{6.0});  // same time as the last: the later arrival wins
  w.add("pi-1", 10 * kS, Values{7.0});  // same time as the first: the earlier arrival stays
  std::vector<WindowResult> closed = w.close_all();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_DOUBLE_EQ(closed[0].fields[0].first(), 1);
  EXPECT_DOUBLE_EQ(closed[0].fields[0].last(), 6);
  EXPECT_DOUBLE_EQ(closed[0].fields[0].max(), 7);
}

TEST(WeatherWindow, MissingValuesAreNotCountedForThatField) {
  WeatherWindow w = make_window(60, 60, 0, {"temperature", "humidity"});
  w.add("pi-1", 0, Values{20.0, std::nullopt});
  w.add("pi-1", 1 * kS, Values{22.0, 50.0});
  w.add("pi-1", 2 * kS, Values{std::nullopt, 60.0});
  std::vector<WindowResult> closed = w.close_all();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].count, 3);
  EXPECT_EQ(closed[0].fields[0].count(), 2);
  EXPECT_DOUBLE_EQ(closed[0].fields[0].mean(), 21);
  EXPECT_EQ(closed[0].fields[1].count(), 2);
  EXPECT_DOUBLE_EQ(closed[0].fields[1].mean(), 55);
  EXPECT_DOUBLE_EQ(closed[0].fields[1].first(), 50);
}

TEST(WeatherWindow, ClosedWindowsStayClosedAheadOfTheWatermark) {
  WeatherWindow w = make_window(60, 60, 0);
  w.add("pi-1", 10 * kS, Values{1.0});
  // End of input fires the timer at 60s although the watermark is 10s.
  std::vector<WindowResult> closed = w.close_until("pi-1", 60 * kS);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_TRUE(w.add("pi-1", 20 * kS, Values{2.0}).late);  // no second [0,60) window
  EXPECT_FALSE(w.add("pi-1", 60 * kS, Values{3.0}).late);

  w.close_all();
  WeatherWindow::Placement p = w.add("pi-1", 200 * kS, Values{4.0});
  EXPECT_TRUE(p.late);
  EXPECT_EQ(p.frontier_us, INT64_MAX);
}

TEST(WeatherWindow, ObserveMovesTheWatermarkWithoutAReading) {
  WeatherWindow w = make_window(60, 60, 0);
  w.add("pi-1", 10 * kS, Values{1.0});
  w.observe("pi-1", 90 * kS);
  EXPECT_EQ(w.close_due("pi-1").size(), 1u);
  EXPECT_TRUE(w.add("pi-1", 30 * kS, Values{2.0}).late);
}

TEST(WeatherWindow, RejectsBadConfigs) {
  EXPECT_THROW(make_window(0, 0, 0), std::invalid_argument);
  EXPECT_THROW(make_window(60, 90, 0), std::invalid_argument);
  EXPECT_THROW(make_window(60, 60, -1), std::invalid_argument);
  EXPECT_THROW(make_window(60, 60, 0, {}), std::invalid_argument);
  // slide 0 means tumbling
  EXPECT_EQ(make_window(60, 0, 0).config().slide_us, 60 * kS);
}

WeatherWindow idle_window(int64_t window_s, int64_t idle_s) {
  WeatherWindow::Config c{window_s * kS, window_s * kS, 0, {"x"}};
  c.idle_timeout_us = idle_s * kS;
  return WeatherWindow(c);
}

// Wall time passing while other messages keep the stage busy (one every 5 s), from from_s
// to to_s: a gap in the whole input would count for only a quarter of idle_timeout.
void busy(WeatherWindow& w, int64_t from_s, int64_t to_s) {
  for (int64_t t = from_s; t < to_s; t += 5) w.has_idle(t * kS);
}

TEST(WeatherWindowIdle, ASilentOriginsWindowsCloseAndItsStateIsFreed) {
  WeatherWindow w = idle_window(60, 120);
  w.add("quiet", 5 * kS, Values{1.0}, /*now_us=*/0);
  w.add("busy", 5 * kS, Values{2.0}, 0);
  busy(w, 0, 100);
  w.add("busy", 65 * kS, Values{3.0}, 100 * kS);  // busy was seen at 100 s
  EXPECT_FALSE(w.has_idle(119 * kS));
  ASSERT_TRUE(w.has_idle(120 * kS));

  std::vector<std::string> forgotten;
  std::vector<WindowResult> closed = w.forget_idle(120 * kS, &forgotten);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].origin, "quiet");
  EXPECT_EQ(closed[0].start_us, 0);
  EXPECT_EQ(closed[0].count, 1);
  EXPECT_EQ(forgotten, std::vector<std::string>{"quiet"});
  EXPECT_EQ(w.origins(), 1u);
  EXPECT_EQ(w.tombstones(), 1u);
  EXPECT_FALSE(w.watermark("quiet"));
  EXPECT_EQ(w.open_windows(), 2u);  // busy's two minutes, untouched
}

TEST(WeatherWindowIdle, AForgottenOriginsOldReadingIsLateAndItsNewOneOpensAWindow) {
  WeatherWindow w = idle_window(60, 120);
  w.add("s1", 5 * kS, Values{1.0}, 0);
  std::vector<std::string> forgotten;
  busy(w, 0, 120);
  ASSERT_EQ(w.forget_idle(120 * kS, &forgotten).size(), 1u);

  // A redelivery of a reading of the minute already emitted: late, not a second aggregate.
  WeatherWindow::Placement old = w.add("s1", 30 * kS, Values{9.0}, 130 * kS);
  EXPECT_TRUE(old.late);
  EXPECT_EQ(old.window_start_us, 0);
  // The sensor's next reading, in a later minute, starts from the tombstone.
  WeatherWindow::Placement next = w.add("s1", 200 * kS, Values{4.0}, 131 * kS);
  EXPECT_FALSE(next.late);
  EXPECT_EQ(w.tombstones(), 0u);
  EXPECT_EQ(w.origins(), 1u);
}

TEST(WeatherWindowIdle, TombstonesExpireAfterAnotherIdleTimeout) {
  WeatherWindow w = idle_window(60, 120);
  w.add("s1", 5 * kS, Values{1.0}, 0);
  std::vector<std::string> forgotten;
  busy(w, 0, 120);
  w.forget_idle(120 * kS, &forgotten);
  busy(w, 120, 239);
  w.forget_idle(239 * kS, &forgotten);
  EXPECT_EQ(w.tombstones(), 1u);
  w.forget_idle(240 * kS, &forgotten);
  EXPECT_EQ(w.tombstones(), 0u);
  // Past the tombstone, a reading that old is taken as new: the documented limit.
  EXPECT_FALSE(w.add("s1", 30 * kS, Values{9.0}, 241 * kS).late);
}

TEST(WeatherWindowIdle, AnOriginForgottenTwiceRemembersItsLaterWindows) {
  WeatherWindow w = idle_window(60, 100);
  std::vector<std::string> forgotten;
  w.add("s1", 5 * kS, Values{1.0}, 0);
  busy(w, 0, 100);
  w.forget_idle(100 * kS, &forgotten);  // tombstone at 100 s: frontier 60 s
  busy(w, 100, 150);
  w.add("s1", 70 * kS, Values{2.0}, 150 * kS);  // back
  busy(w, 150, 250);
  w.forget_idle(250 * kS, &forgotten);  // forgotten again: frontier 120 s
  busy(w, 250, 300);
  w.forget_idle(300 * kS, &forgotten);
  EXPECT_EQ(w.tombstones(), 1u);
  EXPECT_TRUE(w.add("s1", 90 * kS, Values{3.0}, 301 * kS).late);
}

TEST(WeatherWindowIdle, MemoryFollowsActiveOriginsNotEveryOriginEverSeen) {
  WeatherWindow w = idle_window(60, 120);
  std::vector<std::string> forgotten;
  // 20 waves of 5,000 sensors, each wave silent after its minute: 100,000 origins in all.
  size_t most_origins = 0, most_tombstones = 0, closed = 0;
  for (int wave = 0; wave < 20; ++wave) {
    const int64_t now = wave * 60 * kS;
    if (wave > 0) busy(w, (wave - 1) * 60, wave * 60);
    closed += w.forget_idle(now, &forgotten).size();
    for (int i = 0; i < 5000; ++i) {
      w.add("sensor-" + std::to_string(wave * 5000 + i), now + kS, Values{1.0 * i}, now);
    }
    most_origins = std::max(most_origins, w.origins());
    most_tombstones = std::max(most_tombstones, w.tombstones());
  }
  closed += w.close_all().size();
  EXPECT_EQ(closed, 100000u) << "every sensor's minute was emitted exactly once";
  EXPECT_LE(most_origins, 15000u);  // the waves of the last idle_timeout
  EXPECT_LE(most_tombstones, 15000u);
  EXPECT_EQ(forgotten.size(), 100000u - w.origins());
}

TEST(WeatherWindowIdle, AStallOfTheInputCountsForAQuarterOfIdleTimeout) {
  WeatherWindow w = idle_window(60, 120);
  std::vector<std::string> forgotten;
  w.add("s1", 5 * kS, Values{1.0}, 0);
  busy(w, 0, 30);
  // Nothing for 100 s (a broker down), then the backlog: 30 + 30 s of idleness, not 130.
  EXPECT_FALSE(w.has_idle(130 * kS));
  EXPECT_TRUE(w.forget_idle(130 * kS, &forgotten).empty());
  // The wall clock stepping back does not move the active clock back.
  EXPECT_FALSE(w.has_idle(10 * kS));
  busy(w, 10, 70);
  EXPECT_FALSE(w.has_idle(70 * kS));  // 25 + 30 + 60 s
  EXPECT_TRUE(w.has_idle(75 * kS));   // 120 s
}

TEST(WeatherWindowIdle, ZeroIdleTimeoutKeepsEveryOrigin) {
  WeatherWindow w = idle_window(60, 0);
  w.add("s1", 5 * kS, Values{1.0}, 0);
  EXPECT_FALSE(w.has_idle(1'000'000 * kS));
  std::vector<std::string> forgotten;
  EXPECT_TRUE(w.forget_idle(1'000'000 * kS, &forgotten).empty());
  EXPECT_EQ(w.origins(), 1u);
}

}  // namespace
}  // namespace edgeflow
