// weather.simulate — a source of Sense HAT-like readings for trying pipelines without the board:
// a daily temperature cycle (coolest near 06:00, warmest near 15:00 local solar time), relative
// humidity that falls as the air warms (a constant dew point), pressure wandering slowly around
// 1013 hPa, a still device's orientation, plus gaussian sensor noise. The data depends only on
// the options and the node name, so every edge node gets its own reproducible weather.
//
// Ports: none -> out (reading: temperature °C, humidity %RH, pressure hPa, pitch, roll, yaw in
// degrees; pitch and roll in -180..180, yaw in 0..360).
// Options: period (between readings, event time), seed, speed (event seconds per wall second;
// 0 = as fast as possible), count (0 = unlimited), start ("now" or an ISO 8601 UTC time),
// temperature (daily mean °C), amplitude (half the daily swing °C), noise (°C; humidity,
// pressure and orientation noise scale with it), longitude (sets local solar time).
//
//   - id: sensors
//     op: weather.simulate
//     on: edge
//     with: { period: 1s, speed: 60, start: "2026-06-01T00:00:00Z", count: 86400 }
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/duration.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kUsPerHour = 3'600'000'000;

// FNV-1a: a hash of the node name that is the same on every platform and every run, unlike
// std::hash.
uint64_t fnv1a64(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// xoshiro256** with our own Box-Muller: the standard library's distributions differ between
// implementations, and the same seed must give the same weather everywhere.
class NoiseSource {
 public:
  explicit NoiseSource(uint64_t seed) {
    for (uint64_t& word : s_) word = splitmix64(seed);
  }

  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)

  double gaussian() {
    if (spare_) {
      double z = *spare_;
      spare_.reset();
      return z;
    }
    double u1 = 1.0 - uniform();  // (0, 1]: log() stays finite
    double u2 = uniform();
    double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2 * kPi * u2);
    return r * std::cos(2 * kPi * u2);
  }

 private:
  uint64_t next() {
    uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = std::rotl(s_[3], 45);
    return result;
  }

  uint64_t s_[4];
  std::optional<double> spare_;
};

struct Reading {
  double temperature, humidity, pressure, pitch, roll, yaw;
};

// The weather and the board of one simulated node. Values depend on the event time and on how
// many readings came before (the noise sequence and the pressure walk), never on wall time.
class SenseHatSimulation {
 public:
  struct Params {
    double mean_c, amplitude_c, noise, longitude_deg;
    int64_t period_us;
  };

  SenseHatSimulation(const Params& p, uint64_t seed) : p_(p), rng_(seed) {
    // A still board: a mounting tilt and a heading of its own.
    tilt_pitch_ = 1.5 * rng_.gaussian();
    tilt_roll_ = 1.5 * rng_.gaussian();
    heading_ = 360.0 * rng_.uniform();
    pressure_anomaly_ = 4.0 * rng_.gaussian();
    pressure_tendency_ = kTendencySpread * rng_.gaussian();
    // A constant dew point a little under the night's low: humidity nears 90% at dawn and
    // falls through the afternoon, as over land on a fair day.
    dew_point_c_ = p_.mean_c - p_.amplitude_c - 2.0;
  }

  Reading next(int64_t event_time_us) {
    double hour = solar_hour(event_time_us);
    double air = p_.mean_c + p_.amplitude_c * diurnal_shape(hour);
    Reading r;
    r.temperature = air + p_.noise * rng_.gaussian();
    r.humidity = relative_humidity(air) + 5.0 * p_.noise * rng_.gaussian();
    r.humidity = std::clamp(r.humidity, 0.0, 100.0);
    // Pressure moves smoothly: its tendency (hPa/h) is the random walk, an Ornstein-Uhlenbeck
    // process stepped exactly so that any period gives the same statistics, and the level
    // drifts back toward the mean over days. A walk on the level itself would jitter by
    // tenths of a hectopascal between readings minutes apart, which barometers never show.
    const double dt_us = static_cast<double>(p_.period_us);
    double keep = std::exp(-dt_us / kTendencyMemoryUs);
    pressure_tendency_ =
        pressure_tendency_ * keep + kTendencySpread * std::sqrt(1 - keep * keep) * rng_.gaussian();
    pressure_anomaly_ = pressure_anomaly_ * std::exp(-dt_us / kPressureMemoryUs) +
                        pressure_tendency_ * dt_us / kUsPerHour;
    // The semi-diurnal atmospheric tide: highs near 10:00 and 22:00.
    double tide = 0.5 * std::cos(2 * kPi * (hour - 10.0) / 12.0);
    r.pressure = kMeanPressure + pressure_anomaly_ + tide + 0.1 * p_.noise * rng_.gaussian();
    r.pitch = tilt_pitch_ + p_.noise * rng_.gaussian();
    r.roll = tilt_roll_ + p_.noise * rng_.gaussian();
    r.yaw = std::fmod(heading_ + p_.noise * rng_.gaussian() + 360.0, 360.0);
    return r;
  }

 private:
  static constexpr double kMeanPressure = 1013.25;           // hPa, standard atmosphere
  static constexpr double kTendencySpread = 0.4;             // hPa per hour, std deviation
  static constexpr double kTendencyMemoryUs = 6.0 * 3.6e9;   // weather systems: hours
  static constexpr double kPressureMemoryUs = 48.0 * 3.6e9;  // back to normal in days

  double solar_hour(int64_t event_time_us) const {
    double hours = static_cast<double>(event_time_us % (24 * kUsPerHour)) / 3.6e9;
    double h = std::fmod(hours + p_.longitude_deg / 15.0, 24.0);
    return h < 0 ? h + 24.0 : h;
  }

