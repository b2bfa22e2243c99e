// Sandbox::run: one task in its own folder, as a checked copy of the app, confined (see
// confine.h: user nobody, PID and network namespaces, seccomp, Landlock, resource limits) with
// a wall-clock timeout; then the iExec result (computed.json) or a deterministic error.txt.
//
// Throws AppError only when the node itself cannot set up a task: work_root or the task folder
// cannot be created, the task files cannot be written or handed to nobody (65534), or
// pipe/fork/open fail. Everything the app or the task's content causes is a RunResult.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "iexec/app.h"
#include "iexec/confine.h"

namespace edgeflow::iexec {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

constexpr uid_t kNobody = 65534;
constexpr int64_t kMaxComputedJson = 16 << 20;

std::string err_text(int err) {
  const char* d = strerrordesc_np(err);  // thread-safe, unlike strerror
  return d ? d : "error " + std::to_string(err);
}

std::string signal_text(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return std::to_string(sig) + (abbrev ? std::string(" (SIG") + abbrev + ")" : "");
}

std::string duration_text(int64_t us) {
  if (us % 1000000 == 0) return std::to_string(us / 1000000) + "s";
  if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
  return std::to_string(us) + "us";
}

// A string the app chose, made safe for a one-line message.
std::string one_line(const std::string& s, size_t max = 200) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  return out;
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
};

// Reads a regular file whole from `fd` (which it closes); nullopt with *err set when fd < 0
// (from errno), the file is not regular, larger than `max`, or unreadable.
std::optional<std::string> read_fd(int fd, int64_t max, int* err) {
  if (fd < 0) {
    *err = errno;
    return std::nullopt;
  }
  Fd owner(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    *err = errno;
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    *err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    return std::nullopt;
  }
  if (st.st_size > max) {
    *err = EFBIG;
    return std::nullopt;
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno;
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > max) {
      *err = EFBIG;
      return std::nullopt;
    }
  }
  return out;
}

// Opens `name` in the folder `dirfd` read-only, without following a symlink as its last
// component and without blocking on a FIFO the app left behind.
int open_in(int dirfd, const std::string& name, int extra = 0) {
  return ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | extra);
}

int write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    done += static_cast<size_t>(n);
  }
  return 0;
}

void write_file(const std::string& path, const std::string& bytes, mode_t mode) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.fd < 0) throw AppError("cannot create " + path + ": " + err_text(errno));
  if (int e = write_all(fd.fd, bytes)) throw AppError("cannot write " + path + ": " + err_text(e));
  if (::close(std::exchange(fd.fd, -1)) != 0) {
    throw AppError("cannot write " + path + ": " + err_text(errno));
  }
}

// An fd that is none of 0, 1, 2, so the child's dup2 onto them cannot clobber another.
int high_fd(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

// Removal of what the app wrote, relative to folder fds and never through a symlink: an app
// that swaps a folder for a link to /etc only gets its link removed.
void remove_at(int dirfd, const std::string& name);

void remove_contents(int fd) {
  struct stat st;
  if (::fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700) ::fchmod(fd, st.st_mode | 0700);
  int listing = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  DIR* d = listing < 0 ? nullptr : ::fdopendir(listing);
  if (!d) {
    if (listing >= 0) ::close(listing);
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  for (const std::string& name : names) remove_at(fd, name);
}

void remove_at(int dirfd, const std::string& name) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return;
  Fd fd(open_in(dirfd, name, O_DIRECTORY));
  if (fd.fd < 0) {
    // A folder the app made unreadable (chmod 000); only stops a worker that is not root.
    struct stat st;
    if (errno != EACCES || ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode) || ::fchmodat(dirfd, name.c_str(), 0700, AT_SYMLINK_NOFOLLOW) != 0) {
      return;
    }
    fd.reset(open_in(dirfd, name, O_DIRECTORY));
    if (fd.fd < 0) return;
  }
  remove_contents(fd.fd);
  fd.reset();
  ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR);
}

