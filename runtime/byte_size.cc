#include "runtime/byte_size.h"

#include <string>
#include <utility>

namespace edgeflow {

std::optional<uint64_t> parse_byte_size(std::string_view text) {
  std::string s(text);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string_view unit = std::string_view(s).substr(used);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  static const std::pair<std::string_view, double> kUnits[] = {
      {"", 1},     {"B", 1},         {"kB", 1e3}, {"KB", 1e3},          {"KiB", 1024.0},
      {"MB", 1e6}, {"MiB", 1048576}, {"GB", 1e9}, {"GiB", 1073741824.0}};
  for (const auto& [name, mul] : kUnits) {
    if (unit != name) continue;
    if (!(v > 0) || v * mul >= 1.8e19) return std::nullopt;
    return static_cast<uint64_t>(v * mul);
  }
  return std::nullopt;
}

}  // namespace edgeflow
