// AppRegistry::load: the YAML file that lists the apps a node may run (format in app.h).
// Every error names the file and line and says how to fix it.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "iexec/app.h"
#include "iexec/wide_math.h"

namespace edgeflow::iexec {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "1.5" * scale, exactly for integers; nullopt on junk or overflow.
std::optional<int64_t> scaled(std::string_view number, int64_t scale) {
  size_t dot = number.find('.');
  std::string_view whole = number.substr(0, dot);
  std::string_view frac =
      dot == std::string_view::npos ? std::string_view() : number.substr(dot + 1);
  if (whole.empty() && frac.empty()) return std::nullopt;
  if (dot != std::string_view::npos && frac.empty()) return std::nullopt;
  int64_t value = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    if (value > (kMax - (c - '0')) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > kMax / scale) return std::nullopt;
  value *= scale;
  // The fraction, truncated to the unit's resolution (at most 18 digits matter).
  int64_t num = 0, den = 1;
  for (char c : frac) {
    if (c < '0' || c > '9') return std::nullopt;
    if (den <= kMax / 10 / 10) {
      num = num * 10 + (c - '0');
      den *= 10;
    }
  }
  if (num > 0) {
    // num/den < 1, so num * scale / den < scale; the product alone may pass 64 bits.
    const uint64_t part = mul_div_u64(static_cast<uint64_t>(num), static_cast<uint64_t>(scale),
                                      static_cast<uint64_t>(den));
    if (value > kMax - static_cast<int64_t>(part)) return std::nullopt;
    value += static_cast<int64_t>(part);
  }
  return value;
}

std::pair<std::string_view, std::string_view> split_unit(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  std::string_view number = text.substr(0, i);
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return {number, unit};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Bytes: plain digits, or a decimal (KB, MB, GB, TB; 1000) or binary (KiB, MiB, GiB, TiB;
// 1024) unit; "K"/"M"/"G" alone are decimal as in Kubernetes. Case-insensitive.
std::optional<int64_t> parse_size_bytes(std::string_view text) {
  auto [number, unit] = split_unit(text);
  if (number.empty()) return std::nullopt;
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"", 1},
      {"b", 1},
      {"k", 1000},
      {"kb", 1000},
      {"m", 1000000},
      {"mb", 1000000},
      {"g", 1000000000},
      {"gb", 1000000000},
      {"t", 1000000000000},
      {"tb", 1000000000000},
      {"ki", 1ll << 10},
      {"kib", 1ll << 10},
      {"mi", 1ll << 20},
      {"mib", 1ll << 20},
      {"gi", 1ll << 30},
      {"gib", 1ll << 30},
      {"ti", 1ll << 40},
      {"tib", 1ll << 40},
  };
  std::string u = lower(unit);
  for (const auto& [name, scale] : kUnits) {
    if (u == name) return scaled(number, scale);
  }
  return std::nullopt;
}

// Microseconds: a number with a unit (us, ms, s, m/min, h). A bare number is refused: "10"
// could mean seconds or milliseconds.
std::optional<int64_t> parse_duration_micros(std::string_view text) {
  auto [number, unit] = split_unit(text);
  if (number.empty()) return std::nullopt;
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"us", 1},       {"ms", 1000},      {"s", 1000000},
      {"m", 60000000}, {"min", 60000000}, {"h", 3600000000},
  };
  for (const auto& [name, scale] : kUnits) {
    if (unit == name) return scaled(number, scale);
  }
  return std::nullopt;
}

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& what) const {
    fail_at(node.Mark(), what);
  }
  [[noreturn]] void fail_at(const YAML::Mark& mark, const std::string& what) const {
    if (mark.is_null()) throw AppError(file_ + ": " + what);
    throw AppError(file_ + ":" + std::to_string(mark.line + 1) + ": " + what);
  }

  // Every key of `map` must be one of `valid`; else an error naming the nearest valid key.
  void check_keys(const YAML::Node& map, const std::vector<std::string>& valid,
                  const std::string& where) const {
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) fail(it->first, "a key in " + where + " is not a plain name");
      std::string key = it->first.Scalar();
      if (std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
      std::string nearest = valid.front();
      for (const std::string& v : valid) {
        if (edit_distance(key, v) < edit_distance(key, nearest)) nearest = v;
      }
      std::string all;
      for (const std::string& v : valid) all += (all.empty() ? "" : ", ") + v;
      fail(it->first, "unknown key '" + key + "' in " + where + "; did you mean '" + nearest +
                          "'? (valid keys: " + all + ")");
    }
  }

  std::string scalar(const YAML::Node& node, const std::string& what,
                     const std::string& example) const {
    if (!node.IsScalar()) fail(node, what + " must be a single value, e.g. " + example);
    return node.Scalar();
  }

  AppSpec app(const std::string& name, const YAML::Node& node, const fs::path& base) const {
    const std::string where = "app '" + name + "'";
    if (!node.IsMap()) {
      fail(node, where + " must be a map with path and sha256, e.g. { path: " + name +
                     ".sh, sha256: <output of sha256sum " + name + ".sh> }");
    }
    check_keys(node, {"path", "sha256", "args", "limits", "price"}, where);
    AppSpec spec;
    spec.name = name;

    YAML::Node path = node["path"];
    if (!path) fail(node, where + " has no path; add path: <executable, relative to this file>");
    std::string p = scalar(path, where + ": path", "path: forecast/forecast.sh");
    if (p.empty()) fail(path, where + ": path is empty; name the app's executable");
    fs::path resolved(p);
    if (resolved.is_relative()) resolved = base / resolved;
    spec.path = resolved.lexically_normal().string();

    YAML::Node sha = node["sha256"];
    if (!sha) {
      fail(node, where + " has no sha256; add sha256: <output of sha256sum " + spec.path + ">");
    }
    std::string hex = scalar(sha, where + ": sha256", "sha256: 9f2c...");
    std::string_view digits = hex;
    if (digits.substr(0, 2) == "0x" || digits.substr(0, 2) == "0X") digits.remove_prefix(2);
    std::optional<crypto::Hash32> h;
    if (digits.size() == 64) h = crypto::parse_hash32(digits);
    if (!h) {
      fail(sha, where + ": sha256 must be 64 hex digits, got '" + hex +
                    "'; use the first field of: sha256sum " + spec.path);
    }
    spec.sha256 = *h;

    if (YAML::Node args = node["args"]) {
      if (!args.IsSequence()) fail(args, where + ": args must be a list, e.g. args: [\"3\"]");
      for (const YAML::Node& a : args) {
        spec.args.push_back(scalar(a, where + ": each of args", "args: [\"3\", \"--fast\"]"));
      }
    }

    if (YAML::Node price = node["price"]) {
      const std::string text = scalar(price, where + ": price", "price: 10");
      char* end = nullptr;
      errno = 0;
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE || v < 0)
        fail(price, where + ": price must be a whole number >= 0, got '" + text + "'");
      spec.price = v;
    }

    if (YAML::Node limits = node["limits"]) {
      const std::string lw = where + " limits";
      if (!limits.IsMap()) {
        fail(limits, lw + " must be a map, e.g. limits: { cpu: 10s, memory: 64MiB, "
                          "file_size: 1MiB, open_files: 32, timeout: 30s }");
      }
      check_keys(limits, {"cpu", "memory", "file_size", "open_files", "processes", "timeout"}, lw);
      AppLimits& l = spec.limits;
      if (YAML::Node n = limits["cpu"]) {
        int64_t us = duration(n, lw + ": cpu");
        l.cpu_seconds = std::max<int64_t>(1, (us + 999999) / 1000000);  // whole seconds, up
      }
      if (YAML::Node n = limits["timeout"]) l.timeout_us = duration(n, lw + ": timeout");
      if (YAML::Node n = limits["memory"]) l.memory_bytes = size(n, lw + ": memory");
      if (YAML::Node n = limits["file_size"]) l.file_bytes = size(n, lw + ": file_size");
      auto whole = [&](const char* key, int64_t least) {
        YAML::Node n = limits[key];
        std::string s = scalar(n, lw + ": " + key, std::string(key) + ": 32");
        std::optional<int64_t> v = scaled(s, 1);
        if (!v || *v < least || s.find('.') != std::string::npos) {
          fail(n, lw + ": " + key + " must be a whole number of at least " + std::to_string(least) +
                      ", got '" + s + "'");
        }
        return *v;
      };
      if (limits["open_files"]) l.open_files = whole("open_files", 4);
      if (limits["processes"]) l.processes = whole("processes", 1);
    }
    return spec;
  }

  int64_t duration(const YAML::Node& node, const std::string& what) const {
    std::string s = scalar(node, what, "10s");
    std::optional<int64_t> v = parse_duration_micros(s);
    if (!v || *v <= 0) {
      fail(node, what + ": bad duration '" + s +
                     "'; write a positive number with a unit: 10s, 500ms, 2m, 1h");
    }
    return *v;
  }

  int64_t size(const YAML::Node& node, const std::string& what) const {
    std::string s = scalar(node, what, "64MiB");
    std::optional<int64_t> v = parse_size_bytes(s);
    if (!v || *v <= 0) {
      fail(node, what + ": bad size '" + s +
                     "'; write a positive number of bytes, optionally with a unit: 64MiB, 1MB, "
                     "512KiB, 1048576");
    }
    return *v;
  }

 private:
  std::string file_;
};

}  // namespace

