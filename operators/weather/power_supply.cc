#include "operators/weather/power_supply.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <type_traits>

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_text(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  // A read the driver refuses (ENODATA) ends the stream at once: no text, no value.
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t end = text.find_last_not_of(" \t\r\n");
  text.erase(end == std::string::npos ? 0 : end + 1);
  size_t begin = text.find_first_not_of(" \t");
  text.erase(0, begin == std::string::npos ? text.size() : begin);
  if (text.empty()) return std::nullopt;
  return text;
}

template <typename T>
std::optional<T> read_number(const fs::path& file) {
  std::optional<std::string> text = read_text(file);
  if (!text) return std::nullopt;
  T value{};
  const char* last = text->data() + text->size();
  auto [end, ec] = std::from_chars(text->data(), last, value);
  if (ec != std::errc() || end != last) return std::nullopt;
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(value)) return std::nullopt;
  }
  return value;
}

// Microunits to units. Read as doubles: a µWh counter can pass 2^31.
std::optional<double> read_micro(const fs::path& file) {
  std::optional<double> micro = read_number<double>(file);
  if (!micro) return std::nullopt;
  return *micro / 1e6;
}

}  // namespace

std::vector<PowerSupplyReading> read_power_supplies(const std::string& sysfs_root) {
  std::vector<PowerSupplyReading> supplies;
  std::error_code ec;
  const fs::path dir = fs::path(sysfs_root) / "class" / "power_supply";
  // The entries are symlinks into /sys/devices; is_directory follows them.
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    std::error_code type_ec;
    if (!entry.is_directory(type_ec)) continue;
    const fs::path& p = entry.path();
    PowerSupplyReading r;
    r.name = p.filename().string();
    r.type = read_text(p / "type");
    r.status = read_text(p / "status");
    r.capacity_percent = read_number<int>(p / "capacity");
    r.voltage_v = read_micro(p / "voltage_now");
    r.current_a = read_micro(p / "current_now");
    r.power_w = read_micro(p / "power_now");
    r.energy_wh = read_micro(p / "energy_now");
    // USB supplies may report 2 (online, programmable) as well as 1.
    if (std::optional<int> online = read_number<int>(p / "online")) r.online = *online != 0;
    supplies.push_back(std::move(r));
  }
  std::sort(
      supplies.begin(), supplies.end(),
      [](const PowerSupplyReading& a, const PowerSupplyReading& b) { return a.name < b.name; });
  return supplies;
}

}  // namespace edgeflow
