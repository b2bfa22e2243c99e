#include "planner/solar.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <numbers>
#include <sstream>

#include "runtime/pipeline.h"

namespace edgeflow {

namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kJoulesPerKwh = 3.6e6;

double rad(double deg) { return deg * kPi / 180; }
double deg(double rad) { return rad * 180 / kPi; }

// Hour angle (degrees) at which the sun sets on a surface that sees it like a horizontal one
// at latitude `lat_deg`; clamped so polar night gives 0 and polar day 180, never NaN.
double hour_angle_of_setting(double lat_deg, double decl_deg) {
  double x = -std::tan(rad(lat_deg)) * std::tan(rad(decl_deg));
  return deg(std::acos(std::clamp(x, -1.0, 1.0)));
}

// cos(phi) cos(delta) sin(ws) + (pi ws / 180) sin(phi) sin(delta): the bracket of
// eq. 1.10.3 and of both halves of eq. 2.19.2.
double daily_cosine_integral(double lat_deg, double decl_deg, double ws_deg) {
  return std::cos(rad(lat_deg)) * std::cos(rad(decl_deg)) * std::sin(rad(ws_deg)) +
         kPi * ws_deg / 180 * std::sin(rad(lat_deg)) * std::sin(rad(decl_deg));
}

int clamp_month(int month) { return std::clamp(month, 1, 12); }

const char* const kMonths[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                 "jul", "aug", "sep", "oct", "nov", "dec"};

// "1".."12", "01", or a month's name or its first three letters (any case); 0 otherwise.
int month_of(const std::string& text) {
  if (!text.empty() && text.size() <= 2 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int n = std::stoi(text);
    return n >= 1 && n <= 12 ? n : 0;
  }
  if (text.size() < 3) return 0;
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (int m = 0; m < 12; ++m)
    if (lower.compare(0, 3, kMonths[m]) == 0) return m + 1;
  return 0;
}

}  // namespace

double SolarSpec::tilt() const { return tilt_deg ? *tilt_deg : std::fabs(lat_deg); }

double SolarSpec::effective_cloudiness() const {
  if (cloudiness) return *cloudiness;
  return table_kwh_m2_day ? 1.0 : kDefaultCloudiness;
}

int representative_day(int month) {
  static constexpr int kDays[12] = {17, 47, 75, 105, 135, 162, 198, 228, 258, 288, 318, 344};
  return kDays[clamp_month(month) - 1];
}

double declination_deg(int day_of_year) {
  return 23.45 * std::sin(rad(360.0 * (284 + day_of_year) / 365));
}

double sunset_hour_angle_deg(double lat_deg, double decl_deg) {
  return hour_angle_of_setting(lat_deg, decl_deg);
}

double day_length_h(double lat_deg, int day_of_year) {
  return 2 * sunset_hour_angle_deg(lat_deg, declination_deg(day_of_year)) / 15;
}

double extraterrestrial_daily_j_m2(double lat_deg, int day_of_year) {
  double decl = declination_deg(day_of_year);
  double ws = sunset_hour_angle_deg(lat_deg, decl);
  double eccentricity = 1 + 0.033 * std::cos(rad(360.0 * day_of_year / 365));
  double h0 =
      24 * 3600 * kSolarConstant / kPi * eccentricity * daily_cosine_integral(lat_deg, decl, ws);
  return std::max(0.0, h0);  // rounding near the polar-night edge
}

double diffuse_fraction(double kt, double ws_deg) {
  kt = std::clamp(kt, 0.0, 1.0);
  if (ws_deg <= 81.4) {
    if (kt < 0.715)
      return 1 - 0.2727 * kt + 2.4495 * kt * kt - 11.9514 * std::pow(kt, 3) +
             9.3879 * std::pow(kt, 4);
    return 0.143;
  }
  if (kt < 0.722) return 1 + 0.2832 * kt - 2.5557 * kt * kt + 0.8448 * std::pow(kt, 3);
  return 0.175;
}

double beam_tilt_factor(double lat_deg, double tilt_deg, int day_of_year) {
  double decl = declination_deg(day_of_year);
  // South of the equator the panel faces north: the mirror image of the northern case
  // (latitude and declination change sign), which is eq. 2.19.3.
  if (lat_deg < 0) {
    lat_deg = -lat_deg;
    decl = -decl;
  }
  double ws = hour_angle_of_setting(lat_deg, decl);
  double horizontal = daily_cosine_integral(lat_deg, decl, ws);
  if (horizontal <= 1e-9) return 0;  // polar night: no beam to scale
  // The tilted panel sees the sun as a horizontal surface at latitude (lat - tilt) would, but
  // only while the sun is up here too.
  double ws_tilted = std::min(ws, hour_angle_of_setting(lat_deg - tilt_deg, decl));
  double tilted = daily_cosine_integral(lat_deg - tilt_deg, decl, ws_tilted);
  return std::max(0.0, tilted / horizontal);
}

