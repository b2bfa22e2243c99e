#include "runtime/registry.h"

#include <cstdio>
#include <cstdlib>
#include <set>

#include "runtime/plugins.h"

namespace edgeflow {

Registry& Registry::global() {
  static Registry registry;  // function-local: safe from static initialisation order
  return registry;
}

bool Registry::add(OperatorSpec spec, OperatorFactory factory) {
  if (entries_.count(spec.name)) {
    // A plugin that repeats a name (a user's own operator called like a built-in one): the
    // first stays, and the clash is said rather than fatal.
    std::fprintf(stderr, "edgeflow: operator '%s' registered twice; keeping the first\n",
                 spec.name.c_str());
    return false;
  }
  if (spec.output_index("error") < 0)
    spec.outputs.push_back({"error", "record", "records that could not be processed"});
  std::string name = spec.name;
  entries_.emplace(name, OperatorEntry{std::move(spec), std::move(factory)});
  return true;
}

const OperatorEntry* Registry::find_loaded(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

const OperatorEntry* Registry::find(const std::string& name, std::string* why) {
  if (const OperatorEntry* e = find_loaded(name)) return e;
  std::string reason;
  if (PluginCatalog::global().load_for(name, &reason)) {
    if (const OperatorEntry* e = find_loaded(name)) return e;
  }
  if (why) *why = reason;
  return nullptr;
}

std::vector<std::string> Registry::names() const {
  PluginCatalog::global().load_unindexed();  // a user's plugins: small, and not indexed
  std::set<std::string> out;
  for (const auto& [name, entry] : entries_) out.insert(name);
  for (const auto& [name, summary] : PluginCatalog::global().indexed_ops()) out.insert(name);
  return {out.begin(), out.end()};
}

std::vector<std::string> Registry::loaded_names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

std::string Registry::summary(const std::string& name) const {
  if (const OperatorEntry* e = find_loaded(name)) return e->spec.summary;
  auto ops = PluginCatalog::global().indexed_ops();
  auto it = ops.find(name);
  return it == ops.end() ? "" : it->second;
}

}  // namespace edgeflow
