// WeatherWindow — event-time tumbling and sliding windows over numeric readings, one window
// set per origin node, with allowed lateness. A plain class with no runtime dependency: the
// weather.aggregate operator is a thin adapter around it, and tests drive it directly.
//
// Windows are aligned to the UTC epoch: they start at multiples of `slide` and last `window`,
// so a reading at t belongs to every window [s, s + window) with s = k * slide and
// s <= t < s + window (one window when slide == window, window / slide of them otherwise).
// Aligning to the epoch rather than to the first reading makes the windows of every origin,
// and of every restart, line up: "the minute 12:03" is the same minute on every device.
//
// A window of origin X closes once X's watermark (the highest event time seen from X) reaches
// window_end + allowed_lateness. A reading all of whose windows have closed is late: add()
// reports it and aggregates nothing. A reading some of whose (sliding) windows have closed
// goes into the open ones only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace edgeflow {

// Running statistics of one field within one window.
class FieldStats {
 public:
  void add(double value, int64_t event_time_us);

  int64_t count() const { return count_; }
  // The accessors below are meaningful only when count() > 0.
  double min() const { return min_; }
  double max() const { return max_; }
  double sum() const { return sum_; }
  double mean() const { return mean_; }
  // Sample standard deviation (divides by n - 1, the estimate of the spread of the weather
  // rather than of these few readings); 0 when n == 1, where the spread is unknown.
  double stddev() const;
  // Value at the earliest event time (on a tie, the reading that arrived first) and at the
  // latest event time (on a tie, the reading that arrived last): out-of-order arrivals within
  // the allowed lateness do not change which reading is first or last.
  double first() const { return first_; }
  double last() const { return last_; }

 private:
  int64_t count_ = 0;
  double min_ = 0, max_ = 0, sum_ = 0;
  // Welford's running mean and sum of squared deviations: a naive sum of squares loses the
  // spread of pressure (~1013 hPa, varying by hundredths) to rounding.
  double mean_ = 0, m2_ = 0;
  double first_ = 0, last_ = 0;
  int64_t first_time_us_ = 0, last_time_us_ = 0;
};

// One closed window of one origin.
struct WindowResult {
  std::string origin;
  int64_t start_us = 0;
  int64_t end_us = 0;              // exclusive
  int64_t count = 0;               // readings in the window (each with at least one value)
  std::vector<FieldStats> fields;  // in the order of WeatherWindow::Config::fields
};

class WeatherWindow {
 public:
  struct Config {
    int64_t window_us = 0;            // > 0
    int64_t slide_us = 0;             // 0 < slide <= window; 0 = window (tumbling)
    int64_t allowed_lateness_us = 0;  // >= 0
    std::vector<std::string> fields;  // names of the values add() receives, in order
  };

  // What add() did with one reading.
  struct Placement {
    bool late = false;
    // Accepted: close times (window_end + allowed_lateness) of the windows this reading
    // opened, earliest first; the caller arms a timer for each and calls close_until then.
    std::vector<int64_t> opened_close_times_us;
    // Late: the last window the reading belonged to (the most recently closed one) and how
    // far the closing frontier (see frontier_us()) had moved.
    int64_t window_start_us = 0;
    int64_t window_end_us = 0;
    int64_t frontier_us = 0;
  };

  // Throws std::invalid_argument for a window or slide <= 0, slide > window, a negative
  // lateness or no fields.
  explicit WeatherWindow(Config config);

  const Config& config() const { return config_; }

  // One reading: `values[i]` is the value of config().fields[i], or nullopt when the reading
  // lacks it. Also advances the origin's watermark.
  Placement add(const std::string& origin, int64_t event_time_us,
                std::span<const std::optional<double>> values);
  // Advances the origin's watermark without a reading (a message that carried no values), so
  // the window's notion of time stays the same as the runtime's.
  void observe(const std::string& origin, int64_t event_time_us);

  // Closes the windows of `origin` whose close time (end + allowed_lateness) is <= the given
  // time, and returns the non-empty ones in time order. From then on those windows stay
  // closed even if the watermark has not reached them (end of input fires timers early).
  std::vector<WindowResult> close_until(const std::string& origin, int64_t close_time_us);
  // Closes what the origin's own watermark has passed; for callers without timers.
  std::vector<WindowResult> close_due(const std::string& origin);
  // End of input: closes every window, per origin in time order; later readings are late.
  std::vector<WindowResult> close_all();

  // Highest event time seen from the origin (nullopt before any).
  std::optional<int64_t> watermark(const std::string& origin) const;
  // max(watermark, highest close_until time): windows whose close time is at or before it
  // are closed.
  std::optional<int64_t> frontier_us(const std::string& origin) const;
  size_t open_windows() const;

 private:
  struct Accumulator {
    int64_t count = 0;
    std::vector<FieldStats> fields;
  };
  struct OriginState {
    int64_t watermark_us = INT64_MIN;
    int64_t closed_through_us = INT64_MIN;
    bool seen = false;
    std::map<int64_t, Accumulator> windows;  // by start: close times rise with starts
  };

  int64_t close_time(int64_t window_end_us) const {
    return window_end_us + config_.allowed_lateness_us;
  }
  WindowResult result(const std::string& origin, int64_t start_us, Accumulator&& acc) const;

  Config config_;
  std::map<std::string, OriginState, std::less<>> origins_;
};

}  // namespace edgeflow
