#include "runtime/placement.h"

#include <map>

namespace edgeflow {

Plan place(const PipelineSpec& pipeline) {
  Plan plan;
  const auto& stages = pipeline.stages;
  const std::vector<int> order = topological_order(pipeline);

  std::map<int, std::vector<int>> copies;  // stage -> instance indices
  for (int s : order) {
    for (const std::string& node : pipeline.nodes_for(stages[s].on)) {
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
        for (int from : sources)
          plan.edges.push_back({from, from_port, to, 0, plan.instances[from].node != node});
      }
    }
  }
  return plan;
}

}  // namespace edgeflow
