#include "edge/battery_gauge.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "operators/weather/power_supply.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

constexpr double kPi = 3.14159265358979323846;

// The local hour of the day (0-24) and month (1-12) of a wall time: the model's clock. Local
// clock time stands in for solar time (no longitude is known): off by up to an hour or two.
void local_hour_month(int64_t wall_us, double* hour, int* month) {
  time_t t = static_cast<time_t>(wall_us / 1000000);
  tm local{};
  localtime_r(&t, &local);
  *hour = local.tm_hour + local.tm_min / 60.0 + local.tm_sec / 3600.0;
  *month = local.tm_mon + 1;
}

}  // namespace

double harvest_watts_at(const SolarSpec& solar, int month, double hour) {
  const double daily = harvest_wh_per_day(solar, month);
  if (!(daily > 0)) return 0;
  double length = day_length_h(solar.lat_deg, representative_day(month));
  length = std::clamp(length, 2.0, 24.0);  // as simulate_week: a table's light in polar night
  const double sunrise = 12 - length / 2;
  const double x = hour - sunrise;
  if (x < 0 || x > length) return 0;
  // A half sine whose integral over the day is `daily`: peak = daily * pi / (2 * length).
  return daily * kPi / (2 * length) * std::sin(kPi * x / length);
}

BatteryModel::BatteryModel(DeviceProfile profile, SolarSpec solar, std::string network,
                           double start_fraction)
    : profile_(std::move(profile)), solar_(std::move(solar)), network_(std::move(network)) {
  capacity_wh_ = solar_.battery_wh * solar_.usable_fraction;
  set_fraction(start_fraction);
}

void BatteryModel::set_fraction(double f) { stored_wh_ = std::clamp(f, 0.0, 1.0) * capacity_wh_; }

void BatteryModel::step(double seconds, double hour, int month, const NodeLoad& load) {
  NodeLoad l = load;
  if (l.network.empty()) l.network = network();
  NodeEnergy e = node_energy(profile_, l, std::nullopt, month);
  watts_ = e.error.empty() ? e.watts : profile_.idle_w;
  // The harvest at the middle of the step: steps are short next to the day's curve.
  double mid = hour - seconds / 7200.0;
  if (mid < 0) mid += 24;
  harvest_w_ = harvest_watts_at(solar_, month, mid);
  stored_wh_ += (harvest_w_ - watts_) * seconds / 3600.0;
  stored_wh_ = std::clamp(stored_wh_, 0.0, capacity_wh_);
}

BatteryGauge::BatteryGauge(const NodeConfig& config) : config_(config) {
  std::ifstream in(config_.data_dir + "/battery.json");
  if (in) {
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_object() && j.contains("fraction") && j["fraction"].is_number())
      saved_fraction_ = std::clamp(j["fraction"].get<double>(), 0.0, 1.0);
  }
}

std::string BatteryGauge::configure_model(const std::string& device, const std::string& base_dir,
                                          const std::optional<SolarSpec>& solar,
                                          const std::string& network) {
  if (model_) saved_fraction_ = model_->fraction();
  model_.reset();
  if (!solar || !(solar->battery_wh > 0)) {
    model_note_ = "the node has no solar: (battery_wh) in the pipeline file";
    return model_note_;
  }
  if (device.empty()) {
    model_note_ = "the node has no device: in the pipeline file or the service config";
    return model_note_;
  }
  std::string error;
  auto profile = load_device_profile(device, base_dir, &error);
  if (!profile) {
    model_note_ = error;
    return model_note_;
  }
  const double start = saved_fraction_ ? *saved_fraction_ : config_.battery.start_pct / 100;
  model_.emplace(std::move(*profile), *solar, network, start);
  model_note_.clear();
  return "";
}

BatteryReading BatteryGauge::read(int64_t now_wall_us, const MeasuredLoad& load) {
  BatteryReading r;
  if (config_.battery.source != "model") {
    for (const PowerSupplyReading& p : read_power_supplies(config_.sysfs_root)) {
      const bool named = !config_.battery.supply.empty();
      if (named ? p.name != config_.battery.supply : p.type.value_or("") != "Battery") continue;
      if (!p.capacity_percent) continue;
      r.charge_pct = std::clamp(*p.capacity_percent, 0, 100);
      r.source = "sysfs";
      r.supply = p.name;
      r.status = p.status.value_or("");
      break;
    }
    if (r.charge_pct || config_.battery.source == "sysfs") {
      if (!r.charge_pct)
        r.note = "no battery with a capacity under " + config_.sysfs_root + "/class/power_supply";
      last_us_ = 0;  // the model restarts from here if the kernel's battery goes away
      return r;
    }
  }
  if (!model_) {
    r.note = model_note_;
    return r;
  }
  if (last_us_ > 0 && now_wall_us > last_us_) {
    const double dt = (now_wall_us - last_us_) / 1e6;
    NodeLoad l;
    // Measured here, on the device: node_energy wants the profiling machine's core-seconds.
    l.cpu_core_seconds_per_s = std::max(0.0, load.cpu_seconds - last_load_.cpu_seconds) / dt *
                               model_->profile().speed_factor;
    const std::string network = model_->network();
    WireTraffic tx = estimate_wire(std::max(0.0, load.tx_bytes - last_load_.tx_bytes),
                                   std::max(0.0, load.tx_writes - last_load_.tx_writes), network);
    WireTraffic rx = estimate_wire(std::max(0.0, load.rx_bytes - last_load_.rx_bytes),
                                   std::max(0.0, load.rx_writes - last_load_.rx_writes), network);
    l.tx_bytes_per_s = (tx.tx_bytes + rx.rx_bytes) / dt;
    l.rx_bytes_per_s = (tx.rx_bytes + rx.tx_bytes) / dt;
    l.tx_packets_per_s = (tx.tx_packets + rx.rx_packets) / dt;
    l.rx_packets_per_s = (tx.rx_packets + rx.tx_packets) / dt;
    l.bursts_per_s = std::max(0.0, load.tx_writes - last_load_.tx_writes) / dt;
    double hour = 0;
    int month = 1;
    local_hour_month(now_wall_us, &hour, &month);
    model_->step(dt, hour, month, l);
  }
  last_us_ = now_wall_us;
  last_load_ = load;
  r.charge_pct = model_->fraction() * 100;
  r.source = "model";
  r.watts = model_->watts();
  r.harvest_w = model_->harvest_w();
  return r;
}

void BatteryGauge::save(bool force) {
  if (!model_) return;
  if (!force && last_us_ - last_save_us_ < 60'000'000) return;
  last_save_us_ = last_us_;
  const std::string path = config_.data_dir + "/battery.json", tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json({{"fraction", model_->fraction()}, {"time_us", last_us_}}).dump();
    if (!out) return;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
}

}  // namespace edgeflow
