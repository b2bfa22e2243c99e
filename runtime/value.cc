#include "runtime/value.h"

#include <charconv>
#include <cmath>

namespace edgeflow {

std::optional<double> Value::number() const {
  switch (v.index()) {
    case 1:
      return std::get<bool>(v) ? 1.0 : 0.0;
    case 2:
      return static_cast<double>(std::get<int64_t>(v));
    case 3:
      return std::get<double>(v);
    default:
      return std::nullopt;
  }
}

bool Value::operator==(const Value& o) const {
  // 3 and 3.0 compare equal: msgpack and JSON may carry either for the same reading.
  if (is_number() && o.is_number()) return *number() == *o.number();
  return v == o.v;
}

const Value* find_field(const Fields& fields, std::string_view key) {
  for (const Field& f : fields)
    if (f.key == key) return &f.value;
  return nullptr;
}

Value* find_field(Fields& fields, std::string_view key) {
  for (Field& f : fields)
    if (f.key == key) return &f.value;
  return nullptr;
}

void set_field(Fields& fields, std::string_view key, Value value) {
  if (Value* existing = find_field(fields, key)) {
    *existing = std::move(value);
  } else {
    fields.push_back(Field{std::string(key), std::move(value)});
  }
}

bool erase_field(Fields& fields, std::string_view key) {
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    if (it->key == key) {
      fields.erase(it);
      return true;
    }
  }
  return false;
}

void append_json_string(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void append_json(std::string& out, const Fields& fields) {
  out.push_back('{');
  bool first = true;
  for (const Field& f : fields) {
    if (!first) out.push_back(',');
    first = false;
    append_json_string(out, f.key);
    out.push_back(':');
    append_json(out, f.value);
  }
  out.push_back('}');
}

void append_json(std::string& out, const Value& value) {
  char buf[32];
  switch (value.v.index()) {
    case 0:
      out += "null";
      break;
    case 1:
      out += std::get<bool>(value.v) ? "true" : "false";
      break;
    case 2: {
      auto r = std::to_chars(buf, buf + sizeof buf, std::get<int64_t>(value.v));
      out.append(buf, r.ptr);
      break;
    }
    case 3: {
      double d = std::get<double>(value.v);
      if (!std::isfinite(d)) {
        out += "null";
        break;
      }
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, r.ptr);
      break;
    }
    case 4:
      append_json_string(out, std::get<std::string>(value.v));
      break;
    case 5: {
      out.push_back('[');
      bool first = true;
      for (const Value& item : std::get<Array>(value.v)) {
        if (!first) out.push_back(',');
        first = false;
        append_json(out, item);
      }
      out.push_back(']');
      break;
    }
    case 6:
      append_json(out, std::get<Fields>(value.v));
      break;
  }
}

std::string to_json(const Fields& fields) {
  std::string out;
  append_json(out, fields);
  return out;
}

}  // namespace edgeflow
