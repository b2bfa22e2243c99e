#include "runtime/operator_docs.h"

#include <algorithm>

namespace edgeflow {
namespace {

std::string range_of(const OptionSpec& o) {
  std::string r;
  auto num = [](double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  const char* unit = o.type == OptionType::kDuration ? "s" : "";
  if (o.min) r += std::string(o.min_exclusive ? "> " : ">= ") + num(*o.min) + unit;
  if (o.max) r += (r.empty() ? "<= " : ", <= ") + num(*o.max) + unit;
  if (!o.choices.empty()) {
    std::string c;
    for (const std::string& v : o.choices) c += (c.empty() ? "" : " | ") + v;
    r += (r.empty() ? "" : ", ") + c;
  }
  return r;
}

std::string default_of(const OptionSpec& o) {
  if (o.required) return "required";
  return o.default_text.empty() ? "-" : o.default_text;
}

std::string ports_text(const std::vector<PortSpec>& ports) {
  std::string s;
  for (const PortSpec& p : ports) s += (s.empty() ? "" : ", ") + p.name + " (" + p.type + ")";
  return s.empty() ? "none" : s;
}

}  // namespace

std::string operator_list_text() {
  std::string out;
  size_t width = 0;
  for (const std::string& name : Registry::global().names()) width = std::max(width, name.size());
  // Summaries come from the plugins' manifests: listing loads no plugin.
  for (const std::string& name : Registry::global().names())
    out +=
        name + std::string(width + 2 - name.size(), ' ') + Registry::global().summary(name) + "\n";
  return out;
}

std::string operator_text(const OperatorEntry& entry) {
  const OperatorSpec& s = entry.spec;
  std::string out = s.name + " - " + s.summary + "\n\n";
  out += "inputs:  " + ports_text(s.inputs) + "\n";
  out += "outputs: " + ports_text(s.outputs) + "\n\noptions:\n";
  if (s.options.empty()) out += "  (none)\n";
  for (const OptionSpec& o : s.options) {
    out += "  " + o.name + " (" + option_type_name(o.type) + ", " + default_of(o);
    std::string r = range_of(o);
    if (!r.empty()) out += "; " + r;
    out += ")\n      " + o.description + "\n";
  }
  if (!s.example.empty())
    out += "\nexample:\n  " + [&] {
      std::string ex = s.example, indented;
      for (char c : ex) indented += c == '\n' ? std::string("\n  ") : std::string(1, c);
      return indented;
    }() + "\n";
  return out;
}

std::string operators_markdown() {
  std::string out =
      "# Operators\n\n"
      "Generated from the operators' declared schemas by `edgeflow ops --markdown`; a test "
      "fails when this file is not current. Types of ports: `record` is any map body "
      "(`reading`, `aggregate`, `event`, `task`, `result`), `blob` any binary body "
      "(`frame`, `image`); `same` carries what the stage's input carries. Every operator "
      "also has an `error` output (`from: STAGE.error`).\n\n";
  for (const std::string& name : Registry::global().names()) {
    const OperatorEntry* e = Registry::global().find(name);
    if (!e) continue;  // its plugin cannot be loaded; `edgeflow ops NAME` says why
    const OperatorSpec& s = e->spec;
    out += "## " + s.name + "\n\n" + s.summary + "\n\n";
    out += "- inputs: " + ports_text(s.inputs) + "\n- outputs: " + ports_text(s.outputs) + "\n\n";
    if (!s.options.empty()) {
      out += "| option | type | default | range | description |\n|---|---|---|---|---|\n";
      for (const OptionSpec& o : s.options) {
        // A `|` inside a cell would end it: escape it (enum ranges read "a \| b").
        auto cell = [](std::string text) {
          std::string out;
          for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
          return out;
        };
        out += "| `" + o.name + "` | " + option_type_name(o.type) + " | " + cell(default_of(o)) +
               " | " + cell(range_of(o)) + " | " + cell(o.description) + " |\n";
      }
      out += "\n";
    }
    if (!s.example.empty()) out += "```yaml\n" + s.example + "\n```\n\n";
  }
  return out;
}

}  // namespace edgeflow
