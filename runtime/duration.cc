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

namespace {
// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}
}  // namespace

std::optional<int64_t> parse_iso8601_us(std::string_view s) {
  size_t i = 0;
  auto digits = [&](size_t n, int64_t& value) {
    if (i + n > s.size()) return false;
    value = 0;
    for (size_t k = 0; k < n; ++k) {
      char c = s[i + k];
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    i += n;
    return true;
  };
  auto literal = [&](char c) {
    if (i >= s.size() || s[i] != c) return false;
    ++i;
    return true;
  };
  int64_t year, month, day, hour = 0, minute = 0, second = 0, frac_us = 0, offset_min = 0;
  if (!digits(4, year) || !literal('-') || !digits(2, month) || !literal('-') || !digits(2, day))
    return std::nullopt;
  if (i < s.size() && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
    ++i;
    if (!digits(2, hour) || !literal(':') || !digits(2, minute)) return std::nullopt;
    if (literal(':')) {
      if (!digits(2, second)) return std::nullopt;
      if (literal('.')) {
        size_t begin = i;
        for (int64_t scale = 100000; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10)
          frac_us += (s[i] - '0') * scale;
        if (i == begin) return std::nullopt;
      }
    }
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
      ++i;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      int sign = s[i] == '-' ? -1 : 1;
      ++i;
      int64_t oh, om;
      if (!digits(2, oh) || !literal(':') || !digits(2, om) || oh > 23 || om > 59)
        return std::nullopt;
      offset_min = sign * (oh * 60 + om);
    }
  }
  if (i != s.size()) return std::nullopt;
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1] ||
      (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
                    offset_min * 60;
  return seconds * 1'000'000 + frac_us;
}

int64_t replay_due_us(int64_t wall_start_us, double event_offset_us, double speed) {
  double wall = std::ceil(event_offset_us / speed);
  if (!(wall < 9e18)) return INT64_MAX;
  return wall_start_us + static_cast<int64_t>(wall);
}

}  // namespace edgeflow
