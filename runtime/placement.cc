#include "runtime/placement.h"

#include <map>

namespace edgeflow {
namespace {

void add_unique(std::vector<std::string>& names, const std::string& name) {
  for (const std::string& n : names)
    if (n == name) return;
  names.push_back(name);
}

// The link for edges from stage `up` port `port` into stage `to`, made on first use.
int link_for(Plan& plan, const PipelineSpec& pipeline, int up, int port, int to,
             const InputRef& in) {
  for (const LinkPlan& l : plan.links)
    if (l.from_stage == up && l.from_port == port && l.to_stage == to) return l.id;
  LinkPlan l;
  l.id = static_cast<int>(plan.links.size());
  const std::string& from_id = pipeline.stages[up].id;
  l.name = (in.port == "out" ? from_id : from_id + "." + in.port) + "->" + pipeline.stages[to].id;
  l.from_stage = up;
  l.from_port = port;
  l.to_stage = to;
  l.via = pipeline.stages[to].via.empty() ? pipeline.links.via : pipeline.stages[to].via;
  l.partitions = pipeline.stages[to].replicas;
  l.sender_replicas = pipeline.stages[up].replicas;
  plan.links.push_back(std::move(l));
  return plan.links.back().id;
}

}  // namespace

Plan place(const PipelineSpec& pipeline) {
  Plan plan;
  const auto& stages = pipeline.stages;
  const std::vector<int> order = topological_order(pipeline);

  std::map<int, std::vector<int>> copies;  // stage -> instance indices
  for (int s : order) {
    for (std::string node : pipeline.nodes_for(stages[s].on)) {
      // Replicas run apart from the node's other stages: every link to and from them is cut.
      if (stages[s].replicas > 1) node = replica_node(node, stages[s].id);
      copies[s].push_back(static_cast<int>(plan.instances.size()));
      plan.instances.push_back({s, node, stages[s].id + "@" + node});
    }
  }
  for (int s : order) {
    const StageSpec& stage = stages[s];
    for (const InputRef& in : stage.inputs) {
      int up = pipeline.stage_index(in.stage);
      int from_port = stages[up].entry->spec.output_index(in.port);
      for (int to : copies[s]) {
        const std::string& node = plan.instances[to].node;
        std::vector<int> sources;
        for (int from : copies[up])
          if (plan.instances[from].node == node) sources.push_back(from);
        if (sources.empty()) sources = copies[up];
        for (int from : sources) {
          PlanEdge edge{from, from_port, to, 0, plan.instances[from].node != node, -1};
          if (edge.crosses_nodes) {
            edge.link = link_for(plan, pipeline, up, from_port, s, in);
            add_unique(plan.links[edge.link].senders, plan.instances[from].node);
            add_unique(plan.links[edge.link].receivers, node);
          }
          plan.edges.push_back(edge);
        }
      }
    }
  }
  return plan;
}

}  // namespace edgeflow
