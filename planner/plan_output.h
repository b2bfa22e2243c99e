// How `edgeflow plan` shows a prediction: a table for people, JSON for scripts, and an SVG of
// the placed graph (stages grouped by node, links labelled with bytes a day, nodes coloured
// by their energy verdict).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "planner/predict.h"

namespace edgeflow {

std::string plan_table(const Prediction& p);
nlohmann::json plan_json(const Prediction& p);
// One node of plan_json, and of run --report's `nodes`: figures a node cannot have are null.
nlohmann::json node_json(const NodePrediction& n);
// Written directly (no Graphviz needed): one column per node, its stages inside it.
std::string plan_svg(const PipelineSpec& pipeline, const Plan& plan, const Prediction& p);

// 1536 -> "1.5 KiB"
std::string human_bytes_iec(double bytes);

}  // namespace edgeflow
