#include "runtime/duration.h"

#include <charconv>
#include <cmath>
#include <ctime>

namespace edgeflow {

std::optional<int64_t> parse_duration_us(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  double number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || !std::isfinite(number)) return std::nullopt;
  std::string_view unit(end, text.data() + text.size() - end);
  double scale;
  if (unit.empty() || unit == "s") {
    scale = 1e6;
  } else if (unit == "us") {
    scale = 1;
  } else if (unit == "ms") {
    scale = 1e3;
  } else if (unit == "m" || unit == "min") {
    scale = 60e6;
  } else if (unit == "h") {
    scale = 3600e6;
  } else if (unit == "d") {
    scale = 86400e6;
  } else {
    return std::nullopt;
  }
  double us = number * scale;
  if (std::fabs(us) > 9.2e18) return std::nullopt;
  return static_cast<int64_t>(std::llround(us));
}

std::string format_duration(int64_t us) {
  struct Unit {
    int64_t size;
    const char* name;
  };
  static const Unit kUnits[] = {{86400000000, "d"}, {3600000000, "h"}, {60000000, "m"},
                                {1000000, "s"},     {1000, "ms"},      {1, "us"}};
  if (us == 0) return "0s";
  for (const Unit& u : kUnits)
    if (us % u.size == 0) return std::to_string(us / u.size) + u.name;
  return std::to_string(us) + "us";
}

std::string format_iso8601(int64_t epoch_us) {
  int64_t secs = epoch_us / 1000000;
  int64_t frac = epoch_us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[48];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (frac != 0) {
    char ms[16];
    if (frac % 1000 == 0) {
      snprintf(ms, sizeof ms, ".%03d", static_cast<int>(frac / 1000));
    } else {
      snprintf(ms, sizeof ms, ".%06d", static_cast<int>(frac));
    }
    out += ms;
  }
  out += 'Z';
  return out;
}

}  // namespace edgeflow
