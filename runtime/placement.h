// Placement: expands each stage onto the nodes its `on:` names and wires the copies. The
// result is the physical plan the executor runs; an edge whose ends sit on different nodes
// is marked `crosses_nodes`, the place where a transport pair is cut in.
#pragma once

#include <string>
#include <vector>

#include "runtime/link.h"
#include "runtime/pipeline.h"

namespace edgeflow {

struct StageInstance {
  int stage = -1;  // index into PipelineSpec::stages
  std::string node;
  std::string name;  // "minute@pi-1"
};

struct PlanEdge {
  int from = -1;  // instance indices
  int from_port = 0;
  int to = -1;
  int to_port = 0;
  bool crosses_nodes = false;
  int link = -1;  // index into Plan::links when crosses_nodes
};

struct Plan {
  std::vector<StageInstance> instances;  // grouped by stage, stages in topological order
  std::vector<PlanEdge> edges;
  std::vector<LinkPlan> links;  // one per (stage output, downstream stage) cut by placement
};

// Rules: a stage `on: edge` runs one copy per edge node (`on: cloud` per cloud node, `on: X`
// on node X). A copy takes input from the copy of its upstream on the same node when there
// is one; otherwise from every copy of it (edge nodes fan in to the cloud, the cloud fans out
// to edge nodes). Edges between nodes are grouped into links; a link's transport is the `via:`
// of its downstream stage, else the pipeline's `links: via`. A stage with `replicas:` runs on
// the node replica_node(node, stage) of its own, so all its input and output are links.
Plan place(const PipelineSpec& pipeline);

}  // namespace edgeflow
