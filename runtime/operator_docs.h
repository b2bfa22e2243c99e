// Human documentation of operators, generated from their declared schemas: `edgeflow ops`
// and docs/operators.md come from here, so the docs cannot drift from the code.
#pragma once

#include <string>

#include "runtime/registry.h"

namespace edgeflow {

std::string operator_list_text();                       // one line per operator
std::string operator_text(const OperatorEntry& entry);  // one operator in full
std::string operators_markdown();                       // docs/operators.md

}  // namespace edgeflow
