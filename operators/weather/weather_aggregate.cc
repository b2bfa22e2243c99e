// weather.aggregate — event-time tumbling or sliding windows over numeric reading fields, per
// origin node: one record per closed window with the chosen statistics of each field.
//
// Ports: in (reading) -> out (aggregate). Each output record has the origin of its readings,
// the window end as event time, and the fields
//   window_start, window_end (ISO 8601 UTC), count (readings in the window),
//   <field>_<stat> for each field, then each stat, in the order given (count as int, the
//   rest as numbers; null when no reading of the window had that field),
//   dew_point (°C, from the mean temperature and mean humidity) when both `temperature` and
//   `humidity` are among the fields.
// Late readings (all their windows closed) and readings with none of the fields go to the
// error output.
// Options: window (duration), slide (duration, default = window: tumbling), fields (list),
// stats (count, min, max, mean, stddev, sum, first, last; default [min, mean, max]),
// allowed_lateness (how long after its end a window waits for stragglers, default 0s),
// idle_timeout (wall time after which a silent origin's windows are closed and its state
// freed; default twice window + allowed_lateness, 0s: never).
//
//   - id: minute
//     op: weather.aggregate
//     from: sensors
//     with: { window: 60s, fields: [temperature, humidity, pressure], stats: [min, mean, max] }
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "operators/weather/weather_window.h"
#include "runtime/duration.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

enum class Stat { kCount, kMin, kMax, kMean, kStddev, kSum, kFirst, kLast };

const std::vector<std::string>& stat_names() {
  static const std::vector<std::string> kNames = {"count",  "min", "max",   "mean",
                                                  "stddev", "sum", "first", "last"};
  return kNames;
}

// Every reading passes through one window per `slide` within `window`; beyond this many the
// per-reading work and the open state on a small device stop being reasonable.
constexpr int64_t kMaxWindowsPerReading = 10000;

// Dew point by the Magnus formula (Sonntag 1990 constants, good to ±0.35 °C for -45..60 °C).
std::optional<double> dew_point_c(double temperature_c, double humidity_pct) {
  constexpr double a = 17.62, b = 243.12;
  if (!(humidity_pct > 0) || !std::isfinite(temperature_c) || temperature_c <= -b) {
    return std::nullopt;
  }
  double gamma = std::log(humidity_pct / 100.0) + a * temperature_c / (b + temperature_c);
  return b * gamma / (a - gamma);
}

WeatherWindow::Config window_config(const Options& o) {
  WeatherWindow::Config c;
  c.window_us = o.get_duration_us("window");
  c.slide_us = o.has("slide") ? o.get_duration_us("slide") : c.window_us;
  c.allowed_lateness_us = o.get_duration_us("allowed_lateness");
  c.fields = o.get_list("fields");
  // Twice what a window stays open, so a sensor whose next reading is a little late keeps its
  // window; 0s keeps every origin until end of input.
  c.idle_timeout_us = o.has("idle_timeout") ? o.get_duration_us("idle_timeout")
                                            : 2 * (c.window_us + c.allowed_lateness_us);
  if (c.idle_timeout_us > 0 && c.idle_timeout_us < c.window_us + c.allowed_lateness_us) {
    throw OptionError("idle_timeout",
                      "must be 0s or at least window + allowed_lateness (" +
                          format_duration(c.window_us + c.allowed_lateness_us) +
                          "): a shorter one would close the windows of sensors still sending",
                      "leave it out (twice window + allowed_lateness) or raise it");
  }
  if (c.slide_us > c.window_us) {
    throw OptionError("slide",
                      "must be <= window (got slide " + format_duration(c.slide_us) + ", window " +
                          format_duration(c.window_us) + ")",
                      "leave slide out for tumbling windows, or use a slide shorter than the "
                      "window for overlapping ones");
  }
  if (c.window_us / c.slide_us > kMaxWindowsPerReading) {
    throw OptionError(
        "slide",
        "is too small: each reading would fall into " + std::to_string(c.window_us / c.slide_us) +
            " windows (at most " + std::to_string(kMaxWindowsPerReading) + ")",
        "use a slide of at least " + format_duration(c.window_us / kMaxWindowsPerReading) +
            ", or a shorter window");
  }
  if (c.fields.empty()) {
    throw OptionError("fields", "must name at least one field",
                      "for example fields: [temperature, humidity, pressure]");
  }
  for (size_t i = 0; i < c.fields.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (c.fields[i] == c.fields[j])
        throw OptionError("fields", "lists '" + c.fields[i] + "' twice");
    }
  }
  return c;
}

