#include "runtime/plugins.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "plugin_abi.h"  // generated: EDGEFLOW_PLUGIN_ABI
#include "runtime/registry.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

// The folder of the running binary: plugins live at ../lib/edgeflow/plugins from it.
std::string binary_dir() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : self.parent_path().string();
}

// The plugin ABI a plugin file was built for (runtime/plugin_abi_tag.cc), read from its bytes
// so that none of its code runs first; "" when it carries none (built without the tag). The
// file is mapped, not read through a stream: a plugin with debug information is several MB,
// and a byte-wise read of it cost more start-up than loading OpenCV.
std::string plugin_abi_of(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat st {};
  void* map = MAP_FAILED;
  if (::fstat(fd, &st) == 0 && st.st_size > 0)
    map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return "";
  const std::string_view data(static_cast<const char*>(map), static_cast<size_t>(st.st_size));
  // The tag is the key, 16 hex digits and ';': other copies of the key (a plugin that links
  // this file's code holds it bare) are passed over.
  const std::string_view key = "edgeflow-plugin-abi:";
  std::string abi;
  for (size_t at = data.find(key); at != std::string_view::npos; at = data.find(key, at + 1)) {
    const size_t from = at + key.size();
    if (from + 17 > data.size() || data[from + 16] != ';') continue;
    const std::string_view tag = data.substr(from, 16);
    if (tag.find_first_not_of("0123456789abcdef") == std::string_view::npos) {
      abi = tag;
      break;
    }
  }
  ::munmap(map, static_cast<size_t>(st.st_size));
  return abi;
}

// Empty when `path` may be loaded; otherwise why not.
std::string abi_mismatch(const std::string& path) {
  const std::string abi = plugin_abi_of(path);
  if (abi.empty() || abi == EDGEFLOW_PLUGIN_ABI) return "";
  return "it was built against other edgeflow headers (plugin ABI " + abi + ", this edgeflow " +
         EDGEFLOW_PLUGIN_ABI + "); rebuild it against this edgeflow";
}

std::vector<std::pair<std::string, std::string>> read_manifest(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> ops;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t tab = line.find('\t');
    ops.emplace_back(line.substr(0, tab), tab == std::string::npos ? "" : line.substr(tab + 1));
  }
  return ops;
}

}  // namespace

PluginCatalog& PluginCatalog::global() {
  static PluginCatalog catalog;
  return catalog;
}

std::vector<std::string> PluginCatalog::search_path() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("EDGEFLOW_PLUGIN_PATH")) {
    std::stringstream in(env);
    std::string dir;
    while (std::getline(in, dir, ':'))
      if (!dir.empty()) dirs.push_back(dir);
  }
  std::string bin = binary_dir();
  if (!bin.empty()) dirs.push_back(bin + "/../lib/edgeflow/plugins");
#ifdef EDGEFLOW_PLUGIN_INSTALL_DIR
  dirs.push_back(EDGEFLOW_PLUGIN_INSTALL_DIR);
#endif
  return dirs;
}

void PluginCatalog::scan_locked() {
  if (scanned_) return;
  scanned_ = true;
  std::set<std::string> seen;  // the same file reached through two folders counts once
  for (const std::string& dir : search_path()) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".so") files.push_back(e.path());
    std::sort(files.begin(), files.end());  // a stable order: the first of a name wins
    for (const fs::path& f : files) {
      std::string real = fs::weakly_canonical(f, ec).string();
      if (!seen.insert(real).second) continue;
      Plugin p;
      p.path = f.lexically_normal().string();
      const std::string manifest = p.path + ".ops";
      p.indexed = fs::exists(manifest, ec);
      if (p.indexed) p.ops = read_manifest(manifest);
      for (const auto& [op, summary] : p.ops) by_op_.emplace(op, plugins_.size());
      plugins_.push_back(std::move(p));
    }
  }
}

