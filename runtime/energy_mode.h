// What a node's energy mode sheds, as the running operators see it. The edge service picks a
// mode from the battery's charge and the pipeline's `energy:` rules (runtime/energy_rules.h)
// and sets it here; operators read it through Context::energy() and act on the stages the
// mode names: a camera lowers its frame rate, an iExec worker stops taking tasks, a link
// sender keeps its frames in the spool. A part under plain `edgeflow run` stays in "normal".
//
// Thread-safe: the service sets it from its own thread, operators read it from theirs (a link
// sender's publishing thread included). Reads are a mutex and a lookup: call them per turn or
// per frame, not per message; generation() is a cheap test for "did anything change".
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

namespace edgeflow {

// The actions of one mode, with those of the modes above it already folded in.
struct EnergyActions {
  std::string mode = "normal";   // the mode's name; "normal" sheds nothing
  std::set<std::string> paused;  // stage ids that stop taking new work
  // stage id -> option -> factor (fps 10 x 0.5 = 5 frames a second).
  std::map<std::string, std::map<std::string, double>> scale;
  bool hold_all_links = false;      // every spooled link this node sends on
  std::set<std::string> hold_from;  // or only the links carrying these stages' output

  bool operator==(const EnergyActions& o) const {
    return mode == o.mode && paused == o.paused && scale == o.scale &&
           hold_all_links == o.hold_all_links && hold_from == o.hold_from;
  }
};

class EnergyMode {
 public:
  void set(EnergyActions actions);
  EnergyActions get() const;
  // Changes with every set() that changes something.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  std::string mode() const;
  bool paused(const std::string& stage) const;
  // The factor for a stage's option; 1 when the mode does not name it.
  double scale(const std::string& stage, const std::string& option) const;
  // Whether links carrying `from_stage`'s output are held (frames stay in the spool).
  bool holds_links_from(const std::string& from_stage) const;

  // The mode of a part run outside a service: "normal", never changed.
  static const EnergyMode& normal();

 private:
  mutable std::mutex mu_;
  EnergyActions actions_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace edgeflow
