// The `energy:` rules of a pipeline file: parsing and checks at load (with the line and
// column), the actions each mode folds in, and the mode chosen for a charge with hysteresis.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "runtime/pipeline.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

// A source with what energy modes can act on: a scalable rate and a pause.
class SheddableSource : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "test.sheddable";
    s.summary = "a source energy modes can act on (tests)";
    s.outputs = {{"out", "record", "nothing"}};
    s.options = {opt_double("rate", "messages a second").def("1").scalable(),
                 opt_int("burst", "messages at once").def("1"),
                 opt_string("label", "a name").def("x")};
    s.energy_pause = "stops";
    return s;
  }
  explicit SheddableSource(const Options&) {}
};
EF_REGISTER_OPERATOR(SheddableSource)

std::string pipeline(const std::string& energy) {
  return "pipeline: p\n"
         "stages:\n"
         "  - id: src\n"
         "    op: test.sheddable\n"
         "    on: edge\n"
         "  - id: out\n"
         "    op: log\n"
         "    on: cloud\n"
         "    from: src\n" +
         energy;
}

LoadResult load(const std::string& energy) {
  return load_pipeline_text(pipeline(energy), "p.yaml", ".");
}

const std::string kGood =
    "energy:\n"                                                    // line 10
    "  modes:\n"                                                   // 11
    "    - { name: saver, below: 50%, pause: [src] }\n"            // 12
    "    - { name: low, below: 30%, scale: { src.rate: 0.5 } }\n"  // 13
    "    - { name: critical, below: 15%, hold_links: true, scale: { src.rate: 0.25 } }\n"
    "  hysteresis: 5%\n";

TEST(EnergyRules, ParsesModesFromTheHighestThresholdDown) {
  LoadResult r = load(kGood);
  ASSERT_TRUE(r.pipeline) << r.diags.str();
  const EnergyRules& e = r.pipeline->energy;
  ASSERT_EQ(e.modes.size(), 3u);
  EXPECT_EQ(e.modes[0].name, "saver");
  EXPECT_EQ(e.modes[0].below_pct, 50);
  EXPECT_EQ(e.modes[0].pause, std::vector<std::string>{"src"});
  EXPECT_EQ(e.modes[1].scale.size(), 1u);
  EXPECT_EQ(e.modes[1].scale[0].option, "rate");
  EXPECT_EQ(e.modes[1].scale[0].factor, 0.5);
  EXPECT_TRUE(e.modes[2].hold_all_links);
  EXPECT_EQ(e.hysteresis_pct, 5);
}

TEST(EnergyRules, NoEnergyKeyMeansNoRules) {
  LoadResult r = load("");
  ASSERT_TRUE(r.pipeline) << r.diags.str();
  EXPECT_TRUE(r.pipeline->energy.empty());
}

TEST(EnergyRules, EachModeFoldsInTheModesAboveIt) {
  LoadResult r = load(kGood);
  ASSERT_TRUE(r.pipeline);
  const EnergyRules& e = r.pipeline->energy;
  EnergyActions normal = energy_actions(e, -1);
  EXPECT_EQ(normal.mode, "normal");
  EXPECT_TRUE(normal.paused.empty());
  EnergyActions low = energy_actions(e, 1);
  EXPECT_EQ(low.mode, "low");
  EXPECT_TRUE(low.paused.count("src"));
  EXPECT_EQ(low.scale["src"]["rate"], 0.5);
  EXPECT_FALSE(low.hold_all_links);
  EnergyActions critical = energy_actions(e, 2);
  EXPECT_TRUE(critical.paused.count("src"));
  EXPECT_EQ(critical.scale["src"]["rate"], 0.25);  // the lower mode's factor replaces
  EXPECT_TRUE(critical.hold_all_links);

  EnergyMode mode;
  mode.set(critical);
  EXPECT_TRUE(mode.paused("src"));
  EXPECT_FALSE(mode.paused("out"));
  EXPECT_EQ(mode.scale("src", "rate"), 0.25);
  EXPECT_EQ(mode.scale("out", "rate"), 1);
  EXPECT_TRUE(mode.holds_links_from("anything"));
  const uint64_t g = mode.generation();
  mode.set(critical);
  EXPECT_EQ(mode.generation(), g);  // no change, no new generation
  mode.set(normal);
  EXPECT_NE(mode.generation(), g);
  EXPECT_FALSE(mode.holds_links_from("anything"));
}

