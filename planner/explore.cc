#include "planner/explore.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>

#include "planner/plan_output.h"
#include "runtime/blob_encoders.h"
#include "runtime/placement.h"
#include "runtime/schema.h"

namespace edgeflow {

namespace {

using Placement = std::vector<std::pair<std::string, std::string>>;

// Figures rounded to 9 significant digits: two placements that cost the same but were summed
// in another order compare equal, and the ranking's tie-breaks apply.
double q(double x) {
  if (x == 0 || !std::isfinite(x)) return x;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return std::strtod(buf, nullptr);
}

std::string placement_text_of(const Placement& placement) {
  std::string s;
  for (const auto& [id, on] : placement) s += (s.empty() ? "" : " ") + id + "@" + on;
  return s.empty() ? "(no movable stage)" : s;
}

std::string count_text(double n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, n < 1e15 ? "%.0f" : "%.3g", n);
  return buf;
}

// What the loader would refuse in this placement, or "". Placement changes neither the
// operators nor their port types (checked at load), only which edges cross nodes: so the
// checks here are that each `on:` names a node, and check_frames_on_links of the loader.
std::string invalid_reason(const PipelineSpec& p, const Plan& plan) {
  return placement_problem(p, plan, find_blob_encoder_for_port("frame") != nullptr);
}

}  // namespace

std::string placement_problem(const PipelineSpec& p, const Plan& plan, bool frames_encodable) {
  for (const StageSpec& s : p.stages) {
    const std::vector<std::string> nodes = p.nodes_for(s.on);
    if (nodes.empty()) return "stage '" + s.id + "' on: " + s.on + " names no node of the pipeline";
    const NodeSpec* n = nodes.size() == 1 ? p.node(nodes[0]) : nullptr;
    if (s.replicas > 1 && (!n || n->tier != "cloud"))
      return "stage '" + s.id + "' has replicas:, which run on one cloud node, not on: " + s.on;
  }
  if (frames_encodable) return "";  // links encode frames
  for (const LinkPlan& l : plan.links) {
    const StageSpec& from = p.stages[l.from_stage];
    if (!from.entry) continue;
    const PortSpec& port = from.entry->spec.outputs[l.from_port];
    const std::string type = port.name == "out" ? from.output_type : port.type;
    if (type.empty() || type == "any" || !body_type_accepts("frame", type)) continue;
    const StageSpec& to = p.stages[l.to_stage];
    return "raw camera frames from '" + from.id + "' (on: " + from.on +
           ") would cross a link to '" + to.id + "' (on: " + to.on +
           "); frames cross links only encoded";
  }
  return "";
}

namespace {

void add_totals(Candidate& c) {
  c.min_autonomy_h = std::numeric_limits<double>::infinity();
  c.all_positive = true;
  for (const LinkPrediction& l : c.prediction.links) {
    c.bytes_per_day += l.bytes_per_day();
    c.wire_bytes_per_day += l.wire_bytes_per_day();
  }
  for (const NodePrediction& n : c.prediction.nodes) {
    if (!n.has_energy) continue;
    if (n.energy.saturated) c.saturated.push_back(n.node);
    if (n.tier != "edge") continue;
    c.edge_wh_per_day += n.energy.wh_per_day;
    ++c.edge_nodes_with_energy;
    if (!n.energy.has_solar) continue;
    c.has_autonomy = true;
    c.min_autonomy_h = std::min(c.min_autonomy_h, n.energy.autonomy_h);
    c.all_positive = c.all_positive && n.energy.positive;
  }
  if (!c.has_autonomy) {
    c.min_autonomy_h = 0;
    c.all_positive = false;
  }
}

// True when a ranks before b.
bool better(const Candidate& a, const Candidate& b, Objective objective) {
  const double ab = q(a.bytes_per_day), bb = q(b.bytes_per_day);
  const double ae = q(a.edge_wh_per_day), be = q(b.edge_wh_per_day);
  switch (objective) {
    case Objective::kBytes:
      if (ab != bb) return ab < bb;
      return ae < be;
    case Objective::kEnergy:
      if (ae != be) return ae < be;
      return ab < bb;
    case Objective::kAutonomy: {
      if (a.has_autonomy != b.has_autonomy) return a.has_autonomy;
      const double aa = q(a.min_autonomy_h), ba = q(b.min_autonomy_h);
      if (aa != ba) return aa > ba;
      return ab < bb;
    }
  }
  return false;
}

void mark_frontier(std::vector<Candidate>& cs) {
  std::vector<double> b, e;
  for (const Candidate& c : cs) {
    b.push_back(q(c.bytes_per_day));
    e.push_back(q(c.edge_wh_per_day));
  }
  for (size_t i = 0; i < cs.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < cs.size() && !dominated; ++j)
      dominated = b[j] <= b[i] && e[j] <= e[i] && (b[j] < b[i] || e[j] < e[i]);
    cs[i].frontier = !dominated;
  }
}

