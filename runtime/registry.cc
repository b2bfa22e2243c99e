#include "runtime/registry.h"

#include <cstdio>
#include <cstdlib>

namespace edgeflow {

Registry& Registry::global() {
  static Registry registry;  // function-local: safe from static initialisation order
  return registry;
}

bool Registry::add(OperatorSpec spec, OperatorFactory factory) {
  if (entries_.count(spec.name)) {
    // Two operators under one name is a build defect; fail loudly at start-up.
    std::fprintf(stderr, "edgeflow: operator '%s' registered twice\n", spec.name.c_str());
    std::abort();
  }
  if (spec.output_index("error") < 0)
    spec.outputs.push_back({"error", "record", "records that could not be processed"});
  std::string name = spec.name;
  entries_.emplace(name, OperatorEntry{std::move(spec), std::move(factory)});
  return true;
}

const OperatorEntry* Registry::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

}  // namespace edgeflow
