// Clocks in the integer units the services, links and spool keep: steady milliseconds for
// timeouts and back-off, wall-clock (Unix epoch) milliseconds and microseconds for what is
// stored or sent.
#pragma once

#include <chrono>
#include <cstdint>

namespace edgeflow {

inline int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace edgeflow
