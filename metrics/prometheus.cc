#include "metrics/prometheus.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>

#include "runtime/process_sample.h"

namespace edgeflow::metrics {
namespace {

// One metric family: its help and type once, then a sample per stage or link.
template <typename Item>
void family(std::ostringstream& out, const char* name, const char* type, const char* help,
            const std::vector<Item>& items, const std::function<std::string(const Item&)>& labels,
            const std::function<double(const Item&)>& value) {
  if (items.empty()) return;
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  for (const Item& item : items) {
    out << name << "{" << labels(item) << "} " << sample_value(value(item)) << "\n";
  }
}

}  // namespace

std::string label(const char* key, const std::string& value) {
  return std::string(key) + "=\"" + escape_label(value) + "\"";
}

std::string sample_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char number[64];
  std::snprintf(number, sizeof number, "%.17g", v);
  return number;
}

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string process_text() {
  std::ostringstream out;
  const ProcessSample p = sample_process();
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "# HELP process_cpu_seconds_total User and system CPU time of the process.\n"
                "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                "# HELP process_resident_memory_bytes Resident memory of the process.\n"
                "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
                "# HELP process_start_time_seconds Start time of the process since the epoch.\n"
                "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                p.cpu_s, static_cast<long>(p.rss_bytes), p.start_time_s);
  out << buf;
  out << "# HELP edgeflow_build_info The edgeflow version serving these metrics.\n"
         "# TYPE edgeflow_build_info gauge\nedgeflow_build_info{version=\""
      << EDGEFLOW_VERSION << "\"} 1\n";
  return out.str();
}

std::string prometheus_text(const Snapshot& s) { return pipeline_text(s) + process_text(); }

std::string pipeline_text(const Snapshot& s) {
  std::ostringstream out;
  const std::string pipeline = label("pipeline", s.pipeline);
  using S = StageMetrics;
  auto stage = std::function<std::string(const S&)>([&](const S& m) {
    return pipeline + "," + label("node", m.node) + "," + label("stage", m.stage) + "," +
           label("op", m.op);
  });
  auto counter = [&](const char* name, const char* help, std::function<double(const S&)> v) {
    family<S>(out, name, "counter", help, s.stages, stage, v);
  };
  auto gauge = [&](const char* name, const char* help, std::function<double(const S&)> v) {
    family<S>(out, name, "gauge", help, s.stages, stage, v);
  };
  counter("edgeflow_stage_messages_received_total", "Messages the stage copy took in.",
          [](const S& m) { return static_cast<double>(m.in); });
  counter("edgeflow_stage_messages_sent_total", "Messages the stage copy emitted.",
          [](const S& m) { return static_cast<double>(m.out); });
  counter("edgeflow_stage_errors_total", "Bad data and operator failures of the stage copy.",
          [](const S& m) { return static_cast<double>(m.errors); });
  counter("edgeflow_stage_dropped_total", "Messages a drop-oldest queue dropped.",
          [](const S& m) { return static_cast<double>(m.dropped); });
  counter("edgeflow_stage_cpu_seconds_total", "CPU time spent in the stage copy's turns.",
          [](const S& m) { return m.cpu_seconds; });
  gauge("edgeflow_stage_queue_high_water_messages", "Most messages its input queue held.",
        [](const S& m) { return static_cast<double>(m.queue_high_water); });
  gauge("edgeflow_stage_queue_capacity_messages", "The bound of its input queue.",
        [](const S& m) { return static_cast<double>(m.queue_capacity); });
  gauge("edgeflow_stage_queue_high_water_bytes", "Most bytes its input queue held (estimate).",
        [](const S& m) { return static_cast<double>(m.queue_bytes_high_water); });
  gauge("edgeflow_stage_finished", "1 once the stage copy has ended.",
        [](const S& m) { return m.finished ? 1.0 : 0.0; });

  using L = LinkMetrics;
  auto link = std::function<std::string(const L&)>([&](const L& l) {
    return pipeline + "," + label("link", l.link) + "," + label("node", l.node) + "," +
           label("direction", l.direction) + "," + label("via", l.via);
  });
  auto lcounter = [&](const char* name, const char* help, std::function<double(const L&)> v) {
    family<L>(out, name, "counter", help, s.links, link, v);
  };
  lcounter("edgeflow_link_messages_total", "Messages sent or received on the link end.",
           [](const L& l) { return static_cast<double>(l.messages); });
  lcounter("edgeflow_link_payload_bytes_total", "Encoded frame bytes handed to the transport.",
           [](const L& l) { return static_cast<double>(l.payload_bytes); });
  lcounter("edgeflow_link_wire_bytes_total",
           "Estimated bytes on the network, headers and acknowledgements included (send).",
           [](const L& l) { return static_cast<double>(l.wire_bytes); });
  lcounter("edgeflow_link_frames_total", "Frames (batches) sent or delivered.",
           [](const L& l) { return static_cast<double>(l.batches); });
  lcounter("edgeflow_link_reconnects_total", "Reconnections of the transport.",
           [](const L& l) { return static_cast<double>(l.reconnects); });
  lcounter("edgeflow_link_duplicate_frames_total", "Redelivered frames dropped (receive).",
           [](const L& l) { return static_cast<double>(l.duplicates); });
  lcounter("edgeflow_link_bad_frames_total", "Frames that did not decode (receive).",
           [](const L& l) { return static_cast<double>(l.errors); });
  lcounter("edgeflow_link_refused_total", "Senders refused by ZeroMQ CURVE (receive).",
           [](const L& l) { return static_cast<double>(l.refused); });
  family<L>(out, "edgeflow_link_unacknowledged_frames", "gauge",
            "Frames the transport has not confirmed yet (send).", s.links, link,
            [](const L& l) { return static_cast<double>(l.unacknowledged); });
  return out.str();
}

}  // namespace edgeflow::metrics
