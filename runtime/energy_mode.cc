#include "runtime/energy_mode.h"

namespace edgeflow {

void EnergyMode::set(EnergyActions actions) {
  std::lock_guard<std::mutex> lock(mu_);
  if (actions == actions_) return;
  actions_ = std::move(actions);
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

EnergyActions EnergyMode::get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return actions_;
}

std::string EnergyMode::mode() const {
  std::lock_guard<std::mutex> lock(mu_);
  return actions_.mode;
}

bool EnergyMode::paused(const std::string& stage) const {
  std::lock_guard<std::mutex> lock(mu_);
  return actions_.paused.count(stage) != 0;
}

double EnergyMode::scale(const std::string& stage, const std::string& option) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = actions_.scale.find(stage);
  if (s == actions_.scale.end()) return 1;
  auto o = s->second.find(option);
  return o == s->second.end() ? 1 : o->second;
}

bool EnergyMode::holds_links_from(const std::string& from_stage) const {
  std::lock_guard<std::mutex> lock(mu_);
  return actions_.hold_all_links || actions_.hold_from.count(from_stage) != 0;
}

const EnergyMode& EnergyMode::normal() {
  static const EnergyMode mode;
  return mode;
}

}  // namespace edgeflow