double clear_sky_tilted_kwh_m2(double lat_deg, double tilt_deg, int month) {
  int n = representative_day(month);
  double h0 = extraterrestrial_daily_j_m2(lat_deg, n);
  if (h0 <= 0) return 0;
  double ws = sunset_hour_angle_deg(lat_deg, declination_deg(n));
  double h = kClearSkyClearnessIndex * h0;
  double hd = diffuse_fraction(kClearSkyClearnessIndex, ws) * h;
  double hb = h - hd;
  double beta = rad(tilt_deg);
  // Liu-Jordan isotropic sky: beam scaled by R_b, sky diffuse by the view factor of the sky,
  // ground-reflected by the view factor of the ground.
  double ht = hb * beam_tilt_factor(lat_deg, tilt_deg, n) + hd * (1 + std::cos(beta)) / 2 +
              h * kGroundReflectance * (1 - std::cos(beta)) / 2;
  return ht / kJoulesPerKwh;
}

double panel_insolation_kwh_m2(const SolarSpec& spec, int month) {
  if (spec.table_kwh_m2_day) return (*spec.table_kwh_m2_day)[clamp_month(month) - 1];
  return clear_sky_tilted_kwh_m2(spec.lat_deg, spec.tilt(), month);
}

double harvest_wh_per_day(const SolarSpec& spec, int month) {
  // kWh/m2 over the 1 kW/m2 of the panel's rating: "peak sun hours".
  double peak_sun_hours = panel_insolation_kwh_m2(spec, month);
  return spec.panel_w * peak_sun_hours * spec.derating * spec.effective_cloudiness() *
         spec.converter_eff;
}

double autonomy_hours(const SolarSpec& spec, double avg_watts) {
  if (avg_watts <= 0) return std::numeric_limits<double>::infinity();
  return spec.battery_wh * spec.usable_fraction / avg_watts;
}

WeekSimulation simulate_week(const SolarSpec& spec, int month, double avg_watts, double start_soc) {
  WeekSimulation sim;
  double capacity = spec.battery_wh * spec.usable_fraction;
  double daily = harvest_wh_per_day(spec, month);
  double length = day_length_h(spec.lat_deg, representative_day(month));
  // A table may give light in polar night (twilight, diffuse): spread it around noon.
  if (daily > 0) length = std::max(length, 2.0);
  double sunrise = 12 - length / 2;
  // Share of the day's harvest in each hour: the integral of a half sine from sunrise to
  // sunset over the hour, normalised to 1 over the day.
  std::array<double, 24> share{};
  for (int h = 0; h < 24 && length > 0; ++h) {
    double a = std::max<double>(h, sunrise), b = std::min<double>(h + 1, sunrise + length);
    if (b > a)
      share[h] =
          (std::cos(kPi * (a - sunrise) / length) - std::cos(kPi * (b - sunrise) / length)) / 2;
  }
  double stored = std::clamp(start_soc, 0.0, 1.0) * capacity;
  sim.start_wh = stored;
  sim.soc.reserve(7 * 24);
  for (int hour = 0; hour < 7 * 24; ++hour) {
    double in = daily * share[hour % 24];
    double out = std::max(0.0, avg_watts);
    sim.harvested_wh += in;
    sim.demand_wh += out;
    stored += in - out;
    if (stored > capacity) {
      sim.spilled_wh += stored - capacity;
      stored = capacity;
    }
    if (stored < 0) {
      sim.unmet_wh += -stored;
      stored = 0;
    }
    double soc = capacity > 0 ? stored / capacity : 0;
    sim.soc.push_back(soc);
    sim.min_soc = std::min(sim.min_soc, soc);
  }
  sim.end_wh = stored;
  sim.hours_empty = avg_watts > 0 ? sim.unmet_wh / avg_watts : 0;
  return sim;
}

