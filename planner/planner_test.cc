// Device profiles (the shipped ones and broken ones), per-node energy against hand-computed
// values, the seed device's verdict, and the pipeline keys the planner reads. The solar
// model's own tests are in solar_test.cc.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "planner/device_profile.h"
#include "planner/energy.h"
#include "planner/solar.h"
#include "runtime/pipeline.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

const std::string kTestdata = EDGEFLOW_PLANNER_TESTDATA;
const std::string kDevices = EDGEFLOW_DEVICE_SOURCE_DIR;
const std::vector<std::string> kShipped = {"cloud-vm", "rpi-3b", "rpi-4", "rpi-5", "rpi-zero-2w"};

// Sets $EDGEFLOW_DEVICE_PATH for one test.
class DevicePath {
 public:
  explicit DevicePath(const std::string& value) {
    setenv("EDGEFLOW_DEVICE_PATH", value.c_str(), 1);
  }
  ~DevicePath() { unsetenv("EDGEFLOW_DEVICE_PATH"); }
};

DeviceProfile load(const std::string& name_or_path, const std::string& base = "") {
  std::string error;
  auto p = load_device_profile(name_or_path, base, &error);
  EXPECT_TRUE(p) << error;
  return p ? *p : DeviceProfile{};
}

std::string parse_error(const std::string& text) {
  std::string error;
  EXPECT_FALSE(parse_device_profile(text, "board.yaml", "board", &error));
  return error;
}

TEST(DeviceProfile, EveryShippedProfileLoadsByNameAndByPath) {
  DevicePath path(kDevices);
  for (const std::string& name : kShipped) {
    SCOPED_TRACE(name);
    DeviceProfile p = load(name);
    EXPECT_EQ(p.name, name);
    EXPECT_EQ(p.source, kDevices + "/" + name + ".yaml");
    EXPECT_FALSE(p.description.empty());
    EXPECT_GT(p.idle_w, 0);
    EXPECT_GT(p.w_per_busy_core, 0);
    EXPECT_GE(p.cores, 1);
    EXPECT_GT(p.speed_factor, 0);
    EXPECT_LE(p.speed_factor, 1);
    EXPECT_FALSE(default_network(p).empty());
    for (const auto& [kind, net] : p.networks) EXPECT_GT(net.j_per_byte, 0) << kind;
    DeviceProfile by_path = load(kDevices + "/" + name + ".yaml");
    EXPECT_EQ(by_path.idle_w, p.idle_w);
  }
  for (const std::string& name : kShipped)
    EXPECT_NE(std::find(known_device_profiles().begin(), known_device_profiles().end(), name),
              known_device_profiles().end());
  // A Pi has Wi-Fi (its default) and a cellular modem option; the cloud VM only Ethernet.
  EXPECT_EQ(default_network(load("rpi-zero-2w")), "wifi");
  EXPECT_EQ(load("rpi-zero-2w").networks.count("ethernet"), 0u);
  EXPECT_EQ(load("rpi-3b").networks.count("cellular"), 1u);
  EXPECT_EQ(default_network(load("cloud-vm")), "ethernet");
}

TEST(DeviceProfile, EveryShippedFigureNamesItsSource) {
  // A figure's comment is on its line or just above it; a run of figures under one comment
  // (tail_j, tail_s) shares it.
  std::regex figure(R"(^\s*[a-z_]+:\s*[-+0-9.]+(e[-+]?[0-9]+)?\s*(#.*)?$)");
  std::regex comment(R"(^\s*#.*$)");
  for (const std::string& name : kShipped) {
    std::ifstream in(kDevices + "/" + name + ".yaml");
    std::string line;
    bool covered = false;
    for (int n = 1; std::getline(in, line); ++n) {
      std::smatch m;
      if (std::regex_match(line, comment)) {
        covered = true;
      } else if (std::regex_match(line, m, figure)) {
        EXPECT_TRUE(covered || m[2].matched) << name << ".yaml:" << n << ": " << line;
      } else {
        covered = false;
      }
    }
  }
}

