// example.heat_index — an operator written out of tree, as a plugin: adds the heat index
// ("feels like" temperature, °C) to each weather reading, from its temperature (°C) and
// relative humidity (%), with the US National Weather Service's formula (Rothfusz's
// regression with its adjustments, and Steadman's simple form below 80 °F).
//
// Ports: in (record) -> out (same, with `heat_index`). A reading without both fields goes to
// the error output.
#include <cmath>
#include <string>

#include "runtime/registry.h"

namespace example {

using namespace edgeflow;

// https://www.wpc.ncep.noaa.gov/html/heatindex_equation.shtml, in °F.
double heat_index_f(double t, double rh) {
  double simple = 0.5 * (t + 61.0 + (t - 68.0) * 1.2 + rh * 0.094);
  if ((simple + t) / 2 < 80) return simple;
  double hi = -42.379 + 2.04901523 * t + 10.14333127 * rh - 0.22475541 * t * rh -
              0.00683783 * t * t - 0.05481717 * rh * rh + 0.00122874 * t * t * rh +
              0.00085282 * t * rh * rh - 0.00000199 * t * t * rh * rh;
  if (rh < 13 && t >= 80 && t <= 112)
    hi -= (13 - rh) / 4 * std::sqrt((17 - std::fabs(t - 95)) / 17);
  else if (rh > 85 && t >= 80 && t <= 87)
    hi += (rh - 85) / 10 * (87 - t) / 5;
  return hi;
}

class HeatIndex : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "example.heat_index";
    s.summary = "Adds the heat index (feels-like °C) to weather readings (an out-of-tree plugin).";
    s.example = "- id: feels\n  op: example.heat_index\n  from: sensors";
    s.inputs = {{"in", "record", "readings with temperature (°C) and humidity (%)"}};
    s.outputs = {{"out", "same", "the readings with heat_index (°C)"}};
    s.options = {
        opt_string("temperature", "field holding the temperature in °C").def("temperature"),
        opt_string("humidity", "field holding the relative humidity in %").def("humidity"),
    };
    return s;
  }

  explicit HeatIndex(const Options& o)
      : temperature_(o.get_string("temperature")), humidity_(o.get_string("humidity")) {}

  void process(int, MessagePtr m, Context& ctx) override {
    const Value* t = find_field(m->fields, temperature_);
    const Value* rh = find_field(m->fields, humidity_);
    if (!t || !rh || !t->number() || !rh->number()) {
      ctx.error(m.get(), "needs numeric '" + temperature_ + "' and '" + humidity_ + "'");
      return;
    }
    const double f = *t->number() * 9 / 5 + 32;
    const double hi_c = (heat_index_f(f, *rh->number()) - 32) * 5 / 9;
    std::shared_ptr<Message> out = make_mutable(std::move(m));
    set_field(out->fields, "heat_index", std::round(hi_c * 10) / 10);
    ctx.emit(std::move(out));
  }

 private:
  std::string temperature_, humidity_;
};

EF_REGISTER_OPERATOR(HeatIndex)

}  // namespace example
