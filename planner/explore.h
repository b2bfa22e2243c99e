// Placement exploration (`edgeflow plan FILE --explore`): every combination of the choices of
// the movable stages (`on: [edge, cloud]`), each predicted (planner/predict.h) and ranked by
// an objective, with the Pareto frontier of link bytes against edge energy marked.
//
// Stages with a single `on:` stay where they are; a stage without `on:` runs where its first
// input runs, in each candidate as in the file. A candidate that the loader would refuse (raw
// camera frames crossing a link with no encoder registered) is skipped with its reason. Port
// types do not depend on placement: the loaded pipeline has passed their check already.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "planner/predict.h"
#include "planner/profile.h"
#include "runtime/pipeline.h"

namespace edgeflow {

enum class Objective {
  kBytes,     // payload bytes a day over every cross-node link, fewest first
  kEnergy,    // Wh a day of the edge nodes with a device profile, least first
  kAutonomy,  // hours without sun of the worst edge node with a solar spec, most first
};

// "bytes", "energy", "autonomy"; nullopt for anything else.
std::optional<Objective> parse_objective(const std::string& name);
const char* objective_name(Objective objective);

// More combinations than this is an error naming the count (pin some stages).
constexpr size_t kMaxExploreCombinations = 4096;

struct Candidate {
  // Each movable stage and the `on:` chosen for it, in file order.
  std::vector<std::pair<std::string, std::string>> placement;
  int rank = 0;                   // 1 = best for the objective
  double bytes_per_day = 0;       // payload over every cross-node link
  double wire_bytes_per_day = 0;  // with protocol, TCP/IP and acknowledgements
  double edge_wh_per_day = 0;     // sum over edge nodes with energy figures
  int edge_nodes_with_energy = 0;
  bool has_autonomy = false;           // an edge node has a solar spec (the two below are set)
  double min_autonomy_h = 0;           // the least over edge nodes with a solar spec
  bool all_positive = false;           // each of those harvests more than it consumes
  std::vector<std::string> saturated;  // nodes whose load needs more than every core
  bool frontier = false;               // no other candidate has fewer bytes and less edge energy
  Prediction prediction;

  // The `on:` chosen for `stage`, or null when it is not movable.
  const std::string* chosen(const std::string& stage) const;
  // "minute@cloud stats@edge"; "(no movable stage)" when there is none.
  std::string placement_text() const;
};

struct SkippedCandidate {
  std::vector<std::pair<std::string, std::string>> placement;
  std::string reason;
};

// What the loader would refuse in this placement, or "": an `on:` naming no node, or raw
// camera frames crossing a link when `frames_encodable` is false (no image encoder built in).
std::string placement_problem(const PipelineSpec& pipeline, const Plan& plan,
                              bool frames_encodable);

// Ids of the stages with two or more `on:` choices, in file order.
std::vector<std::string> movable_stages(const PipelineSpec& pipeline);

// `pipeline` with each stage of `placement` on its choice and the stages without `on:`
// following their first input again: what a candidate runs (for --svg, or to print it).
PipelineSpec apply_placement(const PipelineSpec& pipeline,
                             const std::vector<std::pair<std::string, std::string>>& placement);

// Every valid candidate, best first (rank set). With no movable stage, the one placement of
// the file. Empty, with `error` set, when there are more than kMaxExploreCombinations, when
// every candidate is invalid, or when the objective has nothing to rank by (energy: no edge
// node with a device profile; autonomy: none with a solar spec). Invalid candidates go to
// `skipped` when given.
std::vector<Candidate> explore(const PipelineSpec& pipeline, const PipelineProfile& profile,
                               const PredictOptions& options, Objective objective,
                               std::string* error,
                               std::vector<SkippedCandidate>* skipped = nullptr);

// A text table, best first: rank, placement of the movable stages, bytes/day (KiB, MiB...),
// edge Wh/day, least autonomy, all edge nodes positive, `*` on the frontier. At most
// `max_rows` rows (0: all) plus the frontier rows beyond them, then how many are left out.
std::string explore_table(const std::vector<Candidate>& candidates, Objective objective,
                          size_t max_rows);

}  // namespace edgeflow