TEST(DeviceProfile, BrokenProfilesSayWhereAndHowToFix) {
  std::string e = parse_error("idle_w: 1\nw_per_busy_core: 0.5\ncores: 4\nnetworks: {wifi: {}}\n");
  EXPECT_NE(e.find("board.yaml:1:1: missing 'speed_factor'\n  hint: add one core's speed"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("board.yaml:4:18: network 'wifi' has no 'j_per_byte'"), std::string::npos) << e;

  std::string error;
  EXPECT_FALSE(load_device_profile("bad-board.yaml", kTestdata, &error));
  const std::string f = kTestdata + "/bad-board.yaml";
  EXPECT_NE(error.find(f + ":2:9: 'idle_w' must be from 0 to 10000 (got -1)"), std::string::npos)
      << error;
  EXPECT_NE(error.find(f + ":2:1: missing 'w_per_busy_core'"), std::string::npos) << error;
  EXPECT_NE(error.find(f + ":3:8: 'cores' must be a whole number from 1 to 1024 (got 2.5)"),
            std::string::npos)
      << error;
  EXPECT_NE(
      error.find(f + ":6:30: network 'wifi': unknown key 'tail'\n  hint: did you mean 'tail_j'?"),
      std::string::npos)
      << error;
  EXPECT_NE(error.find(f + ":7:3: unknown network 'lte'\n  hint: known: wifi, ethernet, cellular"),
            std::string::npos)
      << error;

  e = parse_error("idle_w: [1]\n");
  EXPECT_NE(e.find("board.yaml:1:9: 'idle_w' must be a number"), std::string::npos) << e;
  e = parse_error("idle_w: 1\n  cores: 4\n");
  EXPECT_NE(e.find("board.yaml:2:8: YAML syntax"), std::string::npos) << e;
  e = parse_error("- 1\n");
  EXPECT_NE(e.find("a device profile must be a map"), std::string::npos) << e;
  e = parse_error("idle_w: 1\nw_per_busy_core: 1\ncores: 1\nspeed_factor: 0\nnetworks: {}\n");
  EXPECT_NE(e.find("board.yaml:4:15: 'speed_factor' must be > 0"), std::string::npos) << e;
  EXPECT_NE(e.find("'networks' must be a map of wifi, ethernet, cellular"), std::string::npos) << e;
}

TEST(DeviceProfile, AnUnknownNameListsTheKnownOnesAndTheNearest) {
  DevicePath path(kDevices);
  std::string error;
  EXPECT_FALSE(load_device_profile("rpi3b", "", &error));
  EXPECT_NE(error.find("unknown device profile 'rpi3b'\n  hint: did you mean 'rpi-3b'? known: "
                       "cloud-vm, rpi-3b, rpi-4, rpi-5, rpi-zero-2w"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("or give a file: device: ./my-board.yaml"), std::string::npos) << error;
  EXPECT_FALSE(load_device_profile("a b", "", &error));
  EXPECT_NE(error.find("neither a profile name"), std::string::npos) << error;
  EXPECT_FALSE(load_device_profile("./nowhere.yaml", "/tmp", &error));
  EXPECT_NE(error.find("/tmp/./nowhere.yaml: no such device profile file\n  hint: a relative "
                       "path is read from the pipeline file's folder (/tmp)"),
            std::string::npos)
      << error;
}

TEST(DeviceProfile, TheUsersFolderComesFirstAndPathsAreRelativeToThePipeline) {
  DevicePath path(kTestdata + ":" + kDevices);
  DeviceProfile mine = load("my-board");  // found in the first folder
  EXPECT_EQ(mine.source, kTestdata + "/my-board.yaml");
  EXPECT_EQ(load("rpi-5").source, kDevices + "/rpi-5.yaml");  // the next folder
  DeviceProfile by_path = load("testdata/my-board.yaml", fs::path(kTestdata).parent_path());
  EXPECT_EQ(by_path.name, "my-board");
  EXPECT_DOUBLE_EQ(by_path.networks.at("wifi").rx_j_per_byte, 1e-6);  // defaults to j_per_byte
  EXPECT_DOUBLE_EQ(by_path.networks.at("cellular").rx_j_per_byte, 5e-7);
}

TEST(Energy, NodeEnergyByHand) {
  DeviceProfile board = load(kTestdata + "/my-board.yaml");
  NodeLoad l;
  l.cpu_core_seconds_per_s = 0.25;  // / speed 0.25 = 1 busy core of 4
  l.tx_bytes_per_s = 10000;
  l.rx_bytes_per_s = 1000;
  l.tx_packets_per_s = 10;
  l.rx_packets_per_s = 5;
  l.bursts_per_s = 1;
  // Wi-Fi: 10000 x 1e-6 + 1000 x 1e-6 + 15 x 1e-4 + min(1 x 0.05, 0.05 / 0.5) = 0.0625 W
  EXPECT_NEAR(network_watts(board.networks.at("wifi"), l), 0.0625, 1e-12);
  SolarSpec s;
  s.panel_w = 20;
  s.battery_wh = 50;
  s.lat_deg = 36.8;
  s.table_kwh_m2_day = std::array<double, 12>{3.0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
  NodeEnergy e = node_energy(board, l, s, 1);
  EXPECT_TRUE(e.error.empty()) << e.error;
  EXPECT_EQ(e.network, "wifi");
  EXPECT_DOUBLE_EQ(e.busy_cores, 1);
  EXPECT_DOUBLE_EQ(e.cpu_util, 0.25);
  EXPECT_FALSE(e.saturated);
  // 1.0 idle + 0.5 x 1 core + 0.0625 network = 1.5625 W = 37.5 Wh/day
  EXPECT_NEAR(e.watts, 1.5625, 1e-12);
  EXPECT_NEAR(e.wh_per_day, 37.5, 1e-9);
  // 20 W x 3.0 h x 0.75 x 1 (table) x 0.85 = 38.25 Wh: just positive
  EXPECT_NEAR(e.harvest_wh_per_day, 38.25, 1e-9);
  EXPECT_TRUE(e.positive);
  EXPECT_NEAR(e.autonomy_h, 50 * 0.8 / 1.5625, 1e-9);  // 25.6 h
  // Over cellular instead: 10000 x 2e-6 + 1000 x 5e-7 + 0 + min(1 x 10, 10 / 10) = 1.0205 W
  l.network = "cellular";
  e = node_energy(board, l, s, 1);
  EXPECT_NEAR(e.network_watts, 1.0205, 1e-12);
  EXPECT_FALSE(e.positive);  // 2.5205 W = 60.5 Wh/day against 38.25
  EXPECT_FALSE(node_energy(board, l, std::nullopt, 1).has_solar);
}

TEST(Energy, ADeviceThatCannotKeepUpIsSaturated) {
  DeviceProfile board = load(kTestdata + "/my-board.yaml");
  NodeLoad l;
  l.cpu_core_seconds_per_s = 1.5;  // 6 cores' worth on a 4-core board
  NodeEnergy e = node_energy(board, l, std::nullopt, 1);
  EXPECT_TRUE(e.saturated);
  EXPECT_DOUBLE_EQ(e.cpu_util, 1);
  EXPECT_DOUBLE_EQ(e.watts, 1.0 + 0.5 * 4);
}

TEST(Energy, TheRadioTailCostsAtMostTheRadioAlwaysOn) {
  NetworkEnergy lte{0, 0, 0, 12.6, 11.84};
  NodeLoad l;
  l.bursts_per_s = 1.0 / 60;  // a message a minute: 12.6 J / 60 s = 0.21 W
  EXPECT_NEAR(network_watts(lte, l), 0.21, 1e-12);
  l.bursts_per_s = 1;  // the radio never sleeps: 12.6 / 11.84 = 1.064 W, not 12.6 W
  EXPECT_NEAR(network_watts(lte, l), 12.6 / 11.84, 1e-12);
  l.bursts_per_s = -1;  // not given: one burst per sent packet
  l.tx_packets_per_s = 0.01;
  EXPECT_NEAR(network_watts(lte, l), 0.126, 1e-12);
}

TEST(Energy, WireEstimateAddsHeadersAndAcks) {
  // 100 bytes in one write over Wi-Fi: 1 packet of 100 + 52 TCP/IP + 38 802.11 = 190 bytes,
  // and one 90-byte ACK back.
  WireTraffic w = estimate_wire(100, 1, "wifi");
  EXPECT_DOUBLE_EQ(w.tx_packets, 1);
  EXPECT_DOUBLE_EQ(w.tx_bytes, 190);
  EXPECT_DOUBLE_EQ(w.rx_packets, 1);
  EXPECT_DOUBLE_EQ(w.rx_bytes, 90);
  // 3000 bytes: 3 segments (1448 each at most), 2 delayed ACKs: 3000 + 3 x 90; 2 x 90.
  w = estimate_wire(3000, 1, "ethernet");
  EXPECT_DOUBLE_EQ(w.tx_packets, 3);
  EXPECT_DOUBLE_EQ(w.tx_bytes, 3270);
  EXPECT_DOUBLE_EQ(w.rx_bytes, 180);
  w = estimate_wire(500, 5, "cellular");  // 5 writes of 100: 5 x (100 + 58)
  EXPECT_DOUBLE_EQ(w.tx_bytes, 790);
}

TEST(Energy, ANetworkTheDeviceLacksIsAnError) {
  DevicePath path(kDevices);
  NodeLoad l;
  l.tx_bytes_per_s = 100;
  l.network = "ethernet";
  NodeEnergy e = node_energy(load("rpi-zero-2w"), l, std::nullopt, 1);
  EXPECT_EQ(e.error, "device 'rpi-zero-2w' has no ethernet (it has cellular, wifi)");
}

// The seed device: a Raspberry Pi 3B on a 60 W panel with a 50,000 mAh (3.7 V, 185 Wh)
// battery at 36.8 N, in January (the worst month for harvest there is December, within 4%).
class SeedDevice : public ::testing::Test {
 protected:
  SeedDevice() : path_(kDevices), pi_(load("rpi-3b")) {
    solar_.panel_w = 60;
    solar_.battery_wh = 185;
    solar_.lat_deg = 36.8;
  }
  // `messages_per_s` MQTT messages of `bytes` each over Wi-Fi, one burst each.
  NodeEnergy run(double core_seconds_per_s, double messages_per_s, double bytes) {
    WireTraffic w = estimate_wire(bytes * messages_per_s, messages_per_s, "wifi");
    NodeLoad l{core_seconds_per_s, w.tx_bytes,     w.rx_bytes, w.tx_packets,
               w.rx_packets,       messages_per_s, "wifi"};
    return node_energy(pi_, l, solar_, 1);
  }
  DevicePath path_;
  DeviceProfile pi_;
  SolarSpec solar_;
};

TEST_F(SeedDevice, UnderFullLoadItDrawsAboutOneAmpAt5V) {
  // Every core busy and Wi-Fi sending 100 kB/s: 3.7 W of board plus about 0.4 W of Wi-Fi,
  // 0.8 A at 5 V; the seed's "about 1 A under load" also feeds its sensor board and USB.
  NodeEnergy e = run(1.0, 70, 1430);
  EXPECT_TRUE(e.saturated);
  EXPECT_GT(e.watts / 5, 0.7);
  EXPECT_LT(e.watts / 5, 1.1);
}

TEST_F(SeedDevice, BusyHalfTheTimeItIsPositiveAndLastsAboutTwoDays) {
  // Two of the four cores busy (0.24 core-s/s on the profiling machine / 0.12), e.g. motion
  // detection at a low frame rate, and 5 messages/s of 1000 bytes over Wi-Fi:
  // 1.4 + 2 x 0.575 + Wi-Fi (5450 B/s x 2.3e-6 + 450 B/s x 1.1e-6 + 10 pkt/s x 2.5e-4
  // + min(5 x 0.038, 0.038 / 0.32)) = 1.4 + 1.15 + 0.134 = 2.684 W = 64.4 Wh/day.
  NodeEnergy e = run(0.24, 5, 1000);
  EXPECT_NEAR(e.watts, 2.684, 0.001);
  // Harvest 172.99 Wh/day (solar_test.cc) > 64.4: positive, also in December.
  EXPECT_TRUE(e.positive);
  EXPECT_TRUE(node_energy(pi_, NodeLoad{0.24, 5450, 450, 5, 5, 5, "wifi"}, solar_, 12).positive);
  // 185 Wh x 0.8 / 2.684 W = 55 h: about two days without sun (the design's goal).
  EXPECT_GE(e.autonomy_h, 36);
  EXPECT_LE(e.autonomy_h, 60);
  // A January week from half full: never empty.
  WeekSimulation week = simulate_week(solar_, 1, e.watts, 0.5);
  EXPECT_EQ(week.hours_empty, 0);
  EXPECT_GT(week.min_soc, 0.2);
  // Under heavy cloud (a fifth of clear sky: 49 Wh/day) the verdict turns.
  solar_.cloudiness = 0.2;
  EXPECT_FALSE(run(0.24, 5, 1000).positive);
}

TEST_F(SeedDevice, WithALightPipelineItLastsFourDays) {
  // The weather station: a reading a second aggregated on the device (1 ms of CPU a second on
  // the profiling machine), one 250-byte message a minute. The bare board's 1.4 W idle is
  // nearly all of it: 185 x 0.8 / 1.4055 = 105 h. Published bare-board figures give more
  // than the seed's "two days"; a HAT, a camera or USB devices add to idle_w.
  NodeEnergy e = run(0.001, 1.0 / 60, 250);
  EXPECT_NEAR(e.watts, 1.4055, 0.0005);
  EXPECT_TRUE(e.positive);
  EXPECT_GE(e.autonomy_h, 95);
  EXPECT_LE(e.autonomy_h, 115);
}

const char* kPipeline = R"(pipeline: planned
nodes:
  pi-1:
    tier: edge
    device: rpi-3b
    network: cellular
    solar: {panel_w: 60, battery_wh: 185, lat: 36.8, tilt: 30, cloudiness: 0.5, month: 12,
            derating: 0.8, converter_eff: 0.9, usable_fraction: 0.7, table: site-table.csv}
  pi-2: {tier: edge, device: ./my-board.yaml}
  hq: {tier: cloud, device: cloud-vm, network: ethernet}
stages:
  - {id: sensors, op: weather.simulate, on: edge}
  - {id: show, op: log, on: cloud, from: sensors}
)";

TEST(PipelineKeys, NetworkAndSolarReachThePlanner) {
  LoadResult r = load_pipeline_text(kPipeline, "planned.yaml", kTestdata);
  ASSERT_TRUE(r.pipeline) << r.diags.str();
  const PipelineSpec& p = *r.pipeline;
  const NodeSpec* pi1 = p.node("pi-1");
  EXPECT_EQ(pi1->network, "cellular");
  EXPECT_EQ(pi1->solar_table, "site-table.csv");
  EXPECT_EQ(pi1->solar_mark.line, 7);
  EXPECT_EQ(p.node("pi-2")->network, "");
  EXPECT_EQ(p.node("hq")->network, "ethernet");
  std::string error;
  auto solar = solar_for_node(p, *pi1, &error);
  ASSERT_TRUE(solar) << error;
  EXPECT_DOUBLE_EQ(solar->tilt(), 30);
  EXPECT_EQ(solar->month, 12);
  // Dec from the table (2.8), cloudiness 0.5 as given: 60 x 2.8 x 0.8 x 0.5 x 0.9 = 60.48 Wh
  EXPECT_NEAR(harvest_wh_per_day(*solar, 12), 60.48, 1e-9);
  EXPECT_NEAR(autonomy_hours(*solar, 1.0), 185 * 0.7, 1e-9);
  EXPECT_FALSE(solar_for_node(p, *p.node("pi-2"), &error));
  EXPECT_TRUE(error.empty());  // no solar: no error
  DeviceProfile mine = load(p.node("pi-2")->device, p.base_dir);
  EXPECT_EQ(mine.name, "my-board");

  std::string missing = kPipeline;
  missing.replace(missing.find("site-table.csv"), 14, "gone.csv");
  r = load_pipeline_text(missing, "planned.yaml", kTestdata);
  ASSERT_TRUE(r.pipeline) << r.diags.str();  // the loader opens no file
  EXPECT_FALSE(solar_for_node(*r.pipeline, *r.pipeline->node("pi-1"), &error));
  EXPECT_EQ(error.find("planned.yaml:7:12: node 'pi-1': " + kTestdata + "/gone.csv: cannot read"),
            0u)
      << error;
}

TEST(PipelineKeys, BadNetworkAndSolarValuesAreLoadErrors) {
  LoadResult r = load_pipeline_text(R"(pipeline: bad
nodes:
  pi-1: {tier: edge, network: wify, solar: {panel_w: 60, battery_wh: -5, lat: 95}}
  pi-2: {tier: edge, network: lte, solar: {panel_w: 6, lat: 1, efficiency: 0.8, month: 2.5}}
  hq: {tier: cloud}
stages:
  - {id: sensors, op: weather.simulate, on: edge}
)",
                                    "bad.yaml", ".");
  ASSERT_FALSE(r.pipeline);
  std::string e = r.diags.str();
  EXPECT_NE(e.find("bad.yaml:3:31: node 'pi-1' has unknown network 'wify'\n  hint: did you mean "
                   "'wifi'? a network is wifi, ethernet or cellular"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("bad.yaml:3:70: solar of node 'pi-1': 'battery_wh' must be > 0 and <= 1000000 "
                   "(got -5)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("bad.yaml:3:79: solar of node 'pi-1': 'lat' must be from -90 to 90 (got 95)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("node 'pi-2' has unknown network 'lte'\n  hint: a network is wifi"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("'efficiency' is ambiguous\n  hint: say derating"), std::string::npos) << e;
  EXPECT_NE(e.find("'month' must be a whole number from 1 to 12 (got 2.5)"), std::string::npos)
      << e;
  EXPECT_NE(e.find("bad.yaml:4:43: solar of node 'pi-2' has no 'battery_wh'"), std::string::npos)
      << e;
}

}  // namespace
}  // namespace edgeflow
