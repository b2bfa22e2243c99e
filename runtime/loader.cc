#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "runtime/blob_encoders.h"
#include "runtime/byte_size.h"
#include "runtime/duration.h"
#include "runtime/loader_internal.h"
#include "runtime/options_yaml.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"
#include "runtime/plugins.h"
#include "runtime/registry.h"

namespace edgeflow {

const StageSpec* PipelineSpec::stage(const std::string& id) const {
  int i = stage_index(id);
  return i < 0 ? nullptr : &stages[i];
}

int PipelineSpec::stage_index(const std::string& id) const {
  for (size_t i = 0; i < stages.size(); ++i)
    if (stages[i].id == id) return static_cast<int>(i);
  return -1;
}

const NodeSpec* PipelineSpec::node(const std::string& name) const {
  for (const NodeSpec& n : nodes)
    if (n.name == name) return &n;
  const size_t colon = name.find(':');
  if (colon == std::string::npos) return nullptr;
  const std::string base = name.substr(0, colon);
  const StageSpec* s = replicated_on(base);
  if (!s || s->id != name.substr(colon + 1)) return nullptr;
  return node(base);
}

const StageSpec* PipelineSpec::replicated_on(const std::string& node_name) const {
  for (const StageSpec& s : stages)
    if (s.replicas > 1)
      for (const std::string& n : nodes_for(s.on))
        if (n == node_name) return &s;
  return nullptr;
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

// Unknown and duplicate keys of a map.
void LoadContext::check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                             const std::string& stage, const std::string& what) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      diags.add(mark_of(kv.first), stage, what + " must be a plain name");
      continue;
    }
    const std::string& key = kv.first.Scalar();
    if (!seen.insert(key).second)
      diags.add(mark_of(kv.first), stage, "duplicate " + what + " '" + key + "'");
    if (std::find(known.begin(), known.end(), key) == known.end())
      diags.add(mark_of(kv.first), stage, "unknown " + what + " '" + key + "'",
                suggest(key, known));
  }
}

// A scalar string value; reports and returns nullopt when the node is something else.
std::optional<std::string> LoadContext::scalar(const YAML::Node& node, const std::string& stage,
                                               const std::string& what) {
  if (node.IsScalar()) return node.Scalar();
  diags.add(mark_of(node), stage,
            what + " must be a single value, not " +
                (node.IsSequence() ? "a list"
                 : node.IsMap()    ? "a map"
                                   : "empty"));
  return std::nullopt;
}

namespace {

constexpr size_t kMaxFileBytes = 4 << 20;  // a pipeline file is hand-written text
constexpr size_t kFrameQueueCapacity = 4;  // camera frames: see check_port_types

const std::vector<std::string> kTopKeys = {"pipeline", "description", "nodes", "links",
                                           "plugins",  "stages",      "energy"};
const std::vector<std::string> kStageKeys = {"id",   "op",  "on",    "from",
                                             "with", "via", "queue", "replicas"};

class Loader {
 public:
  Loader(std::string file, std::string base_dir, bool user_plugins = true)
      : diags_(file), user_plugins_(user_plugins) {
    spec_.file = std::move(file);
    spec_.base_dir = std::move(base_dir);
  }

