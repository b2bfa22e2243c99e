#include "planner/device_profile.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include "runtime/diagnostics.h"
#include "runtime/options_yaml.h"
#include "runtime/pipeline.h"

namespace edgeflow {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxProfileBytes = 1 << 20;  // a hand-written file

// A number key of a profile: its range (lo excluded when lo_exclusive) and what it means, for
// the hint of an error.
struct NumberKey {
  const char* name;
  double lo, hi;
  bool lo_exclusive, required, integer;
  const char* meaning;
};

const std::vector<NumberKey> kDeviceKeys = {
    {"idle_w", 0, 1e4, false, true, false, "watts the whole board draws idle, e.g. idle_w: 1.4"},
    {"w_per_busy_core", 0, 1e3, false, true, false,
     "extra watts per fully busy core: (watts with every core busy - idle_w) / cores"},
    {"cores", 1, 1024, false, true, true, "number of CPU cores, e.g. cores: 4"},
    {"speed_factor", 0, 100, true, true, false,
     "one core's speed over one core of the machine operators were profiled on, e.g. 0.12"},
};

const std::vector<NumberKey> kNetworkKeys = {
    {"j_per_byte", 0, 1, false, true, false, "joules per byte sent, e.g. j_per_byte: 2.3e-6"},
    {"rx_j_per_byte", 0, 1, false, false, false, "joules per byte received (default j_per_byte)"},
    {"j_per_packet", 0, 10, false, false, false, "joules per packet either way (default 0)"},
    {"tail_j", 0, 1e3, false, false, false, "joules of one radio wake-up and tail (default 0)"},
    {"tail_s", 0, 3600, false, false, false, "seconds the radio stays up after a burst"},
};

std::string number_text(double v) {
  std::ostringstream out;
  out << std::setprecision(10) << v;
  return out.str();
}

class ProfileParser {
 public:
  ProfileParser(const std::string& file, const std::string& name) : diags_(file) {
    profile_.name = name;
    profile_.source = file;
  }

