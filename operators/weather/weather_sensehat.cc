// weather.sensehat — readings from a Raspberry Pi Sense HAT's environmental sensors through the
// kernel's IIO drivers in sysfs, with the fields and units of weather.simulate, so a pipeline
// moves from simulated to real weather by changing its `op:`. The HTS221 gives humidity and
// temperature, the LPS25H pressure and temperature; dtoverlay=rpi-sense loads their drivers
// (hts221_i2c, st_pressure_i2c).
//
// Ports: none -> out (reading: temperature °C, humidity %RH, pressure hPa; a field that could
// not be read this time is left out).
// Options: period (between readings, wall time), sysfs_root (/sys; tests point it at a fake
// tree), temperature_from (hts221, lps25h, or the mean of both).
// No board is an error at open. A read that fails later (a file gone, a driver's I/O error,
// text that is not a number) goes to the error output and the source keeps going; a device
// that disappears is looked up again by name, since a reloaded driver comes back as another
// iio:deviceN. Reads block: the st_pressure driver powers the LPS25H up for each raw read and
// waits two of its sample periods, 2 s at its default 1 Hz, so readings come late unless its
// sampling_frequency is raised (echo 25 > .../iio:deviceN/sampling_frequency: 80 ms).
//
//   - id: sensors
//     op: weather.sensehat
//     on: edge
//     with: { period: 10s, temperature_from: mean }
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include "operators/weather/iio_device.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

// Units. The IIO ABI (Documentation/ABI/testing/sysfs-bus-iio) has value = (raw + offset) *
// scale, or a ready-scaled _input file, in a fixed unit per channel type: temperature in milli
// °C, relative humidity in milli percent, pressure in kPa. Readings use weather.simulate's
// units, so the conversions are °C = m°C / 1000, %RH = m% / 1000, hPa = kPa * 10.
//
// The LPS25H's driver (st_pressure) follows the ABI: temperature scale 1000/480 m°C per LSB
// with offset 42.5 °C * 480 LSB, pressure scale 1/40960 kPa per LSB and no offset.
//
// The HTS221's driver (hts221_core.c) does not. Its scale is its calibration slope,
// (y1 - y0) * 8000 / (x1 - x0) over the chip's calibration registers (y: 8 x °C, 2 x %RH),
// divided by 64000 for temperature and 16000 for humidity: whole °C and %RH per LSB, so
// (raw + offset) * scale comes out in °C and %RH. That scale is the chip's sensitivity, about
// 0.016 °C and 0.004 %RH per LSB, where a milli-unit scale would be about 16 and 4: a scale
// below 1 means whole units. Deciding from the scale reads today's driver right, and a driver
// that one day follows the ABI right too.
constexpr double kMilli = 1e-3;
constexpr double kHectoPerKilo = 10.0;

constexpr const char* kHts221 = "hts221";
constexpr const char* kLps25h = "lps25h";

namespace fs = std::filesystem;

enum class TemperatureFrom { kHts221, kLps25h, kMean };

// One sensor chip, found by its IIO name.
struct Chip {
  std::string name;
  std::optional<IioDevice> device;  // empty while it is gone
};

// One quantity: which files carry it, and the factor from its file's unit to the reading's.
struct Quantity {
  IioChannel channel;
  double to_unit = 1;
};

