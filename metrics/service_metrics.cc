#include "metrics/service_metrics.h"

#include <map>
#include <sstream>

#include "metrics/prometheus.h"

namespace edgeflow::metrics {
namespace {

// Writes families one sample at a time: the help and type lines before a family's first.
class Writer {
 public:
  void sample(const char* name, const char* type, const char* help, const std::string& labels,
              double value) {
    if (name != last_) {
      out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
      last_ = name;
    }
    out_ << name << "{" << labels << "} " << sample_value(value) << "\n";
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::string last_;
};

}  // namespace

const std::vector<std::string>& node_states() {
  static const std::vector<std::string> states = {"working", "waiting", "error", "offline",
                                                  "unknown"};
  return states;
}

std::string node_text(const NodeFigures& n) {
  Writer w;
  const std::string node = label("node", n.node);
  w.sample("edgeflow_node_info", "gauge",
           "The node service: its tier and the part it was given (pipeline, part hash).",
           node + "," + label("tier", n.tier) + "," + label("pipeline", n.pipeline) + "," +
               label("part_hash", n.part_hash),
           1);
  // An enum as Prometheus has it: one series per state, 1 for the current one.
  for (const std::string& s : node_states()) {
    if (s == "offline" || s == "unknown") continue;  // a running service knows its state
    w.sample("edgeflow_node_state", "gauge", "1 for the node's current state, 0 for the others.",
             node + "," + label("state", s), s == n.state ? 1 : 0);
  }
  w.sample("edgeflow_node_part_running", "gauge", "1 while the deployed part runs.", node,
           n.part_running ? 1 : 0);
  w.sample("edgeflow_node_broker_connected", "gauge",
           "1 while the service is connected to the fleet's broker.", node,
           n.broker_connected ? 1 : 0);
  w.sample("edgeflow_spool_frames", "gauge",
           "Outgoing link frames in the disk spool, waiting for acknowledgement.", node,
           static_cast<double>(n.spool_frames));
  w.sample("edgeflow_spool_bytes", "gauge", "Bytes of those frames.", node,
           static_cast<double>(n.spool_bytes));
  w.sample("edgeflow_spool_oldest_age_seconds", "gauge",
           "Age of the oldest frame waiting in the spool (0: none).", node, n.spool_oldest_age_s);
  w.sample("edgeflow_spool_dropped_messages_total", "counter",
           "Messages in frames the spool dropped for max_bytes or max_age.", node,
           static_cast<double>(n.spool_dropped_messages));
  w.sample("edgeflow_energy_mode", "gauge",
           "1 for the energy mode the node runs in (the part's energy rules).",
           node + "," + label("mode", n.energy_mode.empty() ? "normal" : n.energy_mode), 1);
  if (n.charge_pct)
    w.sample("edgeflow_battery_charge_ratio", "gauge", "The battery's charge, 0 to 1.", node,
             *n.charge_pct / 100.0);
  if (n.model_watts)
    w.sample("edgeflow_energy_model_draw_watts", "gauge",
             "The energy model's draw of the node now (battery source: model).", node,
             *n.model_watts);
  if (n.model_harvest_w)
    w.sample("edgeflow_energy_model_harvest_watts", "gauge",
             "The energy model's solar harvest now (battery source: model).", node,
             *n.model_harvest_w);
  return w.str();
}

std::string iexec_text(const std::vector<IexecTaskCount>& counts) {
  Writer w;
  for (const IexecTaskCount& c : counts)
    w.sample("edgeflow_iexec_tasks_finished_total", "counter",
             "iExec tasks whose final result the cloud has seen since it started (retained "
             "ones found at start included), each once.",
             label("pipeline", c.pipeline) + "," + label("status", c.status),
             static_cast<double>(c.count));
  return w.str();
}

std::string fleet_text(const std::vector<FleetNodeFigures>& nodes) {
  Writer w;
  std::map<std::string, int> by_state;
  for (const std::string& s : node_states()) by_state[s] = 0;
  for (const FleetNodeFigures& n : nodes) ++by_state[n.state];  // one of node_states()
  for (const std::string& s : node_states())
    w.sample("edgeflow_fleet_nodes", "gauge", "Nodes of the fleet in each state.",
             label("state", s), by_state[s]);
  for (const FleetNodeFigures& n : nodes) {
    w.sample("edgeflow_fleet_node_info", "gauge",
             "A node of the fleet: its tier, version and the pipeline it runs.",
             label("node", n.node) + "," + label("tier", n.tier) + "," +
                 label("version", n.version) + "," + label("pipeline", n.pipeline),
             1);
  }
  for (const FleetNodeFigures& n : nodes)
    for (const std::string& s : node_states())
      w.sample("edgeflow_fleet_node_state", "gauge",
               "1 for each node's current state (offline: its will, or no status for 1.5x "
               "its keep-alive).",
               label("node", n.node) + "," + label("state", s), s == n.state ? 1 : 0);
  for (const FleetNodeFigures& n : nodes)
    if (n.last_seen_ms > 0)
      w.sample("edgeflow_fleet_node_last_seen_timestamp_seconds", "gauge",
               "When the node's last status came, seconds since the epoch.", label("node", n.node),
               n.last_seen_ms / 1000.0);
  for (const FleetNodeFigures& n : nodes)
    if (n.charge_pct)
      w.sample("edgeflow_fleet_node_battery_charge_ratio", "gauge",
               "Each node's battery charge, 0 to 1, from its last status.", label("node", n.node),
               *n.charge_pct / 100.0);
  for (const FleetNodeFigures& n : nodes)
    if (n.spool_bytes)
      w.sample("edgeflow_fleet_node_spool_bytes", "gauge",
               "Each node's spool backlog in bytes, from its last status.", label("node", n.node),
               *n.spool_bytes);
  return w.str();
}

}  // namespace edgeflow::metrics
