// `replicas: N` of a stage: N processes share its input by origin (links/partitioning in
// brokers/link/transport.cc). The rules here keep that exact: the operator keeps state per
// origin only, the copies run on one cloud node, and every link into and out of them goes
// over NATS, whose subjects carry the partitions.
#include <algorithm>
#include <set>
#include <string>

#include "runtime/loader_internal.h"
#include "runtime/options_yaml.h"

namespace edgeflow {

namespace {

// Operators whose output for an origin depends on that origin's input alone, and says how
// far that input is settled: a window of an origin ending at `e` settles its readings
// before `e`, which is when a replica acknowledges them (brokers/link/link_receiver.cc).
const std::vector<std::string> kPerOriginOps = {"weather.aggregate"};
constexpr int kMaxReplicas = 16;

std::string via_of(const PipelineSpec& p, const StageSpec& s) {
  return s.via.empty() ? p.links.via : s.via;
}

}  // namespace

void load_replicas(LoadContext& cx, const YAML::Node& replicas, StageSpec& stage) {
  stage.replicas_mark = mark_of(replicas);
  auto text = cx.scalar(replicas, stage.id, "'replicas'");
  if (!text) return;
  try {
    size_t used = 0;
    const long n = std::stol(*text, &used);
    if (used == text->size() && n >= 1 && n <= kMaxReplicas) {
      stage.replicas = static_cast<int>(n);
      return;
    }
  } catch (const std::exception&) {
  }
  cx.diags.add(stage.replicas_mark, stage.id,
               "'replicas' must be a whole number from 1 to " + std::to_string(kMaxReplicas) +
                   " (got '" + *text + "')");
}

void check_replicas(LoadContext& cx) {
  const PipelineSpec& p = cx.spec;
  std::set<std::string> nodes_with_replicas;
  for (const StageSpec& s : p.stages) {
    if (s.replicas <= 1) continue;
    const SourceMark& at = s.replicas_mark;
    if (std::find(kPerOriginOps.begin(), kPerOriginOps.end(), s.op) == kPerOriginOps.end()) {
      cx.diags.add(at, s.id,
                   "'replicas' moves a dead replica's origins to the others from the "
                   "readings its closed windows had not covered, which only "
                   "weather.aggregate can say; '" +
                       s.op + "' cannot have replicas",
                   "remove replicas: from this stage");
      continue;
    }
    if (s.options.has("slide") && s.options.has("window") &&
        s.options.get_duration_us("slide") != s.options.get_duration_us("window")) {
      cx.diags.add(at, s.id,
                   "a stage with replicas must use tumbling windows (a sliding window's end "
                   "does not say which readings are settled)",
                   "remove slide: or replicas:");
      continue;
    }
    bool upstream_replicated = false;
    for (const InputRef& in : s.inputs)
      if (const StageSpec* up = p.stage(in.stage); up && up->replicas > 1)
        upstream_replicated = true;
    if (upstream_replicated || s.inputs.size() != 1) {
      cx.diags.add(at, s.id,
                   "a stage with replicas reads exactly one stage, which has no replicas itself",
                   "read one stage (put a stage between replicated ones)");
      continue;
    }
    const std::vector<std::string> nodes = p.nodes_for(s.on);
    const NodeSpec* node = nodes.size() == 1 ? p.node(nodes[0]) : nullptr;
    if (!node || node->tier != "cloud") {
      cx.diags.add(
          at, s.id,
          "a stage with replicas runs on one cloud node, but 'on: " + s.on + "' names " +
              (nodes.size() == 1 ? "an edge node" : std::to_string(nodes.size()) + " nodes"),
          "set on: to the name of one node with tier: cloud");
      continue;
    }
    if (!nodes_with_replicas.insert(nodes[0]).second) {
      cx.diags.add(at, s.id, "node '" + nodes[0] + "' already runs a stage with replicas",
                   "give replicas: to one stage per node");
      continue;
    }
    if (via_of(p, s) != "nats") {
      cx.diags.add(at, s.id,
                   "the input of a stage with replicas is shared out on NATS subjects, but its "
                   "links go via " +
                       via_of(p, s),
                   "set links: {via: nats} (or via: nats on this stage)");
      continue;
    }
    for (const StageSpec& down : p.stages)
      for (const InputRef& in : down.inputs)
        if (in.stage == s.id && via_of(p, down) != "nats")
          cx.diags.add(in.mark, down.id,
                       "stage '" + s.id + "' has replicas, so its output reaches this stage " +
                           "over NATS, but this stage's links go via " + via_of(p, down),
                       "set via: nats on this stage (or links: {via: nats})");
  }
}

}  // namespace edgeflow
