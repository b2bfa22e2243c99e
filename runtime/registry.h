// Operators register by name with one macro at the end of their source file, in the same
// namespace as the class:
//
//   EF_REGISTER_OPERATOR(WeatherAggregate)
//
// where the class has `static OperatorSpec spec()` and a constructor taking `const Options&`.
// Operator families are CMake OBJECT libraries (the registrars survive static linking into
// tests and the single-binary build) and, by default, plugins loaded on demand.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/operator.h"
#include "runtime/schema.h"

namespace edgeflow {

using OperatorFactory = std::function<std::unique_ptr<Operator>(const Options&)>;

struct OperatorEntry {
  OperatorSpec spec;
  OperatorFactory factory;
};

class Registry {
 public:
  static Registry& global();

  bool add(OperatorSpec spec, OperatorFactory factory);
  // The operator, loading the plugin that holds it if need be (runtime/plugins.h). Null when
  // there is none; `why` then says why when it is more than an unknown name (a plugin that
  // has it cannot be loaded).
  const OperatorEntry* find(const std::string& name, std::string* why = nullptr);
  // Registered only: never loads a plugin.
  const OperatorEntry* find_loaded(const std::string& name) const;
  // Every operator known, registered or in a plugin's manifest; sorted.
  std::vector<std::string> names() const;
  // Registered only (statically linked, or from plugins loaded so far); sorted.
  std::vector<std::string> loaded_names() const;
  // Its one-line summary, from the manifest when its plugin is not loaded.
  std::string summary(const std::string& name) const;

 private:
  std::map<std::string, OperatorEntry> entries_;
};

}  // namespace edgeflow

#define EF_REGISTER_OPERATOR(Class)                                                              \
  namespace {                                                                                    \
  const bool ef_registered_##Class = ::edgeflow::Registry::global().add(                         \
      Class::spec(), [](const ::edgeflow::Options& o) -> std::unique_ptr<::edgeflow::Operator> { \
        return std::make_unique<Class>(o);                                                       \
      });                                                                                        \
  }
