// The solar model: what a panel harvests per day at a site and month, how long the battery
// carries the device without sun, and the battery's state over a simulated week. Clear-sky
// irradiation on the tilted panel (Duffie & Beckman, "Solar Engineering of Thermal
// Processes": extraterrestrial irradiation eq. 1.10.3, a clear day's clearness index, Erbs
// diffuse fraction eq. 2.12.1, Liu-Jordan isotropic sky with R_b of eq. 2.19.2) times a
// cloudiness factor, or a measured monthly table for the site. Equations and defaults:
// docs/planner.md.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace edgeflow {

struct NodeSpec;
struct PipelineSpec;

// Defaults, each justified in docs/planner.md.
constexpr double kDefaultDerating = 0.75;         // panel output over its STC rating
constexpr double kDefaultConverterEff = 0.85;     // charge controller (PWM/MPPT, DC-DC)
constexpr double kDefaultUsableFraction = 0.8;    // battery Wh that reach the device
constexpr double kDefaultCloudiness = 0.7;        // share of clear-sky sunshine, no table
constexpr double kClearSkyClearnessIndex = 0.72;  // K_T of a clear day
constexpr double kGroundReflectance = 0.2;        // grass, soil, concrete
constexpr double kSolarConstant = 1367;           // W/m2 (Duffie & Beckman 3rd ed.)

struct SolarSpec {
  double panel_w = 0;  // peak watts (STC rating)
  double derating = kDefaultDerating;
  double lat_deg = 0;              // negative south
  std::optional<double> tilt_deg;  // from horizontal, facing the equator; unset = |lat|
  double battery_wh = 0;           // nominal
  double converter_eff = kDefaultConverterEff;
  double usable_fraction = kDefaultUsableFraction;
  // Share of the clear-sky irradiation the site gets (0..1). Unset: kDefaultCloudiness with
  // the model, 1 with a table (a measured table has the weather in it already).
  std::optional<double> cloudiness;
  std::optional<int> month;  // the month to show when none is asked for (1-12)
  std::string table;         // the site's table file as given; "" = the clear-sky model
  // Daily irradiation on the panel, kWh/m2/day, January first: read from `table`.
  std::optional<std::array<double, 12>> table_kwh_m2_day;

  double tilt() const;
  double effective_cloudiness() const;
};

// Day of the year (1-365) of the representative day of `month` (1-12): Klein (1977), as
// tabulated by Duffie & Beckman table 1.6.1 (17 Jan, 16 Feb, 16 Mar, 15 Apr, ...).
int representative_day(int month);
// Declination in degrees (Cooper 1969, Duffie & Beckman eq. 1.6.1a).
double declination_deg(int day_of_year);
// Sunset hour angle in degrees (0 in polar night, 180 in polar day); eq. 1.6.10.
double sunset_hour_angle_deg(double lat_deg, double decl_deg);
// Hours from sunrise to sunset on a horizontal surface.
double day_length_h(double lat_deg, int day_of_year);
// Daily extraterrestrial irradiation on a horizontal surface, J/m2 (eq. 1.10.3).
double extraterrestrial_daily_j_m2(double lat_deg, int day_of_year);
// Daily diffuse fraction H_d/H for clearness index `kt` (Erbs et al. 1982, eq. 2.12.1).
double diffuse_fraction(double kt, double sunset_hour_angle_deg);
// Ratio of daily beam irradiation on the tilted, equator-facing panel to that on the
// horizontal (eq. 2.19.2; the southern hemisphere by symmetry, eq. 2.19.3). 0 in polar night.
double beam_tilt_factor(double lat_deg, double tilt_deg, int day_of_year);
// Clear-sky daily irradiation on the panel, kWh/m2/day, on the representative day of `month`.
double clear_sky_tilted_kwh_m2(double lat_deg, double tilt_deg, int month);
// What the panel sees per day in `month`, kWh/m2/day: the table's figure when there is one,
// otherwise the clear-sky model. Cloudiness not applied.
double panel_insolation_kwh_m2(const SolarSpec& spec, int month);

// Watt-hours a day that reach the battery in `month`:
//   panel_w * insolation / (1 kW/m2) * derating * cloudiness * converter_eff
double harvest_wh_per_day(const SolarSpec& spec, int month);
// Hours the battery carries an `avg_watts` load from full with no sun:
//   battery_wh * usable_fraction / avg_watts  (infinity when avg_watts <= 0)
double autonomy_hours(const SolarSpec& spec, double avg_watts);

struct WeekSimulation {
  std::vector<double> soc;  // state of charge (0..1 of usable Wh) at the end of each hour, 168
  double min_soc = 1;
  double hours_empty = 0;           // hours of demand not met (unmet Wh / avg_watts)
  double harvested_wh = 0;          // into the battery side of the converter, before clipping
  double demand_wh = 0;             // avg_watts * 168
  double spilled_wh = 0;            // harvest that found the battery full
  double unmet_wh = 0;              // demand that found the battery empty
  double start_wh = 0, end_wh = 0;  // usable Wh held at the start and the end
};
// Seven days of `month` hour by hour from midnight (local solar time), starting at
// `start_soc` (0..1 of the usable watt-hours): each day harvests harvest_wh_per_day spread
// over the daylight hours as a half sine from sunrise to sunset, the load draws avg_watts
// every hour, the battery is clipped at full and at empty. The balance holds exactly:
//   end = start + harvested - spilled - (demand - unmet).
WeekSimulation simulate_week(const SolarSpec& spec, int month, double avg_watts, double start_soc);

// A site's monthly table: one line per month, `month,kWh/m2/day` where month is 1-12 or
// Jan..Dec; '#' starts a comment; a header line is allowed. Every month exactly once.
std::optional<std::array<double, 12>> load_solar_table(const std::string& path, std::string* error);

// A SolarSpec from what the loader keeps of a node's `solar:` map (runtime/pipeline.h):
// the numeric keys and the table path, which is read here (relative to `base_dir`).
std::optional<SolarSpec> solar_from_pairs(const std::vector<std::pair<std::string, double>>& pairs,
                                          const std::string& table, const std::string& base_dir,
                                          std::string* error);
// The same for a node of a loaded pipeline: nullopt with `error` empty when the node has no
// `solar:`; errors point at the node's `solar:` in the pipeline file.
std::optional<SolarSpec> solar_for_node(const PipelineSpec& pipeline, const NodeSpec& node,
                                        std::string* error);

}  // namespace edgeflow
