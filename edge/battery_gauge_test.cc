// The edge service's battery state: the kernel's capacity from a fake power_supply tree, and
// the model's charge integrated from harvest and draw, against hand-computed values.
#include "edge/battery_gauge.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

DeviceProfile two_watt_board() {
  DeviceProfile p;
  p.name = "test";
  p.idle_w = 2;
  p.w_per_busy_core = 1;
  p.cores = 4;
  p.speed_factor = 0.5;
  return p;
}

SolarSpec dark_100wh() {
  SolarSpec s;
  s.panel_w = 0;  // no harvest
  s.battery_wh = 100;
  s.usable_fraction = 0.8;  // 80 Wh usable
  s.lat_deg = 45;
  return s;
}

TEST(BatteryModel, DrawsIdleAndBusyWattsFromTheUsableWattHours) {
  BatteryModel m(two_watt_board(), dark_100wh(), "", 1.0);
  NodeLoad idle;
  m.step(3600, 12, 6, idle);  // one hour at 2 W: 80 - 2 = 78 Wh
  EXPECT_NEAR(m.fraction(), 78.0 / 80, 1e-9);
  EXPECT_NEAR(m.watts(), 2, 1e-9);
  NodeLoad busy;
  // 0.25 core-seconds/s of the profiling machine = 0.5 busy cores here: 2 + 0.5 = 2.5 W.
  busy.cpu_core_seconds_per_s = 0.25;
  m.step(7200, 14, 6, busy);  // two hours: 5 Wh
  EXPECT_NEAR(m.fraction(), 73.0 / 80, 1e-9);
  m.step(1e6, 0, 6, busy);  // clipped at empty
  EXPECT_EQ(m.fraction(), 0);
}

TEST(BatteryModel, HarvestIsAHalfSineOverTheDaylightThatSumsToTheDay) {
  SolarSpec s = dark_100wh();
  s.panel_w = 60;
  const int month = 6;
  double sum = 0;
  for (int i = 0; i < 24 * 60; ++i) sum += harvest_watts_at(s, month, (i + 0.5) / 60.0) / 60.0;
  EXPECT_NEAR(sum, harvest_wh_per_day(s, month), 0.01 * harvest_wh_per_day(s, month));
  EXPECT_EQ(harvest_watts_at(s, month, 1), 0);                               // night
  EXPECT_GT(harvest_watts_at(s, month, 12), harvest_watts_at(s, month, 9));  // peak at noon

  // Noon in June at 45 N: the battery fills faster than a 2 W board drains it.
  BatteryModel m(two_watt_board(), s, "", 0.5);
  m.step(3600, 12.5, month, NodeLoad{});
  EXPECT_GT(m.fraction(), 0.5);
  EXPECT_NEAR(m.harvest_w(), harvest_watts_at(s, month, 12), 1e-9);
}

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ef-battery-" + std::to_string(getpid()));
    fs::remove_all(root_);
    put("AC/type", "Mains");
    put("AC/online", "1");
    put("BAT0/type", "Battery");
    put("BAT0/capacity", "42");
    put("BAT0/status", "Discharging");
    config_.data_dir = (root_ / "data").string();
    config_.sysfs_root = root_.string();
    fs::create_directories(config_.data_dir);
  }
  void TearDown() override { fs::remove_all(root_); }
  void put(const std::string& rel, const std::string& text) {
    fs::path p = root_ / "class" / "power_supply" / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text << "\n";
  }
  fs::path root_;
  NodeConfig config_;
};

TEST_F(FakeSysfs, ReadsTheFirstBatterysCapacity) {
  BatteryGauge g(config_);
  BatteryReading r = g.read(1'000'000, {});
  ASSERT_TRUE(r.charge_pct);
  EXPECT_EQ(*r.charge_pct, 42);
  EXPECT_EQ(r.source, "sysfs");
  EXPECT_EQ(r.supply, "BAT0");
  EXPECT_EQ(r.status, "Discharging");
  put("BAT0/capacity", "7");
  EXPECT_EQ(*g.read(2'000'000, {}).charge_pct, 7);
}

TEST_F(FakeSysfs, WithoutAKernelBatteryTheModelRunsAndKeepsItsChargeAcrossRestarts) {
  fs::remove_all(root_ / "class" / "power_supply" / "BAT0");
  config_.battery.start_pct = 50;
  {
    BatteryGauge g(config_);
    EXPECT_EQ(g.read(1'000'000, {}).source, "none");  // no model configured yet
    ASSERT_EQ(g.configure_model("/nonexistent/board.yaml", ".", dark_100wh(), "").empty(), false);
    SolarSpec s = dark_100wh();
    ASSERT_EQ(g.configure_model("rpi-3b", ".", s, ""), "");
    BatteryReading r = g.read(1'000'000, {});
    EXPECT_EQ(r.source, "model");
    EXPECT_NEAR(*r.charge_pct, 50, 1e-9);
    r = g.read(1'000'000 + 3600'000'000LL, {});  // an hour idle: 1.4 W of 80 Wh
    EXPECT_LT(*r.charge_pct, 50);
    EXPECT_GT(*r.charge_pct, 45);
    g.save(true);
  }
  BatteryGauge again(config_);
  ASSERT_EQ(again.configure_model("rpi-3b", ".", dark_100wh(), ""), "");
  EXPECT_LT(*again.read(5'000'000'000LL, {}).charge_pct, 50);  // where it left off
}

TEST_F(FakeSysfs, SourceSysfsNeverFallsBackToTheModel) {
  fs::remove_all(root_ / "class" / "power_supply" / "BAT0");
  config_.battery.source = "sysfs";
  BatteryGauge g(config_);
  ASSERT_EQ(g.configure_model("rpi-3b", ".", dark_100wh(), ""), "");
  BatteryReading r = g.read(1'000'000, {});
  EXPECT_FALSE(r.charge_pct);
  EXPECT_NE(r.note.find("no battery"), std::string::npos);
}

}  // namespace
}  // namespace edgeflow
