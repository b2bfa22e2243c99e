// A pipeline definition file, loaded and validated as a whole before anything runs:
// YAML syntax, keys, types, operators and their options, the wiring, cycles, port types and
// placement. Every problem of the file is reported in one run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/diagnostics.h"
#include "runtime/energy_rules.h"
#include "runtime/link_settings.h"
#include "runtime/registry.h"
#include "runtime/schema.h"

namespace edgeflow {

// A numeric key of a node's `solar:` map, declared once here: the loader checks each value
// against its range, the planner (planner/solar.h) reads the values, docs/planner.md lists them.
struct SolarKey {
  const char* name;
  double lo, hi;  // allowed range; lo itself excluded when lo_exclusive
  bool lo_exclusive;
  bool required;
  bool integer;
  const char* description;
};
const std::vector<SolarKey>& solar_keys();

// What a node's `network:` may name; the device profile gives each one's energy per byte.
const std::vector<std::string>& network_kinds();

struct NodeSpec {
  std::string name;
  std::string tier;     // "edge" or "cloud"
  std::string device;   // a device profile name or a path to one (planner/device_profile.h)
  std::string address;  // host other nodes reach it at (ZeroMQ links)
  // The numeric `solar:` keys (solar_keys()) in file order, each checked against its range.
  std::vector<std::pair<std::string, double>> solar;
  SourceMark mark;
  std::string network;      // one of network_kinds(); "" = the device profile's default
  std::string solar_table;  // `solar: {table: FILE}` as written: relative to the file's folder
  SourceMark solar_mark;    // of the `solar:` map, for the planner's errors; line 0 when none
};

struct InputRef {
  std::string stage;
  std::string port = "out";  // `from: cam.error` reads a stage's error output
  SourceMark mark;
};

// kSpool: like kBlock in memory; a link into the stage also keeps what it sends in the
// service's disk spool until the receiver confirms it (see brokers/spool).
enum class Overflow { kBlock, kDropOldest, kSpool };

struct StageSpec {
  std::string id;
  std::string op;
  std::string on;   // "edge", "cloud" or a node name; defaulted at load (see README)
  std::string via;  // transport of incoming cross-node links; "" = pipeline default
  std::vector<InputRef> inputs;
  Options options;
  const OperatorEntry* entry = nullptr;
  size_t queue_capacity = 1024;  // 4 for stages that read camera frames, unless given
  bool capacity_given = false;
  // The bytes its queue may hold (approx_bytes of the messages): a stage waits for room, or a
  // drop-oldest queue drops, once they are reached. A turn's output may pass it by what one
  // turn emits (the check is before the turn).
  size_t queue_bytes = size_t{64} << 20;
  // kBlock unless `queue: {overflow: ...}` says otherwise, or the stage reads camera frames
  // (then kDropOldest: a slow consumer must never stall the camera; drops are counted).
  Overflow overflow = Overflow::kBlock;
  bool overflow_given = false;
  std::string output_type;  // resolved type of "out" ("same" replaced by the input's)
  SourceMark mark;
  SourceMark on_mark;  // of the `on:` value, for placement errors; line 0 when none is given
  // `on: [edge, cloud]`: the placements `edgeflow plan --explore` tries, two or more, each a
  // tier or node; `on` is the first, where the stage runs. Empty for a pinned stage.
  std::vector<std::string> on_choices;
  // `replicas: N` (a cloud stage, links over NATS): N processes, each owning the origins whose
  // hash falls in its partition. The copies run on the node `replica_node(node, id)`.
  int replicas = 1;
  SourceMark replicas_mark;
};

// The node name under which the copies of a replicated stage run ("cloud:minute"): a node of
// its own in the plan, so its links are cut from the rest of its node's stages.
inline std::string replica_node(const std::string& node, const std::string& stage) {
  return node + ":" + stage;
}
// The machine a plan node runs on: "cloud" for "cloud:minute", the name itself otherwise.
inline std::string base_node(const std::string& node) { return node.substr(0, node.find(':')); }

struct PipelineSpec {
  std::string name;
  std::string file;
  std::string base_dir;
  std::vector<NodeSpec> nodes;
  LinkDefaults links;
  std::vector<StageSpec> stages;  // in file order
  EnergyRules energy;             // `energy:`: what an edge node sheds as its battery runs down

  const StageSpec* stage(const std::string& id) const;
  int stage_index(const std::string& id) const;
  // A node by name; "cloud:minute" (replica_node) is the node `cloud` itself.
  const NodeSpec* node(const std::string& name) const;
  // The replicated stage placed on `node` (its replica_node's stage), or null.
  const StageSpec* replicated_on(const std::string& node) const;
  // Nodes a stage runs on: every node of a tier, or the one node named.
  std::vector<std::string> nodes_for(const std::string& on) const;
};

struct LoadResult {
  std::optional<PipelineSpec> pipeline;  // set only when diags is empty
  Diagnostics diags;
};

// An option set from the command line (`--set out.path=/tmp/x.jsonl`): the value is YAML
// and replaces the file's before validation, so it is checked like the rest.
struct OptionOverride {
  std::string stage;
  std::string option;
  std::string value;
};
// Parses "STAGE.OPTION=VALUE"; nullopt when the text has another shape.
std::optional<OptionOverride> parse_override(const std::string& text);

// Stage indices with every stage after its inputs. The graph must be acyclic (as every loaded
// pipeline is); used by validation and by placement.
std::vector<int> topological_order(const PipelineSpec& pipeline);

LoadResult load_pipeline_file(const std::string& path,
                              const std::vector<OptionOverride>& overrides = {});
// `file` is the name used in messages; `base_dir` resolves relative paths in options.
// `user_plugins` false: the file's `plugins:` are not loaded (an error each), for showing a
// pipeline that this process will not run (the cloud's dashboard).
LoadResult load_pipeline_text(const std::string& text, const std::string& file,
                              const std::string& base_dir,
                              const std::vector<OptionOverride>& overrides = {},
                              bool user_plugins = true);

}  // namespace edgeflow
