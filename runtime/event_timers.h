// Event-time timers per origin node, shared by the executor and the test harness. The
// watermark of an origin is the highest event time seen from it (event time rises on a
// stream); a timer fires once the watermark reaches it.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace edgeflow {

class EventTimers {
 public:
  using Due = std::vector<std::pair<std::string, int64_t>>;

  void set(const std::string& origin, int64_t event_time_us);
  // Records an event time from `origin` and appends the timers now due, in time order.
  void observe(const std::string& origin, int64_t event_time_us, Due& due);
  // End of input: every remaining timer, in time order.
  void drain(Due& due);
  // Forgets the origin: its timers and watermark (an operator that freed its state). Its next
  // event time starts a new watermark.
  void clear(const std::string& origin);
  bool empty() const { return pending_ == 0; }

 private:
  struct Origin {
    int64_t watermark = INT64_MIN;
    std::set<int64_t> timers;
  };
  std::unordered_map<std::string, Origin> origins_;
  size_t pending_ = 0;
  bool used_ = false;  // stages that never set a timer pay nothing per message
};

}  // namespace edgeflow