  std::optional<DeviceProfile> parse(const std::string& text, std::string* error) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      SourceMark m =
          e.mark.is_null() ? SourceMark{} : SourceMark{e.mark.line + 1, e.mark.column + 1};
      diags_.add(m, "", "YAML syntax: " + e.msg,
                 "check indentation and that every ':' in a value is quoted");
      return finish(error);
    }
    if (!root.IsMap()) {
      diags_.add(mark_of(root), "", "a device profile must be a map",
                 "start with:\n    idle_w: 1.4\n    w_per_busy_core: 0.575\n    cores: 4\n"
                 "    speed_factor: 0.12\n    networks:\n      wifi: {j_per_byte: 2.3e-6}");
      return finish(error);
    }
    std::vector<std::string> known = {"description", "networks"};
    for (const NumberKey& k : kDeviceKeys) known.push_back(k.name);
    check_keys(root, known, "key");
    if (root["description"].IsDefined()) {
      if (root["description"].IsScalar())
        profile_.description = root["description"].Scalar();
      else
        diags_.add(mark_of(root["description"]), "", "'description' must be text");
    }
    double cores = 1;
    number(root, kDeviceKeys[0], "", &profile_.idle_w);
    number(root, kDeviceKeys[1], "", &profile_.w_per_busy_core);
    number(root, kDeviceKeys[2], "", &cores);
    number(root, kDeviceKeys[3], "", &profile_.speed_factor);
    profile_.cores = static_cast<int>(cores);
    load_networks(root, root["networks"]);
    return finish(error);
  }

 private:
  std::optional<DeviceProfile> finish(std::string* error) {
    if (diags_.empty()) return profile_;
    diags_.sort_by_place();
    if (error) {
      *error = diags_.str();
      if (!error->empty() && error->back() == '\n') error->pop_back();
    }
    return std::nullopt;
  }

  // Unknown and duplicate keys; `owner` (e.g. "network 'wifi'") prefixes the message.
  void check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                  const std::string& what, const std::string& owner = "") {
    const std::string prefix = owner.empty() ? "" : owner + ": ";
    std::set<std::string> seen;
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) {
        diags_.add(mark_of(kv.first), "", prefix + what + " must be a plain name");
        continue;
      }
      const std::string& key = kv.first.Scalar();
      if (!seen.insert(key).second)
        diags_.add(mark_of(kv.first), "", prefix + "duplicate " + what + " '" + key + "'");
      if (std::find(known.begin(), known.end(), key) == known.end())
        diags_.add(mark_of(kv.first), "", prefix + "unknown " + what + " '" + key + "'",
                   suggest(key, known));
    }
  }

  // Reads map[k.name] into *out when present and valid; reports what is wrong otherwise.
  void number(const YAML::Node& map, const NumberKey& k, const std::string& owner, double* out) {
    YAML::Node v = map[k.name];
    std::string what =
        owner.empty() ? "'" + std::string(k.name) + "'" : owner + ": '" + std::string(k.name) + "'";
    if (!v.IsDefined()) {
      if (k.required)
        diags_.add(
            mark_of(map), "",
            (owner.empty() ? "missing " : owner + " has no ") + std::string("'") + k.name + "'",
            std::string("add ") + k.meaning);
      return;
    }
    double d = 0;
    bool ok = v.IsScalar();
    if (ok) {
      try {
        d = v.as<double>();
      } catch (const YAML::Exception&) {
        ok = false;
      }
    }
    if (!ok || !std::isfinite(d)) {
      diags_.add(mark_of(v), "",
                 what + " must be a number" + (v.IsScalar() ? " (got '" + v.Scalar() + "')" : ""),
                 k.meaning);
      return;
    }
    bool below = k.lo_exclusive ? !(d > k.lo) : d < k.lo;
    if (below || d > k.hi || (k.integer && d != std::floor(d))) {
      diags_.add(mark_of(v), "",
                 what + " must be " + (k.integer ? "a whole number " : "") +
                     (k.lo_exclusive ? "> " : "from ") + number_text(k.lo) +
                     (k.lo_exclusive ? " and <= " : " to ") + number_text(k.hi) + " (got " +
                     v.Scalar() + ")",
                 k.meaning);
      return;
    }
    *out = d;
  }

  void load_networks(const YAML::Node& root, const YAML::Node& networks) {
    const std::string example = "networks:\n      wifi: {j_per_byte: 2.3e-6, tail_j: 0.038}";
    if (!networks.IsDefined() || networks.IsNull()) {
      diags_.add(mark_of(root), "", "missing 'networks' (the device's network interfaces)",
                 "add\n    " + example);
      return;
    }
    if (!networks.IsMap() || networks.size() == 0) {
      diags_.add(mark_of(networks), "", "'networks' must be a map of wifi, ethernet, cellular",
                 "write\n    " + example);
      return;
    }
    const std::vector<std::string>& kinds = network_kinds();
    check_keys(networks, kinds, "network");
    for (const auto& kv : networks) {
      if (!kv.first.IsScalar()) continue;
      const std::string& kind = kv.first.Scalar();
      if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) continue;
      const YAML::Node& body = kv.second;
      if (!body.IsMap()) {
        diags_.add(mark_of(body), "", "network '" + kind + "' must be a map",
                   "write " + kind + ": {j_per_byte: ..., j_per_packet: ..., tail_j: ...}");
        continue;
      }
      std::vector<std::string> known;
      for (const NumberKey& k : kNetworkKeys) known.push_back(k.name);
      std::string owner = "network '" + kind + "'";
      check_keys(body, known, "key", owner);
      NetworkEnergy net;
      net.rx_j_per_byte = -1;  // "not given": the send figure below
      number(body, kNetworkKeys[0], owner, &net.j_per_byte);
      number(body, kNetworkKeys[1], owner, &net.rx_j_per_byte);
      number(body, kNetworkKeys[2], owner, &net.j_per_packet);
      number(body, kNetworkKeys[3], owner, &net.tail_j);
      number(body, kNetworkKeys[4], owner, &net.tail_s);
      if (net.rx_j_per_byte < 0) net.rx_j_per_byte = net.j_per_byte;
      profile_.networks[kind] = net;
    }
  }

  Diagnostics diags_;
  DeviceProfile profile_;
};

