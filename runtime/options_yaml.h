// Builds typed Options from a stage's `with:` YAML map against the operator's schema,
// reporting every problem (unknown option, wrong type, out of range) at its line.
#pragma once

#include <yaml-cpp/yaml.h>

#include "runtime/diagnostics.h"
#include "runtime/schema.h"

namespace edgeflow {

SourceMark mark_of(const YAML::Node& node);

// `with` may be undefined or null (all defaults). `owner_mark` is where to point when a
// required option is missing.
Options parse_options(const YAML::Node& with, const OperatorSpec& spec, const std::string& stage,
                      SourceMark owner_mark, Diagnostics& diags);

}  // namespace edgeflow