  LoadResult load(const std::string& text, const std::vector<OptionOverride>& overrides) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      // ParserException and DeepRecursion both carry the place.
      SourceMark m =
          e.mark.is_null() ? SourceMark{} : SourceMark{e.mark.line + 1, e.mark.column + 1};
      // yaml-cpp's depth guard reports "bad file"; say what it means.
      std::string what =
          dynamic_cast<const YAML::DeepRecursion*>(&e)
              ? "nested deeper than " +
                    std::to_string(static_cast<const YAML::DeepRecursion&>(e).depth()) + " levels"
              : e.msg;
      diags_.add(m, "", "YAML syntax: " + what,
                 "check indentation and that every ':' in a value is quoted");
      return finish();
    }
    if (!root.IsMap()) {
      diags_.add(mark_of(root), "", "a pipeline file must be a map with 'pipeline' and 'stages'",
                 "start with:\n    pipeline: my-pipeline\n    stages:\n      - id: ...");
      return finish();
    }
    apply_overrides(root, overrides);
    check_keys(root, kTopKeys, "", "top-level key");
    load_name(root);
    load_nodes(root["nodes"]);
    load_links(root["links"]);
    load_plugins(root["plugins"]);
    load_stages(root["stages"], mark_of(root));
    load_energy_rules(root["energy"], spec_, diags_);  // runtime/energy_rules.cc
    if (stages_ok_) {
      check_wiring();
      if (!has_cycle()) {
        resolve_placement();
        check_port_types();
        if (diags_.empty()) check_replicas(cx_);  // runtime/loader_replicas.cc
        if (diags_.empty()) check_frames_on_links();
      }
    }
    return finish();
  }

 private:
  LoadResult finish() {
    diags_.sort_by_place();
    LoadResult r{std::nullopt, diags_};
    if (diags_.empty()) r.pipeline = std::move(spec_);
    return r;
  }

  // A --set value as YAML (a number, a list, a map), or as the text itself when YAML reads
  // nothing in it: "%Y/%m/%d" starts a YAML directive and would otherwise become null.
  static YAML::Node override_value(const std::string& text) {
    YAML::Node v = YAML::Load(text);
    if (v.IsNull() && !text.empty() && text != "null" && text != "~") return YAML::Node(text);
    return v;
  }

  void apply_overrides(YAML::Node& root, const std::vector<OptionOverride>& overrides) {
    for (const OptionOverride& o : overrides) {
      // A flag, not target.IsDefined(): a default-constructed YAML::Node is a defined null,
      // so an unknown stage used to be edited off the tree and the --set silently ignored.
      YAML::Node target;
      bool found = false;
      if (root["stages"].IsSequence()) {
        for (YAML::Node s : root["stages"])
          if (s.IsMap() && s["id"].IsScalar() && s["id"].Scalar() == o.stage) {
            target = s;
            found = true;
          }
      }
      if (!found) {
        diags_.add({}, "", "--set " + o.stage + "." + o.option + ": no stage '" + o.stage + "'");
        continue;
      }
      try {
        // STAGE.on=NODE and STAGE.via=zmq move a stage or change its link: the one-word edit
        // of placement, from the command line (`plan --set minute.on=cloud`).
        if (o.option == "on" || o.option == "via") {
          target[o.option] = override_value(o.value);
          continue;
        }
        // STAGE.op=OP swaps the operator (a source for sample data when profiling); its old
        // options belong to the old operator, so they go, and --set gives the new ones.
        if (o.option == "op") {
          target["op"] = override_value(o.value);
          target["with"] = YAML::Node(YAML::NodeType::Map);
          continue;
        }
        if (!target["with"].IsMap()) target["with"] = YAML::Node(YAML::NodeType::Map);
        target["with"][o.option] = override_value(o.value);
      } catch (const YAML::Exception& e) {
        diags_.add({}, o.stage, "--set " + o.option + ": value is not valid YAML: " + e.msg);
      }
    }
  }

  void check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                  const std::string& stage, const std::string& what) {
    cx_.check_keys(map, known, stage, what);
  }
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& stage,
                                    const std::string& what) {
    return cx_.scalar(node, stage, what);
  }

  void load_name(const YAML::Node& root) {
    YAML::Node name = root["pipeline"];
    if (!name.IsDefined()) {
      diags_.add(mark_of(root), "", "missing 'pipeline' (the pipeline's name)",
                 "add a first line like: pipeline: weather-station");
      return;
    }
    if (auto s = scalar(name, "", "'pipeline'")) {
      if (!valid_name(*s)) {
        diags_.add(mark_of(name), "",
                   "pipeline name '" + *s + "' may hold only letters, digits, '-' and '_'",
                   "it becomes part of MQTT topics and client ids");
      }
      spec_.name = *s;
    }
  }

  void load_nodes(const YAML::Node& nodes) { edgeflow::load_nodes(cx_, nodes); }
  void load_links(const YAML::Node& links) { edgeflow::load_links(cx_, links); }

  void load_stages(const YAML::Node& stages, SourceMark root_mark) {
    if (!stages.IsDefined()) {
      diags_.add(root_mark, "", "missing 'stages' (the list of operators)",
                 "add stages:\n    - id: sensors\n      op: weather.simulate");
      stages_ok_ = false;
      return;
    }
    if (!stages.IsSequence() || stages.size() == 0) {
      diags_.add(mark_of(stages), "",
                 "'stages' must be a non-empty list of stages (- id: ..., op: ...)");
      stages_ok_ = false;
      return;
    }
    // Far above any hand-written pipeline; keeps validation fast and its searches shallow.
    constexpr size_t kMaxStages = 1000;
    if (stages.size() > kMaxStages) {
      diags_.add(mark_of(stages), "",
                 "the pipeline has " + std::to_string(stages.size()) + " stages; at most " +
                     std::to_string(kMaxStages) + " are allowed",
                 "split it into several pipelines joined by MQTT topics");
      stages_ok_ = false;
      return;
    }
    std::map<std::string, SourceMark> ids;
    for (const YAML::Node& s : stages) {
      StageSpec stage;
      stage.mark = mark_of(s);
      if (!s.IsMap()) {
        diags_.add(stage.mark, "", "a stage must be a map with 'id' and 'op'");
        stages_ok_ = false;
        continue;
      }
      YAML::Node id = s["id"];
      if (!id.IsDefined()) {
        diags_.add(stage.mark, "", "stage has no 'id'", "add id: a-short-name");
        stages_ok_ = false;
      } else if (auto v = scalar(id, "", "stage 'id'")) {
        stage.id = *v;
        if (!valid_name(*v)) {
          diags_.add(mark_of(id), *v, "id may hold only letters, digits, '-' and '_'",
                     "ids become part of MQTT topics");
        }
        auto [it, fresh] = ids.emplace(*v, stage.mark);
        if (!fresh) {
          diags_.add(
              mark_of(id), *v,
              "duplicate stage id (first defined at line " + std::to_string(it->second.line) + ")",
              "give every stage its own id");
        }
      } else {
        stages_ok_ = false;
      }
      const std::string& sid = stage.id;
      check_keys(s, kStageKeys, sid, "stage key");
      load_op(s, stage);
      load_from(s["from"], stage);
      if (s["on"].IsDefined()) load_on(s["on"], stage);
      if (s["via"].IsDefined()) {
        if (auto v = scalar(s["via"], sid, "'via'")) {
          if (std::find(kVias.begin(), kVias.end(), *v) == kVias.end())
            diags_.add(mark_of(s["via"]), sid,
                       "'via' must be mqtt, zmq or nats (got '" + *v + "')");
          stage.via = *v;
        }
      }
      load_queue(s["queue"], stage);
      if (s["replicas"].IsDefined()) load_replicas(cx_, s["replicas"], stage);
      if (stage.entry) {
        stage.options = parse_options(s["with"], stage.entry->spec, sid, stage.mark, diags_);
        stage.options.set_base_dir(spec_.base_dir);
      }
      spec_.stages.push_back(std::move(stage));
    }
    // Build every operator now: its own checks (expressions, option combinations) are load
    // errors too. Nothing is opened: no file, device or socket is touched by validation.
    for (size_t i = 0; i < spec_.stages.size(); ++i) {
      StageSpec& stage = spec_.stages[i];
      // Options that failed the schema are already reported and have no value to build with.
      if (!stage.entry || stage_has_diagnostic(stage.id)) continue;
      try {
        stage.entry->factory(stage.options);
      } catch (const OptionError& e) {
        SourceMark m = stage.options.mark(e.option());
        if (m.line == 0) m = stage.mark;
        diags_.add(m, stage.id, "option '" + e.option() + "': " + e.what(), e.hint());
      } catch (const std::exception& e) {
        diags_.add(stage.mark, stage.id, std::string("cannot build operator: ") + e.what());
      }
    }
  }

  // `on: edge`, `on: pi-1`, or a list of two or more, `on: [edge, cloud]`: the stage is
  // movable (`plan --explore` tries each) and runs on the first until told otherwise. Nodes
  // are loaded by now, so each listed one is checked here, at its own line and column;
  // stage.on is set only to a valid one so that resolve_placement does not repeat the error.
  void load_on(const YAML::Node& on, StageSpec& stage) {
    const std::string& sid = stage.id;
    if (!on.IsSequence()) {
      if (auto v = scalar(on, sid, "'on'")) {
        stage.on = *v;
        stage.on_mark = mark_of(on);
      }
      return;
    }
    if (on.size() < 2) {
      std::string one = on.size() == 1 && on[0].IsScalar() ? on[0].Scalar() : "edge";
      diags_.add(mark_of(on), sid,
                 on.size() == 0 ? "'on' lists no placement"
                                : "'on' lists one placement; a movable stage lists two or more",
                 "write on: " + one +
                     " to pin the stage, or on: [edge, cloud] to let "
                     "'edgeflow plan --explore' try both (the first is where it runs)");
      return;
    }
    std::vector<std::string> names;
    for (const NodeSpec& n : spec_.nodes) names.push_back(n.name);
    names.insert(names.end(), kTiers.begin(), kTiers.end());
    std::vector<std::string> choices;
    bool ok = true;
    for (const YAML::Node& item : on) {
      SourceMark m = mark_of(item);
      if (!item.IsScalar()) {
        diags_.add(m, sid,
                   std::string("each entry of 'on' must be a tier or a node name, not ") +
                       (item.IsSequence() ? "a list"
                        : item.IsMap()    ? "a map"
                                          : "empty"),
                   "on: [edge, cloud] or on: [pi-1, hq]");
        ok = false;
        continue;
      }
      const std::string& v = item.Scalar();
      if (std::find(choices.begin(), choices.end(), v) != choices.end()) {
        diags_.add(m, sid, "'on' lists '" + v + "' twice", "remove the second one");
        ok = false;
        continue;
      }
      choices.push_back(v);
      if (spec_.nodes_for(v).empty()) {
        bool tier = std::find(kTiers.begin(), kTiers.end(), v) != kTiers.end();
        diags_.add(m, sid,
                   tier ? "'on' lists " + v + " but the pipeline has no node with tier " + v
                        : "'on' lists '" + v + "', which names no node",
                   tier ? "add a node with tier: " + v : suggest(v, names));
        ok = false;
      } else if (stage.on.empty()) {
        stage.on = v;  // the first valid one: the stages that follow it get a placement
        stage.on_mark = m;
      }
    }
    if (ok) stage.on_choices = std::move(choices);
  }

  bool stage_has_diagnostic(const std::string& id) const {
    for (const Diagnostic& d : diags_.items())
      if (d.stage == id) return true;
    return false;
  }

  // `plugins: [path/to/my_ops.so, ...]`: operator plugins of the user's own, loaded before
  // the stages are read; relative paths start at the pipeline file's folder.
  void load_plugins(const YAML::Node& list) {
    if (!list.IsDefined() || list.IsNull()) return;
    if (!list.IsSequence()) {
      diags_.add(mark_of(list), "", "'plugins' must be a list of plugin files",
                 "plugins: [build/libmy_ops.so]");
      return;
    }
    for (const YAML::Node& item : list) {
      auto v = scalar(item, "", "a plugin");
      if (!v) continue;
      if (!user_plugins_) {
        diags_.add(mark_of(item), "", "the pipeline's own plugin '" + *v + "' is not loaded here",
                   "only the nodes that run the pipeline load its plugins");
        continue;
      }
      std::string path = *v;
      if (!path.empty() && path[0] != '/' && !spec_.base_dir.empty())
        path = spec_.base_dir + "/" + path;
      std::string why;
      if (!PluginCatalog::global().load_file(path, &why))
        diags_.add(mark_of(item), "", "cannot load the plugin '" + *v + "': " + why,
                   "build it first, or correct the path (relative to the pipeline file)");
    }
  }

  void load_op(const YAML::Node& s, StageSpec& stage) {
    YAML::Node op = s["op"];
    if (!op.IsDefined()) {
      diags_.add(stage.mark, stage.id, "stage has no 'op'",
                 "run 'edgeflow ops' to list the operators");
      return;
    }
    auto v = scalar(op, stage.id, "'op'");
    if (!v) return;
    stage.op = *v;
    std::string why;
    stage.entry = Registry::global().find(*v, &why);
    if (!stage.entry && !why.empty()) {
      diags_.add(mark_of(op), stage.id, why);
    } else if (!stage.entry) {
      diags_.add(mark_of(op), stage.id, "unknown operator '" + *v + "'",
                 suggest(*v, Registry::global().names()) + " ('edgeflow ops' lists them all)");
    }
  }

  void load_from(const YAML::Node& from, StageSpec& stage) {
    if (!from.IsDefined() || from.IsNull()) return;
    auto add = [&](const YAML::Node& item) {
      auto v = scalar(item, stage.id, "each 'from' entry");
      if (!v) return;
      InputRef ref;
      ref.mark = mark_of(item);
      size_t dot = v->find('.');
      ref.stage = v->substr(0, dot);
      if (dot != std::string::npos) ref.port = v->substr(dot + 1);
      stage.inputs.push_back(ref);
    };
    if (from.IsSequence()) {
      for (const YAML::Node& item : from) add(item);
    } else {
      add(from);
    }
  }

  void load_queue(const YAML::Node& queue, StageSpec& stage) {
    if (!queue.IsDefined()) return;
    if (!queue.IsMap()) {
      diags_.add(mark_of(queue), stage.id,
                 "'queue' must be a map like {capacity: 1024, bytes: 64MiB, overflow: block}");
      return;
    }
    check_keys(queue, {"capacity", "bytes", "overflow"}, stage.id, "queue key");
    if (queue["bytes"].IsDefined()) {
      if (auto v = scalar(queue["bytes"], stage.id, "queue bytes")) {
        auto n = parse_byte_size(*v);
        if (!n || *n < 1024 || static_cast<uint64_t>(static_cast<size_t>(*n)) != *n) {
          diags_.add(mark_of(queue["bytes"]), stage.id,
                     "queue 'bytes' must be a size of at least 1KiB like 64MiB (got '" + *v + "')");
        } else {
          stage.queue_bytes = static_cast<size_t>(*n);
        }
      }
    }
    if (queue["capacity"].IsDefined()) {
      auto v = scalar(queue["capacity"], stage.id, "queue capacity");
      long long n = 0;
      if (v && (!(std::istringstream(*v) >> n) || n < 1 || n > 1'000'000)) {
        diags_.add(mark_of(queue["capacity"]), stage.id,
                   "queue 'capacity' must be a whole number from 1 to 1000000 (got '" + *v + "')");
      } else if (v) {
        stage.queue_capacity = static_cast<size_t>(n);
        stage.capacity_given = true;
      }
    }
    if (queue["overflow"].IsDefined()) {
      if (auto v = scalar(queue["overflow"], stage.id, "queue overflow")) {
        stage.overflow_given = true;
        if (*v == "block") {
          stage.overflow = Overflow::kBlock;
        } else if (*v == "drop-oldest") {
          stage.overflow = Overflow::kDropOldest;
        } else if (*v == "spool") {
          stage.overflow = Overflow::kSpool;
        } else {
          diags_.add(mark_of(queue["overflow"]), stage.id,
                     "queue 'overflow' must be block, drop-oldest or spool (got '" + *v + "')");
        }
      }
    }
  }

  void check_wiring() {
    std::vector<std::string> ids;
    for (const StageSpec& s : spec_.stages) ids.push_back(s.id);
    for (StageSpec& s : spec_.stages) {
      if (s.entry && s.entry->spec.is_source() && !s.inputs.empty()) {
        diags_.add(s.inputs[0].mark, s.id,
                   "operator '" + s.op + "' is a source and takes no 'from'",
                   "remove 'from', or use an operator that has an input");
      }
      if (s.entry && !s.entry->spec.is_source() && s.inputs.empty()) {
        diags_.add(s.mark, s.id, "operator '" + s.op + "' needs an input",
                   "add from: <the id of an earlier stage>");
      }
      for (InputRef& in : s.inputs) {
        const StageSpec* up = spec_.stage(in.stage);
        if (!up) {
          diags_.add(in.mark, s.id, "'from' names no stage '" + in.stage + "'",
                     suggest(in.stage, ids));
          wiring_ok_ = false;
          continue;
        }
        if (up->id == s.id) {
          diags_.add(in.mark, s.id, "a stage cannot take its own output as input");
          wiring_ok_ = false;
          continue;
        }
        if (up->entry && up->entry->spec.output_index(in.port) < 0) {
          std::vector<std::string> ports;
          for (const PortSpec& p : up->entry->spec.outputs) ports.push_back(p.name);
          diags_.add(in.mark, s.id,
                     "stage '" + up->id + "' (" + up->op + ") has no output '" + in.port + "'",
                     suggest(in.port, ports));
          wiring_ok_ = false;
        }
      }
    }
  }

  // Depth-first search; reports each cycle once, with its path.
  bool has_cycle() {
    if (!wiring_ok_) return true;
    size_t n = spec_.stages.size();
    std::vector<int> state(n, 0);  // 0 new, 1 on stack, 2 done
    std::vector<int> path;
    bool found = false;
    std::function<void(int)> visit = [&](int i) {
      state[i] = 1;
      path.push_back(i);
      for (const InputRef& in : spec_.stages[i].inputs) {
        int j = spec_.stage_index(in.stage);
        if (j < 0) continue;
        if (state[j] == 1) {
          // The path follows inputs upstream; print it the way data flows.
          auto start = std::find(path.begin(), path.end(), j);
          std::string text = spec_.stages[j].id;
          for (auto it = path.end(); it != start + 1;) text += " -> " + spec_.stages[*--it].id;
          text += " -> " + spec_.stages[j].id;
          diags_.add(in.mark, spec_.stages[i].id, "stages form a cycle: " + text,
                     "a pipeline is a directed acyclic graph; remove one 'from' of the cycle");
          found = true;
        } else if (state[j] == 0) {
          visit(j);
        }
      }
      path.pop_back();
      state[i] = 2;
    };
    for (size_t i = 0; i < n; ++i)
      if (state[i] == 0) visit(static_cast<int>(i));
    return found;
  }

  // A stage without `on:` runs where its first input runs; a source defaults to the edge.
  void resolve_placement() {
    std::vector<std::string> names;
    for (const NodeSpec& n : spec_.nodes) names.push_back(n.name);
    names.insert(names.end(), kTiers.begin(), kTiers.end());
    for (int i : topological_order(spec_)) {
      StageSpec& s = spec_.stages[i];
      if (s.on.empty()) {
        const StageSpec* up = s.inputs.empty() ? nullptr : spec_.stage(s.inputs[0].stage);
        s.on = s.inputs.empty() ? "edge" : up ? up->on : "";
        if (s.on.empty()) continue;  // its input's placement was already reported
        if (spec_.nodes_for(s.on).empty() && s.inputs.empty()) {
          diags_.add(s.mark, s.id,
                     "this source defaults to the edge, but the pipeline has no edge node",
                     "add on: <node> or a node with tier: edge");
        }
        continue;
      }
      if (spec_.nodes_for(s.on).empty()) {
        bool tier = std::find(kTiers.begin(), kTiers.end(), s.on) != kTiers.end();
        // The value is what to fix, so point at it rather than at the stage.
        diags_.add(s.on_mark.line > 0 ? s.on_mark : s.mark, s.id,
                   tier ? "'on: " + s.on + "' but the pipeline has no node with tier " + s.on
                        : "'on: " + s.on + "' names no node",
                   tier ? "add a node with tier: " + s.on : suggest(s.on, names));
        s.on.clear();
      }
    }
  }

  // A raw frame lives in memory (a cv::Mat) and never goes on the wire: unless an encoder is
  // registered for frames (runtime/blob_encoders.h), a link that would carry them is a load
  // error here rather than one run-time error per frame.
  void check_frames_on_links() {
    const Plan plan = place(spec_);
    for (const LinkPlan& l : plan.links) {
      const StageSpec& from = spec_.stages[l.from_stage];
      const PortSpec& port = from.entry->spec.outputs[l.from_port];
      const std::string type = port.name == "out" ? from.output_type : port.type;
      if (type.empty() || type == "any" || !body_type_accepts("frame", type)) continue;
      if (find_blob_encoder_for_port("frame")) continue;  // the link encodes them
      const StageSpec& to = spec_.stages[l.to_stage];
      SourceMark mark = to.mark;
      for (const InputRef& in : to.inputs)
        if (in.stage == from.id) mark = in.mark;
      diags_.add(mark, to.id,
                 "raw camera frames from '" + from.id + "' (on: " + from.on +
                     ") would cross a link to this stage (on: " + to.on +
                     "); frames cross links only encoded",
                 "add a stage with op: image.encode on: " + from.on +
                     " between them, or run this stage on: " + from.on);
    }
  }

  void check_port_types() {
    for (int i : topological_order(spec_)) {
      StageSpec& s = spec_.stages[i];
      if (!s.entry) continue;
      const OperatorSpec& op = s.entry->spec;
      std::string in_type;
      for (const InputRef& in : s.inputs) {
        const StageSpec* up = spec_.stage(in.stage);
        if (!up->entry) continue;
        std::string produced =
            in.port == "out" ? up->output_type
                             : up->entry->spec.outputs[up->entry->spec.output_index(in.port)].type;
        if (produced.empty()) continue;
        const std::string& accepted = op.inputs.empty() ? "any" : op.inputs[0].type;
        if (!body_type_accepts(accepted, produced)) {
          diags_.add(in.mark, s.id,
                     "input from '" + up->id + "' carries " + produced +
                         " messages, but operator '" + s.op + "' takes " + accepted,
                     "put a stage between them that turns " + produced + " into " + accepted);
        }
        if (in_type.empty()) in_type = produced;
      }
      // Camera frames: the newest matters, and each holds megabytes of pixels. A short
      // drop-oldest queue keeps a slow consumer from stalling the camera or filling memory.
      if (!in_type.empty() && in_type != "any" && body_type_accepts("frame", in_type)) {
        if (!s.overflow_given) s.overflow = Overflow::kDropOldest;
        if (!s.capacity_given) s.queue_capacity = kFrameQueueCapacity;
      }
      int out = op.output_index("out");
      if (out >= 0) {
        s.output_type = op.outputs[out].type == "same" ? (in_type.empty() ? "any" : in_type)
                                                       : op.outputs[out].type;
      }
    }
  }

  Diagnostics diags_;
  bool user_plugins_ = true;  // false: `plugins:` are reported, never loaded (a display)
  PipelineSpec spec_;
  LoadContext cx_{diags_, spec_};
  bool stages_ok_ = true;
  bool wiring_ok_ = true;
};

}  // namespace

