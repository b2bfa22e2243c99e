// A memory cgroup per task: the app and every process it starts are charged together, and at
// the limit the kernel's OOM killer ends one of them. RLIMIT_AS, the fallback, is per process
// and counts address space, not memory: a fork bomb of small processes passes it, and a
// runtime that reserves address space (Go, the JVM) fails under it.
//
// Created below this process's own cgroup, so the limits that hold the worker (a systemd
// unit's MemoryMax) hold its tasks too: cgroup v1's memory hierarchy (tested), or cgroup v2
// where this process's cgroup can pass the memory controller to its children (untested; not
// under systemd, where edgeflow's process sits in that cgroup itself).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace edgeflow::iexec {

class MemoryCgroup {
 public:
  // The group `name` (a file name) with `limit_bytes` of memory and no swap beyond it;
  // nullptr with *why (for a warning) when this platform or user cannot make one.
  static std::unique_ptr<MemoryCgroup> create(const std::string& name, int64_t limit_bytes,
                                              std::string* why);
  // Kills what is left in the group (processes the app started that outlived it, where no PID
  // namespace ends them) and removes the group.
  ~MemoryCgroup();
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;

  // cgroup.procs, open for writing: a child writes "0" to it to join before exec.
  int procs_fd() const { return procs_fd_; }
  // The kernel killed a process of the group because the group reached its limit.
  bool oom_killed() const;
  const std::string& path() const { return path_; }

 private:
  MemoryCgroup(std::string path, bool v2, int procs_fd)
      : path_(std::move(path)), v2_(v2), procs_fd_(procs_fd) {}
  std::string path_;
  bool v2_;
  int procs_fd_;
};

}  // namespace edgeflow::iexec
