// The edge service's battery state, for energy modes (runtime/energy_rules.h) and the status.
//
// From the kernel where it knows: the `capacity` (percent) of a battery under
// <sysfs_root>/class/power_supply (a UPS HAT's fuel gauge, a laptop's BAT0). Otherwise from
// the planner's model: a battery that starts at `battery.start` (or where the model left it
// before a restart, kept in data_dir/battery.json) and integrates, between two readings,
//   harvest (the solar model's day for this month, spread over the daylight hours as a half
//            sine around local noon, as simulate_week does)
//   - the device's draw (planner/energy.h node_energy: the device profile driven by this
//            process's measured CPU time and the part's link bytes)
// clipped at empty and full. The model needs the node's `device:` and `solar:` in the
// pipeline file (or the service's `device:`); without them the charge is unknown and the
// mode stays where it is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "edge/node_config.h"
#include "planner/device_profile.h"
#include "planner/energy.h"
#include "planner/solar.h"

namespace edgeflow {

// Watts reaching the battery at `hour` (0-24, local solar time) of a day of `month`: the
// day's harvest_wh_per_day over the daylight hours as a half sine; integrates to the day's.
double harvest_watts_at(const SolarSpec& solar, int month, double hour);

// The battery of the model: usable watt-hours, integrated step by step.
class BatteryModel {
 public:
  BatteryModel(DeviceProfile profile, SolarSpec solar, std::string network, double start_fraction);

  // Advances `seconds` that end at `hour` of a day of `month`, with `load` over that time
  // (CPU in core-seconds per second of the profiling machine, as node_energy wants).
  void step(double seconds, double hour, int month, const NodeLoad& load);
  double fraction() const { return capacity_wh_ > 0 ? stored_wh_ / capacity_wh_ : 0; }
  void set_fraction(double f);
  double watts() const { return watts_; }          // the draw of the last step
  double harvest_w() const { return harvest_w_; }  // the harvest of the last step
  const DeviceProfile& profile() const { return profile_; }
  // The node's `network:`, else the device's default.
  std::string network() const { return network_.empty() ? default_network(profile_) : network_; }

 private:
  DeviceProfile profile_;
  SolarSpec solar_;
  std::string network_;
  double capacity_wh_ = 0, stored_wh_ = 0;
  double watts_ = 0, harvest_w_ = 0;
};

struct BatteryReading {
  std::optional<double> charge_pct;  // 0-100; unset when neither the kernel nor the model know
  std::string source = "none";       // "sysfs", "model" or "none"
  std::string supply;                // sysfs: the supply's folder (BAT0)
  std::string status;                // sysfs: Charging, Discharging...
  double watts = 0, harvest_w = 0;   // model: the last step's draw and harvest
  std::string note;                  // why the model cannot run ("" when fine)
};

// What the part moved and burned since the service started: cumulative counters, turned into
// rates between two readings.
struct MeasuredLoad {
  double cpu_seconds = 0;               // this process, all threads (the service's own work counts)
  double tx_bytes = 0, rx_bytes = 0;    // link payloads sent and received
  double tx_writes = 0, rx_writes = 0;  // batches: one write (and one radio burst) each
};

class BatteryGauge {
 public:
  explicit BatteryGauge(const NodeConfig& config);

  // The model for a (new) part: the node's device profile and solar spec. Keeps the charge.
  // Returns "" or why the model cannot run (no solar:, an unknown device).
  std::string configure_model(const std::string& device, const std::string& base_dir,
                              const std::optional<SolarSpec>& solar, const std::string& network);
  // Reads the kernel's battery; without one, advances the model to `now_wall_us` with the
  // counters (cumulative) measured until then.
  BatteryReading read(int64_t now_wall_us, const MeasuredLoad& load);
  // Keeps the model's charge in data_dir/battery.json (at most once a minute unless forced).
  void save(bool force);

 private:
  NodeConfig config_;
  std::optional<BatteryModel> model_;
  std::string model_note_ = "no part with a device and solar: running yet";
  std::optional<double> saved_fraction_;  // from battery.json, or the last model's
  int64_t last_us_ = 0;
  MeasuredLoad last_load_;
  int64_t last_save_us_ = 0;
};

}  // namespace edgeflow
