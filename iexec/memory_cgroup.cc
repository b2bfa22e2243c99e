#include "iexec/memory_cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "iexec/sandbox_files.h"

namespace edgeflow::iexec {

namespace {

using sandbox::err_text;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

bool write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int saved = errno;
  ::close(fd);
  errno = saved;
  return ok;
}

// The number after `key ` in a flat-keyed cgroup file (memory.events, memory.oom_control).
int64_t keyed_value(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  int64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

struct OwnGroup {
  std::string dir;  // this process's cgroup folder in the hierarchy with the memory controller
  bool v2 = false;
};

// Where this process is (/proc/self/cgroup: "4:memory:/a/b" for v1, "0::/a/b" for v2), seen
// through where each hierarchy is mounted (/proc/self/mountinfo: "... ROOT MOUNTPOINT ... -
// TYPE SOURCE OPTIONS"). v1's memory hierarchy wins on a hybrid system, as it holds the
// controller there.
std::optional<OwnGroup> own_group(std::string* why) {
  std::string v1_path, v2_path;
  bool have_v1 = false, have_v2 = false;
  std::ifstream cg("/proc/self/cgroup");
  for (std::string line; std::getline(cg, line);) {
    size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string id = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1);
    for (const std::string& c : split(controllers, ',')) {
      if (c == "memory") have_v1 = true, v1_path = line.substr(b + 1);
    }
    if (id == "0" && controllers.empty()) have_v2 = true, v2_path = line.substr(b + 1);
  }
  std::optional<OwnGroup> v1, v2;
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);) {
    std::vector<std::string> f = split(line, ' ');
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash < 5 || dash + 3 >= f.size()) continue;
    const std::string &root = f[3], &mount = f[4], &type = f[dash + 1], &opts = f[dash + 3];
    auto below = [&](const std::string& path) -> std::optional<std::string> {
      if (root == "/") return mount + (path == "/" ? "" : path);
      if (path.compare(0, root.size(), root) == 0) return mount + path.substr(root.size());
      return std::nullopt;  // this process's group is not visible in this mount
    };
    if (type == "cgroup" && have_v1 && !v1) {
      for (const std::string& o : split(opts, ',')) {
        if (o != "memory") continue;
        if (auto d = below(v1_path)) v1 = OwnGroup{*d, false};
      }
    }
    if (type == "cgroup2" && have_v2 && !v2) {
      if (auto d = below(v2_path)) v2 = OwnGroup{*d, true};
    }
  }
  if (v1) return v1;
  if (v2 && ::access((v2->dir + "/cgroup.controllers").c_str(), R_OK) == 0) {
    std::ifstream in(v2->dir + "/cgroup.controllers");
    std::string c;
    while (in >> c) {
      if (c == "memory") return v2;
    }
    *why = "cgroup v2 without the memory controller in " + v2->dir;
    return std::nullopt;
  }
  *why = "no cgroup memory controller is mounted";
  return std::nullopt;
}

}  // namespace

std::unique_ptr<MemoryCgroup> MemoryCgroup::create(const std::string& name, int64_t limit_bytes,
                                                   std::string* why) {
  std::optional<OwnGroup> own = own_group(why);
  if (!own) return nullptr;
  const std::string parent = own->dir + "/edgeflow-tasks";
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
    *why = "cannot create the cgroup " + parent + ": " + err_text(errno);
    return nullptr;
  }
  // v2 gives a group the memory controller only when its parent passes it down.
  if (own->v2 && !write_text(parent + "/cgroup.subtree_control", "+memory")) {
    *why = "cgroup v2: cannot enable the memory controller in " + parent + ": " + err_text(errno) +
           " (edgeflow's own cgroup must pass it to its children, which cgroup v2 refuses while "
           "edgeflow's process is in it; not yet arranged)";
    return nullptr;
  }
  const std::string dir = parent + "/" + name;
  if (::mkdir(dir.c_str(), 0755) != 0) {
    *why = "cannot create a task's cgroup in " + parent + ": " + err_text(errno);
    return nullptr;
  }
  const std::string limit = std::to_string(limit_bytes);
  bool ok = own->v2 ? write_text(dir + "/memory.max", limit)
                    : write_text(dir + "/memory.limit_in_bytes", limit);
  if (ok) {
    // No swap beyond the limit, where swap is accounted (it is not always).
    if (own->v2) {
      write_text(dir + "/memory.swap.max", "0");
    } else if (::access((dir + "/memory.memsw.limit_in_bytes").c_str(), W_OK) == 0) {
      write_text(dir + "/memory.memsw.limit_in_bytes", limit);
    }
  }
  int procs = ok ? ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC) : -1;
  if (procs >= 0 && procs < 3) {  // never 0-2, which the child's dup2 of stdio replaces
    int high = ::fcntl(procs, F_DUPFD_CLOEXEC, 3);
    ::close(procs);
    procs = high;
  }
  if (procs < 0) {
    *why = "cannot set the memory limit of a task's cgroup in " + parent + ": " + err_text(errno);
    ::rmdir(dir.c_str());
    return nullptr;
  }
  return std::unique_ptr<MemoryCgroup>(new MemoryCgroup(dir, own->v2, procs));
}

MemoryCgroup::~MemoryCgroup() {
  ::close(procs_fd_);
  // A group is removable once empty. Each round kills what is in it (a process forking as
  // we read is caught in a later round); the killed may take a moment to exit.
  const bool kill_file = v2_ && write_text(path_ + "/cgroup.kill", "1");
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (::rmdir(path_.c_str()) == 0 || errno != EBUSY) return;
    if (!kill_file) {
      std::ifstream procs(path_ + "/cgroup.procs");
      for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
    }
    struct timespec ts = {0, 2000000};
    ::nanosleep(&ts, nullptr);
  }
}

bool MemoryCgroup::oom_killed() const {
  return v2_ ? keyed_value(path_ + "/memory.events", "oom_kill") > 0
             : keyed_value(path_ + "/memory.oom_control", "oom_kill") > 0;
}

}  // namespace edgeflow::iexec