// Why the objective cannot rank these candidates, or "".
std::string objective_problem(const Candidate& c, Objective objective) {
  std::string note;
  for (const NodePrediction& n : c.prediction.nodes)
    if (n.tier == "edge" && !n.note.empty() && note.empty()) note = n.node + ": " + n.note;
  if (objective == Objective::kEnergy && c.edge_nodes_with_energy == 0)
    return "objective energy: no edge node has energy figures" +
           (note.empty() ? std::string() : " (" + note + ")") +
           "; give the edge nodes a device: profile, e.g. device: rpi-4";
  if (objective == Objective::kAutonomy && !c.has_autonomy)
    return "objective autonomy: no edge node has both a device: profile and a solar: spec" +
           (note.empty() ? std::string() : " (" + note + ")") +
           "; add solar: {panel_w: 60, battery_wh: 185, lat: 45} to an edge node";
  return "";
}

}  // namespace

std::optional<Objective> parse_objective(const std::string& name) {
  if (name == "bytes") return Objective::kBytes;
  if (name == "energy") return Objective::kEnergy;
  if (name == "autonomy") return Objective::kAutonomy;
  return std::nullopt;
}

const char* objective_name(Objective objective) {
  switch (objective) {
    case Objective::kBytes:
      return "bytes";
    case Objective::kEnergy:
      return "energy";
    case Objective::kAutonomy:
      return "autonomy";
  }
  return "?";
}

const std::string* Candidate::chosen(const std::string& stage) const {
  for (const auto& [id, on] : placement)
    if (id == stage) return &on;
  return nullptr;
}

std::string Candidate::placement_text() const { return placement_text_of(placement); }

std::vector<std::string> movable_stages(const PipelineSpec& pipeline) {
  std::vector<std::string> ids;
  for (const StageSpec& s : pipeline.stages)
    if (s.on_choices.size() >= 2) ids.push_back(s.id);
  return ids;
}

PipelineSpec apply_placement(const PipelineSpec& pipeline, const Placement& placement) {
  PipelineSpec p = pipeline;
  for (const auto& [id, on] : placement) {
    int i = p.stage_index(id);
    if (i >= 0) p.stages[i].on = on;
  }
  // As the loader's resolve_placement: a stage without `on:` (no mark, no choices) runs
  // where its first input runs; a source without one stays on the edge.
  for (int i : topological_order(p)) {
    StageSpec& s = p.stages[i];
    if (s.on_mark.line > 0 || !s.on_choices.empty() || s.inputs.empty()) continue;
    if (const StageSpec* up = p.stage(s.inputs[0].stage)) s.on = up->on;
  }
  return p;
}

