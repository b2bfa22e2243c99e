// Sandbox::run: one task in its own folder, as a checked copy of the app, confined (see
// confine.h: a user of its own, PID and network namespaces, seccomp, Landlock, a memory cgroup,
// resource limits) with a wall-clock timeout; then the iExec result (computed.json) or a
// deterministic error.txt.
//
// Throws AppError only when the node itself cannot set up a task: work_root or the task folder
// cannot be created, the task files cannot be written or handed to the task's user, no task
// user id is free, or pipe/fork/open fail. Everything the app or the task's content causes is a
// RunResult.
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
#include <thread>
#include <utility>
#include <vector>

#include "iexec/app.h"
#include "iexec/confine.h"
#include "iexec/memory_cgroup.h"
#include "iexec/sandbox_files.h"
#include "iexec/task_users.h"

namespace edgeflow::iexec {

namespace fs = std::filesystem;

using namespace sandbox;

namespace {

using Clock = std::chrono::steady_clock;

constexpr uid_t kNobody = 65534;

std::string signal_text(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return std::to_string(sig) + (abbrev ? std::string(" (SIG") + abbrev + ")" : "");
}

std::string duration_text(int64_t us) {
  if (us % 1000000 == 0) return std::to_string(us / 1000000) + "s";
  if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
  return std::to_string(us) + "us";
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The task folder; removed on the way out unless kept. A kept folder goes back to root, so
// the next task given the same user id cannot read or change it.
struct TaskDir {
  fs::path path;
  bool keep = false;
  bool handed_over = false;  // owned by the task's user
  ~TaskDir() {
    if (path.empty()) return;
    if (!keep) {
      remove_tree(path);
      return;
    }
    if (!handed_over) return;
    std::error_code ec;
    ::lchown(path.c_str(), 0, 0);
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
      ::lchown(it->path().c_str(), 0, 0);  // never follows a link the app left
  }
};

// Task user ids are the machine's: their locks live where every edgeflow process run as root
// sees them (/run is root's alone), else beside the tasks (*machine_wide false).
std::string task_uid_lock_dir(const std::string& fallback, bool* machine_wide) {
  const char* dir = "/run/edgeflow/task-uids";
  *machine_wide = (::mkdir("/run/edgeflow", 0755) == 0 || errno == EEXIST) &&
                  (::mkdir(dir, 0700) == 0 || errno == EEXIST);
  return *machine_wide ? dir : fallback;
}

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
  // Declared before the folder, so released after it is gone (or back to root).
  std::unique_ptr<TaskUser> user;
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
  uid_t uid = kNobody;
  bool machine_wide = true;
  if (as_root && options_.task_uids > 0) {
    // All ids busy (more tasks at once than task_uids, on the whole machine): wait a little,
    // as for a CPU slot, before giving up.
    std::string why;
    const std::string lock_dir = task_uid_lock_dir(options_.work_root, &machine_wide);
    for (int attempt = 0; attempt < 500 && !user && !(cancel && cancel->load()); ++attempt) {
      user = TaskUser::take(options_.first_task_uid, options_.task_uids, lock_dir, &why);
      if (!user) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!user) throw AppError(why);
    uid = user->uid();
  }
  const std::string user_text = "uid " + std::to_string(uid) + (uid == kNobody ? " (nobody)" : "");
  result.uid = as_root ? uid : ::geteuid();
  if (as_root) {
    // The app owns its folder (0700: no other task may enter) and nothing else on the host.
    auto give = [&](const fs::path& p) {
      if (::lchown(p.c_str(), uid, uid) != 0) {
        throw AppError("cannot hand " + p.string() + " to the task's user, " + user_text + ": " +
                       err_text(errno));
      }
    };
    give(task.path);
    task.handed_over = true;
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
  plan.uid = uid;
  plan.gid = uid;
  // CPU: SIGXCPU at the soft limit, SIGKILL a second later if the app catches it.
  using confine::make_limit;
  int64_t cpu = positive(lim.cpu_seconds);
  plan.limits[0] = make_limit(RLIMIT_CPU, cpu, cpu < 0 ? -1 : cpu + 1);
  plan.limits[1] = make_limit(RLIMIT_FSIZE, positive(lim.file_bytes), positive(lim.file_bytes));
  plan.limits[2] = make_limit(RLIMIT_NOFILE, positive(lim.open_files), positive(lim.open_files));
  plan.limits[3] = make_limit(RLIMIT_CORE, 0, 0);
  // Counted per user: the task user's processes are this task's, not ours or a developer's.
  int64_t nproc = as_root ? positive(lim.processes) : -1;
  plan.limits[4] = make_limit(RLIMIT_NPROC, nproc, nproc);
  plan.address_space =
      make_limit(RLIMIT_AS, positive(lim.memory_bytes), positive(lim.memory_bytes));
  plan.parent = ::getpid();
  std::vector<std::string> fallbacks;  // controls this platform could not give
  if (!machine_wide) {
    fallbacks.push_back("task user ids are locked in " + options_.work_root +
                        ", not machine-wide in /run/edgeflow (not writable; under systemd: "
                        "RuntimeDirectory=edgeflow): stages with other work_dirs may give two "
                        "tasks the same id");
  }
  std::unique_ptr<MemoryCgroup> cgroup;  // outlives the app: removed when run returns
  const std::string as_fallback =
      ": memory is limited per process, by address space (RLIMIT_AS), so processes the app "
      "starts each get the limit";
  if (options_.memory_cgroup && lim.memory_bytes > 0) {
    std::string why;
    cgroup = MemoryCgroup::create(task.path.filename().string(), lim.memory_bytes, &why);
    if (cgroup) {
      plan.cgroup_fd = cgroup->procs_fd();
    } else {
      fallbacks.push_back("no memory cgroup (" + why + ")" + as_fallback);
    }
  }
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
                          (as_root ? "its task user" : "the worker's user") +
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
    result.memory_cgroup = cgroup && ready->cgroup_err == 0;
    if (cgroup && ready->cgroup_err > 0) {
      fallbacks.push_back("no memory cgroup (joining it: " + err_text(ready->cgroup_err) + ")" +
                          as_fallback);
    }
  }
  // Without a namespace or a cgroup to end them, what the app started outlives it: its user
  // id is freed only after they are killed.
  if (user && !result.pid_namespace && !result.memory_cgroup) user->end_processes_on_release();
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
          cause = who + ": cannot switch to its task user, " + user_text + ": " + e;
          if (failed->err == EINVAL) {
            cause += "; map that uid and gid in this user namespace, or move first_task_uid";
          }
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
            cause += "; the app runs as " + user_text + ", so work_root " + options_.work_root +
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
  auto app_error = [&](const std::string& line, const std::string& detail = "") {
    return error_result(std::move(result), dir, line, detail);
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
  // The kernel's OOM killer in the task's group: the app, or one of its processes.
  const bool oom = result.memory_cgroup && cgroup->oom_killed();
  const std::string memory_reached =
      "memory limit of " + std::to_string(lim.memory_bytes) + " bytes reached";
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    std::string line = who + " was killed by signal " + signal_text(result.signal);
    if (result.signal == SIGKILL && oom) {
      line += ": " + memory_reached;
    } else if (result.signal == SIGXCPU) {
      line += ": CPU time limit of " + std::to_string(lim.cpu_seconds) + "s reached";
    } else if (result.signal == SIGXFSZ) {
      line += ": file size limit of " + std::to_string(lim.file_bytes) + " bytes reached";
    }
    return app_error(line);
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (result.exit_code != 0) {
    return app_error(who + " exited with code " + std::to_string(result.exit_code) +
                     (oom ? " (" + memory_reached + ": one of its processes was killed)" : ""));
  }

  return read_output(std::move(result), who, dir, options_.max_upload_bytes);
}

}  // namespace edgeflow::iexec