TEST(EnergyRules, HysteresisOnTheWayBack) {
  LoadResult r = load(kGood);
  ASSERT_TRUE(r.pipeline);
  const EnergyRules& e = r.pipeline->energy;
  // The e2e test's walk: 80 45 25 10 40 80, then a charge wavering at a threshold.
  int m = -1;
  m = select_energy_mode(e, m, 80);
  EXPECT_EQ(m, -1);
  m = select_energy_mode(e, m, 45);
  EXPECT_EQ(m, 0);
  m = select_energy_mode(e, m, 25);
  EXPECT_EQ(m, 1);
  m = select_energy_mode(e, m, 10);
  EXPECT_EQ(m, 2);
  m = select_energy_mode(e, m, 40);  // >= 15+5 and >= 30+5, < 50+5: saver
  EXPECT_EQ(m, 0);
  m = select_energy_mode(e, m, 80);
  EXPECT_EQ(m, -1);
  // Down at once: from normal straight to critical.
  EXPECT_EQ(select_energy_mode(e, -1, 3), 2);
  // Wavering at 30%: in low at 29, still low at 33 (< 35), out at 35.
  EXPECT_EQ(select_energy_mode(e, 0, 29), 1);
  EXPECT_EQ(select_energy_mode(e, 1, 33), 1);
  EXPECT_EQ(select_energy_mode(e, 1, 35), 0);
  EXPECT_EQ(select_energy_mode(e, 1, 54.9), 0);
  EXPECT_EQ(select_energy_mode(e, 1, 55), -1);
  // Exactly at a threshold is not below it.
  EXPECT_EQ(select_energy_mode(e, -1, 50), -1);
  // An unknown charge keeps the mode.
  EXPECT_EQ(select_energy_mode(e, 1, std::nan("")), 1);
  // No hysteresis: straight back.
  EnergyRules plain = e;
  plain.hysteresis_pct = 0;
  EXPECT_EQ(select_energy_mode(plain, 2, 15), 1);
}

TEST(EnergyRules, ParsesPercentages) {
  EXPECT_EQ(parse_percent("50%"), 50);
  EXPECT_EQ(parse_percent("12.5 %"), 12.5);
  EXPECT_FALSE(parse_percent("0.5"));
  EXPECT_FALSE(parse_percent("%"));
  EXPECT_FALSE(parse_percent("half%"));
}

// Each problem at its line and column, with the fix.
void expect_error(const std::string& energy, const std::string& where, const std::string& what) {
  LoadResult r = load(energy);
  ASSERT_FALSE(r.pipeline) << energy;
  const std::string text = r.diags.str();
  EXPECT_NE(text.find("p.yaml:" + where + ": " + what), std::string::npos)
      << "want " << where << ": " << what << "\ngot:\n"
      << text;
}

TEST(EnergyRules, RefusesUnknownStagesAndWhatTheyCannotDo) {
  expect_error("energy:\n  modes:\n    - { name: saver, below: 50%, pause: [scr] }\n", "12:42",
               "energy mode 'saver': 'pause': no stage 'scr'");
  expect_error("energy:\n  modes:\n    - { name: saver, below: 50%, pause: [out] }\n", "12:42",
               "energy mode 'saver': stage 'out' (log) cannot be paused");
  expect_error("energy:\n  modes:\n    - { name: low, below: 30%, scale: { cam.fps: 0.5 } }\n",
               "12:41", "energy mode 'low': 'scale': no stage 'cam'");
  expect_error("energy:\n  modes:\n    - { name: low, below: 30%, scale: { src.label: 0.5 } }\n",
               "12:41", "energy mode 'low': option 'src.label' is not numeric");
  expect_error("energy:\n  modes:\n    - { name: low, below: 30%, scale: { src.burst: 0.5 } }\n",
               "12:41", "energy mode 'low': test.sheddable cannot change 'burst' while it runs");
  expect_error("energy:\n  modes:\n    - { name: low, below: 30%, scale: { src.rate: fast } }\n",
               "12:51", "energy mode 'low': scale of 'src.rate' must be a number > 0");
  expect_error("energy:\n  modes:\n    - { name: low, below: 30%, hold_links: [nope] }\n", "12:45",
               "energy mode 'low': 'hold_links': no stage 'nope'");
  expect_error("energy:\n  modes:\n    - { name: low, below: 30%, shed: [src] }\n", "12:32",
               "unknown energy mode key 'shed'");
}

TEST(EnergyRules, RefusesThresholdsOutOfOrderOrRange) {
  expect_error(
      "energy:\n  modes:\n    - { name: low, below: 30% }\n    - { name: saver, below: 50% }\n",
      "13:29",
      "energy mode 'saver': below 50% comes after a mode below 30%: thresholds out of order");
  expect_error("energy:\n  modes:\n    - { name: low, below: 130% }\n", "12:27",
               "energy mode 'low': 'below' must be a percentage above 0% and at most 100%");
  expect_error("energy:\n  modes:\n    - { name: low, below: 0.3 }\n", "12:27",
               "energy mode 'low': 'below' must be a percentage");
  expect_error("energy:\n  modes:\n    - { name: low, below: 30% }\n  hysteresis: 70%\n", "13:15",
               "energy 'hysteresis' must be a percentage from 0% to 50%");
  expect_error("energy:\n  modes:\n    - { name: normal, below: 30% }\n", "12:15",
               "energy mode name 'normal'");
  expect_error("energy:\n  modes: []\n", "11:10", "energy 'modes' must be a non-empty list");
}

}  // namespace
}  // namespace edgeflow
