// The planner's prediction for one placement: per message figures from the operator profile
// (planner/profile.h) times the rates that flow through the placed graph give each
// cross-node link's messages, frames and bytes, and each node's CPU; the node's device
// profile and solar spec turn those into watts, watt-hours a day, harvest and autonomy
// (planner/energy.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "planner/energy.h"
#include "planner/profile.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {

struct LinkPrediction {
  std::string link;  // "minute->show"
  std::string from_node, to_node, via;
  double messages_per_s = 0;
  double frames_per_s = 0;
  double payload_bytes_per_s = 0;  // the encoded frames, as the link's report counts them
  double wire_bytes_per_s = 0;     // with protocol, TCP/IP headers and acknowledgements
  double bytes_per_day() const { return payload_bytes_per_s * 86400; }
  double wire_bytes_per_day() const { return wire_bytes_per_s * 86400; }
};

struct NodePrediction {
  std::string node, tier, device;     // device: the profile used; "" when the node names none
  double cpu_core_seconds_per_s = 0;  // stages and link ends, on the profiling machine
  double messages_in_per_s = 0;       // into the node's stages (a load figure for the table)
  NodeLoad load;
  NodeEnergy energy;
  int month = 0;            // of the solar figures
  bool has_energy = false;  // a device profile was found
  std::string note;         // why there are no energy figures, or a problem with them
};

struct Prediction {
  std::string pipeline;
  int month = 1;
  std::string placement;  // "sensors@edge minute@edge show@cloud"
  std::vector<LinkPrediction> links;
  std::vector<NodePrediction> nodes;
  std::vector<std::string> warnings;
};

struct PredictOptions {
  int month = 0;  // 1-12; 0: each node's solar month, else the current month
  // Messages per second per copy of a source stage, in place of the profile's (compare uses
  // the rates a report measured).
  std::map<std::string, double> source_rates;
  // The device profile a node uses when it names none: cloud nodes cloud-vm, edge nodes none.
  std::string cloud_default_device = "cloud-vm";
};

// `pipeline` as loaded (with any --set applied); `plan` = place(pipeline). Problems that
// leave figures out (a stage missing from the profile, a device profile that does not load)
// are warnings or node notes, not exceptions.
Prediction predict(const PipelineSpec& pipeline, const Plan& plan, const PipelineProfile& profile,
                   const PredictOptions& options);

// Building blocks, shared with the measured side (planner/measure.h):
// `frames` per second of `frame_bytes` each on `lp` load the radios of both ends.
void add_link_traffic(const PipelineSpec& pipeline, const LinkPlan& lp, double frames,
                      double frame_bytes, NodePrediction* sender, NodePrediction* receiver);
// The node's device profile and solar spec applied to its CPU and load (np.energy), or a note
// saying why not.
void fill_energy(const PipelineSpec& pipeline, NodePrediction& np, const PredictOptions& options);

// The stages' placement as one line: each stage id @ its `on:` ("minute@edge").
std::string placement_line(const PipelineSpec& pipeline);

}  // namespace edgeflow
