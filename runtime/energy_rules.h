// A pipeline's `energy:` rules: what an edge node sheds as its battery runs down.
//
//   energy:
//     modes:                  # from the highest threshold down; each sheds more
//       - { name: saver,    below: 50%, pause: [worker] }        # no new iExec tasks
//       - { name: low,      below: 30%, scale: { cam.fps: 0.5 } } # half the frame rate
//       - { name: critical, below: 15%, hold_links: true }       # keep frames in the spool
//     hysteresis: 5%          # a mode is left only once the charge is this far above it
//
// A mode includes the actions of every mode above it (a lower charge sheds more); a `scale`
// of the same option in a lower mode replaces the higher mode's factor. The loader checks
// every name against the stages and what their operators can do (OperatorSpec::energy_pause,
// OptionSpec::energy_scalable); the edge service picks the mode (select_energy_mode) and hands
// its actions to the running part (runtime/energy_mode.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/diagnostics.h"
#include "runtime/energy_mode.h"
#include "runtime/schema.h"

namespace YAML {
class Node;
}

namespace edgeflow {

struct PipelineSpec;

struct EnergyScale {
  std::string stage;
  std::string option;
  double factor = 1;
};

struct EnergyModeSpec {
  std::string name;
  double below_pct = 0;  // the mode applies while the charge is below this
  std::vector<std::string> pause;
  std::vector<EnergyScale> scale;
  bool hold_all_links = false;
  std::vector<std::string> hold_from;  // `hold_links: [stage, ...]`
  SourceMark mark;
};

struct EnergyRules {
  std::vector<EnergyModeSpec> modes;  // highest threshold first, each strictly lower
  double hysteresis_pct = 5;
  bool empty() const { return modes.empty(); }
};

constexpr double kDefaultEnergyHysteresisPct = 5;

// The mode for `charge_pct` (0-100) when `current` applies now (an index into rules.modes,
// -1 for normal). Going down, the deepest mode whose threshold is above the charge; going
// back up, a mode is left only once the charge reaches its threshold plus the hysteresis, so
// a charge wavering at a threshold does not flap. A NaN charge keeps the current mode.
int select_energy_mode(const EnergyRules& rules, int current, double charge_pct);

// The actions of mode `index` (-1: normal, nothing shed), those of the modes above folded in.
EnergyActions energy_actions(const EnergyRules& rules, int index);

// "50%" -> 50; nullopt for anything else (a bare 0.5 is refused: is it 0.5% or 50%?).
std::optional<double> parse_percent(const std::string& text);

// Reads the top-level `energy:` of a pipeline file into spec.energy. The stages must be
// loaded: every stage and option named is checked against them. Problems go to `diags` at
// their line and column.
void load_energy_rules(const YAML::Node& energy, PipelineSpec& spec, Diagnostics& diags);

}  // namespace edgeflow
