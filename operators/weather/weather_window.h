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
//
// Idle origins (thousands of plain sensors, some of which go quiet): an origin with no reading
// for idle_timeout of wall time, while others' readings keep coming, has its open windows
// closed and its state freed, so memory follows the origins that are active, not every
// origin ever seen. A stall of the whole input (a broker down, a link's backlog) counts for
// at most idle_timeout / 4: the rest of it is taken off the clock idleness runs on, so the
// backlog that follows finds its origins still open. What stays is a tombstone
// (a hash of its name and how far its windows were closed, 16 bytes of payload) for another
// idle_timeout, so a redelivered old reading is still recognised as late rather than opening a
// window that was already emitted; an origin that comes back starts from its tombstone.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
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
    int64_t idle_timeout_us = 0;      // wall time without a reading; 0: origins stay forever
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
    // Late because the origin was forgotten as idle, which closed the window early.
    bool closed_idle = false;
  };

  // Throws std::invalid_argument for a window or slide <= 0, slide > window, a negative
  // lateness or no fields.
  explicit WeatherWindow(Config config);

  const Config& config() const { return config_; }

  // One reading: `values[i]` is the value of config().fields[i], or nullopt when the reading
  // lacks it. Also advances the origin's watermark.
  // `now_us` is the wall clock, for idle_timeout.
  Placement add(const std::string& origin, int64_t event_time_us,
                std::span<const std::optional<double>> values, int64_t now_us = 0);
  // Advances the origin's watermark without a reading (a message that carried no values), so
  // the window's notion of time stays the same as the runtime's.
  void observe(const std::string& origin, int64_t event_time_us, int64_t now_us = 0);

  // True when forget_idle(now_us) has an origin to forget or a tombstone to drop; cheap
  // enough to ask per reading. Every call (and every add or observe) moves the idle clock.
  bool has_idle(int64_t now_us) {
    if (config_.idle_timeout_us <= 0) return false;
    const int64_t now = active_us(now_us), idle = config_.idle_timeout_us;
    return (!idle_order_.empty() && now - idle_order_.front().last_seen_us >= idle) ||
           (!tombstone_order_.empty() && now - tombstone_order_.front().second >= idle);
  }
  // Closes every window of each origin idle for idle_timeout and frees its state; returns the
  // closed windows, per origin in time order, and appends the names of the forgotten origins
  // to `forgotten` (the caller frees what it keeps for them). Also drops tombstones older than
  // another idle_timeout.
  std::vector<WindowResult> forget_idle(int64_t now_us, std::vector<std::string>* forgotten);

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
  size_t origins() const { return origins_.size(); }        // with state (active)
  size_t tombstones() const { return tombstones_.size(); }  // forgotten, still recognised

 private:
  struct Accumulator {
    int64_t count = 0;
    std::vector<FieldStats> fields;
  };
  struct IdleEntry {
    const std::string* origin;  // the key in origins_ (stable: a node-based map)
    int64_t last_seen_us;       // wall clock of its last message
  };
  struct OriginState {
    int64_t watermark_us = INT64_MIN;
    int64_t closed_through_us = INT64_MIN;
    int64_t idle_closed_through_us = INT64_MIN;  // from a tombstone: closed by idle_timeout
    bool seen = false;
    std::map<int64_t, Accumulator> windows;        // by start: close times rise with starts
    std::list<IdleEntry>::iterator idle_pos = {};  // its place in idle_order_
  };
  struct Tombstone {
    int64_t frontier_us;   // readings whose windows closed at or before this are late
    int64_t forgotten_us;  // wall clock when it was forgotten
  };

  int64_t close_time(int64_t window_end_us) const {
    return window_end_us + config_.allowed_lateness_us;
  }
  WindowResult result(const std::string& origin, int64_t start_us, Accumulator&& acc) const;
  // The origin's state, created (from its tombstone, if any) on first use, and marked seen now.
  OriginState& touch(const std::string& origin, int64_t now_us);
  // The clock idleness is measured on: the wall clock, less what any gap between two
  // messages of the stage lasts beyond idle_timeout / 4 (a stall of the whole input), and
  // never going back when the wall clock does.
  int64_t active_us(int64_t now_us) {
    if (last_now_us_ != INT64_MIN) {
      const int64_t gap = now_us - last_now_us_, grace = config_.idle_timeout_us / 4;
      if (gap < 0) stalled_us_ += gap;  // a step back: the active clock stands still
      if (gap > grace) stalled_us_ += gap - grace;
    }
    last_now_us_ = now_us;
    return now_us - stalled_us_;
  }

  Config config_;
  std::unordered_map<std::string, OriginState> origins_;
  // Origins by last message, least recent first (when idle_timeout is set).
  std::list<IdleEntry> idle_order_;
  // Forgotten origins by hash of their name (a collision, ~1e-10 at 100,000 origins, would
  // only make a reading of the other origin late), and in the order they were forgotten.
  std::unordered_map<uint64_t, Tombstone> tombstones_;
  std::deque<std::pair<uint64_t, int64_t>> tombstone_order_;  // hash, forgotten_us
  int64_t last_now_us_ = INT64_MIN;                           // the latest wall clock seen
  int64_t stalled_us_ = 0;  // wall time the whole input stood still
};

}  // namespace edgeflow
