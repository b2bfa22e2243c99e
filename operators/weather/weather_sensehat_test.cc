// weather.sensehat against fake sysfs trees in a temporary folder: readings in weather.simulate's
// units from hand-chosen raw / offset / scale files, both HTS221 scale conventions, pacing on
// the fake clock, the missing-board error, run-time failures that go to the error output while
// the source keeps going; and read_power_supplies on a fake battery.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "operators/weather/iio_device.h"
#include "operators/weather/power_supply.h"
#include "runtime/operator.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kS = 1'000'000;

// Hand-computed from the files SenseHatTest writes:
//   HTS221 temperature (250 + 1000) * 0.016 °C        = 20 °C
//   HTS221 humidity    (-2000 + 13000) * 0.004 %RH    = 44 %RH
//   LPS25H pressure    4150000 * 0.000024414 kPa      = 101.3181 kPa = 1013.181 hPa
//   LPS25H temperature (-4800 + 20400) * 2.083333333 m°C = 32.5 °C (42.5 + -4800 / 480)
constexpr double kHtsTemperature = 20.0;
constexpr double kHumidity = 44.0;
constexpr double kPressure = 1013.181;
constexpr double kLpsTemperature = 32.5;

class SenseHatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = "/tmp/edgeflow-sensehat-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path devices() const { return root_ / "bus" / "iio" / "devices"; }
  fs::path device(int n) const { return devices() / ("iio:device" + std::to_string(n)); }

  static void write(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text << "\n";
  }

  // The files as today's drivers write them: the HTS221's scales in whole units per LSB,
  // offsets and scales with nine decimals.
  void add_hts221(int n = 0, const std::string& temperature_scale = "0.016000000",
                  const std::string& humidity_scale = "0.004000000") {
    write(device(n) / "name", "hts221");
    write(device(n) / "in_temp_raw", "250");
    write(device(n) / "in_temp_offset", "1000.000000000");
    write(device(n) / "in_temp_scale", temperature_scale);
    write(device(n) / "in_humidityrelative_raw", "-2000");
    write(device(n) / "in_humidityrelative_offset", "13000.000000000");
    write(device(n) / "in_humidityrelative_scale", humidity_scale);
  }

  void add_lps25h(int n = 1) {
    write(device(n) / "name", "lps25h");
    write(device(n) / "in_pressure_raw", "4150000");
    write(device(n) / "in_pressure_scale", "0.000024414");
    write(device(n) / "in_temp_raw", "-4800");
    write(device(n) / "in_temp_offset", "20400.000000000");
    write(device(n) / "in_temp_scale", "2.083333333");
    write(device(n) / "sampling_frequency", "1");
  }

  void add_board() {
    add_hts221();
    add_lps25h();
    fs::create_directories(devices() / "trigger0");  // not a device: skipped
  }

  std::string options(const std::string& extra = "") const {
    return "{sysfs_root: \"" + root_.string() + "\"" + extra + "}";
  }

  static double number(const MessagePtr& m, const std::string& field) {
    const Value* v = find_field(m->fields, field);
    EXPECT_TRUE(v && v->number()) << "no number '" << field << "'";
    return v && v->number() ? *v->number() : -999;
  }

  static std::vector<std::string> keys(const MessagePtr& m) {
    std::vector<std::string> out;
    for (const Field& f : m->fields) out.push_back(f.key);
    return out;
  }

  static std::string open_error(OperatorHarness& h) {
    try {
      h.open();
    } catch (const OperatorError& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path root_;
};

TEST_F(SenseHatTest, ReadsTheBoardInWeatherSimulateUnits) {
  add_board();
  OperatorHarness h("weather.sensehat", options(), "pi-1", "sensors");
  const int64_t t0 = h.now_us();
  EXPECT_EQ(h.step().kind, SourceStep::kWaitUntil);
  ASSERT_EQ(h.output().size(), 1u);
  const MessagePtr& m = h.output()[0];
  EXPECT_EQ(keys(m), (std::vector<std::string>{"temperature", "humidity", "pressure"}));
  EXPECT_NEAR(number(m, "temperature"), kHtsTemperature, 1e-9);
  EXPECT_NEAR(number(m, "humidity"), kHumidity, 1e-9);
  EXPECT_NEAR(number(m, "pressure"), kPressure, 1e-9);
  EXPECT_EQ(m->event_time_us, t0);
  EXPECT_EQ(m->origin, "pi-1");
  EXPECT_EQ(m->stream, "sensors");
  EXPECT_TRUE(h.errors().empty());
}

TEST_F(SenseHatTest, TemperatureFromThePressureSensorOrTheMeanOfBoth) {
  add_board();
  OperatorHarness lps("weather.sensehat", options(", temperature_from: lps25h"));
  lps.step();
  ASSERT_EQ(lps.output().size(), 1u);
  EXPECT_NEAR(number(lps.output()[0], "temperature"), kLpsTemperature, 1e-6);

  OperatorHarness mean("weather.sensehat", options(", temperature_from: mean"));
  mean.step();
  ASSERT_EQ(mean.output().size(), 1u);
  EXPECT_NEAR(number(mean.output()[0], "temperature"), (20.0 + 32.5) / 2, 1e-6);
  EXPECT_NEAR(number(mean.output()[0], "humidity"), kHumidity, 1e-9);
}

TEST_F(SenseHatTest, AnHts221ScaleInMilliUnitsIsReadAsTheAbiSays) {
  // A driver that follows the ABI: 16 m°C and 4 m%RH per LSB, the same readings.
  add_hts221(0, "16.000000000", "4.000000000");
  add_lps25h();
  OperatorHarness h("weather.sensehat", options());
  h.step();
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_NEAR(number(h.output()[0], "temperature"), kHtsTemperature, 1e-9);
  EXPECT_NEAR(number(h.output()[0], "humidity"), kHumidity, 1e-9);
}

TEST_F(SenseHatTest, PressureFromAProcessedInputFileAndHumidityHeldTo100) {
  add_board();
  fs::remove(device(1) / "in_pressure_raw");
  fs::remove(device(1) / "in_pressure_scale");
  write(device(1) / "in_pressure_input", "101.325");      // kPa, already scaled
  write(device(0) / "in_humidityrelative_raw", "12500");  // (12500 + 13000) * 0.004 = 102
  OperatorHarness h("weather.sensehat", options());
  h.step();
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_NEAR(number(h.output()[0], "pressure"), 1013.25, 1e-9);
  EXPECT_EQ(number(h.output()[0], "humidity"), 100.0);
}

TEST_F(SenseHatTest, OneReadingPerPeriodOnTheClock) {
  add_board();
  OperatorHarness h("weather.sensehat", options(", period: 10s"));
  const int64_t t0 = h.now_us();
  SourceStep s = h.step();
  EXPECT_EQ(s.kind, SourceStep::kWaitUntil);
  EXPECT_EQ(s.wake_us, t0 + 10 * kS);
  h.advance_clock(4 * kS);  // woken early: nothing due yet
  s = h.step();
  EXPECT_EQ(s.kind, SourceStep::kWaitUntil);
  EXPECT_EQ(s.wake_us, t0 + 10 * kS);
  EXPECT_EQ(h.output().size(), 1u);

  h.set_clock(s.wake_us);
  h.run_source(3);  // and the harness jumps the clock to each wake time
  ASSERT_EQ(h.output().size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ(h.output()[i]->event_time_us, t0 + static_cast<int64_t>(i) * 10 * kS) << i;
}

TEST_F(SenseHatTest, SlotsMissedWhileBusyAreSkippedNotMadeUp) {
  add_board();
  OperatorHarness h("weather.sensehat", options(", period: 10s"));
  const int64_t t0 = h.now_us();
  h.step();
  h.advance_clock(35 * kS);
  SourceStep s = h.step();
  ASSERT_EQ(h.output().size(), 2u);
  EXPECT_EQ(h.output()[1]->event_time_us, t0 + 35 * kS);  // when it was read
  EXPECT_EQ(s.wake_us, t0 + 40 * kS);                     // back on the 10 s grid
}

TEST_F(SenseHatTest, NoBoardIsAnErrorAtOpenThatSaysWhereItLookedAndWhatToDo) {
  const std::string advice =
      ": is the Sense HAT attached and the kernel modules hts221_i2c / st_pressure_i2c loaded "
      "(dtoverlay=rpi-sense)? For tests or another board set sysfs_root";
  {
    OperatorHarness h("weather.sensehat", options());
    EXPECT_EQ(open_error(h),
              "no IIO device named 'hts221' or 'lps25h' under " + devices().string() + advice);
  }
  add_hts221();
  write(device(4) / "name", "bme280");
  OperatorHarness h("weather.sensehat", options());
  EXPECT_EQ(open_error(h), "no IIO device named 'lps25h' under " + devices().string() +
                               " (it has: hts221, bme280)" + advice);
  EXPECT_TRUE(h.output().empty());
}

TEST_F(SenseHatTest, TheDefaultRootIsSlashSys) {
  EXPECT_EQ(OperatorHarness("weather.sensehat").spec().option("sysfs_root")->default_text, "/sys");
  EXPECT_EQ(IioDevice::devices_dir("/sys"), "/sys/bus/iio/devices");
}

TEST_F(SenseHatTest, AChannelTheDriverDoesNotHaveIsAnErrorAtOpen) {
  add_board();
  fs::remove(device(0) / "in_humidityrelative_raw");
  OperatorHarness h("weather.sensehat", options());
  EXPECT_EQ(open_error(h), "IIO device 'hts221' at " + device(0).string() +
                               " has neither in_humidityrelative_raw nor "
                               "in_humidityrelative_input; is it the Sense HAT's hts221?");
}

TEST_F(SenseHatTest, AFileThatVanishesGoesToTheErrorOutputAndTheNextReadingComes) {
  add_board();
  OperatorHarness h("weather.sensehat", options());
  h.step();
  ASSERT_EQ(h.output().size(), 1u);

  const fs::path humidity = device(0) / "in_humidityrelative_raw";
  fs::remove(humidity);
  h.advance_clock(kS);
  EXPECT_EQ(h.step().kind, SourceStep::kWaitUntil);  // still running
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_EQ(h.errors()[0], "cannot read '" + humidity.string() + "': No such file or directory");
  ASSERT_EQ(h.output("error").size(), 1u);
  ASSERT_EQ(h.output().size(), 2u);  // the rest of the reading still comes
  EXPECT_EQ(keys(h.output()[1]), (std::vector<std::string>{"temperature", "pressure"}));
  EXPECT_NEAR(number(h.output()[1], "temperature"), kHtsTemperature, 1e-9);

  write(humidity, "-2000");
  h.advance_clock(kS);
  h.step();
  ASSERT_EQ(h.output().size(), 3u);
  EXPECT_NEAR(number(h.output()[2], "humidity"), kHumidity, 1e-9);
  EXPECT_EQ(h.errors().size(), 1u);
}

TEST_F(SenseHatTest, TextThatIsNotANumberIsAnError) {
  add_board();
  OperatorHarness h("weather.sensehat", options());
  write(device(1) / "in_pressure_raw", "garbage");
  h.step();
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_EQ(h.errors()[0],
            "'" + (device(1) / "in_pressure_raw").string() + "' holds 'garbage', not a number");
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(keys(h.output()[0]), (std::vector<std::string>{"temperature", "humidity"}));
}

TEST_F(SenseHatTest, ADeviceThatComesBackUnderAnotherNumberIsFoundAgain) {
  add_board();
  OperatorHarness h("weather.sensehat", options());
  h.step();

  fs::rename(device(0), device(5));  // a driver reload renumbers the device
  h.advance_clock(kS);
  h.step();
  EXPECT_TRUE(h.errors().empty());
  ASSERT_EQ(h.output().size(), 2u);
  EXPECT_NEAR(number(h.output()[1], "humidity"), kHumidity, 1e-9);

  fs::remove_all(device(5));  // and gone for good: one error, the pressure still comes
  h.advance_clock(kS);
  h.step();
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_EQ(h.errors()[0], "IIO device 'hts221' has gone from " + devices().string() +
                               " (driver unloaded or board disconnected?)");
  ASSERT_EQ(h.output().size(), 3u);
  EXPECT_EQ(keys(h.output()[2]), (std::vector<std::string>{"pressure"}));
}

TEST_F(SenseHatTest, WhenEveryReadFailsNoReadingIsSent) {
  add_board();
  OperatorHarness h("weather.sensehat", options());
  h.open();
  fs::remove_all(devices());
  EXPECT_EQ(h.step().kind, SourceStep::kWaitUntil);
  EXPECT_EQ(h.errors().size(), 2u);
  EXPECT_TRUE(h.output().empty());
}

TEST_F(SenseHatTest, IioDeviceFindsTheLowestNumberAndTheSuffixedName) {
  write(device(3) / "name", "lps25h");
  write(device(2) / "name", "lps25h-press");  // how some kernels name a device-tree sensor
  write(device(1) / "name", "lps25hb");       // another chip
  write(device(10) / "name", "hts221");
  fs::create_directories(devices() / "trigger0");
  std::optional<IioDevice> lps = IioDevice::find(root_.string(), "lps25h");
  ASSERT_TRUE(lps);
  EXPECT_EQ(lps->path(), device(2).string());
  EXPECT_EQ(lps->name(), "lps25h-press");
  std::vector<std::string> names;
  for (const IioDevice& d : IioDevice::list(root_.string())) names.push_back(d.name());
  EXPECT_EQ(names, (std::vector<std::string>{"lps25hb", "lps25h-press", "lps25h", "hts221"}));
  EXPECT_FALSE(IioDevice::find(root_.string(), "hts22"));
  EXPECT_FALSE(IioDevice::find((root_ / "nowhere").string(), "hts221"));
}

TEST_F(SenseHatTest, PowerSuppliesFromAFakeBatteryAndCharger) {
  const fs::path supplies = root_ / "class" / "power_supply";
  write(supplies / "BAT0" / "type", "Battery");
  write(supplies / "BAT0" / "status", "Discharging");
  write(supplies / "BAT0" / "capacity", "87");
  write(supplies / "BAT0" / "voltage_now", "12345000");    // µV
  write(supplies / "BAT0" / "current_now", "-1500000");    // µA, discharging
  write(supplies / "BAT0" / "energy_now", "185000000");    // µWh
  write(supplies / "BAT0" / "power_now", "not a number");  // skipped like a missing file
  write(supplies / "AC" / "type", "Mains");
  write(supplies / "AC" / "online", "1");
  write(supplies / "usb" / "online", "0");

  std::vector<PowerSupplyReading> all = read_power_supplies(root_.string());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name, "AC");
  EXPECT_EQ(all[0].type, "Mains");
  EXPECT_EQ(all[0].online, true);
  EXPECT_FALSE(all[0].capacity_percent);

  const PowerSupplyReading& bat = all[1];
  EXPECT_EQ(bat.name, "BAT0");
  EXPECT_EQ(bat.type, "Battery");
  EXPECT_EQ(bat.status, "Discharging");
  EXPECT_EQ(bat.capacity_percent, 87);
  ASSERT_TRUE(bat.voltage_v && bat.current_a && bat.energy_wh);
  EXPECT_DOUBLE_EQ(*bat.voltage_v, 12.345);
  EXPECT_DOUBLE_EQ(*bat.current_a, -1.5);
  EXPECT_DOUBLE_EQ(*bat.energy_wh, 185.0);
  // 12.345 V * 1.5 A = 18.5175 W drawn: what a status line would compute without power_now.
  EXPECT_NEAR(*bat.voltage_v * -*bat.current_a, 18.5175, 1e-12);
  EXPECT_FALSE(bat.power_w);
  EXPECT_FALSE(bat.online);

  EXPECT_EQ(all[2].name, "usb");
  EXPECT_EQ(all[2].online, false);
  EXPECT_FALSE(all[2].type);

  EXPECT_TRUE(read_power_supplies((root_ / "nowhere").string()).empty());
}

}  // namespace
}  // namespace edgeflow
