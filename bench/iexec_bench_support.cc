// iexec_bench's shared helpers (declared in iexec_bench_support.h): statistics, files, task ids.
#include "bench/iexec_bench_support.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace edgeflow::iexec_bench {

bool g_keep = false;

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Files

void write_text(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
  ::chmod(path.c_str(), mode);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail_of(const std::string& path, size_t lines) {
  std::string t = read_text(path);
  size_t at = t.size();
  for (size_t n = 0; n <= lines && at > 0; ++n) {
    size_t p = t.rfind('\n', at - 1);
    if (p == std::string::npos) return t;
    at = p;
  }
  return t.substr(at + 1);
}

// A folder the sandbox can use as root: the app runs as nobody and must reach its task folder.
std::string make_temp_dir(const std::string& under, const std::string& prefix) {
  std::string t = (fs::path(under) / (prefix + "XXXXXX")).string();
  if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp " + t + ": " + std::strerror(errno));
  ::chmod(t.c_str(), 0755);
  return t;
}

crypto::Hash32 task_id(uint64_t n) {
  return crypto::Packed().add_uint256(n).add_uint256(static_cast<uint64_t>(::getpid())).keccak();
}

}  // namespace edgeflow::iexec_bench
