// Field values of a message body: the msgpack data model (nil, bool, int, float, string,
// array, map) as a plain C++ type, so operators never see msgpack or JSON objects.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace edgeflow {

struct Value;
struct Field;
using Array = std::vector<Value>;
// Insertion-ordered map. Readings have a handful of fields, where a linear scan beats hashing
// and keeps the order a user wrote in JSON output.
using Fields = std::vector<Field>;

struct Value {
  using Storage = std::variant<std::monostate, bool, int64_t, double, std::string, Array, Fields>;
  Storage v;

  Value() = default;
  Value(bool b) : v(b) {}
  Value(int i) : v(static_cast<int64_t>(i)) {}
  Value(int64_t i) : v(i) {}
  Value(uint64_t i) : v(static_cast<int64_t>(i)) {}
  Value(unsigned i) : v(static_cast<int64_t>(i)) {}  // size_t on 32-bit ARM
  Value(double d) : v(d) {}
  Value(std::string s) : v(std::move(s)) {}
  Value(const char* s) : v(std::string(s)) {}
  Value(Array a) : v(std::move(a)) {}
  Value(Fields f) : v(std::move(f)) {}

  bool is_null() const { return v.index() == 0; }
  bool is_number() const { return v.index() == 2 || v.index() == 3; }
  const std::string* string() const { return std::get_if<std::string>(&v); }
  const Array* array() const { return std::get_if<Array>(&v); }
  const Fields* map() const { return std::get_if<Fields>(&v); }
  // Numbers and bools as double; nothing for the other kinds.
  std::optional<double> number() const;

  bool operator==(const Value& o) const;
  bool operator!=(const Value& o) const { return !(*this == o); }
};

struct Field {
  std::string key;
  Value value;
  bool operator==(const Field& o) const { return key == o.key && value == o.value; }
};

const Value* find_field(const Fields& fields, std::string_view key);
Value* find_field(Fields& fields, std::string_view key);
// Overwrites the field if present, appends it otherwise.
void set_field(Fields& fields, std::string_view key, Value value);
bool erase_field(Fields& fields, std::string_view key);

// JSON text of a value (numbers in shortest round-trip form, NaN/Inf as null).
void append_json(std::string& out, const Value& value);
void append_json(std::string& out, const Fields& fields);
void append_json_string(std::string& out, std::string_view s);
std::string to_json(const Fields& fields);

}  // namespace edgeflow
