#include "operators/weather/weather_window.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace edgeflow {
namespace {

// Floor division: windows before 1970 (negative event times) align like the others.
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

void FieldStats::add(double value, int64_t event_time_us) {
  if (count_ == 0) {
    min_ = max_ = first_ = last_ = value;
    first_time_us_ = last_time_us_ = event_time_us;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
    if (event_time_us < first_time_us_) {
      first_ = value;
      first_time_us_ = event_time_us;
    }
    if (event_time_us >= last_time_us_) {
      last_ = value;
      last_time_us_ = event_time_us;
    }
  }
  ++count_;
  sum_ += value;
  double delta = value - mean_;
  mean_ += delta / static_cast<double>(count_);
  m2_ += delta * (value - mean_);
}

double FieldStats::stddev() const {
  if (count_ < 2) return 0;
  return std::sqrt(std::max(0.0, m2_) / static_cast<double>(count_ - 1));
}

WeatherWindow::WeatherWindow(Config config) : config_(std::move(config)) {
  if (config_.slide_us == 0) config_.slide_us = config_.window_us;
  if (config_.window_us <= 0) throw std::invalid_argument("window must be > 0");
  if (config_.slide_us <= 0) throw std::invalid_argument("slide must be > 0");
  if (config_.slide_us > config_.window_us) throw std::invalid_argument("slide must be <= window");
  if (config_.allowed_lateness_us < 0) throw std::invalid_argument("allowed_lateness must be >= 0");
  if (config_.fields.empty()) throw std::invalid_argument("no fields to aggregate");
}

WeatherWindow::OriginState& WeatherWindow::touch(const std::string& origin, int64_t now_us) {
  auto [it, created] = origins_.try_emplace(origin);
  OriginState& o = it->second;
  if (config_.idle_timeout_us <= 0) return o;
  now_us = active_us(now_us);
  if (created) {
    if (!tombstones_.empty()) {
      auto stone = tombstones_.find(std::hash<std::string>{}(origin));
      if (stone != tombstones_.end()) {
        o.closed_through_us = o.idle_closed_through_us = stone->second.frontier_us;
        tombstones_.erase(stone);  // its entry in tombstone_order_ is skipped when it expires
      }
    }
    o.idle_pos = idle_order_.insert(idle_order_.end(), IdleEntry{&it->first, now_us});
  } else {
    o.idle_pos->last_seen_us = now_us;
    idle_order_.splice(idle_order_.end(), idle_order_, o.idle_pos);
  }
  return o;
}

WeatherWindow::Placement WeatherWindow::add(const std::string& origin, int64_t t,
                                            std::span<const std::optional<double>> values,
                                            int64_t now_us) {
  OriginState& o = touch(origin, now_us);
  const int64_t frontier = std::max(o.watermark_us, o.closed_through_us);
  const int64_t window = config_.window_us, slide = config_.slide_us;
  Placement p;
  bool accepted = false;
  // The smallest multiple of slide above t - window, up to the largest at or below t.
  for (int64_t s = (floor_div(t - window, slide) + 1) * slide; s <= t; s += slide) {
    int64_t end = s + window;
    if (close_time(end) <= frontier) {
      p.window_start_us = s;  // rising: ends up the most recently closed window
      p.window_end_us = end;
      continue;
    }
    auto [it, opened] = o.windows.try_emplace(s);
    Accumulator& acc = it->second;
    if (opened) {
      acc.fields.resize(config_.fields.size());
      p.opened_close_times_us.push_back(close_time(end));
    }
    ++acc.count;
    for (size_t i = 0; i < acc.fields.size() && i < values.size(); ++i)
      if (values[i]) acc.fields[i].add(*values[i], t);
    accepted = true;
  }
  if (!accepted) {
    p.late = true;
    p.frontier_us = frontier;
    p.closed_idle = close_time(p.window_end_us) <= o.idle_closed_through_us;
  }
  o.watermark_us = std::max(o.watermark_us, t);
  o.seen = true;
  return p;
}

void WeatherWindow::observe(const std::string& origin, int64_t event_time_us, int64_t now_us) {
  OriginState& o = touch(origin, now_us);
  o.watermark_us = std::max(o.watermark_us, event_time_us);
  o.seen = true;
}

WindowResult WeatherWindow::result(const std::string& origin, int64_t start_us,
                                   Accumulator&& acc) const {
  WindowResult r;
  r.origin = origin;
  r.start_us = start_us;
  r.end_us = start_us + config_.window_us;
  r.count = acc.count;
  r.fields = std::move(acc.fields);
  return r;
}

std::vector<WindowResult> WeatherWindow::close_until(const std::string& origin,
                                                     int64_t close_time_us) {
  std::vector<WindowResult> closed;
  auto found = origins_.find(origin);
  if (found == origins_.end()) return closed;
  OriginState& o = found->second;
  o.closed_through_us = std::max(o.closed_through_us, close_time_us);
  while (!o.windows.empty()) {
    auto it = o.windows.begin();
    if (close_time(it->first + config_.window_us) > close_time_us) break;
    // Windows exist only once a reading opened them, so none is empty.
    closed.push_back(result(origin, it->first, std::move(it->second)));
    o.windows.erase(it);
  }
  return closed;
}

std::vector<WindowResult> WeatherWindow::close_due(const std::string& origin) {
  auto found = origins_.find(origin);
  if (found == origins_.end() || !found->second.seen) return {};
  return close_until(origin, found->second.watermark_us);
}

std::vector<WindowResult> WeatherWindow::forget_idle(int64_t now_us,
                                                     std::vector<std::string>* forgotten) {
  std::vector<WindowResult> closed;
  const int64_t idle = config_.idle_timeout_us;
  if (idle <= 0) return closed;
  now_us = active_us(now_us);  // from here on, the active clock
  while (!tombstone_order_.empty() && now_us - tombstone_order_.front().second >= idle) {
    auto stone = tombstones_.find(tombstone_order_.front().first);
    // Only the tombstone this entry made: the origin may have come back and been forgotten
    // again since, with a newer one.
    if (stone != tombstones_.end() && stone->second.forgotten_us == tombstone_order_.front().second)
      tombstones_.erase(stone);
    tombstone_order_.pop_front();
  }
  while (!idle_order_.empty() && now_us - idle_order_.front().last_seen_us >= idle) {
    auto found = origins_.find(*idle_order_.front().origin);
    OriginState& o = found->second;
    int64_t frontier = std::max(o.watermark_us, o.closed_through_us);
    for (auto& [start, acc] : o.windows) {
      frontier = std::max(frontier, close_time(start + config_.window_us));
      closed.push_back(result(found->first, start, std::move(acc)));
    }
    const uint64_t hash = std::hash<std::string>{}(found->first);
    if (frontier != INT64_MIN) {
      tombstones_[hash] = Tombstone{frontier, now_us};
      tombstone_order_.emplace_back(hash, now_us);
    }
    if (forgotten) forgotten->push_back(found->first);
    idle_order_.pop_front();
    origins_.erase(found);
  }
  return closed;
}

std::vector<WindowResult> WeatherWindow::close_all() {
  // By origin, then time: output at end of input is the same on every run.
  std::vector<const std::string*> names;
  for (auto& [origin, o] : origins_) names.push_back(&origin);
  std::sort(names.begin(), names.end(), [](auto* a, auto* b) { return *a < *b; });
  std::vector<WindowResult> closed;
  for (const std::string* origin : names) {
    OriginState& o = origins_.find(*origin)->second;
    for (auto& [start, acc] : o.windows) closed.push_back(result(*origin, start, std::move(acc)));
    o.windows.clear();
    o.closed_through_us = INT64_MAX;
  }
  return closed;
}

std::optional<int64_t> WeatherWindow::watermark(const std::string& origin) const {
  auto found = origins_.find(origin);
  if (found == origins_.end() || !found->second.seen) return std::nullopt;
  return found->second.watermark_us;
}

std::optional<int64_t> WeatherWindow::frontier_us(const std::string& origin) const {
  auto found = origins_.find(origin);
  if (found == origins_.end()) return std::nullopt;
  const OriginState& o = found->second;
  if (!o.seen && o.closed_through_us == INT64_MIN) return std::nullopt;
  return std::max(o.watermark_us, o.closed_through_us);
}

size_t WeatherWindow::open_windows() const {
  size_t n = 0;
  for (const auto& [origin, o] : origins_) n += o.windows.size();
  return n;
}

}  // namespace edgeflow
