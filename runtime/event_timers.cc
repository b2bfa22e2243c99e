#include "runtime/event_timers.h"

#include <algorithm>

namespace edgeflow {

void EventTimers::set(const std::string& origin, int64_t event_time_us) {
  used_ = true;
  if (origins_[origin].timers.insert(event_time_us).second) ++pending_;
}

void EventTimers::observe(const std::string& origin, int64_t event_time_us, Due& due) {
  if (!used_) return;
  Origin& o = origins_[origin];
  if (event_time_us > o.watermark) o.watermark = event_time_us;
  while (!o.timers.empty() && *o.timers.begin() <= o.watermark) {
    due.emplace_back(origin, *o.timers.begin());
    o.timers.erase(o.timers.begin());
    --pending_;
  }
}

void EventTimers::clear(const std::string& origin) {
  auto found = origins_.find(origin);
  if (found == origins_.end()) return;
  pending_ -= found->second.timers.size();
  origins_.erase(found);
}

void EventTimers::drain(Due& due) {
  size_t first = due.size();
  for (auto& [origin, o] : origins_) {
    for (int64_t t : o.timers) due.emplace_back(origin, t);
    o.timers.clear();
  }
  pending_ = 0;
  // By time, then origin: output at end of input is the same on every run.
  std::sort(due.begin() + first, due.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second < b.second : a.first < b.first;
  });
}

}  // namespace edgeflow