std::vector<Stat> parse_stats(const std::vector<std::string>& names) {
  std::vector<Stat> stats;
  for (const std::string& name : names) {
    const auto& known = stat_names();
    // The schema has already rejected unknown names, with a suggestion.
    auto it = std::find(known.begin(), known.end(), name);
    Stat s = static_cast<Stat>(it - known.begin());
    if (std::find(stats.begin(), stats.end(), s) != stats.end())
      throw OptionError("stats", "lists '" + name + "' twice");
    stats.push_back(s);
  }
  return stats;
}

class WeatherAggregate : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "weather.aggregate";
    s.summary = "Event-time tumbling or sliding windows of reading fields, per origin node.";
    s.example =
        "- id: minute\n  op: weather.aggregate\n  from: sensors\n"
        "  with: { window: 60s, fields: [temperature, humidity, pressure], stats: [min, mean, "
        "max] }";
    s.inputs = {{"in", "reading", "readings with numeric fields, from one or more nodes"}};
    s.outputs = {{"out", "aggregate",
                  "one record per closed non-empty window: window_start, window_end, count, "
                  "<field>_<stat>..., dew_point"}};
    s.options = {
        opt_duration("window", "length of a window, aligned to the UTC epoch")
            .require()
            .greater_than(0),
        opt_duration("slide", "distance between window starts (default: window, tumbling)")
            .greater_than(0),
        opt_list("fields", "numeric reading fields to aggregate").require(),
        opt_list("stats", "statistics of each field, in output order")
            .one_of(stat_names())
            .def("[min, mean, max]"),
        opt_duration("allowed_lateness",
                     "how long after its end a window still accepts out-of-order readings")
            .def("0s")
            .at_least(0),
        opt_duration("idle_timeout",
                     "wall time without a reading after which an origin's windows are closed "
                     "and its state freed (default: twice window + allowed_lateness; 0s: never)")
            .at_least(0),
    };
    return s;
  }

  explicit WeatherAggregate(const Options& o)
      : window_(window_config(o)), stats_(parse_stats(o.get_list("stats"))) {
    const auto& fields = window_.config().fields;
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i] == "temperature") temperature_ = i;
      if (fields[i] == "humidity") humidity_ = i;
    }
    for (const std::string& f : fields) {
      for (Stat s : stats_) output_names_.push_back(f + "_" + stat_names()[static_cast<int>(s)]);
    }
    values_.resize(fields.size());
  }

  void process(int, MessagePtr m, Context& ctx) override {
    const int64_t now = ctx.now_us();
    if (window_.has_idle(now)) forget_idle(now, ctx);
    const auto& fields = window_.config().fields;
    bool any = false;
    for (size_t i = 0; i < fields.size(); ++i) {
      values_[i].reset();
      const Value* v = find_field(m->fields, fields[i]);
      // Bools are not measurements, and a NaN would poison every statistic of the window.
      if (v && v->is_number()) {
        double d = *v->number();
        if (std::isfinite(d)) {
          values_[i] = d;
          any = true;
        }
      }
    }
    if (!any) {
      window_.observe(m->origin, m->event_time_us, now);
      ctx.error(m.get(), missing_fields_message(*m));
      return;
    }
    WeatherWindow::Placement p = window_.add(m->origin, m->event_time_us, values_, now);
    if (p.late) {
      ctx.error(m.get(), late_message(*m, p));
      return;
    }
    for (int64_t close_us : p.opened_close_times_us) ctx.set_timer(m->origin, close_us);
  }

  void on_timer(const std::string& origin, int64_t event_time_us, Context& ctx) override {
    for (WindowResult& r : window_.close_until(origin, event_time_us)) emit(r, ctx);
  }

  void close(Context& ctx) override {
    // The runtime fires every timer before close(), so this finds nothing; it keeps a window
    // from being lost should a driver not do so.
    for (WindowResult& r : window_.close_all()) emit(r, ctx);
  }

 private:
  // Silent origins: their windows are emitted as if their watermark had passed them, and the
  // runtime's timers for them go too.
  void forget_idle(int64_t now, Context& ctx) {
    std::vector<std::string> forgotten;  // not kept: a wave of 100,000 would stay allocated
    for (WindowResult& r : window_.forget_idle(now, &forgotten)) emit(r, ctx);
    for (const std::string& origin : forgotten) ctx.clear_timers(origin);
  }

  void emit(const WindowResult& r, Context& ctx) {
    auto out = ctx.make_message(r.end_us);
    out->origin = r.origin;
    Fields& f = out->fields;
    f.reserve(3 + output_names_.size() + 1);
    f.push_back({"window_start", format_iso8601(r.start_us)});
    f.push_back({"window_end", format_iso8601(r.end_us)});
    f.push_back({"count", r.count});
    size_t name = 0;
    for (const FieldStats& fs : r.fields) {
      for (Stat s : stats_) f.push_back({output_names_[name++], stat_value(fs, s)});
    }
    if (temperature_ && humidity_) {
      const FieldStats& t = r.fields[*temperature_];
      const FieldStats& h = r.fields[*humidity_];
      std::optional<double> dew;
      if (t.count() > 0 && h.count() > 0) dew = dew_point_c(t.mean(), h.mean());
      f.push_back({"dew_point", dew ? Value(*dew) : Value()});
    }
    ctx.emit(std::move(out));
  }

  static Value stat_value(const FieldStats& fs, Stat s) {
    if (s == Stat::kCount) return Value(fs.count());
    if (fs.count() == 0) return Value();  // null: no reading of this window had the field
    switch (s) {
      case Stat::kMin:
        return fs.min();
      case Stat::kMax:
        return fs.max();
      case Stat::kMean:
        return fs.mean();
      case Stat::kStddev:
        return fs.stddev();
      case Stat::kSum:
        return fs.sum();
      case Stat::kFirst:
        return fs.first();
      case Stat::kLast:
        return fs.last();
      case Stat::kCount:
        break;
    }
    return Value();
  }

  std::string missing_fields_message(const Message& m) const {
    std::string wanted, has;
    for (const std::string& f : window_.config().fields) wanted += (wanted.empty() ? "" : ", ") + f;
    for (const Field& f : m.fields) has += (has.empty() ? "" : ", ") + f.key;
    return "reading has none of the fields to aggregate (" + wanted +
           ") as a number; it has: " + (has.empty() ? "no fields" : has);
  }

  std::string late_message(const Message& m, const WeatherWindow::Placement& p) const {
    const int64_t lateness = window_.config().allowed_lateness_us;
    std::string text = "late reading: event time " + format_iso8601(m.event_time_us) +
                       " of origin '" + m.origin + "' falls in window [" +
                       format_iso8601(p.window_start_us) + ", " + format_iso8601(p.window_end_us) +
                       "), already closed";
    if (p.frontier_us == INT64_MAX) return text + " at end of input";
    if (p.closed_idle) {
      return text + " when the origin had sent nothing for idle_timeout (" +
             format_duration(window_.config().idle_timeout_us) +
             " of wall time); raise idle_timeout for sensors that go quiet that long and then "
             "send older readings";
    }
    // The window would still have been open had allowed_lateness exceeded this.
    int64_t needed = p.frontier_us - p.window_end_us;
    return text + " (watermark " + format_iso8601(p.frontier_us) + ", allowed_lateness " +
           format_duration(lateness) + "); raise allowed_lateness above " +
           format_duration(needed) + " to aggregate readings this late";
  }

  WeatherWindow window_;
  std::vector<Stat> stats_;
  std::vector<std::string> output_names_;  // <field>_<stat>, field-major
  std::optional<size_t> temperature_, humidity_;
  std::vector<std::optional<double>> values_;  // reused per reading
};

EF_REGISTER_OPERATOR(WeatherAggregate)

}  // namespace
}  // namespace edgeflow
