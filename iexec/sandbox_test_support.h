// Helpers shared by the sandbox tests: files, and the processes a task app left behind.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace edgeflow::iexec::testing {

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Live processes (zombies excluded) whose command line holds `needle`. Host pids: an app's
// own $! is a pid in its namespace, which means nothing out here.
inline std::vector<pid_t> processes_with(const std::string& needle) {
  std::vector<pid_t> found;
  DIR* proc = ::opendir("/proc");
  if (!proc) return found;
  while (struct dirent* e = ::readdir(proc)) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    const std::filesystem::path dir = std::filesystem::path("/proc") / e->d_name;
    std::string cmd = read_text(dir / "cmdline");
    std::string stat = read_text(dir / "stat");
    size_t p = stat.rfind(')');
    bool zombie = p != std::string::npos && p + 2 < stat.size() && stat[p + 2] == 'Z';
    if (!zombie && cmd.find(needle) != std::string::npos) found.push_back(pid);
  }
  ::closedir(proc);
  return found;
}

}  // namespace edgeflow::iexec::testing
