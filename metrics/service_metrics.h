// The Prometheus families of the node services (`edgeflow edge`, `edgeflow cloud`) beside a
// part's stage and link families: the node's state, spool backlog, broker connection and
// energy; and, from the cloud's registry, every node of the fleet. Pure formatting, like
// prometheus.h; the services fill the figures on their own thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace edgeflow::metrics {

// One node service's own figures.
struct NodeFigures {
  std::string node, tier;           // tier: edge or cloud
  std::string state;                // working, waiting or error
  std::string pipeline, part_hash;  // "" when no part is deployed
  bool part_running = false;
  bool broker_connected = false;
  uint64_t spool_frames = 0, spool_bytes = 0, spool_dropped_messages = 0;
  double spool_oldest_age_s = 0;
  std::string energy_mode;            // normal, or the mode the battery called for
  std::optional<double> charge_pct;   // the battery's charge, when known
  std::optional<double> model_watts;  // the energy model's draw and harvest (source: model)
  std::optional<double> model_harvest_w;
};

// What the cloud's registry knows of one node, from its last status message.
struct FleetNodeFigures {
  std::string node, state;  // state: one of node_states() (unknown: none, or not one of ours)
  std::string tier, version, pipeline;
  int64_t last_seen_ms = 0;  // wall time; 0: never
  std::optional<double> charge_pct;
  std::optional<double> spool_bytes;
};

// The states a node can be in, in the order they are exported: working, waiting, error,
// offline, and unknown (the cloud's word for a status without a state it knows).
const std::vector<std::string>& node_states();

// iExec tasks finished, per pipeline and final status, as the cloud saw their results.
struct IexecTaskCount {
  std::string pipeline, status;
  uint64_t count = 0;
};

std::string node_text(const NodeFigures& n);
std::string iexec_text(const std::vector<IexecTaskCount>& counts);
std::string fleet_text(const std::vector<FleetNodeFigures>& nodes);

}  // namespace edgeflow::metrics
