#include "runtime/energy_rules.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "runtime/options_yaml.h"
#include "runtime/pipeline.h"

namespace edgeflow {

int select_energy_mode(const EnergyRules& rules, int current, double charge_pct) {
  const int n = static_cast<int>(rules.modes.size());
  current = std::clamp(current, -1, n - 1);
  if (std::isnan(charge_pct)) return current;
  int down = -1;  // the deepest mode the charge is below
  for (int i = 0; i < n; ++i)
    if (charge_pct < rules.modes[i].below_pct) down = i;
  int up = current;  // climbing back: each mode needs its threshold plus the hysteresis
  while (up >= 0 && charge_pct >= rules.modes[up].below_pct + rules.hysteresis_pct) --up;
  return std::max(down, up);
}

EnergyActions energy_actions(const EnergyRules& rules, int index) {
  EnergyActions a;
  if (index < 0 || index >= static_cast<int>(rules.modes.size())) return a;
  a.mode = rules.modes[index].name;
  for (int i = 0; i <= index; ++i) {
    const EnergyModeSpec& m = rules.modes[i];
    a.paused.insert(m.pause.begin(), m.pause.end());
    for (const EnergyScale& s : m.scale) a.scale[s.stage][s.option] = s.factor;
    a.hold_all_links = a.hold_all_links || m.hold_all_links;
    a.hold_from.insert(m.hold_from.begin(), m.hold_from.end());
  }
  return a;
}

std::optional<double> parse_percent(const std::string& text) {
  std::string t = text;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  if (t.size() < 2 || t.back() != '%') return std::nullopt;
  t.pop_back();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

namespace {

const std::vector<std::string> kEnergyKeys = {"modes", "hysteresis"};
const std::vector<std::string> kModeKeys = {"name", "below", "pause", "scale", "hold_links"};

bool plain_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

std::string percent_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", v);
  return buf;
}

class EnergyRulesReader {
 public:
  EnergyRulesReader(PipelineSpec& spec, Diagnostics& diags) : spec_(spec), diags_(diags) {
    for (const StageSpec& s : spec.stages) stage_ids_.push_back(s.id);
  }

  void read(const YAML::Node& energy) {
    if (!energy.IsMap()) {
      diags_.add(mark_of(energy), "", "'energy' must be a map with 'modes'",
                 "energy:\n    modes:\n      - { name: saver, below: 50%, pause: [worker] }");
      return;
    }
    check_keys(energy, kEnergyKeys, "energy key");
    if (YAML::Node h = energy["hysteresis"]) {
      auto v = h.IsScalar() ? parse_percent(h.Scalar()) : std::nullopt;
      if (!v || *v < 0 || *v > 50)
        diags_.add(
            mark_of(h), "",
            "energy 'hysteresis' must be a percentage from 0% to 50% (got '" + text(h) + "')",
            "a mode is left once the charge is this far above its threshold; e.g. 5%");
      else
        rules_.hysteresis_pct = *v;
    }
    YAML::Node modes = energy["modes"];
    if (!modes.IsDefined()) {
      diags_.add(mark_of(energy), "", "'energy' has no 'modes'",
                 "add modes: [{ name: saver, below: 50%, pause: [worker] }]");
    } else if (!modes.IsSequence() || modes.size() == 0) {
      diags_.add(mark_of(modes), "", "energy 'modes' must be a non-empty list of modes",
                 "- { name: saver, below: 50%, pause: [worker] }");
    } else {
      for (const YAML::Node& m : modes) read_mode(m);
    }
    spec_.energy = std::move(rules_);
  }

 private:
  static std::string text(const YAML::Node& n) { return n.IsScalar() ? n.Scalar() : "not a value"; }

  void check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                  const std::string& what) {
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
      if (!seen.insert(key).second)
        diags_.add(mark_of(kv.first), "", "duplicate " + what + " '" + key + "'");
      if (std::find(known.begin(), known.end(), key) == known.end())
        diags_.add(mark_of(kv.first), "", "unknown " + what + " '" + key + "'",
                   suggest(key, known));
    }
  }

