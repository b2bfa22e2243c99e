// The task's child process between fork and exec (async-signal-safe calls only, no
// allocation), and the seccomp program and Landlock ruleset it applies, built by the parent.
#include "iexec/confine.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include "runtime/lazy_library.h"

// Landlock ABI 3 and 6, newer than Debian 12's headers.
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

namespace edgeflow::iexec::confine {

namespace {

// libseccomp is loaded when the first task's filter is built: a process that runs no task
// does not map it. (seccomp_rule_add is variadic: the _array form here.)
constinit LazyLibrary libseccomp("libseccomp.so.2", "libseccomp2", "the task sandbox's filter");
EF_LAZY_FUNCTION(libseccomp, seccomp_init);
EF_LAZY_FUNCTION(libseccomp, seccomp_rule_add_array);
EF_LAZY_FUNCTION(libseccomp, seccomp_syscall_resolve_name);
EF_LAZY_FUNCTION(libseccomp, seccomp_export_bpf);
EF_LAZY_FUNCTION(libseccomp, seccomp_release);

void child_write(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void child_write_file(const char* path, const char* text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  child_write(fd, text, std::strlen(text));
  ::close(fd);
}

// fork() by the system call: glibc's fork() takes no CLONE_NEWPID, and in the namespace's init
// (a copy of a threaded worker) glibc's fork would take malloc's locks, which another worker
// thread may have held when the init was cloned. The arguments after flags are 0 in every ABI
// order.
long raw_fork(unsigned long flags) { return ::syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0); }

// Closes every fd but those in keep[0..n) (n small, each >= 0 or -1 for none).
void close_all_but(int* keep, int n) {
  for (int i = 1; i < n; ++i) {  // insertion sort: no allocation
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; --j) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  }
  // close_range, or (a kernel before 5.9) one close per fd.
  auto close_from_to = [](unsigned first, unsigned last) {
    if (::close_range(first, last, 0) == 0) return;
    for (unsigned fd = first; fd <= last && fd < 65536; ++fd) ::close(static_cast<int>(fd));
  };
  unsigned from = 0;
  for (int i = 0; i < n; ++i) {
    if (keep[i] < 0 || static_cast<unsigned>(keep[i]) < from) continue;
    if (static_cast<unsigned>(keep[i]) > from)
      close_from_to(from, static_cast<unsigned>(keep[i]) - 1);
    from = static_cast<unsigned>(keep[i]) + 1;
  }
  close_from_to(from, ~0u);
}

// Ignored signals and the blocked mask survive exec; the app starts from the defaults, as it
// would from a shell, whatever the worker process set up.
void default_signals() {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Own process group, and a network namespace when asked; the net_err of the Report.
int32_t isolate(const Plan& p, Report* r) {
  if (::setpgid(0, 0) != 0) {
    r->kind = kFailed;
    r->stage = kStageGroup;
    r->err = errno;
    return -1;
  }
  if (!p.isolate_network) return -1;
  if (p.as_root) return ::unshare(CLONE_NEWNET) == 0 ? 0 : errno;
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return errno;
  // Keep our own ids inside the namespace; if the maps cannot be written the app runs as
  // the overflow user, which still acts on files with our real ids.
  child_write_file("/proc/self/setgroups", "deny");
  child_write_file("/proc/self/gid_map", p.gid_map);
  child_write_file("/proc/self/uid_map", p.uid_map);
  return 0;
}

[[noreturn]] void app_main(const Plan& p, Report r, bool in_namespace) {
  auto fail = [&](int32_t stage, int err) {
    r.kind = kFailed;
    r.stage = stage;
    r.err = err;
    child_write(p.report_fd, &r, sizeof r);
    ::_exit(127);
  };
  default_signals();
  if (!in_namespace) {
    r.net_err = isolate(p, &r);
    if (r.kind == kFailed) fail(r.stage, r.err);
  }
  // "0": the writer itself, also inside a PID namespace; before the ids change, since the
  // group belongs to root.
  if (p.cgroup_fd >= 0) r.cgroup_err = ::write(p.cgroup_fd, "0", 1) == 1 ? 0 : errno;
  if (p.as_root) {
    // Raw syscalls: glibc's set*id wrappers synchronise threads, which a forked child lacks.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) fail(kStageDropPrivileges, errno);
    if (::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0) fail(kStageDropPrivileges, errno);
    if (::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0) {
      fail(kStageDropPrivileges, errno);
    }
  }
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  // Set after the id change, which clears it: the app dies with the thread (or the init) that
  // waits for it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (!in_namespace && ::getppid() != p.parent) ::_exit(127);
  for (const Limit& l : p.limits) {
    if (::setrlimit(l.resource, &l.value) != 0) fail(kStageLimits, errno);
  }
  if (r.cgroup_err != 0 && ::setrlimit(p.address_space.resource, &p.address_space.value) != 0) {
    fail(kStageLimits, errno);
  }
  if (::chdir(p.dir) != 0) fail(kStageChdir, errno);
  if (::dup2(p.in_fd, 0) < 0 || ::dup2(p.out_fd, 1) < 0 || ::dup2(p.err_fd, 2) < 0) {
    fail(kStageFds, errno);
  }
  if (p.landlock_fd >= 0) {
    r.landlock_err = ::syscall(SYS_landlock_restrict_self, p.landlock_fd, 0) == 0 ? 0 : errno;
  }
  if (p.seccomp) {
    r.seccomp_err = ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, p.seccomp, 0, 0) == 0 ? 0 : errno;
  }
  // Close everything else; the report pipe is close-on-exec and goes at exec.
  const int rfd = p.report_fd;
  if ((rfd > 3 && ::close_range(3, static_cast<unsigned>(rfd - 1), 0) != 0) ||
      ::close_range(static_cast<unsigned>(rfd + 1), ~0u, 0) != 0) {
    for (int fd = 3; fd < 65536; ++fd) {
      if (fd != rfd) ::close(fd);
    }
  }
  r.kind = kReady;
  child_write(rfd, &r, sizeof r);
  // ETXTBSY: another thread's fork may briefly hold a copy of our write fd to the app copy.
  for (int attempt = 0; attempt < 200; ++attempt) {
    ::execve(p.app, p.argv, p.envp);
    if (errno != ETXTBSY) break;
    struct timespec ts = {0, 5000000};
    ::nanosleep(&ts, nullptr);
  }
  fail(kStageExec, errno);
  ::_exit(127);
}

// Pid 1 of the task's namespace. It stays root and runs no code of the app's: signals the app
// sends it are dropped by the kernel (an init without handlers), and when it exits the kernel
// kills the rest of the namespace.
[[noreturn]] void init_main(const Plan& p) {
  Report r{};
  r.net_err = r.landlock_err = r.seccomp_err = r.cgroup_err = -1;
  default_signals();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // dies with the thread that waits for it
  // It lives as long as the task: none of the worker's fds may stay open with it (another
  // task's app copy open for writing would make that task's exec fail with ETXTBSY; a socket
  // the worker closed would stay bound).
  int keep[] = {p.in_fd, p.out_fd, p.err_fd, p.report_fd, p.landlock_fd, p.cgroup_fd};
  close_all_but(keep, 6);
  r.net_err = isolate(p, &r);
  if (r.kind == kFailed) {
    child_write(p.report_fd, &r, sizeof r);
    ::_exit(127);
  }
  const long app = raw_fork(0);
  if (app == 0) app_main(p, r, true);
  if (app < 0) {
    r.kind = kFailed;
    r.stage = kStageSpawn;
    r.err = errno;
    child_write(p.report_fd, &r, sizeof r);
    ::_exit(127);
  }
  // Orphans of the namespace are reparented here: reap them until the app itself ends.
  for (;;) {
    int status = 0;
    pid_t w = ::waitpid(-1, &status, 0);
    if (w == app) {
      r.kind = kExited;
      r.status = status;
      child_write(p.report_fd, &r, sizeof r);
      ::_exit(0);
    }
    if (w < 0 && errno != EINTR) ::_exit(127);
  }
}

}  // namespace

