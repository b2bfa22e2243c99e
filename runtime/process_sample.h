// This process's CPU time, resident memory and start time, from /proc/self: what the node
// status and the Prometheus metrics report about the process.
#pragma once

#include <cstdint>

namespace edgeflow {

struct ProcessSample {
  double cpu_s = 0;         // user + system
  uint64_t rss_bytes = 0;   // resident now
  double start_time_s = 0;  // since the epoch
};

ProcessSample sample_process();

}  // namespace edgeflow