class WeatherSenseHat : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "weather.sensehat";
    s.summary =
        "Temperature, humidity and pressure from a Raspberry Pi Sense HAT, through the kernel's "
        "IIO drivers.";
    s.example =
        "- id: sensors\n  op: weather.sensehat\n  on: edge\n"
        "  with: { period: 10s, temperature_from: mean }";
    s.outputs = {{"out", "reading",
                  "temperature (°C), humidity (%RH), pressure (hPa); a field that could not be "
                  "read is left out"}};
    s.options = {
        opt_duration("period", "wall time between readings").def("1s").greater_than(0),
        opt_string("sysfs_root",
                   "where sysfs is mounted: the devices are under SYSFS_ROOT/bus/iio/devices; "
                   "point it at a copy of the tree for tests")
            .def("/sys"),
        opt_enum("temperature_from", {"hts221", "lps25h", "mean"},
                 "the humidity sensor's temperature, the pressure sensor's, or the mean of both")
            .def("hts221"),
    };
    return s;
  }

  explicit WeatherSenseHat(const Options& o)
      : period_us_(o.get_duration_us("period")), sysfs_root_(o.resolve_path("sysfs_root")) {
    const std::string& from = o.get_string("temperature_from");
    from_ = from == "lps25h" ? TemperatureFrom::kLps25h
            : from == "mean" ? TemperatureFrom::kMean
                             : TemperatureFrom::kHts221;
  }

  void open(Context& ctx) override {
    (void)ctx;
    hts_.device = IioDevice::find(sysfs_root_, kHts221);
    lps_.device = IioDevice::find(sysfs_root_, kLps25h);
    if (!hts_.device || !lps_.device) throw OperatorError(no_board_message());

    humidity_ = quantity(hts_, "in_humidityrelative", hts221_unit);
    pressure_ = quantity(lps_, "in_pressure",
                         [](const IioDevice&, const IioChannel&) { return kHectoPerKilo; });
    if (from_ != TemperatureFrom::kLps25h)
      hts_temperature_ = quantity(hts_, "in_temp", hts221_unit);
    if (from_ != TemperatureFrom::kHts221) {
      lps_temperature_ =
          quantity(lps_, "in_temp", [](const IioDevice&, const IioChannel&) { return kMilli; });
    }
  }

  SourceStep generate(Context& ctx) override {
    const int64_t now = ctx.now_us();
    if (!next_due_us_) next_due_us_ = now;
    if (now < *next_due_us_) return SourceStep::wait_until(*next_due_us_);
    take_reading(ctx, now);
    // A sensor cannot be read in the past: slots missed while a read blocked or the host was
    // busy are skipped, not made up with a burst of readings all taken now.
    const int64_t after = ctx.now_us();
    int64_t next = *next_due_us_ + period_us_;
    if (next <= after) next += ((after - next) / period_us_ + 1) * period_us_;
    next_due_us_ = next;
    return SourceStep::wait_until(next);
  }

 private:
  static double hts221_unit(const IioDevice& device, const IioChannel& channel) {
    if (channel.processed || !channel.has_scale) return kMilli;
    std::string error;
    std::optional<double> scale = device.read_number(channel.name + "_scale", error);
    if (!scale) throw OperatorError(error);
    return std::fabs(*scale) < 1 ? 1.0 : kMilli;  // see "Units" above
  }

  template <typename UnitOf>
  Quantity quantity(const Chip& chip, const std::string& name, UnitOf unit_of) const {
    std::optional<IioChannel> channel = chip.device->channel(name);
    if (!channel) {
      throw OperatorError("IIO device '" + chip.device->name() + "' at " + chip.device->path() +
                          " has neither " + name + "_raw nor " + name +
                          "_input; is it the Sense HAT's " + chip.name + "?");
    }
    return {*channel, unit_of(*chip.device, *channel)};
  }

  std::string no_board_message() const {
    std::string missing = !hts_.device ? "'" + std::string(kHts221) + "'" : "";
    if (!lps_.device) missing += (missing.empty() ? "'" : " or '") + std::string(kLps25h) + "'";
    std::string others;
    for (const IioDevice& d : IioDevice::list(sysfs_root_))
      others += (others.empty() ? "" : ", ") + d.name();
    return "no IIO device named " + missing + " under " + IioDevice::devices_dir(sysfs_root_) +
           (others.empty() ? "" : " (it has: " + others + ")") +
           ": is the Sense HAT attached and the kernel modules hts221_i2c / st_pressure_i2c "
           "loaded (dtoverlay=rpi-sense)? For tests or another board set sysfs_root";
  }

  // False, reported, when the chip's device has gone and has not come back under a new number.
  bool present(Context& ctx, Chip& chip) {
    std::error_code ec;
    if (chip.device && fs::exists(chip.device->path(), ec)) return true;
    chip.device = IioDevice::find(sysfs_root_, chip.name);
    if (chip.device) return true;
    ctx.error(nullptr, "IIO device '" + chip.name + "' has gone from " +
                           IioDevice::devices_dir(sysfs_root_) +
                           " (driver unloaded or board disconnected?)");
    return false;
  }

  std::optional<double> read(Context& ctx, const Chip& chip, const Quantity& q) {
    std::string error;
    std::optional<double> value = chip.device->read(q.channel, error);
    if (!value) {
      ctx.error(nullptr, error);
      return std::nullopt;
    }
    return *value * q.to_unit;
  }

  void take_reading(Context& ctx, int64_t event_time_us) {
    std::optional<double> humidity, pressure, hts_temperature, lps_temperature;
    if (present(ctx, hts_)) {
      humidity = read(ctx, hts_, humidity_);
      if (from_ != TemperatureFrom::kLps25h) hts_temperature = read(ctx, hts_, hts_temperature_);
    }
    if (present(ctx, lps_)) {
      pressure = read(ctx, lps_, pressure_);
      if (from_ != TemperatureFrom::kHts221) lps_temperature = read(ctx, lps_, lps_temperature_);
    }
    std::optional<double> temperature;
    switch (from_) {
      case TemperatureFrom::kHts221:
        temperature = hts_temperature;
        break;
      case TemperatureFrom::kLps25h:
        temperature = lps_temperature;
        break;
      case TemperatureFrom::kMean:
        // Not one alone when the other fails: the two chips differ by a degree or so, and a
        // series that jumps between them would look like weather.
        if (hts_temperature && lps_temperature)
          temperature = (*hts_temperature + *lps_temperature) / 2;
        break;
    }
    Fields fields;
    if (temperature) fields.push_back({"temperature", *temperature});
    // The HTS221 reads a little past 0 and 100 near the ends of its range; its application
    // note saturates there.
    if (humidity) fields.push_back({"humidity", std::clamp(*humidity, 0.0, 100.0)});
    if (pressure) fields.push_back({"pressure", *pressure});
    if (fields.empty()) return;
    auto m = ctx.make_message(event_time_us);
    m->fields = std::move(fields);
    ctx.emit(std::move(m));
  }

  int64_t period_us_;
  std::string sysfs_root_;
  TemperatureFrom from_ = TemperatureFrom::kHts221;
  Chip hts_{kHts221, std::nullopt};
  Chip lps_{kLps25h, std::nullopt};
  Quantity humidity_, pressure_, hts_temperature_, lps_temperature_;
  std::optional<int64_t> next_due_us_;  // wall time of the next reading
};

EF_REGISTER_OPERATOR(WeatherSenseHat)

}  // namespace
}  // namespace edgeflow
