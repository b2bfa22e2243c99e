#include "runtime/placement.h"

#include <functional>
#include <map>

namespace edgeflow {

Plan place(const PipelineSpec& pipeline) {
  Plan plan;
  const auto& stages = pipeline.stages;
  std::vector<int> order, state(stages.size(), 0);
  std::function<void(int)> visit = [&](int i) {
    state[i] = 1;
    for (const InputRef& in : stages[i].inputs) {
      int j = pipeline.stage_index(in.stage);
      if (j >= 0 && state[j] == 0) visit(j);
    }
    order.push_back(i);
  };
  for (size_t i = 0; i < stages.size(); ++i)
    if (state[i] == 0) visit(static_cast<int>(i));

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
