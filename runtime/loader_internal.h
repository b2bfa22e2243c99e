// What the parts of the pipeline loader share (runtime/loader.cc, the stages and the checks
// of the whole file; loader_nodes.cc, `nodes:`; loader_links.cc, `links:`): the diagnostics
// and the spec being built, and the checks every key goes through.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "runtime/diagnostics.h"
#include "runtime/pipeline.h"

namespace edgeflow {

inline const std::vector<std::string> kTiers = {"edge", "cloud"};
inline const std::vector<std::string> kVias = {"mqtt", "zmq", "nats"};

// Names of pipelines, nodes and stages become parts of MQTT topics and client ids.
bool valid_name(const std::string& s);

struct LoadContext {
  Diagnostics& diags;
  PipelineSpec& spec;

  // Unknown and duplicate keys of a map.
  void check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                  const std::string& stage, const std::string& what);
  // A scalar string value; reports and returns nullopt when the node is something else.
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& stage,
                                    const std::string& what);
};

// `nodes:` (no key: one edge and one cloud node), with each node's keys checked.
void load_nodes(LoadContext& cx, const YAML::Node& nodes);
// `links:`, the defaults of the links between nodes.
void load_links(LoadContext& cx, const YAML::Node& links);
// A stage's `replicas:` (runtime/loader_replicas.cc); and, once placement is resolved, the
// rules a replicated stage must meet.
void load_replicas(LoadContext& cx, const YAML::Node& replicas, StageSpec& stage);
void check_replicas(LoadContext& cx);

}  // namespace edgeflow
