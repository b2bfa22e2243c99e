// Operators register by name with one macro at the end of their source file, in the same
// namespace as the class:
//
//   EF_REGISTER_OPERATOR(WeatherAggregate)
//
// where the class has `static OperatorSpec spec()` and a constructor taking `const Options&`.
// Operator libraries are CMake OBJECT libraries, so the registrars survive static linking.
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
  const OperatorEntry* find(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted

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