std::optional<std::array<double, 12>> load_solar_table(const std::string& path,
                                                       std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  const std::string format = "  hint: one line per month: month,kWh/m2/day (e.g. 1,2.9 or Jan,2.9)";
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot read the solar table\n" + format;
    return std::nullopt;
  }
  std::array<double, 12> values{};
  std::array<int, 12> seen_at{};
  std::string line;
  bool data_seen = false;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string where = path + ":" + std::to_string(number) + ": ";
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::replace_if(
        line.begin(), line.end(), [](char c) { return c == ',' || c == ';' || c == '\r'; }, ' ');
    std::istringstream fields(line);
    std::string month_text, value_text, extra;
    if (!(fields >> month_text)) continue;
    fields >> value_text >> extra;
    char* end = nullptr;
    double value = std::strtod(value_text.c_str(), &end);
    bool value_ok = !value_text.empty() && end && *end == '\0' && std::isfinite(value);
    int month = month_of(month_text);
    if (!data_seen && month == 0 && !value_ok) {
      data_seen = true;  // a header such as "month,kwh_m2_day"
      continue;
    }
    data_seen = true;
    if (month < 1 || month > 12) {
      *error = where + "'" + month_text + "' is not a month (1-12 or Jan-Dec)\n" + format;
      return std::nullopt;
    }
    if (!value_ok || !extra.empty()) {
      *error = where + "expected month,kWh/m2/day" +
               (value_ok ? " and nothing after it" : " (got '" + value_text + "')") + "\n" + format;
      return std::nullopt;
    }
    // More than any surface gets in a day outside the atmosphere near the poles (about 12).
    if (value < 0 || value > 15) {
      *error = where + "daily insolation must be from 0 to 15 kWh/m2/day (got " + value_text +
               ")\n  hint: a monthly total in kWh/m2 is divided by the month's days";
      return std::nullopt;
    }
    if (seen_at[month - 1]) {
      *error = where + kMonths[month - 1] + " given twice (first on line " +
               std::to_string(seen_at[month - 1]) + ")";
      return std::nullopt;
    }
    seen_at[month - 1] = number;
    values[month - 1] = value;
  }
  std::string missing;
  for (int m = 0; m < 12; ++m)
    if (!seen_at[m]) missing += (missing.empty() ? "" : ", ") + std::string(kMonths[m]);
  if (!missing.empty()) {
    *error = path + ": the solar table has no " + missing + "\n" + format;
    return std::nullopt;
  }
  return values;
}

std::optional<SolarSpec> solar_from_pairs(const std::vector<std::pair<std::string, double>>& pairs,
                                          const std::string& table, const std::string& base_dir,
                                          std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  SolarSpec spec;
  std::vector<std::string> given;
  for (const auto& [key, value] : pairs) {
    auto k = std::find_if(solar_keys().begin(), solar_keys().end(),
                          [&](const SolarKey& sk) { return key == sk.name; });
    if (k == solar_keys().end()) {
      *error = "unknown solar key '" + key + "'";
      return std::nullopt;
    }
    // The loader has checked these already; this guards callers that build pairs by hand.
    bool below = k->lo_exclusive ? !(value > k->lo) : !(value >= k->lo);
    if (below || !(value <= k->hi) || (k->integer && value != std::floor(value))) {
      std::ostringstream msg;
      msg << std::setprecision(10) << "solar '" << key << "' must be "
          << (k->lo_exclusive ? "> " : "from ") << k->lo << (k->lo_exclusive ? " and <= " : " to ")
          << k->hi << " (got " << value << ")";
      *error = msg.str();
      return std::nullopt;
    }
    given.push_back(key);
    if (key == "panel_w") spec.panel_w = value;
    if (key == "battery_wh") spec.battery_wh = value;
    if (key == "lat") spec.lat_deg = value;
    if (key == "tilt") spec.tilt_deg = value;
    if (key == "derating") spec.derating = value;
    if (key == "converter_eff") spec.converter_eff = value;
    if (key == "usable_fraction") spec.usable_fraction = value;
    if (key == "cloudiness") spec.cloudiness = value;
    if (key == "month") spec.month = static_cast<int>(value);
  }
  for (const SolarKey& k : solar_keys())
    if (k.required && std::find(given.begin(), given.end(), k.name) == given.end()) {
      *error = "solar has no '" + std::string(k.name) + "'\n  hint: add " + k.name + ": " +
               k.description;
      return std::nullopt;
    }
  if (!table.empty()) {
    std::filesystem::path p(table);
    if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
    spec.table = p.string();
    spec.table_kwh_m2_day = load_solar_table(spec.table, error);
    if (!spec.table_kwh_m2_day) return std::nullopt;
  }
  return spec;
}

std::optional<SolarSpec> solar_for_node(const PipelineSpec& pipeline, const NodeSpec& node,
                                        std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  error->clear();
  if (node.solar.empty() && node.solar_table.empty() && node.solar_mark.line == 0)
    return std::nullopt;
  auto spec = solar_from_pairs(node.solar, node.solar_table, pipeline.base_dir, error);
  if (!spec) {
    std::string place = pipeline.file.empty() ? "<pipeline>" : pipeline.file;
    if (node.solar_mark.line > 0)
      place +=
          ":" + std::to_string(node.solar_mark.line) + ":" + std::to_string(node.solar_mark.column);
    *error = place + ": node '" + node.name + "': " + *error;
  }
  return spec;
}

}  // namespace edgeflow