bool read_text(const std::string& path, std::string* text, std::string* error) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    *error = path + ": no such device profile file";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot read";
    return false;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  *text = buf.str();
  if (text->size() > kMaxProfileBytes) {
    *error = path + ": too large for a device profile (over 1 MiB)";
    return false;
  }
  return true;
}

bool is_path(const std::string& s) {
  return s.find('/') != std::string::npos ||
         (s.size() >= 5 && s.compare(s.size() - 5, 5, ".yaml") == 0);
}

bool valid_profile_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

std::string binary_dir() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : self.parent_path().string();
}

}  // namespace

std::optional<DeviceProfile> parse_device_profile(const std::string& text, const std::string& file,
                                                  const std::string& name, std::string* error) {
  return ProfileParser(file, name).parse(text, error);
}

std::vector<std::string> device_search_path() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("EDGEFLOW_DEVICE_PATH")) {
    std::stringstream in(env);
    std::string dir;
    while (std::getline(in, dir, ':'))
      if (!dir.empty()) dirs.push_back(dir);
  }
  // Beside the binary first, so a relocated install (the .deb's /usr) finds its own files.
  std::string bin = binary_dir();
  if (!bin.empty())
    dirs.push_back((fs::path(bin) / "../share/edgeflow/devices").lexically_normal());
#ifdef EDGEFLOW_DEVICE_INSTALL_DIR
  dirs.push_back(EDGEFLOW_DEVICE_INSTALL_DIR);
#endif
#ifdef EDGEFLOW_DEVICE_SOURCE_DIR
  dirs.push_back(EDGEFLOW_DEVICE_SOURCE_DIR);
#endif
  std::vector<std::string> unique;
  for (const std::string& d : dirs)
    if (std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(d);
  return unique;
}

std::vector<std::string> known_device_profiles() {
  std::set<std::string> names;
  for (const std::string& dir : device_search_path()) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().extension() == ".yaml") names.insert(it->path().stem().string());
  }
  return {names.begin(), names.end()};
}

std::optional<DeviceProfile> load_device_profile(const std::string& name_or_path,
                                                 const std::string& base_dir, std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  std::string path;
  if (is_path(name_or_path)) {
    fs::path p(name_or_path);
    path = (p.is_absolute() || base_dir.empty() ? p : fs::path(base_dir) / p).string();
  } else {
    if (!valid_profile_name(name_or_path)) {
      *error = "device '" + name_or_path +
               "' is neither a profile name (letters, digits, '-', '_') nor a file\n"
               "  hint: name a profile such as rpi-3b, or a file: device: ./my-board.yaml";
      return std::nullopt;
    }
    for (const std::string& dir : device_search_path()) {
      std::error_code ec;
      fs::path candidate = fs::path(dir) / (name_or_path + ".yaml");
      if (fs::is_regular_file(candidate, ec)) {
        path = candidate.string();
        break;
      }
    }
    if (path.empty()) {
      std::vector<std::string> known = known_device_profiles();
      std::string list, dirs;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      for (const std::string& d : device_search_path()) dirs += (dirs.empty() ? "" : ":") + d;
      std::string near = nearest_name(name_or_path, known);
      *error = "unknown device profile '" + name_or_path +
               "'\n  hint: " + (near.empty() ? "" : "did you mean '" + near + "'? ") +
               "known: " + (list.empty() ? "(none)" : list) +
               "; or give a file: device: ./my-board.yaml (searched " + dirs +
               ", extend with EDGEFLOW_DEVICE_PATH)";
      return std::nullopt;
    }
  }
  std::string text;
  if (!read_text(path, &text, error)) {
    if (is_path(name_or_path))
      *error += "\n  hint: a relative path is read from the pipeline file's folder (" +
                (base_dir.empty() ? std::string(".") : base_dir) + ")";
    return std::nullopt;
  }
  return parse_device_profile(text, path, fs::path(path).stem().string(), error);
}

std::string default_network(const DeviceProfile& profile) {
  for (const std::string& kind : network_kinds())
    if (profile.networks.count(kind)) return kind;
  return "";
}

double network_joules(const NetworkEnergy& net, double bytes, double packets) {
  return net.j_per_byte * bytes + net.j_per_packet * packets;
}

}  // namespace edgeflow