void remove_tree(const fs::path& path) {
  Fd parent(::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (parent.fd >= 0) remove_at(parent.fd, path.filename().string());
}

bool within(const fs::path& p, const fs::path& root) {
  return std::mismatch(root.begin(), root.end(), p.begin(), p.end()).first == root.end();
}

enum class Lookup { kFound, kOutside, kMissing, kUnreadable };

// Opens `rel` below the folder `out_fd` (IEXEC_OUT at `out_dir`). Symlinks are followed only
// while they stay below (absolute ones are refused), and the kernel walks the path itself, so
// a process the app left behind cannot swap a component for a link between check and use.
int open_beneath(int out_fd, const std::string& out_dir, const std::string& rel, Lookup* how) {
  *how = Lookup::kFound;
#ifdef SYS_openat2
  struct open_how oh;
  std::memset(&oh, 0, sizeof oh);
  oh.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
  oh.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, out_fd, rel.c_str(), &oh, sizeof oh));
  if (fd >= 0) return fd;
  if (errno != ENOSYS && errno != EPERM) {  // EPERM: a seccomp filter that does not know it
    *how = errno == EXDEV    ? Lookup::kOutside
           : errno == ENOENT ? Lookup::kMissing
                             : Lookup::kUnreadable;
    return -1;
  }
#else
  (void)out_fd;
#endif
  // Kernels before 5.6: resolve, check, then open without following the last component.
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::path(out_dir) / rel, ec);
  if (ec || !within(resolved, out_dir)) {
    *how = Lookup::kOutside;
    return -1;
  }
  int fd2 = ::open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd2 < 0) *how = errno == ENOENT ? Lookup::kMissing : Lookup::kUnreadable;
  return fd2;
}

// sha256 of an open file, streamed through /proc so it is the file already opened; read whole
// when /proc is not there.
std::optional<crypto::Hash32> sha256_fd(int fd) {
  try {
    return crypto::sha256_file("/proc/self/fd/" + std::to_string(fd));
  } catch (const crypto::CryptoError&) {
  }
  int err = 0;
  std::optional<std::string> bytes = read_fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0), INT64_MAX, &err);
  if (!bytes) return std::nullopt;
  return crypto::sha256(*bytes);
}

std::string last_stderr_line(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.fd < 0) return "";
  struct stat st;
  std::string s(4096, '\0');
  ssize_t n = -1;
  if (::fstat(fd.fd, &st) == 0 && S_ISREG(st.st_mode)) {
    n = ::pread(fd.fd, s.data(), s.size(), std::max<off_t>(0, st.st_size - 4096));
  }
  s.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t nl = s.find_last_of('\n');
  return one_line(nl == std::string::npos ? s : s.substr(nl + 1));
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The task folder; removed on the way out unless kept.
struct TaskDir {
  fs::path path;
  bool keep = false;
  ~TaskDir() {
    if (!path.empty() && !keep) remove_tree(path);
  }
};

RunResult refused(std::string cause) {
  RunResult r;
  r.outcome = RunOutcome::kRefused;
  r.cause = std::move(cause);
  return r;
}

}  // namespace

struct SandboxWarnings {
  std::mutex mu;
  std::set<std::string> said;
};

bool valid_input_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

Sandbox::Sandbox(SandboxOptions options)
    : options_(std::move(options)), warned_(std::make_shared<SandboxWarnings>()) {}

