#include "runtime/schema.h"

namespace edgeflow {
namespace {

// Parent of each body type in the small type tree; "any" is the root.
const std::map<std::string, std::string>& type_parents() {
  static const std::map<std::string, std::string> kParents = {
      {"any", ""},           {"record", "any"},       {"blob", "any"},
      {"reading", "record"}, {"aggregate", "record"}, {"event", "record"},
      {"task", "record"},    {"result", "record"},    {"frame", "blob"},
      {"image", "blob"},
  };
  return kParents;
}

OptionSpec make(std::string name, OptionType type, std::string description) {
  OptionSpec s;
  s.name = std::move(name);
  s.type = type;
  s.description = std::move(description);
  return s;
}

}  // namespace

bool body_type_known(const std::string& type) {
  return type == "same" || type_parents().count(type) != 0;
}

bool body_type_accepts(const std::string& accepted, const std::string& produced) {
  if (accepted == "any") return true;
  // A generic producer (e.g. a file or MQTT source emitting "record") may carry what the
  // consumer wants; only provably different types are rejected.
  const auto& parents = type_parents();
  for (std::string t = produced; !t.empty();) {
    if (t == accepted) return true;
    auto it = parents.find(t);
    if (it == parents.end()) return false;
    t = it->second;
  }
  for (std::string t = accepted; !t.empty();) {
    if (t == produced) return true;
    auto it = parents.find(t);
    if (it == parents.end()) return false;
    t = it->second;
  }
  return false;
}

const char* option_type_name(OptionType type) {
  switch (type) {
    case OptionType::kBool:
      return "bool";
    case OptionType::kInt:
      return "int";
    case OptionType::kDouble:
      return "number";
    case OptionType::kString:
      return "string";
    case OptionType::kDuration:
      return "duration";
    case OptionType::kEnum:
      return "enum";
    case OptionType::kStringList:
      return "list";
    case OptionType::kStringMap:
      return "map";
  }
  return "?";
}

OptionSpec opt_bool(std::string n, std::string d) { return make(n, OptionType::kBool, d); }
OptionSpec opt_int(std::string n, std::string d) { return make(n, OptionType::kInt, d); }
OptionSpec opt_double(std::string n, std::string d) { return make(n, OptionType::kDouble, d); }
OptionSpec opt_string(std::string n, std::string d) { return make(n, OptionType::kString, d); }
OptionSpec opt_duration(std::string n, std::string d) { return make(n, OptionType::kDuration, d); }
OptionSpec opt_enum(std::string n, std::vector<std::string> choices, std::string d) {
  OptionSpec s = make(n, OptionType::kEnum, d);
  s.choices = std::move(choices);
  return s;
}
OptionSpec opt_list(std::string n, std::string d) { return make(n, OptionType::kStringList, d); }
OptionSpec opt_map(std::string n, std::string d) { return make(n, OptionType::kStringMap, d); }

int OperatorSpec::output_index(const std::string& port) const {
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].name == port) return static_cast<int>(i);
  return -1;
}

int OperatorSpec::input_index(const std::string& port) const {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].name == port) return static_cast<int>(i);
  return -1;
}

const OptionSpec* OperatorSpec::option(const std::string& name) const {
  for (const OptionSpec& o : options)
    if (o.name == name) return &o;
  return nullptr;
}

void Options::set(const std::string& name, OptionValue value, bool given, SourceMark mark) {
  entries_[name] = Entry{std::move(value), given, mark};
}

bool Options::given(const std::string& name) const {
  auto it = entries_.find(name);
  return it != entries_.end() && it->second.given;
}

SourceMark Options::mark(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? SourceMark{} : it->second.mark;
}

const Options::Entry& Options::entry(const std::string& name) const {
  auto it = entries_.find(name);
  // Operators read only options their own schema declares, with defaults filled in, so a
  // miss is a programming error in the operator, caught by its harness tests.
  if (it == entries_.end()) throw std::logic_error("option '" + name + "' has no value");
  return it->second;
}

bool Options::get_bool(const std::string& name) const { return std::get<bool>(entry(name).value); }
int64_t Options::get_int(const std::string& name) const {
  return std::get<int64_t>(entry(name).value);
}
double Options::get_double(const std::string& name) const {
  const OptionValue& v = entry(name).value;
  if (const int64_t* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return std::get<double>(v);
}
const std::string& Options::get_string(const std::string& name) const {
  return std::get<std::string>(entry(name).value);
}
int64_t Options::get_duration_us(const std::string& name) const {
  return std::get<int64_t>(entry(name).value);
}
const std::vector<std::string>& Options::get_list(const std::string& name) const {
  return std::get<std::vector<std::string>>(entry(name).value);
}
const std::vector<std::pair<std::string, std::string>>& Options::get_map(
    const std::string& name) const {
  return std::get<std::vector<std::pair<std::string, std::string>>>(entry(name).value);
}

std::string Options::resolve_path(const std::string& name) const {
  return resolve(get_string(name));
}

std::string Options::resolve(const std::string& path) const {
  if (path.empty() || path[0] == '/' || base_dir_.empty()) return path;
  return base_dir_ + "/" + path;
}

}  // namespace edgeflow