std::vector<Candidate> explore(const PipelineSpec& pipeline, const PipelineProfile& profile,
                               const PredictOptions& options, Objective objective,
                               std::string* error, std::vector<SkippedCandidate>* skipped) {
  std::string ignored;
  if (!error) error = &ignored;
  error->clear();
  if (skipped) skipped->clear();

  std::vector<const StageSpec*> movable;
  double combinations = 1;
  std::string sizes;
  for (const StageSpec& s : pipeline.stages) {
    if (s.on_choices.size() < 2) continue;
    movable.push_back(&s);
    combinations *= static_cast<double>(s.on_choices.size());
    sizes += (sizes.empty() ? "" : " x ") + std::to_string(s.on_choices.size());
  }
  if (combinations > static_cast<double>(kMaxExploreCombinations)) {
    *error = std::to_string(movable.size()) + " movable stages give " + count_text(combinations) +
             " placements (" + sizes + "); at most " + std::to_string(kMaxExploreCombinations) +
             " are explored: pin some of them (on: edge) or fix them with --set STAGE.on=NODE";
    return {};
  }

  std::vector<Candidate> out;
  std::vector<SkippedCandidate> invalid;
  std::vector<size_t> pick(movable.size(), 0);  // an odometer, the last stage turning fastest
  for (size_t n = 0; n < static_cast<size_t>(combinations); ++n) {
    Placement placement;
    for (size_t k = 0; k < movable.size(); ++k)
      placement.emplace_back(movable[k]->id, movable[k]->on_choices[pick[k]]);
    for (size_t k = movable.size(); k-- > 0;) {
      if (++pick[k] < movable[k]->on_choices.size()) break;
      pick[k] = 0;
    }

    const PipelineSpec p = apply_placement(pipeline, placement);
    Candidate c;
    c.placement = placement;
    try {
      const Plan plan = place(p);
      std::string why = invalid_reason(p, plan);
      if (!why.empty()) {
        invalid.push_back({placement, why});
        continue;
      }
      c.prediction = predict(p, plan, profile, options);
    } catch (const std::exception& e) {
      invalid.push_back({placement, std::string("cannot predict it: ") + e.what()});
      continue;
    }
    add_totals(c);
    out.push_back(std::move(c));
  }
  if (skipped) *skipped = invalid;
  if (out.empty()) {
    *error = "every one of the " + count_text(combinations) + " placements is invalid" +
             (invalid.empty() ? std::string()
                              : "; the first, " + placement_text_of(invalid[0].placement) + ": " +
                                    invalid[0].reason);
    return {};
  }
  if (std::string why = objective_problem(out.front(), objective); !why.empty()) {
    *error = why;
    return {};
  }

  mark_frontier(out);
  std::stable_sort(out.begin(), out.end(), [objective](const Candidate& a, const Candidate& b) {
    return better(a, b, objective);
  });
  for (size_t i = 0; i < out.size(); ++i) out[i].rank = static_cast<int>(i + 1);
  return out;
}

std::string explore_table(const std::vector<Candidate>& candidates, Objective objective,
                          size_t max_rows) {
  std::string t;
  switch (objective) {
    case Objective::kBytes:
      t += "ranked by bytes a day over the links, fewest first";
      break;
    case Objective::kEnergy:
      t += "ranked by the edge nodes' Wh a day, least first";
      break;
    case Objective::kAutonomy:
      t += "ranked by the least autonomy of a solar edge node, longest first";
      break;
  }
  t += "\n* = on the frontier: no other placement has both fewer bytes and less edge energy\n";

  size_t width = 9;  // "placement"
  for (const Candidate& c : candidates) width = std::max(width, c.placement_text().size());
  char row[1024];
  std::snprintf(row, sizeof row, "%4s  %-*s  %10s  %10s  %11s  %14s  %8s  %s\n", "rank",
                static_cast<int>(width), "placement", "bytes/day", "wire/day", "edge Wh/day",
                "min autonomy h", "positive", "frontier");
  t += row;
  size_t shown = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    if (max_rows > 0 && i >= max_rows && !c.frontier) continue;
    ++shown;
    char wh[32] = "-", autonomy[32] = "-";
    if (c.edge_nodes_with_energy > 0) std::snprintf(wh, sizeof wh, "%.1f", c.edge_wh_per_day);
    if (c.has_autonomy) std::snprintf(autonomy, sizeof autonomy, "%.1f", c.min_autonomy_h);
    std::string notes;
    for (const std::string& n : c.saturated) notes += (notes.empty() ? "" : ", ") + n;
    if (!notes.empty()) notes = "  saturated: " + notes;
    std::snprintf(row, sizeof row, "%4d  %-*s  %10s  %10s  %11s  %14s  %8s  %s%s\n", c.rank,
                  static_cast<int>(width), c.placement_text().c_str(),
                  human_bytes_iec(c.bytes_per_day).c_str(),
                  human_bytes_iec(c.wire_bytes_per_day).c_str(), wh, autonomy,
                  !c.has_autonomy  ? "-"
                  : c.all_positive ? "yes"
                                   : "no",
                  c.frontier ? "*" : "", notes.c_str());
    // Trailing blanks of an empty last column.
    std::string line = row;
    while (line.size() > 1 && line[line.size() - 2] == ' ') line.erase(line.size() - 2, 1);
    t += line;
  }
  if (shown < candidates.size())
    t += "(" + std::to_string(candidates.size() - shown) + " more placements not shown)\n";
  return t;
}

}  // namespace edgeflow
