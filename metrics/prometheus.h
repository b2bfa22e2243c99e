// The Prometheus text exposition format (version 0.0.4) of a running pipeline: per stage and
// per link counters and gauges, and the process's CPU and memory, named by Prometheus's
// conventions (base units in the names, _total on counters, labels for pipeline, node, stage
// and link). Pure formatting: metrics_server.h serves it.
#pragma once

#include <string>
#include <vector>

#include "runtime/executor.h"
#include "runtime/link.h"

namespace edgeflow::metrics {

struct Snapshot {
  std::string pipeline;
  std::vector<StageMetrics> stages;
  std::vector<LinkMetrics> links;
};

// The process's own figures, from /proc/self: process_cpu_seconds_total,
// process_resident_memory_bytes, process_start_time_seconds (as Prometheus's client
// libraries name them), and edgeflow_build_info.
std::string process_text();

// The stage and link families, each with its # HELP and # TYPE lines.
std::string pipeline_text(const Snapshot& s);
// pipeline_text() then process_text().
std::string prometheus_text(const Snapshot& s);

// A label value with \, " and newline escaped.
std::string escape_label(const std::string& value);
// key="value", the value escaped.
std::string label(const char* key, const std::string& value);
// A sample's value as Prometheus spells it (NaN, +Inf and -Inf included).
std::string sample_value(double v);

}  // namespace edgeflow::metrics
