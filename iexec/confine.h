// Confinement of one task's processes, for Sandbox::run: the child between fork and exec, and
// the kernel objects it applies (a seccomp program, a Landlock ruleset), which the parent
// builds beforehand because a child forked from a threaded process may not allocate.
//
// With a PID namespace the child is the namespace's init: it starts the app, reaps whatever
// the app leaves behind, and reports the app's wait status. When init exits (the app ended)
// or is killed (timeout, cancel), the kernel kills every process left in the namespace, so
// nothing of the app outlives its task, whatever it did with setsid or a double fork.
#pragma once

#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace edgeflow::iexec::confine {

enum Stage : int32_t {
  kStageGroup = 1,
  kStageDropPrivileges,
  kStageLimits,
  kStageChdir,
  kStageFds,
  kStageExec,
  kStageSpawn,  // init could not start the app
};

// What the child writes on the report pipe; fixed size, so the parent reads whole records.
struct Report {
  int32_t kind;          // kReady (about to exec), kFailed (did not start), kExited (init)
  int32_t stage;         // Stage, when kFailed
  int32_t err;           // errno, when kFailed
  int32_t net_err;       // -1 not asked, 0 isolated, else unshare's errno
  int32_t landlock_err;  // -1 not asked, 0 applied, else landlock_restrict_self's errno
  int32_t seccomp_err;   // -1 not asked, 0 applied, else the seccomp call's errno
  int32_t status;        // the app's wait status, when kExited
  int32_t cgroup_err;    // -1 not asked, 0 joined the task's memory cgroup, else errno
};
constexpr int32_t kReady = 1;
constexpr int32_t kFailed = 2;
constexpr int32_t kExited = 3;

struct Limit {
  int resource;
  struct rlimit value;
};
// A limit within what this process may set; soft or hard < 0 means none.
Limit make_limit(int resource, int64_t soft, int64_t hard);

struct Plan {
  const char* app;
  char* const* argv;
  char* const* envp;
  const char* dir;
  int in_fd, out_fd, err_fd, report_fd;
  bool isolate_network;
  bool as_root;
  const char* uid_map;
  const char* gid_map;
  uid_t uid;  // the task's user, when as_root
  gid_t gid;
  Limit limits[5];
  // The task's memory cgroup: an fd of its cgroup.procs, which the app joins before exec, or
  // -1. Without one (or when joining fails) memory is limited by address_space instead.
  int cgroup_fd = -1;
  Limit address_space;
  pid_t parent;
  int landlock_fd = -1;                        // a ruleset to restrict the app to, or -1
  const struct sock_fprog* seccomp = nullptr;  // a filter to install, or none
};

// Starts the child. With pid_namespace it is the init of a new PID namespace (root only);
// when that fails (*ns_err = errno) or is not asked (*ns_err = -1), a plain fork that runs the
// app itself in its own process group. Returns the pid, or -1 with errno.
pid_t spawn(const Plan& plan, bool pid_namespace, int* ns_err);

// The seccomp program every app runs under: network sockets (all but AF_UNIX), ptrace and
// cross-process memory access, mount, module, kexec, bpf, perf, keyring, namespace and
// io_uring calls fail with EPERM; 32-bit system calls from a 64-bit app kill it. Built once.
// nullptr with *error set when libseccomp cannot build it.
const struct sock_fprog* syscall_filter(std::string* error);

// A Landlock ruleset (an fd) under which the app may read only below `read_paths` (folders or
// files; missing ones are skipped) and its task folder, write only below its task folder (and
// to /dev/null), and (Landlock ABI 6) signal no process outside. -1 with *error set: with
// *unavailable when the kernel has no Landlock, else a path that cannot be ruled (named).
int file_ruleset(const std::string& task_dir, const std::vector<std::string>& read_paths,
                 std::string* error, bool* unavailable);

}  // namespace edgeflow::iexec::confine