std::vector<int> topological_order(const PipelineSpec& pipeline) {
  size_t n = pipeline.stages.size();
  std::vector<int> order, state(n, 0);
  std::function<void(int)> visit = [&](int i) {
    state[i] = 1;
    for (const InputRef& in : pipeline.stages[i].inputs) {
      int j = pipeline.stage_index(in.stage);
      if (j >= 0 && state[j] == 0) visit(j);
    }
    order.push_back(i);
  };
  for (size_t i = 0; i < n; ++i)
    if (state[i] == 0) visit(static_cast<int>(i));
  return order;
}

std::optional<OptionOverride> parse_override(const std::string& text) {
  size_t dot = text.find('.'), eq = text.find('=');
  if (dot == std::string::npos || eq == std::string::npos || dot == 0 || eq < dot + 2)
    return std::nullopt;
  return OptionOverride{text.substr(0, dot), text.substr(dot + 1, eq - dot - 1),
                        text.substr(eq + 1)};
}

LoadResult load_pipeline_text(const std::string& text, const std::string& file,
                              const std::string& base_dir,
                              const std::vector<OptionOverride>& overrides, bool user_plugins) {
  if (text.size() > kMaxFileBytes) {
    LoadResult r{std::nullopt, Diagnostics(file)};
    r.diags.add({}, "",
                "file is " + std::to_string(text.size()) +
                    " bytes; a pipeline file may hold at most " + std::to_string(kMaxFileBytes) +
                    "",
                "is this the right file?");
    return r;
  }
  return Loader(file, base_dir, user_plugins).load(text, overrides);
}

LoadResult load_pipeline_file(const std::string& path,
                              const std::vector<OptionOverride>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r{std::nullopt, Diagnostics(path)};
    r.diags.add({}, "", std::string("cannot read the file: ") + std::strerror(errno),
                "check the path; 'ls pipelines/' shows the examples");
    return r;
  }
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) break;  // a device file or a huge log: stop reading
  }
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  return load_pipeline_text(text, path, dir, overrides);
}

}  // namespace edgeflow
