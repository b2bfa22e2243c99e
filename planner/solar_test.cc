// The solar model against values computed by hand (the arithmetic is in the comments) and
// the textbook's worked example; southern and polar sites; the site table.
#include "planner/solar.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

namespace edgeflow {
namespace {

const std::string kTestdata = EDGEFLOW_PLANNER_TESTDATA;

SolarSpec seed_solar() {  // the seed: 60 W panel, 50,000 mAh x 3.7 V = 185 Wh, lat 36.8 N
  SolarSpec s;
  s.panel_w = 60;
  s.battery_wh = 185;
  s.lat_deg = 36.8;
  return s;
}

std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Solar, RepresentativeDaysAreKleins) {
  // 17 Jan, 16 Feb (31 + 16), 16 Mar (59 + 16), ..., 10 Dec (334 + 10).
  const int expected[12] = {17, 47, 75, 105, 135, 162, 198, 228, 258, 288, 318, 344};
  for (int m = 1; m <= 12; ++m) EXPECT_EQ(representative_day(m), expected[m - 1]) << m;
}

TEST(Solar, ExtraterrestrialIrradiationAt36_8NorthOn17JanuaryByHand) {
  // n = 17. delta = 23.45 sin(360 (284 + 17) / 365) = 23.45 sin(296.877 deg)
  //       = 23.45 x -0.89198 = -20.917 deg
  EXPECT_NEAR(declination_deg(17), -20.917, 0.001);
  // cos ws = -tan(36.8) tan(-20.917) = -0.74810 x -0.38220 = 0.28592 -> ws = 73.386 deg
  double ws = sunset_hour_angle_deg(36.8, declination_deg(17));
  EXPECT_NEAR(ws, 73.386, 0.001);
  EXPECT_NEAR(day_length_h(36.8, 17), 2 * 73.386 / 15, 0.001);  // 9.785 h
  // H0 = (24 x 3600 x 1367 / pi) (1 + 0.033 cos(360 x 17 / 365))
  //      x (cos 36.8 cos -20.917 sin 73.386 + (pi 73.386 / 180) sin 36.8 sin -20.917)
  //    = 37,595,199 x (1 + 0.033 x 0.95749)
  //      x (0.80073 x 0.93410 x 0.95825 + 1.28083 x 0.59902 x -0.35701)
  //    = 37,595,199 x 1.031597 x (0.71674 - 0.27392)
  //    = 37,595,199 x 1.031597 x 0.44282 = 17.174 MJ/m2 (4.771 kWh/m2)
  EXPECT_NEAR(extraterrestrial_daily_j_m2(36.8, 17) / 1e6, 17.174, 0.005);
}

TEST(Solar, ExtraterrestrialIrradiationMatchesDuffieBeckmanExample1_10_1) {
  // Duffie & Beckman, Example 1.10.1: latitude 43 N on 15 April (n = 105): delta = 9.4 deg,
  // ws = 98.9 deg, H0 = 33.8 MJ/m2.
  EXPECT_NEAR(declination_deg(105), 9.4, 0.05);
  EXPECT_NEAR(sunset_hour_angle_deg(43, declination_deg(105)), 98.9, 0.05);
  EXPECT_NEAR(extraterrestrial_daily_j_m2(43, 105) / 1e6, 33.8, 0.05);
}

TEST(Solar, ClearSkyOnTheTiltedPanelByHand) {
  // 36.8 N, tilt 36.8, January. H = K_T H0 = 0.72 x 4.7705 = 3.4348 kWh/m2.
  // ws = 73.4 <= 81.4 and K_T >= 0.715: Erbs H_d/H = 0.143 -> H_d = 0.4912, H_b = 2.9436.
  EXPECT_DOUBLE_EQ(diffuse_fraction(0.72, 73.4), 0.143);
  // tilt = lat: phi - beta = 0, so ws' = min(73.386, 90) and
  // R_b = cos 0 cos delta sin ws / 0.44282 = 0.93410 x 0.95825 / 0.44282 = 2.0213
  EXPECT_NEAR(beam_tilt_factor(36.8, 36.8, 17), 2.0213, 0.0005);
  // H_T = 2.9436 x 2.0213 + 0.4912 (1 + cos 36.8) / 2 + 3.4348 x 0.2 (1 - cos 36.8) / 2
  //     = 5.9500 + 0.4423 + 0.0684 = 6.4607 kWh/m2
  EXPECT_NEAR(clear_sky_tilted_kwh_m2(36.8, 36.8, 1), 6.4607, 0.002);
}

TEST(Solar, HarvestIsPanelTimesPeakSunHoursTimesLosses) {
  SolarSpec s = seed_solar();
  // 60 W x 6.4607 h x 0.75 derating x 0.7 cloudiness x 0.85 converter = 172.99 Wh
  EXPECT_NEAR(harvest_wh_per_day(s, 1), 172.99, 0.05);
  s.cloudiness = 1.0;  // clear sky: 60 x 6.4607 x 0.75 x 0.85 = 247.12 Wh
  EXPECT_NEAR(harvest_wh_per_day(s, 1), 247.12, 0.05);
  s.tilt_deg = 0;  // flat: H = 3.4348 kWh/m2 -> 60 x 3.4348 x 0.75 x 0.85 = 131.38 Wh
  EXPECT_NEAR(harvest_wh_per_day(s, 1), 131.38, 0.05);
}

TEST(Solar, AutonomyIsUsableWattHoursOverTheLoad) {
  SolarSpec s = seed_solar();
  EXPECT_NEAR(autonomy_hours(s, 3.0), 185 * 0.8 / 3.0, 1e-9);  // 148 Wh / 3 W = 49.33 h
  s.usable_fraction = 0.5;
  EXPECT_NEAR(autonomy_hours(s, 2.0), 46.25, 1e-9);  // 185 x 0.5 / 2
  EXPECT_TRUE(std::isinf(autonomy_hours(s, 0)));
}

TEST(Solar, AWeekWithoutSunEmptiesTheBatteryWhenTheArithmeticSays) {
  SolarSpec s = seed_solar();
  s.panel_w = 0;
  // 148 usable Wh at 2 W: full -> empty after 74 h. After 24 h: (148 - 48) / 148 = 0.6757.
  WeekSimulation w = simulate_week(s, 1, 2.0, 1.0);
  ASSERT_EQ(w.soc.size(), 168u);
  EXPECT_NEAR(w.soc[23], 100.0 / 148, 1e-9);
  EXPECT_NEAR(w.soc[72], 2.0 / 148, 1e-9);  // 73 h: 2 Wh left
  EXPECT_DOUBLE_EQ(w.soc[73], 0);
  EXPECT_DOUBLE_EQ(w.min_soc, 0);
  // Demand 2 W x 168 h = 336 Wh, 148 served: 188 Wh unmet = 94 hours without power.
  EXPECT_NEAR(w.demand_wh, 336, 1e-9);
  EXPECT_NEAR(w.unmet_wh, 188, 1e-9);
  EXPECT_NEAR(w.hours_empty, 94, 1e-9);
}

TEST(Solar, AWeekKeepsTheEnergyBalance) {
  SolarSpec s = seed_solar();
  for (double watts : {1.0, 3.0, 9.0}) {
    for (double start : {0.0, 0.5, 1.0}) {
      WeekSimulation w = simulate_week(s, 1, watts, start);
      // Every hour's share of the day adds up to the day: 7 x 172.99 Wh harvested.
      EXPECT_NEAR(w.harvested_wh, 7 * harvest_wh_per_day(s, 1), 1e-6);
      EXPECT_NEAR(w.end_wh, w.start_wh + w.harvested_wh - w.spilled_wh - (w.demand_wh - w.unmet_wh),
                  1e-6);
      EXPECT_NEAR(w.start_wh, start * 148, 1e-9);
      for (double soc : w.soc) ASSERT_TRUE(soc >= 0 && soc <= 1);
    }
  }
  // 9 W (216 Wh/day) against 173 Wh/day: empty some hours; 1 W never is.
  EXPECT_GT(simulate_week(s, 1, 9.0, 0.5).hours_empty, 0);
  EXPECT_EQ(simulate_week(s, 1, 1.0, 0.5).hours_empty, 0);
}

TEST(Solar, TheHarvestFollowsTheSunThroughTheDay) {
  SolarSpec s = seed_solar();
  s.battery_wh = 1e6;  // never full, never empty: each hour's change is that hour's harvest
  WeekSimulation w = simulate_week(s, 1, 0, 0.0);
  double capacity = 1e6 * 0.8;
  auto gained = [&](int h) { return (w.soc[h] - (h ? w.soc[h - 1] : 0)) * capacity; };
  // Day length 9.785 h: sunrise 7.11, sunset 16.89 solar time.
  EXPECT_NEAR(gained(6), 0, 1e-6);            // 06-07: night
  EXPECT_GT(gained(7), 0);                    // 07-08: sunrise
  EXPECT_NEAR(gained(11), gained(12), 1e-6);  // symmetric about noon
  EXPECT_GT(gained(11), gained(9));
  EXPECT_NEAR(gained(17), 0, 1e-6);
}

TEST(Solar, TheSouthernHemisphereMirrorsTheNorthern) {
  // A north-facing panel at 36.8 S in July sees what a south-facing one at 36.8 N sees in
  // January, give or take the Earth's distance to the sun (3.3% each way: perihelion is in
  // January) and the representative days' declinations (-20.9 vs +21.2 deg).
  double north_jan = clear_sky_tilted_kwh_m2(36.8, 36.8, 1);
  double south_jul = clear_sky_tilted_kwh_m2(-36.8, 36.8, 7);
  double north_jul = clear_sky_tilted_kwh_m2(36.8, 36.8, 7);
  double south_jan = clear_sky_tilted_kwh_m2(-36.8, 36.8, 1);
  EXPECT_NEAR(south_jul / north_jan, 1, 0.08);
  EXPECT_NEAR(south_jan / north_jul, 1, 0.08);
  EXPECT_GT(south_jan, south_jul);  // summer in January
  EXPECT_NEAR(beam_tilt_factor(-36.8, 36.8, 198), beam_tilt_factor(36.8, 36.8, 17), 0.05);
  // Southern winter: the horizontal sees less than in summer.
  EXPECT_LT(extraterrestrial_daily_j_m2(-36.8, 162), extraterrestrial_daily_j_m2(-36.8, 344));
}

TEST(Solar, PolarNightAndPolarDayGiveNumbersNotNaN) {
  for (double lat : {-90.0, -80.0, -70.0, -66.6, 66.6, 70.0, 80.0, 90.0}) {
    for (int m = 1; m <= 12; ++m) {
      SCOPED_TRACE(std::to_string(lat) + " month " + std::to_string(m));
      int n = representative_day(m);
      double h0 = extraterrestrial_daily_j_m2(lat, n);
      double ht = clear_sky_tilted_kwh_m2(lat, std::fabs(lat), m);
      ASSERT_TRUE(std::isfinite(h0) && h0 >= 0);
      ASSERT_TRUE(std::isfinite(ht) && ht >= 0 && ht < 12);
      ASSERT_TRUE(std::isfinite(beam_tilt_factor(lat, 0, n)));
      SolarSpec s = seed_solar();
      s.lat_deg = lat;
      WeekSimulation w = simulate_week(s, m, 2.0, 0.5);
      ASSERT_TRUE(std::isfinite(w.harvested_wh) && std::isfinite(w.min_soc));
    }
  }
  // 70 N on 10 December: polar night, no sun at all.
  EXPECT_EQ(day_length_h(70, 344), 0);
  EXPECT_EQ(extraterrestrial_daily_j_m2(70, 344), 0);
  EXPECT_EQ(clear_sky_tilted_kwh_m2(70, 70, 12), 0);
  // 70 N on 11 June: the sun never sets, and the day gets more than at 36.8 N.
  EXPECT_EQ(day_length_h(70, 162), 24);
  EXPECT_GT(extraterrestrial_daily_j_m2(70, 162), extraterrestrial_daily_j_m2(36.8, 162));
  EXPECT_EQ(day_length_h(-70, 162), 0);  // and at 70 S it is polar night
}

TEST(Solar, ASiteTableReplacesTheModel) {
  std::string error;
  auto spec = solar_from_pairs({{"panel_w", 60}, {"battery_wh", 185}, {"lat", 36.8}},
                               "site-table.csv", kTestdata, &error);
  ASSERT_TRUE(spec) << error;
  ASSERT_TRUE(spec->table_kwh_m2_day);
  EXPECT_EQ(spec->table, kTestdata + "/site-table.csv");
  EXPECT_DOUBLE_EQ(panel_insolation_kwh_m2(*spec, 1), 3.0);
  EXPECT_DOUBLE_EQ(panel_insolation_kwh_m2(*spec, 12), 2.8);
  // A measured table has the clouds in it: cloudiness 1 unless given.
  // 60 W x 3.0 h x 0.75 x 1 x 0.85 = 114.75 Wh
  EXPECT_NEAR(harvest_wh_per_day(*spec, 1), 114.75, 1e-9);
  spec->cloudiness = 0.5;  // "a bad January": 57.375 Wh
  EXPECT_NEAR(harvest_wh_per_day(*spec, 1), 57.375, 1e-9);
}

TEST(Solar, ABadTableSaysWhichLineAndWhy) {
  std::string error;
  EXPECT_FALSE(load_solar_table(write_temp("short.csv", "1,3\n2,3.5\n"), &error));
  EXPECT_NE(error.find("short.csv: the solar table has no mar, apr"), std::string::npos) << error;
  EXPECT_FALSE(load_solar_table(write_temp("bad.csv", "month,value\n1,3\nFeb,lots\n"), &error));
  EXPECT_NE(error.find("bad.csv:3: expected month,kWh/m2/day (got 'lots')"), std::string::npos)
      << error;
  EXPECT_FALSE(load_solar_table(write_temp("big.csv", "1,90\n"), &error));
  EXPECT_NE(error.find("big.csv:1: daily insolation must be from 0 to 15"), std::string::npos)
      << error;
  EXPECT_FALSE(load_solar_table(write_temp("twice.csv", "1,3\njan,3\n"), &error));
  EXPECT_NE(error.find("twice.csv:2: jan given twice (first on line 1)"), std::string::npos)
      << error;
  EXPECT_FALSE(load_solar_table(write_temp("month.csv", "13,3\n"), &error));
  EXPECT_NE(error.find("'13' is not a month"), std::string::npos) << error;
  EXPECT_FALSE(load_solar_table(kTestdata + "/none.csv", &error));
  EXPECT_NE(error.find("cannot read the solar table"), std::string::npos) << error;
}

TEST(Solar, PairsGetDefaultsAndAreChecked) {
  std::string error;
  auto spec =
      solar_from_pairs({{"panel_w", 60}, {"battery_wh", 185}, {"lat", -33.9}}, "", "", &error);
  ASSERT_TRUE(spec) << error;
  EXPECT_DOUBLE_EQ(spec->derating, 0.75);
  EXPECT_DOUBLE_EQ(spec->converter_eff, 0.85);
  EXPECT_DOUBLE_EQ(spec->usable_fraction, 0.8);
  EXPECT_DOUBLE_EQ(spec->effective_cloudiness(), 0.7);
  EXPECT_DOUBLE_EQ(spec->tilt(), 33.9);  // |lat|
  EXPECT_FALSE(spec->month);
  spec = solar_from_pairs({{"panel_w", 10},
                           {"battery_wh", 20},
                           {"lat", 50},
                           {"tilt", 60},
                           {"derating", 0.8},
                           {"converter_eff", 0.9},
                           {"usable_fraction", 0.6},
                           {"cloudiness", 0.4},
                           {"month", 12}},
                          "", "", &error);
  ASSERT_TRUE(spec) << error;
  EXPECT_DOUBLE_EQ(spec->tilt(), 60);
  EXPECT_EQ(spec->month, 12);
  // 10 W x H_T x 0.8 x 0.4 x 0.9
  EXPECT_NEAR(harvest_wh_per_day(*spec, 12), 10 * clear_sky_tilted_kwh_m2(50, 60, 12) * 0.288,
              1e-9);
  EXPECT_FALSE(solar_from_pairs({{"panel_w", 60}, {"lat", 36.8}}, "", "", &error));
  EXPECT_NE(error.find("solar has no 'battery_wh'"), std::string::npos) << error;
  EXPECT_FALSE(
      solar_from_pairs({{"panel_w", 60}, {"battery_wh", 0}, {"lat", 36.8}}, "", "", &error));
  EXPECT_NE(error.find("'battery_wh' must be > 0"), std::string::npos) << error;
  EXPECT_FALSE(solar_from_pairs({{"panel_w", 1}, {"battery_wh", 1}, {"lat", 1}, {"watts", 1}}, "",
                                "", &error));
  EXPECT_NE(error.find("unknown solar key 'watts'"), std::string::npos) << error;
}

}  // namespace
}  // namespace edgeflow
