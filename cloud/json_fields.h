// Reading fields of JSON that anyone may publish (node statuses, sink and scheduler output):
// a field is read only when it has the expected type, else it reads as absent, so a hostile
// or mistaken message never throws (nlohmann::json::value would).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace edgeflow {

inline std::string text_of(const nlohmann::json& j, const char* key, const char* otherwise = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string(otherwise);
}

inline std::optional<double> number_of(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// j[outer][key], when `outer` is an object.
inline std::optional<double> number_of(const nlohmann::json& j, const char* outer,
                                       const char* key) {
  auto o = j.find(outer);
  if (o == j.end() || !o->is_object()) return std::nullopt;
  return number_of(*o, key);
}

}  // namespace edgeflow
