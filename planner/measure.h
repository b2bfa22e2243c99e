// The measured side of the planner: what a run's stage and link metrics say in the terms of a
// prediction (planner/predict.h) — per link messages, frames and bytes per second, per node
// CPU and, through the same device model, watts and watt-hours — so `run --report` can give
// them and `plan --compare REPORT` can put them beside the prediction.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "planner/predict.h"
#include "runtime/executor.h"

namespace edgeflow {

struct Measured {
  double seconds = 0;  // wall time the figures are per
  // Messages per second per copy of each source stage: the rates the prediction to compare
  // with is made for.
  std::map<std::string, double> source_rates;
  std::vector<LinkPrediction> links;  // one per (link, sending node); to_node empty
  std::vector<NodePrediction> nodes;  // nodes this run ran
};

Measured measure_run(const PipelineSpec& pipeline, const Plan& plan,
                     const std::vector<StageMetrics>& stages, const std::vector<LinkMetrics>& links,
                     double seconds, const PredictOptions& options);

// The report's `nodes` array: per node CPU, traffic, watts, Wh/day and the solar figures.
nlohmann::json measured_nodes_json(const Measured& measured);

// A report written by `run --report` read back into metrics and measured; nullopt with
// `error` naming the file and the problem.
std::optional<Measured> measured_from_report(const std::string& text, const std::string& file,
                                             const PipelineSpec& pipeline, const Plan& plan,
                                             const PredictOptions& options, std::string* error);

// The prediction beside the measurement, per link (summed over receivers) and per node, with
// the error in percent ((predicted - measured) / measured).
std::string compare_table(const Prediction& predicted, const Measured& measured);
nlohmann::json compare_json(const Prediction& predicted, const Measured& measured);

}  // namespace edgeflow