bool PluginCatalog::load_locked(Plugin& p) {
  if (p.loaded) return true;
  if (!p.error.empty()) return false;
  p.error = abi_mismatch(p.path);
  if (!p.error.empty()) return false;
  // RTLD_LOCAL: a plugin's own symbols stay its own; it finds the runtime's in the binary.
  if (!dlopen(p.path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    const char* e = dlerror();
    p.error = e ? e : "unknown dlopen failure";
    return false;
  }
  p.loaded = true;
  return true;
}

bool PluginCatalog::load_for(const std::string& op, std::string* why) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  scan_locked();
  auto it = by_op_.find(op);
  if (it != by_op_.end()) {
    Plugin& p = plugins_[it->second];
    if (load_locked(p)) return true;
    if (why)
      *why = "operator '" + op + "' is in the plugin " + p.path +
             ", which cannot be loaded: " + p.error +
             " (reinstall edgeflow, or check EDGEFLOW_PLUGIN_PATH)";
    return false;
  }
  // Plugins without a manifest (built out of tree): one of them may have it.
  bool any = false;
  std::string refused;  // unindexed plugins that could not load: one may have been it
  for (Plugin& p : plugins_) {
    if (p.indexed || p.loaded) continue;
    if (p.error.empty()) any |= load_locked(p);
    if (!p.error.empty()) refused += (refused.empty() ? "" : "; ") + p.path + ": " + p.error;
  }
  if (!any && !refused.empty() && why) {
    *why = "a plugin that may hold operator '" + op + "' cannot be loaded: " + refused;
  } else if (!any && plugins_.empty() && why) {
    std::string dirs;
    for (const std::string& d : search_path()) dirs += (dirs.empty() ? "" : ", ") + d;
    *why = "no operator plugins were found (searched " + dirs +
           "); set EDGEFLOW_PLUGIN_PATH to the folder of edgeflow's plugins";
  }
  return any;
}

bool PluginCatalog::load_file(const std::string& path, std::string* why) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  scan_locked();
  std::error_code ec;
  const std::string real = fs::weakly_canonical(path, ec).string();
  for (Plugin& p : plugins_) {
    if (fs::weakly_canonical(p.path, ec).string() != real) continue;
    if (load_locked(p)) return true;
    if (why) *why = p.error;
    return false;
  }
  Plugin p;
  p.path = path;
  bool ok = load_locked(p);
  if (!ok && why) *why = p.error;
  plugins_.push_back(std::move(p));
  return ok;
}

void PluginCatalog::load_unindexed() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  scan_locked();
  for (Plugin& p : plugins_)
    if (!p.indexed) load_locked(p);
}

std::map<std::string, std::string> PluginCatalog::indexed_ops() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  scan_locked();
  std::map<std::string, std::string> out;
  for (const Plugin& p : plugins_)
    for (const auto& [op, summary] : p.ops) out.emplace(op, summary);
  return out;
}

std::vector<std::string> PluginCatalog::load_all() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  scan_locked();
  std::vector<std::string> errors;
  for (Plugin& p : plugins_)
    if (!load_locked(p)) errors.push_back(p.path + ": " + p.error);
  return errors;
}

bool write_plugin_manifest(const std::string& plugin, const std::string& out, std::string* why) {
  const std::vector<std::string> before = Registry::global().loaded_names();
  if (std::string m = abi_mismatch(plugin); !m.empty()) {
    *why = "cannot load " + plugin + ": " + m;
    return false;
  }
  if (!dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    const char* e = dlerror();
    *why = "cannot load " + plugin + ": " + (e ? e : "unknown dlopen failure");
    return false;
  }
  std::string text = "# operators of " + fs::path(plugin).filename().string() +
                     ", written by `edgeflow plugin-manifest`: name<TAB>summary\n";
  int n = 0;
  for (const std::string& name : Registry::global().loaded_names()) {
    if (std::binary_search(before.begin(), before.end(), name)) continue;
    text += name + "\t" + Registry::global().summary(name) + "\n";
    ++n;
  }
  if (n == 0) {
    *why = plugin + " registers no operator (EF_REGISTER_OPERATOR in its sources?)";
    return false;
  }
  std::ofstream file(out, std::ios::trunc);
  file << text;
  file.close();
  if (!file) {
    *why = "cannot write " + out;
    return false;
  }
  return true;
}

}  // namespace edgeflow