AppRegistry AppRegistry::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw AppError("cannot read app registry " + path + ": " + std::strerror(errno) +
                   "; check the path and its permissions");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw AppError("cannot read app registry " + path + ": " + std::strerror(errno));
  }
  Loader loader(path);
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    loader.fail_at(e.mark, "malformed YAML: " + e.msg + "; fix the syntax at this line");
  }
  fs::path base = fs::absolute(fs::path(path)).parent_path();
  AppRegistry registry;
  if (root.IsNull()) return registry;  // an empty file: no apps
  if (!root.IsMap()) {
    loader.fail(root, "an app registry is a map with one key, apps: { name: { path, sha256 } }");
  }
  try {
    loader.check_keys(root, {"apps"}, "the registry");
    YAML::Node apps = root["apps"];
    if (!apps || apps.IsNull()) return registry;
    if (!apps.IsMap()) {
      loader.fail(apps, "apps must be a map from app name to { path, sha256, args, limits }");
    }
    std::set<std::string> seen;
    for (auto it = apps.begin(); it != apps.end(); ++it) {
      std::string name = loader.scalar(it->first, "an app name", "forecast");
      if (name.empty()) loader.fail(it->first, "an app name is empty");
      if (!seen.insert(name).second) {
        loader.fail(it->first, "app '" + name + "' is listed twice; keep one entry");
      }
      registry.add(loader.app(name, it->second, base));
    }
  } catch (const YAML::Exception& e) {
    // A node of an unexpected shape that the checks above did not catch.
    loader.fail_at(e.mark, e.msg);
  }
  return registry;
}

const AppSpec* AppRegistry::find(const std::string& name) const {
  for (const AppSpec& app : apps_) {
    if (app.name == name) return &app;
  }
  return nullptr;
}

std::vector<std::string> AppRegistry::names() const {
  std::vector<std::string> out;
  for (const AppSpec& app : apps_) out.push_back(app.name);
  return out;
}

}  // namespace edgeflow::iexec
