// Battery and power-supply figures from the Linux power_supply class
// (Documentation/ABI/testing/sysfs-class-power): one folder per supply under
// <sysfs_root>/class/power_supply (BAT0, AC, a UPS HAT's fuel gauge, a USB port...), one
// small text file per property. For the edge service's status; no runtime dependency.
//
// The kernel gives microunits (µV, µA, µW, µWh); these are converted to V, A, W and Wh. A
// property a driver lacks, or cannot read at the moment (some fuel gauges answer ENODATA
// until they have measured), is left empty: a status report shows what there is.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace edgeflow {

struct PowerSupplyReading {
  std::string name;                     // the folder: BAT0, AC, ...
  std::optional<std::string> type;      // Battery, Mains, USB, UPS, Wireless
  std::optional<std::string> status;    // Charging, Discharging, Not charging, Full, Unknown
  std::optional<int> capacity_percent;  // state of charge, 0 to 100
  std::optional<double> voltage_v;      // voltage_now
  // current_now. Since 2020 the ABI asks for negative while discharging, positive while
  // charging, but older drivers differ (some only report positive values): read it with
  // status rather than trusting the sign alone.
  std::optional<double> current_a;
  std::optional<double> power_w;    // power_now; same sign caveat as current
  std::optional<double> energy_wh;  // energy_now: what the battery holds now
  std::optional<bool> online;       // an external supply (mains, USB) is connected
};

// Every supply under <sysfs_root>/class/power_supply, sorted by name; empty when there is
// no such folder (a machine without batteries, or not Linux).
std::vector<PowerSupplyReading> read_power_supplies(const std::string& sysfs_root = "/sys");

}  // namespace edgeflow