RunResult Sandbox::run(const RunRequest& request, const std::atomic<bool>* cancel) {
  const AppSpec* app = request.app;
  if (!app) return refused("no app given to the sandbox");
  const std::string who = "app '" + app->name + "'";

  // ---- checks that refuse the task before anything is created ----
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const std::string& name = request.inputs[i].name;
    if (!valid_input_name(name)) {
      return refused("bad input file name '" + one_line(name) +
                     "': a plain file name is needed (no '/', not empty, '.' or '..')");
    }
    for (size_t j = 0; j < i; ++j) {
      if (request.inputs[j].name == name) {
        return refused("input file name '" + one_line(name) + "' is given twice");
      }
    }
  }
  // The executable is read once; the bytes checked are the bytes run (no check/use gap).
  int err = 0;
  std::optional<std::string> exe =
      read_fd(::open(app->path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK), INT64_MAX, &err);
  if (!exe) {
    return refused(who + ": cannot read its executable " + app->path + ": " + err_text(err) +
                   "; install it on this node or remove the app from the registry");
  }
  crypto::Hash32 actual = crypto::sha256(*exe);
  if (actual != app->sha256) {
    return refused("sha256 mismatch for " + who + " (" + app->path + "): registered " +
                   app->sha256.hex() + ", file has " + actual.hex() +
                   "; re-register it with sha256sum " + app->path + " if the change is yours");
  }

  // ---- the task folder ----
  std::error_code ec;
  fs::create_directories(options_.work_root, ec);
  if (ec) {
    throw AppError("cannot create the sandbox work_root " + options_.work_root + ": " +
                   ec.message() + "; point SandboxOptions.work_root at a writable folder");
  }
  std::string tmpl =
      (fs::path(options_.work_root) / (request.taskid.hex().substr(2) + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) {
    throw AppError("cannot create a task folder in " + options_.work_root + ": " + err_text(errno));
  }
  TaskDir task;
  task.keep = options_.keep_work_dirs;
  task.path = tmpl;
  task.path = fs::canonical(tmpl, ec);  // IEXEC_OUT without symlinks, for the checks below
  if (ec) {
    task.path = tmpl;
    throw AppError("cannot resolve task folder " + tmpl + ": " + ec.message());
  }
  const std::string dir = task.path.string();
  const std::string in_dir = dir + "/iexec_in";
  const std::string out_dir = dir + "/iexec_out";
  const std::string app_copy = dir + "/app";

  RunResult result;
  result.work_dir = dir;

  // tmp/: TMPDIR, since the app may write nowhere else (not in /tmp).
  if (::mkdir(in_dir.c_str(), 0755) != 0 || ::mkdir(out_dir.c_str(), 0755) != 0 ||
      ::mkdir((dir + "/tmp").c_str(), 0700) != 0) {
    throw AppError("cannot create " + in_dir + ", " + out_dir + " or " + dir +
                   "/tmp: " + err_text(errno));
  }
  for (const TaskInput& input : request.inputs)
    write_file(in_dir + "/" + input.name, input.bytes, 0644);
  write_file(app_copy, *exe, 0500);
  exe.reset();

  const bool as_root = ::geteuid() == 0;
  if (as_root) {
    // The app runs as nobody: it owns its folder and nothing else on the host.
    auto give = [&](const fs::path& p) {
      if (::lchown(p.c_str(), kNobody, kNobody) != 0) {
        throw AppError("cannot hand " + p.string() + " to nobody (65534): " + err_text(errno));
      }
    };
    give(task.path);
    for (fs::recursive_directory_iterator it(task.path, ec), end; !ec && it != end;
         it.increment(ec)) {
      give(it->path());
    }
    if (ec) throw AppError("cannot list " + dir + ": " + ec.message());
  }

  // ---- everything the child needs, prepared before fork ----
  Fd dev_null(high_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
  Fd out_fd(high_fd(
      ::open((dir + "/stdout.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)));
  Fd err_fd(high_fd(
      ::open((dir + "/stderr.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)));
  if (dev_null.fd < 0 || out_fd.fd < 0 || err_fd.fd < 0) {
    throw AppError("cannot open /dev/null or the task's stdout.txt/stderr.txt in " + dir + ": " +
                   err_text(errno));
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw AppError("cannot create a pipe for the sandbox: " + err_text(errno));
  }
  Fd report_r(high_fd(pipe_fds[0]));
  Fd report_w(high_fd(pipe_fds[1]));
  if (report_r.fd < 0 || report_w.fd < 0) {
    throw AppError("cannot create a pipe for the sandbox: " + err_text(errno));
  }
  ::fcntl(report_r.fd, F_SETFL, O_NONBLOCK);

  const std::vector<std::string>& args = request.args.empty() ? app->args : request.args;
  std::vector<std::string> argv_s{app_copy};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s{
      "PATH=/usr/local/bin:/usr/bin:/bin",
      "HOME=" + dir,
      "TMPDIR=" + dir + "/tmp",
      "LANG=C",
      "IEXEC_IN=" + in_dir,
      "IEXEC_OUT=" + out_dir,
      "IEXEC_TASK_ID=" + request.taskid.hex(),
      "IEXEC_INPUT_FILES_NUMBER=" + std::to_string(request.inputs.size()),
      "IEXEC_INPUT_FILES_FOLDER=" + in_dir,
      "IEXEC_DATASET_FILENAME=",
  };
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    env_s.push_back("IEXEC_INPUT_FILE_NAME_" + std::to_string(i + 1) + "=" +
                    request.inputs[i].name);
  }
  std::vector<char*> argv = c_strings(argv_s);
  std::vector<char*> envp = c_strings(env_s);
  const std::string uid_map =
      std::to_string(::geteuid()) + " " + std::to_string(::geteuid()) + " 1\n";
  const std::string gid_map =
      std::to_string(::getegid()) + " " + std::to_string(::getegid()) + " 1\n";

  const AppLimits& lim = app->limits;
  auto positive = [](int64_t v) { return v > 0 ? v : -1; };  // <= 0: no limit
  confine::Plan plan{};
  plan.app = app_copy.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.dir = dir.c_str();
  plan.in_fd = dev_null.fd;
  plan.out_fd = out_fd.fd;
  plan.err_fd = err_fd.fd;
  plan.report_fd = report_w.fd;
  plan.isolate_network = options_.isolate_network;
  plan.as_root = as_root;
  plan.uid_map = uid_map.c_str();
  plan.gid_map = gid_map.c_str();
  // CPU: SIGXCPU at the soft limit, SIGKILL a second later if the app catches it.
  using confine::make_limit;
  int64_t cpu = positive(lim.cpu_seconds);
  plan.limits[0] = make_limit(RLIMIT_CPU, cpu, cpu < 0 ? -1 : cpu + 1);
  plan.limits[1] = make_limit(RLIMIT_AS, positive(lim.memory_bytes), positive(lim.memory_bytes));
  plan.limits[2] = make_limit(RLIMIT_FSIZE, positive(lim.file_bytes), positive(lim.file_bytes));
  plan.limits[3] = make_limit(RLIMIT_NOFILE, positive(lim.open_files), positive(lim.open_files));
  plan.limits[4] = make_limit(RLIMIT_CORE, 0, 0);
  // Counted per user: nobody's processes are the apps', not ours or a developer's.
  int64_t nproc = as_root ? positive(lim.processes) : -1;
  plan.limits[5] = make_limit(RLIMIT_NPROC, nproc, nproc);
  plan.parent = ::getpid();
  std::vector<std::string> fallbacks;  // controls this platform could not give
  if (options_.filter_syscalls) {
    std::string why;
    plan.seccomp = confine::syscall_filter(&why);
    if (!plan.seccomp) {
      fallbacks.push_back("no system-call filter (" + why +
                          "): the app may open network sockets where no network namespace "
                          "could be made, ptrace, and create namespaces");
    }
  }
  Fd ruleset;
  if (options_.confine_files) {
    std::string why;
    bool unavailable = false;
    ruleset.reset(high_fd(confine::file_ruleset(dir, options_.read_paths, &why, &unavailable)));
    if (ruleset.fd < 0 && !unavailable) {
      // A path of read_paths: this node's configuration, never a silent fallback.
      throw AppError(why + "; fix read_paths of the iexec stage");
    }
    if (ruleset.fd < 0) {
      fallbacks.push_back(why + ": the app may read and write wherever " +
                          (as_root ? "user nobody" : "the worker's user") +
                          " may; use a kernel with Landlock (5.13 or later, lsm=landlock,...)");
    }
    plan.landlock_fd = ruleset.fd;
  }

  // ---- run ----
  const auto start = Clock::now();
  int ns_err = -1;
  pid_t pid = confine::spawn(plan, options_.pid_namespace && as_root, &ns_err);
  if (pid < 0) throw AppError("cannot fork the sandbox: " + err_text(errno));
  result.pid_namespace = ns_err == 0;
  if (options_.pid_namespace && !result.pid_namespace) {
    fallbacks.push_back(
        as_root ? "no PID namespace (clone: " + err_text(ns_err) +
                      "): processes the app starts with setsid may outlive its task"
                : "no PID namespace (the worker is not root): processes the app starts with "
                  "setsid may outlive its task");
  }
  ::setpgid(pid, pid);  // also here, so a kill of the group cannot miss a child not yet in it
  report_w.reset();
  dev_null.reset();
  out_fd.reset();
  err_fd.reset();
  ruleset.reset();
#ifdef SYS_pidfd_open
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
#else
  Fd pidfd;
#endif

  std::vector<confine::Report> reports;
  std::string partial;
  auto drain = [&] {
    char buf[256];
    for (;;) {
      ssize_t n = ::read(report_r.fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      partial.append(buf, static_cast<size_t>(n));
      while (partial.size() >= sizeof(confine::Report)) {
        confine::Report r;
        std::memcpy(&r, partial.data(), sizeof r);
        reports.push_back(r);
        partial.erase(0, sizeof r);
      }
    }
  };

  const auto deadline = start + std::chrono::microseconds(std::max<int64_t>(lim.timeout_us, 1));
  bool exited = false, timed_out = false, cancelled = false, lost = false;
  for (;;) {
    // Seen but not reaped: the pid (the group id) stays ours until wait4 below, so the kill of
    // the group cannot reach a stranger that got the pid again.
    siginfo_t si;
    std::memset(&si, 0, sizeof si);
    int w = ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT);
    if (w == 0 && si.si_pid == pid) {
      exited = true;
      break;
    }
    if (w < 0 && errno != EINTR) {
      lost = true;  // reaped by someone else (SIGCHLD ignored in this process?)
      break;
    }
    drain();
    auto now = Clock::now();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    if (cancel && cancel->load()) {
      cancelled = true;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    int wait_ms = static_cast<int>(std::min<int64_t>(left, pidfd.fd >= 0 ? 50 : 10));
    struct pollfd pfd {
      pidfd.fd, POLLIN, 0
    };
    ::poll(&pfd, pidfd.fd >= 0 ? 1 : 0, wait_ms);
  }
  // Whatever ended the wait, nothing of the app outlives it: background children included.
  ::kill(-pid, SIGKILL);
  if (!exited) ::kill(pid, SIGKILL);
  int status = 0;
  struct rusage ru;
  std::memset(&ru, 0, sizeof ru);
  if (!lost) {
    while (::wait4(pid, &status, 0, &ru) < 0) {
      if (errno != EINTR) {
        lost = true;
        break;
      }
    }
  }
  result.wall_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
  result.cpu_us = static_cast<int64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                  ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  drain();

  // ---- did the app start? ----
  const confine::Report* ready = nullptr;
  const confine::Report* failed = nullptr;
  const confine::Report* exit_report = nullptr;
  for (const confine::Report& r : reports) {
    if (r.kind == confine::kReady && !ready) ready = &r;
    if (r.kind == confine::kFailed && !failed) failed = &r;
    if (r.kind == confine::kExited && !exit_report) exit_report = &r;
  }
  // The namespace's init ends normally once the app has: the app's status is in its report.
  if (result.pid_namespace && exit_report) status = exit_report->status;
  const confine::Report* net = failed ? failed : ready;
  if (net && net->net_err == 0) {
    result.network_isolated = true;
  } else if (net && net->net_err > 0) {
    fallbacks.push_back("no network isolation (unshare: " + err_text(net->net_err) +
                        "): the app can reach the network; " +
                        (net->net_err == ENOSPC
                             ? "raise sysctl user.max_user_namespaces and user.max_net_namespaces"
                             : "allow unprivileged user namespaces (sysctl "
                               "kernel.unprivileged_userns_clone=1) or run as root"));
  }
  if (ready) {
    result.files_confined = ready->landlock_err == 0;
    result.syscalls_filtered = ready->seccomp_err == 0;
    if (ready->landlock_err > 0) {
      fallbacks.push_back(
          "no file confinement (landlock_restrict_self: " + err_text(ready->landlock_err) + ")");
    }
    if (ready->seccomp_err > 0) {
      fallbacks.push_back("no system-call filter (seccomp: " + err_text(ready->seccomp_err) +
                          "): the app may open network sockets where no network namespace "
                          "could be made, ptrace, and create namespaces");
    }
  }
  // Each fallback said once per sandbox: every task on this platform falls back the same way,
  // but a new one (a transient clone failure) is news.
  {
    std::lock_guard<std::mutex> lock(warned_->mu);
    std::string news;
    for (const std::string& f : fallbacks) {
      if (warned_->said.size() < 64 && warned_->said.insert(f).second)
        news += (news.empty() ? "" : "; ") + f;
    }
    if (!news.empty()) result.warning = "the task sandbox is weaker on this machine: " + news;
  }
  if (failed || (!ready && !cancelled)) {
    std::string cause;
    if (!failed) {
      cause = who + ": the sandbox ended before the app started";
    } else {
      std::string e = err_text(failed->err);
      switch (failed->stage) {
        case confine::kStageDropPrivileges:
          cause = who + ": cannot switch to user nobody (65534): " + e;
          if (failed->err == EINVAL) cause += "; map uid and gid 65534 in this user namespace";
          break;
        case confine::kStageLimits:
          cause = who + ": cannot set its resource limits: " + e;
          break;
        case confine::kStageChdir:
        case confine::kStageExec:
          cause = who +
                  (failed->stage == confine::kStageChdir ? ": cannot enter its task folder "
                                                         : ": cannot execute ") +
                  (failed->stage == confine::kStageChdir ? dir : app_copy) + ": " + e;
          if (as_root && failed->err == EACCES) {
            cause += "; the app runs as nobody (65534), so work_root " + options_.work_root +
                     " and its parent folders must be searchable by others (chmod o+x)";
          } else if (failed->stage == confine::kStageExec && failed->err == ENOEXEC) {
            cause += "; a script needs a first line like #!/bin/sh";
          }
          break;
        default:
          cause = who + ": sandbox set-up failed: " + e;
      }
    }
    RunResult r = refused(cause);
    r.work_dir = dir;
    r.network_isolated = result.network_isolated;
    r.pid_namespace = result.pid_namespace;
    r.warning = result.warning;
    r.wall_us = result.wall_us;
    return r;
  }

  // ---- the outcome ----
  // An error result: the same one line on every honest worker, so they still agree. The app
  // may have replaced iexec_out by a link: everything here goes through fds, never a link.
  auto app_error = [&](const std::string& line, const std::string& detail = "") {
    result.outcome = RunOutcome::kAppError;
    const std::string content = line + "\n";
    Fd task_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (task_fd.fd >= 0) {
      Fd out(open_in(task_fd.fd, "iexec_out", O_DIRECTORY));
      if (out.fd < 0) {
        remove_at(task_fd.fd, "iexec_out");
        ::mkdirat(task_fd.fd, "iexec_out", 0755);
        out.reset(open_in(task_fd.fd, "iexec_out", O_DIRECTORY));
      }
      if (out.fd >= 0) {
        remove_contents(out.fd);
        // The digest and the upload come from memory; the file is a courtesy.
        Fd f(::openat(out.fd, "error.txt", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0644));
        if (f.fd >= 0) write_all(f.fd, content);
      }
    }
    result.output_path = out_dir + "/error.txt";
    result.output_is_folder = false;
    result.files = {{"error.txt", content}};
    result.callback_data.reset();
    result.result_digest = crypto::sha256(content);
    result.cause = line;
    if (!detail.empty()) result.cause += "; " + detail;
    std::string last = last_stderr_line(dir + "/stderr.txt");
    if (!last.empty()) result.cause += " (stderr: " + last + ")";
    return result;
  };

  if (cancelled) {
    result.signal = SIGKILL;
    return app_error(who + " was cancelled");
  }
  if (timed_out) {
    result.timed_out = true;
    result.signal = SIGKILL;
    return app_error(who + " timed out after " + duration_text(lim.timeout_us));
  }
  if (lost) return app_error(who + " ended but its exit status was lost");
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    std::string line = who + " was killed by signal " + signal_text(result.signal);
    if (result.signal == SIGXCPU) {
      line += ": CPU time limit of " + std::to_string(lim.cpu_seconds) + "s reached";
    } else if (result.signal == SIGXFSZ) {
      line += ": file size limit of " + std::to_string(lim.file_bytes) + " bytes reached";
    }
    return app_error(line);
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (result.exit_code != 0) {
    return app_error(who + " exited with code " + std::to_string(result.exit_code));
  }

  // ---- computed.json ----
  Fd out_fd2(::open(out_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (out_fd2.fd < 0) return app_error(who + " removed or replaced its IEXEC_OUT folder");
  std::optional<std::string> text =
      read_fd(open_in(out_fd2.fd, "computed.json"), kMaxComputedJson, &err);
  if (!text) {
    if (err == ENOENT) return app_error(who + " wrote no computed.json");
    return app_error(who + ": computed.json is not a readable regular file", err_text(err));
  }
  nlohmann::json computed = nlohmann::json::parse(*text, nullptr, false);
  if (computed.is_discarded() || !computed.is_object()) {
    return app_error(who + ": computed.json is not a JSON object");
  }
  if (computed.contains("callback-data")) {
    const nlohmann::json& cb = computed["callback-data"];
    std::optional<std::vector<uint8_t>> bytes;
    if (cb.is_string()) bytes = crypto::from_hex(cb.get<std::string>());
    if (!bytes) return app_error(who + ": computed.json callback-data is not a 0x hex string");
    result.callback_data = std::string(bytes->begin(), bytes->end());
    result.result_digest = digest_callback(*result.callback_data);
    result.outcome = RunOutcome::kOk;
    result.cause = "ok (callback-data)";
    return result;
  }
  if (!computed.contains("deterministic-output-path")) {
    return app_error(who + ": computed.json has neither deterministic-output-path nor " +
                     "callback-data");
  }
  const nlohmann::json& dop = computed["deterministic-output-path"];
  if (!dop.is_string() || dop.get<std::string>().empty()) {
    return app_error(who + ": computed.json deterministic-output-path is not a path");
  }
  // The path relative to IEXEC_OUT. iExec apps write "/iexec_out/...", the folder's path in
  // iExec's container; $IEXEC_OUT/... is accepted too, and shown as /iexec_out/... so that
  // error.txt does not depend on this machine's task folder.
  const std::string named = dop.get<std::string>();
  std::string rel = named, shown = named;
  if (named == "/iexec_out" || named.rfind("/iexec_out/", 0) == 0) {
    rel = named.substr(std::min<size_t>(named.size(), 11));
  } else if (named == out_dir || named.rfind(out_dir + "/", 0) == 0) {
    rel = named.substr(std::min(named.size(), out_dir.size() + 1));
    shown = "/iexec_out/" + rel;
  } else if (named.front() == '/') {
    return app_error(who + ": computed.json names output '" + one_line(shown) +
                     "' outside IEXEC_OUT");
  }
  if (rel.empty()) rel = ".";
  shown = "'" + one_line(shown) + "'";

  Lookup how;
  Fd output(open_beneath(out_fd2.fd, out_dir, rel, &how));
  if (how == Lookup::kOutside) {
    return app_error(who + ": computed.json names output " + shown + " outside IEXEC_OUT");
  }
  if (how == Lookup::kMissing) {
    return app_error(who + ": computed.json names output " + shown + " which does not exist");
  }
  struct stat st;
  if (output.fd < 0 || ::fstat(output.fd, &st) != 0) {
    return app_error(who + ": output " + shown + " cannot be read", err_text(errno));
  }
  std::string out_path = (fs::path(out_dir) / rel).lexically_normal().string();
  while (out_path.size() > 1 && out_path.back() == '/') out_path.pop_back();
  result.output_path = out_path;

  // What the digest covers: the file, or the folder's top-level regular files by name.
  std::vector<std::pair<std::string, int64_t>> members;
  if (S_ISREG(st.st_mode)) {
    members.emplace_back(fs::path(out_path).filename().string(), st.st_size);
  } else if (S_ISDIR(st.st_mode)) {
    result.output_is_folder = true;
    int listing = ::fcntl(output.fd, F_DUPFD_CLOEXEC, 0);
    DIR* d = listing < 0 ? nullptr : ::fdopendir(listing);
    if (!d) {
      if (listing >= 0) ::close(listing);
      return app_error(who + ": output " + shown + " cannot be listed", err_text(errno));
    }
    while (struct dirent* e = ::readdir(d)) {
      struct stat est;
      if (::fstatat(output.fd, e->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(est.st_mode)) {
        members.emplace_back(e->d_name, est.st_size);
      }
    }
    ::closedir(d);
    std::sort(members.begin(), members.end());
  } else {
    return app_error(who + ": computed.json names output " + shown +
                     " which is neither a file nor a folder");
  }
  auto open_member = [&](const std::string& name) {
    return result.output_is_folder ? open_in(output.fd, name)
                                   : ::fcntl(output.fd, F_DUPFD_CLOEXEC, 0);
  };
  auto unreadable = [&](const std::string& name, int e) {
    return app_error(who + ": output file '" + one_line(name) + "' cannot be read", err_text(e));
  };
  int64_t total = 0;
  for (const auto& m : members) total += m.second;
  if (total <= options_.max_upload_bytes) {
    // Digest the bytes that will be uploaded, so both always agree.
    for (const auto& [name, size] : members) {
      std::optional<std::string> bytes =
          read_fd(open_member(name), options_.max_upload_bytes, &err);
      if (!bytes) return unreadable(name, err);
      result.files.emplace_back(name, std::move(*bytes));
    }
    result.result_digest = digest_files(result.files, result.output_is_folder);
  } else {
    crypto::Packed packed;
    for (const auto& [name, size] : members) {
      Fd f(open_member(name));
      std::optional<crypto::Hash32> h;
      if (f.fd >= 0) h = sha256_fd(f.fd);
      if (!h) return unreadable(name, f.fd < 0 ? errno : EIO);
      if (!result.output_is_folder) {
        result.result_digest = *h;
      } else {
        packed.add(*h);
      }
    }
    if (result.output_is_folder) result.result_digest = packed.keccak();
  }
  result.outcome = RunOutcome::kOk;
  result.cause = "ok";
  return result;
}

}  // namespace edgeflow::iexec
