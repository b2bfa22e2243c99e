// Declared contracts of operators: ports with body types and option schemas. The same
// declarations validate pipeline files, build typed Options, and generate docs/operators.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace edgeflow {

// Body types of ports. "record" is any map body (reading, aggregate, event, task, result);
// "blob" any binary body (frame, image). "any" accepts everything. An output port typed
// "same" carries whatever its stage's input carries (filter, map, log).
bool body_type_known(const std::string& type);
// Can an output of type `produced` feed an input port declared `accepted`?
bool body_type_accepts(const std::string& accepted, const std::string& produced);

struct PortSpec {
  std::string name;
  std::string type;
  std::string description;
};

enum class OptionType { kBool, kInt, kDouble, kString, kDuration, kEnum, kStringList, kStringMap };
const char* option_type_name(OptionType type);

struct OptionSpec {
  std::string name;
  OptionType type = OptionType::kString;
  std::string description;
  bool required = false;
  std::string default_text;          // YAML text of the default; empty = none
  std::optional<double> min, max;    // numbers; durations in seconds
  bool min_exclusive = false;        // "> min" rather than ">= min"
  std::vector<std::string> choices;  // enum values, or allowed list items
  // An energy mode may scale it while the stage runs (`scale: {cam.fps: 0.5}`,
  // runtime/energy_rules.h): the operator reads Context::energy() and applies the factor.
  bool energy_scalable = false;

  OptionSpec& def(std::string text) {
    default_text = std::move(text);
    return *this;
  }
  OptionSpec& require() {
    required = true;
    return *this;
  }
  OptionSpec& at_least(double v) {
    min = v;
    return *this;
  }
  OptionSpec& greater_than(double v) {
    min = v;
    min_exclusive = true;
    return *this;
  }
  OptionSpec& at_most(double v) {
    max = v;
    return *this;
  }
  OptionSpec& one_of(std::vector<std::string> values) {
    choices = std::move(values);
    return *this;
  }
  OptionSpec& scalable() {
    energy_scalable = true;
    return *this;
  }
};

OptionSpec opt_bool(std::string name, std::string description);
OptionSpec opt_int(std::string name, std::string description);
OptionSpec opt_double(std::string name, std::string description);
OptionSpec opt_string(std::string name, std::string description);
OptionSpec opt_duration(std::string name, std::string description);
OptionSpec opt_enum(std::string name, std::vector<std::string> choices, std::string description);
OptionSpec opt_list(std::string name, std::string description);
OptionSpec opt_map(std::string name, std::string description);

struct OperatorSpec {
  std::string name;     // "weather.aggregate"
  std::string summary;  // one line
  std::string example;  // a pipeline snippet using it
  std::vector<PortSpec> inputs;
  std::vector<PortSpec> outputs;  // "error" is added to every operator by the registry
  std::vector<OptionSpec> options;
  // What the stage does when an energy mode pauses it (`pause: [STAGE]`): one line for the
  // docs and errors, e.g. "stops accepting new tasks; running ones finish". Empty: it cannot.
  std::string energy_pause;

  bool is_source() const { return inputs.empty(); }
  int output_index(const std::string& port) const;
  int input_index(const std::string& port) const;
  const OptionSpec* option(const std::string& name) const;
};

struct SourceMark {
  int line = 0;  // 1-based; 0 = unknown
  int column = 0;
};

using OptionValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>,
                                 std::vector<std::pair<std::string, std::string>>>;

// Validated option values of one stage, defaults filled in.
class Options {
 public:
  void set(const std::string& name, OptionValue value, bool given, SourceMark mark);

  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  bool given(const std::string& name) const;
  SourceMark mark(const std::string& name) const;

  bool get_bool(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;  // ints widen
  const std::string& get_string(const std::string& name) const;
  int64_t get_duration_us(const std::string& name) const;
  const std::vector<std::string>& get_list(const std::string& name) const;
  const std::vector<std::pair<std::string, std::string>>& get_map(const std::string& name) const;

  // Relative paths in a pipeline file are relative to the file's folder, so a pipeline runs
  // the same from any working directory.
  void set_base_dir(std::string dir) { base_dir_ = std::move(dir); }
  std::string resolve_path(const std::string& name) const;  // the value of option `name`
  std::string resolve(const std::string& path) const;       // any path, e.g. in a map option

 private:
  struct Entry {
    OptionValue value;
    bool given = false;
    SourceMark mark;
  };
  const Entry& entry(const std::string& name) const;
  std::map<std::string, Entry> entries_;
  std::string base_dir_;
};

// Thrown by an operator's constructor for a value that passes the schema but not the
// operator's own checks (a bad expression, slide > window). The loader reports it at the
// option's line. Only loading throws; processing never does.
class OptionError : public std::runtime_error {
 public:
  OptionError(std::string option, std::string message, std::string hint = "")
      : std::runtime_error(message), option_(std::move(option)), hint_(std::move(hint)) {}
  const std::string& option() const { return option_; }
  const std::string& hint() const { return hint_; }

 private:
  std::string option_;
  std::string hint_;
};

}  // namespace edgeflow