Limit make_limit(int resource, int64_t soft, int64_t hard) {
  struct rlimit cur;
  if (::getrlimit(resource, &cur) != 0) cur.rlim_max = RLIM_INFINITY;
  // Without privileges a hard limit cannot be raised: stay within the current one.
  auto clamp = [&](int64_t v) {
    rlim_t want = v < 0 ? RLIM_INFINITY : static_cast<rlim_t>(v);
    if (cur.rlim_max != RLIM_INFINITY && (want == RLIM_INFINITY || want > cur.rlim_max)) {
      return ::geteuid() == 0 ? want : cur.rlim_max;
    }
    return want;
  };
  Limit l{resource, {clamp(soft), clamp(hard)}};
  if (l.value.rlim_cur > l.value.rlim_max) l.value.rlim_cur = l.value.rlim_max;
  return l;
}

pid_t spawn(const Plan& plan, bool pid_namespace, int* ns_err) {
  *ns_err = -1;
  if (pid_namespace) {
    long pid = raw_fork(CLONE_NEWPID);
    if (pid == 0) init_main(plan);
    if (pid > 0) {
      *ns_err = 0;
      return static_cast<pid_t>(pid);
    }
    *ns_err = errno;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    Report r{};
    r.net_err = r.landlock_err = r.seccomp_err = r.cgroup_err = -1;
    app_main(plan, r, false);
  }
  return pid;
}

