#include "runtime/options_yaml.h"

#include <charconv>
#include <cmath>
#include <sstream>

#include "runtime/duration.h"

namespace edgeflow {

SourceMark mark_of(const YAML::Node& node) {
  if (!node.IsDefined()) return {};
  YAML::Mark m = node.Mark();
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

namespace {

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string range_text(const OptionSpec& spec, const char* unit) {
  std::string text;
  if (spec.min)
    text += std::string(spec.min_exclusive ? "> " : ">= ") + format_number(*spec.min) + unit;
  if (spec.max) text += (text.empty() ? "<= " : " and <= ") + format_number(*spec.max) + unit;
  return text;
}

bool in_range(const OptionSpec& spec, double v) {
  if (spec.min && (spec.min_exclusive ? !(v > *spec.min) : !(v >= *spec.min))) return false;
  if (spec.max && !(v <= *spec.max)) return false;
  return true;
}

template <typename T>
bool parse_number(const std::string& text, T& out) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, out);
  return ec == std::errc() && ptr == end;
}

// Converts one value node; on failure reports and returns false.
bool convert(const YAML::Node& node, const OptionSpec& spec, const std::string& stage,
             Diagnostics& diags, OptionValue& out) {
  SourceMark mark = mark_of(node);
  auto fail = [&](const std::string& what, const std::string& hint = "") {
    diags.add(mark, stage, "option '" + spec.name + "' " + what, hint);
    return false;
  };
  const char* type = option_type_name(spec.type);
  if (spec.type == OptionType::kStringList) {
    std::vector<std::string> items;
    if (node.IsScalar()) {
      items.push_back(node.Scalar());
    } else if (node.IsSequence()) {
      for (const YAML::Node& item : node) {
        if (!item.IsScalar())
          return fail("must be a list of names (got " + describe(item) + " as an item)");
        items.push_back(item.Scalar());
      }
    } else {
      return fail("must be a list, like [a, b] (got " + describe(node) + ")");
    }
    bool ok = true;
    if (!spec.choices.empty()) {
      for (const std::string& item : items) {
        bool known = false;
        for (const std::string& c : spec.choices) known = known || c == item;
        if (!known) {
          ok = fail("has unknown item '" + item + "'", suggest(item, spec.choices));
        }
      }
    }
    out = std::move(items);
    return ok;
  }
  if (spec.type == OptionType::kStringMap) {
    if (!node.IsMap()) return fail("must be a map, like {a: b} (got " + describe(node) + ")");
    std::vector<std::pair<std::string, std::string>> items;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
        diags.add(mark_of(kv.first), stage,
                  "option '" + spec.name + "' must map names to single values");
        return false;
      }
      items.emplace_back(kv.first.Scalar(), kv.second.Scalar());
    }
    out = std::move(items);
    return true;
  }
  if (!node.IsScalar())
    return fail(std::string("must be a ") + type + " (got " + describe(node) + ")");
  const std::string& text = node.Scalar();
  switch (spec.type) {
    case OptionType::kBool: {
      bool b;
      if (!YAML::convert<bool>::decode(node, b))
        return fail("must be true or false (got '" + text + "')");
      out = b;
      return true;
    }
    case OptionType::kInt: {
      int64_t i;
      if (!parse_number(text, i)) return fail("must be a whole number (got '" + text + "')");
      if (!in_range(spec, static_cast<double>(i)))
        return fail("must be " + range_text(spec, "") + " (got " + text + ")");
      out = i;
      return true;
    }
    case OptionType::kDouble: {
      double d;
      if (!parse_number(text, d) || !std::isfinite(d))
        return fail("must be a number (got '" + text + "')");
      if (!in_range(spec, d))
        return fail("must be " + range_text(spec, "") + " (got " + text + ")");
      out = d;
      return true;
    }
    case OptionType::kDuration: {
      auto us = parse_duration_us(text);
      if (!us)
        return fail("must be a duration (got '" + text + "')",
                    "write a number with a unit: 250ms, 10s, 5m, 1h, 1d");
      if (!in_range(spec, static_cast<double>(*us) / 1e6))
        return fail("must be " + range_text(spec, "s") + " (got " + text + ")");
      out = *us;
      return true;
    }
    case OptionType::kEnum: {
      for (const std::string& c : spec.choices) {
        if (c == text) {
          out = text;
          return true;
        }
      }
      return fail("must be one of the known values (got '" + text + "')",
                  suggest(text, spec.choices));
    }
    case OptionType::kString:
      out = text;
      return true;
    default:
      return false;
  }
}

}  // namespace

Options parse_options(const YAML::Node& with, const OperatorSpec& spec, const std::string& stage,
                      SourceMark owner_mark, Diagnostics& diags) {
  Options options;
  bool have_map = false;
  if (with.IsDefined() && !with.IsNull()) {
    if (!with.IsMap()) {
      diags.add(mark_of(with), stage,
                "'with' must be a map of options (got " + describe(with) + ")");
    } else {
      have_map = true;
      std::vector<std::string> known;
      for (const OptionSpec& o : spec.options) known.push_back(o.name);
      for (const auto& kv : with) {
        std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
        if (!spec.option(key)) {
          std::string hint =
              known.empty() ? "operator '" + spec.name + "' takes no options" : suggest(key, known);
          diags.add(mark_of(kv.first), stage,
                    "unknown option '" + key + "' for operator '" + spec.name + "'", hint);
        }
      }
    }
  }
  for (const OptionSpec& o : spec.options) {
    YAML::Node value = have_map ? with[o.name] : YAML::Node();
    OptionValue converted;
    if (value.IsDefined() && !value.IsNull()) {
      if (convert(value, o, stage, diags, converted))
        options.set(o.name, converted, true, mark_of(value));
    } else if (o.required) {
      diags.add(have_map ? mark_of(with) : owner_mark, stage,
                "missing required option '" + o.name + "' (" + o.description + ")");
    } else if (!o.default_text.empty()) {
      // Defaults go through the same conversion, so a bad default fails every harness test.
      Diagnostics default_diags;
      if (convert(YAML::Load(o.default_text), o, stage, default_diags, converted)) {
        options.set(o.name, converted, false, owner_mark);
      } else {
        diags.add(owner_mark, stage,
                  "bad default of option '" + o.name + "': " + default_diags.str());
      }
    }
  }
  return options;
}

}  // namespace edgeflow