  // A stage named by a mode; nullptr (reported) when there is none.
  const StageSpec* stage_named(const YAML::Node& node, const std::string& name,
                               const std::string& where) {
    const StageSpec* s = spec_.stage(name);
    if (!s)
      diags_.add(mark_of(node), "", where + ": no stage '" + name + "'", suggest(name, stage_ids_));
    return s;
  }

  // Stage ids from a list (or one id).
  std::vector<std::pair<std::string, YAML::Node>> id_list(const YAML::Node& n,
                                                          const std::string& what) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    if (n.IsScalar()) {
      out.emplace_back(n.Scalar(), n);
    } else if (n.IsSequence()) {
      for (const YAML::Node& item : n) {
        if (item.IsScalar())
          out.emplace_back(item.Scalar(), item);
        else
          diags_.add(mark_of(item), "", what + ": each entry must be a stage id");
      }
    } else {
      diags_.add(mark_of(n), "", what + " must be a list of stage ids like [worker]");
    }
    return out;
  }

  void read_mode(const YAML::Node& m) {
    if (!m.IsMap()) {
      diags_.add(mark_of(m), "", "each energy mode must be a map like {name: low, below: 30%}");
      return;
    }
    check_keys(m, kModeKeys, "energy mode key");
    EnergyModeSpec mode;
    mode.mark = mark_of(m);
    YAML::Node name = m["name"];
    if (!name.IsDefined()) {
      diags_.add(mark_of(m), "", "an energy mode has no 'name'", "add name: saver");
    } else if (!name.IsScalar() || !plain_name(name.Scalar()) || name.Scalar() == "normal") {
      diags_.add(mark_of(name), "",
                 "energy mode name '" + text(name) +
                     "' must be letters, digits, '-' and '_', and not 'normal'",
                 "'normal' is the mode with nothing shed");
    } else {
      mode.name = name.Scalar();
      if (!names_.insert(mode.name).second)
        diags_.add(mark_of(name), "", "duplicate energy mode '" + mode.name + "'");
    }
    const std::string owner = "energy mode '" + (mode.name.empty() ? "?" : mode.name) + "'";
    YAML::Node below = m["below"];
    if (!below.IsDefined()) {
      diags_.add(mark_of(m), "", owner + " has no 'below'",
                 "add below: 30% (the charge under which the mode applies)");
    } else {
      auto v = below.IsScalar() ? parse_percent(below.Scalar()) : std::nullopt;
      if (!v || !(*v > 0) || *v > 100) {
        diags_.add(mark_of(below), "",
                   owner + ": 'below' must be a percentage above 0% and at most 100% (got '" +
                       text(below) + "')",
                   "the battery's charge with its % sign, e.g. below: 30%");
      } else {
        mode.below_pct = *v;
        if (last_below_ && !(*v < *last_below_)) {
          diags_.add(mark_of(below), "",
                     owner + ": below " + percent_text(*v) + " comes after a mode below " +
                         percent_text(*last_below_) + ": thresholds out of order",
                     "list the modes from the highest threshold down, each lower than the one "
                     "before (a lower charge sheds more)");
        }
        last_below_ = *v;
      }
    }
    if (YAML::Node p = m["pause"]) read_pause(p, owner, mode);
    if (YAML::Node s = m["scale"]) read_scale(s, owner, mode);
    if (YAML::Node h = m["hold_links"]) read_hold(h, owner, mode);
    rules_.modes.push_back(std::move(mode));
  }

  void read_pause(const YAML::Node& p, const std::string& owner, EnergyModeSpec& mode) {
    for (auto& [id, node] : id_list(p, owner + ": 'pause'")) {
      const StageSpec* s = stage_named(node, id, owner + ": 'pause'");
      if (!s || !s->entry) continue;
      if (s->entry->spec.energy_pause.empty()) {
        diags_.add(mark_of(node), "",
                   owner + ": stage '" + id + "' (" + s->op + ") cannot be paused",
                   pausable_hint());
        continue;
      }
      mode.pause.push_back(id);
    }
  }

  std::string pausable_hint() const {
    std::string can;
    for (const StageSpec& s : spec_.stages)
      if (s.entry && !s.entry->spec.energy_pause.empty())
        can += (can.empty() ? "" : ", ") + s.id + " (" + s.op + ")";
    return can.empty() ? "no stage of this pipeline can pause (iexec.worker can)"
                       : "stages that can: " + can;
  }

  void read_scale(const YAML::Node& map, const std::string& owner, EnergyModeSpec& mode) {
    if (!map.IsMap()) {
      diags_.add(mark_of(map), "", owner + ": 'scale' must be a map like {cam.fps: 0.5}");
      return;
    }
    for (const auto& kv : map) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
      const size_t dot = key.find('.');
      if (dot == std::string::npos || dot == 0 || dot + 1 == key.size()) {
        diags_.add(mark_of(kv.first), "",
                   owner + ": scale key '" + key + "' must be STAGE.OPTION, like cam.fps");
        continue;
      }
      EnergyScale sc;
      sc.stage = key.substr(0, dot);
      sc.option = key.substr(dot + 1);
      bool ok = true;
      const StageSpec* s = stage_named(kv.first, sc.stage, owner + ": 'scale'");
      if (s && s->entry) {
        const OptionSpec* o = s->entry->spec.option(sc.option);
        std::vector<std::string> scalable;
        for (const OptionSpec& x : s->entry->spec.options)
          if (x.energy_scalable) scalable.push_back(x.name);
        std::string can = scalable.empty() ? "none" : "";
        for (const std::string& x : scalable) can += (can.empty() ? "" : ", ") + x;
        if (!o) {
          diags_.add(mark_of(kv.first), "",
                     owner + ": stage '" + sc.stage + "' (" + s->op + ") has no option '" +
                         sc.option + "'",
                     "options it can scale: " + can);
          ok = false;
        } else if (o->type != OptionType::kInt && o->type != OptionType::kDouble) {
          diags_.add(mark_of(kv.first), "",
                     owner + ": option '" + key + "' is not numeric (it is a " +
                         option_type_name(o->type) + ")",
                     "options it can scale: " + can);
          ok = false;
        } else if (!o->energy_scalable) {
          diags_.add(mark_of(kv.first), "",
                     owner + ": " + s->op + " cannot change '" + sc.option + "' while it runs",
                     "options it can scale: " + can);
          ok = false;
        }
      } else if (!s) {
        ok = false;
      }
      const YAML::Node& f = kv.second;
      double v = 0;
      bool number = f.IsScalar();
      if (number) {
        char* end = nullptr;
        v = std::strtod(f.Scalar().c_str(), &end);
        number = !f.Scalar().empty() && end == f.Scalar().c_str() + f.Scalar().size() &&
                 std::isfinite(v);
      }
      if (!number || !(v > 0) || v > 100) {
        diags_.add(mark_of(f), "",
                   owner + ": scale of '" + key + "' must be a number > 0 and <= 100 (got '" +
                       text(f) + "')",
                   "the factor the option is multiplied by: 0.5 halves it");
        ok = false;
      }
      sc.factor = v;
      if (ok) mode.scale.push_back(sc);
    }
  }

  void read_hold(const YAML::Node& h, const std::string& owner, EnergyModeSpec& mode) {
    if (h.IsScalar() && (h.Scalar() == "true" || h.Scalar() == "false")) {
      mode.hold_all_links = h.Scalar() == "true";
      return;
    }
    if (h.IsScalar()) {
      diags_.add(mark_of(h), "",
                 owner + ": 'hold_links' must be true, false or a list of stage ids (got '" +
                     h.Scalar() + "')",
                 "true holds every link this node sends on; [cam] only the links carrying "
                 "cam's output");
      return;
    }
    for (auto& [id, node] : id_list(h, owner + ": 'hold_links'"))
      if (stage_named(node, id, owner + ": 'hold_links'")) mode.hold_from.push_back(id);
  }

  PipelineSpec& spec_;
  Diagnostics& diags_;
  EnergyRules rules_;
  std::vector<std::string> stage_ids_;
  std::set<std::string> names_;
  std::optional<double> last_below_;
};

}  // namespace

void load_energy_rules(const YAML::Node& energy, PipelineSpec& spec, Diagnostics& diags) {
  if (!energy.IsDefined() || energy.IsNull()) return;
  EnergyRulesReader(spec, diags).read(energy);
}

}  // namespace edgeflow