const struct sock_fprog* syscall_filter(std::string* error) {
  static std::once_flag once;
  static std::vector<struct sock_filter> code;
  static struct sock_fprog prog {};
  static std::string why;
  std::call_once(once, [] {
    try {
      libseccomp.load();  // a missing library is a reason here, not a throw
    } catch (const std::exception& e) {
      why = e.what();
      return;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
      why = "libseccomp could not start a filter";
      return;
    }
    const uint32_t deny = SCMP_ACT_ERRNO(EPERM);
    const scmp_arg_cmp not_unix = SCMP_A0(SCMP_CMP_NE, AF_UNIX);
    int rc = seccomp_rule_add_array(ctx, deny, SCMP_SYS(socket), 1, &not_unix);
    for (const char* name : {"ptrace",
                             "process_vm_readv",
                             "process_vm_writev",
                             "mount",
                             "umount2",
                             "pivot_root",
                             "move_mount",
                             "open_tree",
                             "fsopen",
                             "fsmount",
                             "init_module",
                             "finit_module",
                             "delete_module",
                             "kexec_load",
                             "kexec_file_load",
                             "bpf",
                             "perf_event_open",
                             "setns",
                             "unshare",
                             "keyctl",
                             "add_key",
                             "request_key",
                             "userfaultfd",
                             "io_uring_setup",
                             "io_uring_enter",
                             "io_uring_register",
                             "open_by_handle_at",
                             "swapon",
                             "swapoff",
                             "reboot",
                             "acct",
                             "syslog"}) {
      int nr = seccomp_syscall_resolve_name(name);
      if (nr != __NR_SCMP_ERROR && rc == 0) rc = seccomp_rule_add_array(ctx, deny, nr, 0, nullptr);
    }
    // New namespaces: clone's flags are an argument; clone3's are in memory a filter cannot
    // read, so clone3 says ENOSYS and the C library falls back to clone.
    for (unsigned long ns : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS,
                             CLONE_NEWIPC, CLONE_NEWCGROUP}) {
      if (rc == 0) {
        const scmp_arg_cmp flag = SCMP_A0(SCMP_CMP_MASKED_EQ, ns, ns);
        rc = seccomp_rule_add_array(ctx, deny, SCMP_SYS(clone), 1, &flag);
      }
    }
    if (rc == 0)
      rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, nullptr);
    int fd = rc == 0 ? ::memfd_create("edgeflow-seccomp", MFD_CLOEXEC) : -1;
    if (rc == 0 && fd >= 0 && seccomp_export_bpf(ctx, fd) == 0) {
      off_t size = ::lseek(fd, 0, SEEK_END);
      code.resize(static_cast<size_t>(size) / sizeof(struct sock_filter));
      if (size > 0 && ::pread(fd, code.data(), static_cast<size_t>(size), 0) == size) {
        prog.len = static_cast<unsigned short>(code.size());
        prog.filter = code.data();
      }
    }
    if (fd >= 0) ::close(fd);
    seccomp_release(ctx);
    if (!prog.filter) why = "libseccomp could not build the system-call filter";
  });
  if (!prog.filter) {
    *error = why;
    return nullptr;
  }
  return &prog;
}

int file_ruleset(const std::string& task_dir, const std::vector<std::string>& read_paths,
                 std::string* error, bool* unavailable) {
  *unavailable = false;
  auto why = [](int e) {
    const char* d = strerrordesc_np(e);
    return std::string(d ? d : "error " + std::to_string(e));
  };
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 0) {
    *unavailable = true;
    *error = "no file confinement (Landlock: " + why(errno) + ")";
    return -1;
  }
  const uint64_t read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
  uint64_t write = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                   LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                   LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                   LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                   LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) write |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) write |= LANDLOCK_ACCESS_FS_TRUNCATE;
  // The attribute grew with the ABI (net rights in 4, scopes in 6); the kernel takes the
  // size it knows.
  struct {
    uint64_t handled_access_fs, handled_access_net, scoped;
  } attr{read | write, 0, 0};
  size_t size = sizeof(uint64_t);
  if (abi >= 6) {
    // No signals to processes outside the app's domain (a non-root worker shares its uid),
    // no connecting to abstract Unix sockets of the host's.
    attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
    size = sizeof attr;
  }
  int fd = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (fd < 0) {
    *unavailable = true;
    *error = "no file confinement (Landlock refused a ruleset: " + why(errno) + ")";
    return -1;
  }
  // A folder gets `access`; a file only the file rights among them.
  const uint64_t file_rights = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                               LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_TRUNCATE;
  auto allow = [&](const std::string& path, uint64_t access) {
    int target = ::open(path.c_str(), O_PATH | O_CLOEXEC);
    if (target < 0) {
      if (errno == ENOENT) return true;  // a system folder this machine does not have
      *error = "cannot open " + path + " for the app's file rules: " + why(errno);
      return false;
    }
    struct stat st {};
    if (::fstat(target, &st) == 0 && !S_ISDIR(st.st_mode)) access &= file_rights;
    struct landlock_path_beneath_attr rule {};
    rule.allowed_access = access;
    rule.parent_fd = target;
    bool ok = ::syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) == 0;
    if (!ok) *error = "Landlock refused the rule for " + path + ": " + why(errno);
    ::close(target);
    return ok;
  };
  // Shells open /dev/null to write (and truncate) it.
  bool ok = allow(task_dir, read | write) &&
            allow("/dev/null", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                   (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0));
  for (const std::string& p : read_paths) ok = ok && allow(p, read);
  if (!ok) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace edgeflow::iexec::confine