  // -1 at 06:00, +1 at 15:00: nine hours of warming after sunrise, fifteen of cooling, smooth
  // at both turns.
  static double diurnal_shape(double hour) {
    if (hour >= 6.0 && hour < 15.0) return -std::cos(kPi * (hour - 6.0) / 9.0);
    double since_peak = hour >= 15.0 ? hour - 15.0 : hour + 9.0;
    return std::cos(kPi * since_peak / 15.0);
  }

  // Relative humidity of air at `temperature_c` holding the dew point's water (Magnus).
  double relative_humidity(double temperature_c) const {
    constexpr double a = 17.62, b = 243.12;
    return 100.0 * std::exp(a * dew_point_c_ / (b + dew_point_c_) -
                            a * temperature_c / (b + temperature_c));
  }

  Params p_;
  NoiseSource rng_;
  double tilt_pitch_ = 0, tilt_roll_ = 0, heading_ = 0, dew_point_c_ = 0;
  double pressure_anomaly_ = 0, pressure_tendency_ = 0;  // hPa, hPa/h
};

class WeatherSimulate : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "weather.simulate";
    s.summary = "Sense HAT-like readings with a daily cycle and noise, reproducible per node.";
    s.example =
        "- id: sensors\n  op: weather.simulate\n  on: edge\n"
        "  with: { period: 1s, speed: 60, start: \"2026-06-01T00:00:00Z\", count: 86400 }";
    s.outputs = {{"out", "reading",
                  "temperature (°C), humidity (%RH), pressure (hPa), pitch, roll, yaw (°)"}};
    s.options = {
        opt_duration("period", "event time between readings").def("1s").greater_than(0),
        opt_int("seed", "random seed, combined with the node name").def("1"),
        opt_double("speed",
                   "event seconds per wall second: 1 = real time, 60 = a minute per second, "
                   "0 = as fast as possible")
            .def("1")
            .at_least(0),
        opt_int("count", "readings to produce, then stop (0 = unlimited)").def("0").at_least(0),
        opt_string("start",
                   "event time of the first reading: now, or ISO 8601 UTC like "
                   "2026-06-01T00:00:00Z")
            .def("now"),
        opt_double("temperature", "daily mean temperature, °C").def("15").at_least(-80).at_most(60),
        opt_double("amplitude", "half the daily temperature swing, °C")
            .def("6")
            .at_least(0)
            .at_most(30),
        opt_double("noise", "sensor noise std deviation, °C (others in proportion)")
            .def("0.2")
            .at_least(0),
        opt_double("longitude", "site longitude, degrees east: sets local solar time")
            .def("0")
            .at_least(-180)
            .at_most(180),
    };
    return s;
  }

  explicit WeatherSimulate(const Options& o)
      : params_{o.get_double("temperature"), o.get_double("amplitude"), o.get_double("noise"),
                o.get_double("longitude"), o.get_duration_us("period")},
        seed_(o.get_int("seed")),
        speed_(o.get_double("speed")),
        count_(o.get_int("count")) {
    const std::string& start = o.get_string("start");
    if (start != "now") {
      start_us_ = parse_iso8601_us(start);
      if (!start_us_) {
        throw OptionError("start", "must be 'now' or an ISO 8601 UTC time (got '" + start + "')",
                          "write it like 2026-06-01T00:00:00Z");
      }
    }
  }

  void open(Context& ctx) override {
    uint64_t seed = static_cast<uint64_t>(seed_) * 0x9e3779b97f4a7c15ULL ^ fnv1a64(ctx.node());
    simulation_.emplace(params_, seed);
  }

  SourceStep generate(Context& ctx) override {
    if (!simulation_) open(ctx);
    if (!wall_start_us_) {
      wall_start_us_ = ctx.now_us();
      event_start_us_ = start_us_.value_or(*wall_start_us_);
    }
    for (int emitted = 0; emitted < kMaxPerCall && !finished() && due(index_, ctx); ++emitted) {
      int64_t event_time = event_start_us_ + index_ * params_.period_us;
      Reading r = simulation_->next(event_time);
      auto m = ctx.make_message(event_time);
      m->fields = {{"temperature", r.temperature},
                   {"humidity", r.humidity},
                   {"pressure", r.pressure},
                   {"pitch", r.pitch},
                   {"roll", r.roll},
                   {"yaw", r.yaw}};
      ctx.emit(std::move(m));
      ++index_;
    }
    if (finished()) return SourceStep::done();
    if (due(index_, ctx)) return SourceStep::emitted();
    return SourceStep::wait_until(wall_due_us(index_));
  }

 private:
  static constexpr int kMaxPerCall = 256;  // bounded work per call, as the runtime asks

  bool finished() const { return count_ > 0 && index_ >= count_; }

  // Both the due test and the wake time come from this one function, so a source woken at
  // its wake time always finds the reading due (no spinning on rounding).
  int64_t wall_due_us(int64_t index) const {
    return replay_due_us(*wall_start_us_,
                         static_cast<double>(index) * static_cast<double>(params_.period_us),
                         speed_);
  }

  bool due(int64_t index, const Context& ctx) const {
    return speed_ == 0 || ctx.now_us() >= wall_due_us(index);
  }

  SenseHatSimulation::Params params_;
  int64_t seed_;
  double speed_;
  int64_t count_;
  std::optional<int64_t> start_us_;
  std::optional<SenseHatSimulation> simulation_;
  std::optional<int64_t> wall_start_us_;
  int64_t event_start_us_ = 0;
  int64_t index_ = 0;
};

EF_REGISTER_OPERATOR(WeatherSimulate)

}  // namespace
}  // namespace edgeflow
