// What a task app must not get away with (SECURITY.md, "the app"): processes that outlive the
// task (setsid, double fork, a fork bomb), network sockets, ptrace and new namespaces, writes
// outside its folder, reading the worker's key, another task's folder, memory past its limit
// in processes of its own. The app is sandbox_probe, a real executable
// run by the real sandbox; the tests need root, as a worker does to confine its apps.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "iexec/app.h"
#include "iexec/sandbox_test_support.h"

namespace edgeflow::iexec {
namespace {

namespace fs = std::filesystem;

using testing::processes_with;
using testing::read_text;
using testing::write_text;

class SandboxEscape : public ::testing::Test {
 protected:
  void SetUp() override {
    // CI runs as root, as a worker does: the PID namespace and user nobody need it.
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox confines apps fully only as root";
    char tmpl[] = "/tmp/ef-escape-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::permissions(root_, fs::perms(0755));
    options_.work_root = (root_ / "work").string();
    app_.name = "probe";
    app_.path = EDGEFLOW_SANDBOX_PROBE;
    app_.sha256 = crypto::sha256_file(app_.path);
    app_.limits.timeout_us = 10'000'000;
  }
  void TearDown() override {
    for (const std::string& dir : work_dirs_) {
      for (pid_t pid : processes_with(dir)) ::kill(pid, SIGKILL);  // what a failure left
    }
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // Runs the probe; its one-line answer, or the cause when it did not answer.
  std::string probe(std::vector<std::string> args, RunResult* out = nullptr,
                    const std::atomic<bool>* cancel = nullptr) {
    Sandbox sandbox(options_);
    RunRequest request;
    request.app = &app_;
    request.taskid = crypto::keccak256("escape-" + std::to_string(++tasks_));
    request.args = std::move(args);
    RunResult r = sandbox.run(request, cancel);
    {
      std::lock_guard<std::mutex> lock(mu_);
      work_dirs_.push_back(r.work_dir);
    }
    // Each control asked for applied (and none that was not).
    EXPECT_EQ(r.pid_namespace, options_.pid_namespace) << r.warning;
    EXPECT_EQ(r.syscalls_filtered, options_.filter_syscalls) << r.warning;
    EXPECT_EQ(r.files_confined, options_.confine_files) << r.warning;
    EXPECT_EQ(r.memory_cgroup, options_.memory_cgroup) << r.warning;
    if (out) *out = r;
    if (r.outcome != RunOutcome::kOk || r.files.size() != 1) return "no answer: " + r.cause;
    return r.files[0].second;
  }

  fs::path root_;
  SandboxOptions options_;
  AppSpec app_;
  std::atomic<int> tasks_{0};
  std::mutex mu_;
  std::vector<std::string> work_dirs_;
};

TEST_F(SandboxEscape, ProcessesInANewSessionEndWithTheTask) {
  // Each child calls setsid, so a kill of the app's process group would miss all of them.
  RunResult r;
  EXPECT_EQ(probe({"fork", "3"}, &r), "3");
  EXPECT_EQ(processes_with(r.work_dir), std::vector<pid_t>{})
      << "children of the app outlived its task";
}

// With neither a PID namespace nor a cgroup (a container without the rights), the task's user
// id is freed only after its processes are killed: the next task never meets them.
TEST_F(SandboxEscape, WithoutNamespaceOrCgroupTheTaskUsersProcessesEndWithIt) {
  options_.pid_namespace = false;
  options_.memory_cgroup = false;
  RunResult r;
  EXPECT_EQ(probe({"fork", "3"}, &r), "3");
  EXPECT_EQ(processes_with(r.work_dir), std::vector<pid_t>{})
      << "children of the app outlived its task";
}

// Without a PID namespace (a kernel that cannot make one) the task's cgroup still holds them.
TEST_F(SandboxEscape, WithoutAPidNamespaceTheCgroupEndsProcessesInANewSession) {
  options_.pid_namespace = false;
  RunResult r;
  EXPECT_EQ(probe({"fork", "3"}, &r), "3");
  EXPECT_EQ(processes_with(r.work_dir), std::vector<pid_t>{})
      << "children of the app outlived its task";
}

TEST_F(SandboxEscape, AForkBombStopsAtTheProcessLimitAndEndsWithTheTask) {
  app_.limits.processes = 8;
  RunResult r;
  std::string started = probe({"fork", "200"}, &r);
  // The app itself is one of its task user's processes.
  EXPECT_LT(std::atoi(started.c_str()), 8) << started;
  EXPECT_EQ(processes_with(r.work_dir), std::vector<pid_t>{});
}

TEST_F(SandboxEscape, NetworkSocketsAreRefusedLocalOnesAreNot) {
  EXPECT_EQ(probe({"socket-inet"}), "EPERM");
  EXPECT_EQ(probe({"socket-unix"}), "ok");
}

TEST_F(SandboxEscape, PtraceAndNewNamespacesAreRefused) {
  EXPECT_EQ(probe({"ptrace"}), "EPERM");
  EXPECT_EQ(probe({"unshare-user"}), "EPERM");
}

TEST_F(SandboxEscape, WritesOnlyInsideItsTaskFolder) {
  // A folder anyone may write, as /tmp is: only the file ruleset keeps the app out.
  fs::path open_dir = root_ / "world-writable";
  fs::create_directories(open_dir);
  fs::permissions(open_dir, fs::perms(0777));
  EXPECT_EQ(probe({"write", (open_dir / "planted").string()}), "EACCES");
  EXPECT_FALSE(fs::exists(open_dir / "planted"));
  EXPECT_EQ(probe({"write", "/tmp/ef-escape-planted"}), "EACCES");
  EXPECT_EQ(probe({"write", "scratch.txt"}), "ok");  // relative: its own task folder
}

TEST_F(SandboxEscape, CannotReadTheWorkersKeyNorFilesOutsideItsReadPaths) {
  fs::path state = root_ / "state";
  fs::create_directories(state);
  fs::permissions(state, fs::perms(0755));
  write_text(state / "pi-1.key",
             "0x4c0883a69102937d6231471b5dbb6204fe512961708279f3e2f5b2b4c3c1a1f7");
  fs::permissions(state / "pi-1.key", fs::perms(0600));
  write_text(state / "readable.txt", "not secret, but not the app's");
  fs::permissions(state / "readable.txt", fs::perms(0644));
  EXPECT_EQ(probe({"read", (state / "pi-1.key").string()}), "EACCES");
  EXPECT_EQ(probe({"read", (state / "readable.txt").string()}), "EACCES");
  EXPECT_EQ(probe({"read", "/etc/hostname"}), "ok");  // the system it runs on stays readable
}

// Without the file ruleset, only the users keep two tasks apart: each running task has an id
// of its own, and its folder is closed to the others.
TEST_F(SandboxEscape, TasksRunningAtOnceHaveUsersOfTheirOwn) {
  options_.confine_files = false;
  options_.first_task_uid = 61000;  // a range no other test uses: the ids are the machine's
  options_.task_uids = 8;
  // The first one sleeps until the checks are done, then is cancelled.
  std::atomic<bool> stop{false};
  std::thread first([&] {
    RunResult r;
    probe({"sleep", "60000"}, &r, &stop);
    EXPECT_NE(r.cause.find("was cancelled"), std::string::npos) << r.cause;
  });
  fs::path first_dir;
  struct stat st {};
  for (int i = 0; i < 500 && first_dir.empty(); ++i) {  // its folder, handed over, within 5 s
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(options_.work_root, ec))
      if (::stat(e.path().c_str(), &st) == 0 && st.st_uid != 0) first_dir = e.path();
  }
  ASSERT_FALSE(first_dir.empty()) << "the first task's folder did not appear";
  EXPECT_EQ(st.st_uid, options_.first_task_uid);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // While the first one sleeps: the next id, and no way into the first one's folder.
  EXPECT_EQ(probe({"uid"}), std::to_string(options_.first_task_uid + 1));
  EXPECT_EQ(probe({"write", (first_dir / "iexec_out" / "planted").string()}), "EACCES");
  stop = true;
  first.join();
  EXPECT_EQ(probe({"uid"}), std::to_string(options_.first_task_uid));  // free again
}

// A cgroup holds the task's memory as one: past the limit the kernel kills it, while address
// space it only reserves (as Go and the JVM do) costs nothing, unlike under RLIMIT_AS.
TEST_F(SandboxEscape, MemoryIsLimitedForTheTaskByACgroup) {
  app_.limits.memory_bytes = 64 << 20;
  RunResult r;
  const std::string answer = probe({"alloc", "200"}, &r);
  EXPECT_EQ(answer, "no answer: " + r.cause);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_NE(r.cause.find("memory limit of 67108864 bytes reached"), std::string::npos) << r.cause;
  EXPECT_EQ(probe({"alloc", "16"}), "ok");
  EXPECT_EQ(probe({"reserve", "1024"}), "ok");
  options_.memory_cgroup = false;  // the fallback: the same reservation is refused
  EXPECT_EQ(probe({"reserve", "1024"}), "ENOMEM");
}

// The namespace's init is a copy of the worker that lives as long as the task: it must not
// keep the worker's files open (another task's app copy, a socket the worker closed).
TEST_F(SandboxEscape, TheNamespaceInitHoldsNoneOfTheWorkersFiles) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  const std::string pipe_name = fs::read_symlink("/proc/self/fd/" + std::to_string(fds[1]));
  std::thread task([&] { EXPECT_EQ(probe({"sleep", "1500"}), "ok"); });
  // While the task runs: which of our children (the namespace's init) hold the pipe? Only
  // once a child is 200 ms old: between clone() and its first lines the init still holds
  // everything, which a loaded machine can stretch past one sample.
  std::vector<std::string> holders;
  std::map<std::string, std::chrono::steady_clock::time_point> first_seen;
  bool checked = false;
  for (int i = 0; i < 150 && !checked; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const auto now = std::chrono::steady_clock::now();
    for (const auto& t : fs::directory_iterator("/proc/self/task")) {
      std::istringstream children(read_text(t.path() / "children"));
      for (std::string pid; children >> pid;) {
        auto [it, fresh] = first_seen.emplace(pid, now);
        if (fresh || now - it->second < std::chrono::milliseconds(200)) continue;
        checked = true;
        std::error_code ec;
        for (const auto& f : fs::directory_iterator("/proc/" + pid + "/fd", ec)) {
          if (fs::read_symlink(f.path(), ec) == pipe_name) holders.push_back(pid);
        }
      }
    }
  }
  task.join();
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_TRUE(checked) << "no child lived 200 ms";
  EXPECT_EQ(holders, std::vector<std::string>{}) << "the init holds the worker's " << pipe_name;
}

TEST_F(SandboxEscape, ReadPathsTakeFilesAndFolders) {
  fs::path models = root_ / "models";
  fs::create_directories(models);
  fs::permissions(models, fs::perms(0777));  // nobody may write it: only Landlock refuses
  write_text(models / "a.txt", "weights");
  write_text(root_ / "one.txt", "a file on its own");
  options_.read_paths.push_back(models.string());
  options_.read_paths.push_back((root_ / "one.txt").string());
  EXPECT_EQ(probe({"read", (models / "a.txt").string()}), "ok");
  EXPECT_EQ(probe({"read", (root_ / "one.txt").string()}), "ok");
  EXPECT_EQ(probe({"write", (models / "b.txt").string()}), "EACCES");  // read only
}

// Each probe above, with the controls off, gets through: the controls are what stop them.
TEST_F(SandboxEscape, WithTheControlsOffTheSameProbesGetThrough) {
  options_.pid_namespace = options_.filter_syscalls = options_.confine_files = false;
  options_.memory_cgroup = false;
  options_.task_uids = 0;  // all as nobody: no task user whose processes end with it
  fs::path open_dir = root_ / "world-writable";
  fs::create_directories(open_dir);
  fs::permissions(open_dir, fs::perms(0777));
  write_text(root_ / "readable.txt", "not the app's");
  EXPECT_EQ(probe({"socket-inet"}), "ok");
  EXPECT_EQ(probe({"ptrace"}), "ok");
  EXPECT_EQ(probe({"unshare-user"}), "ok");
  EXPECT_EQ(probe({"write", (open_dir / "planted").string()}), "ok");
  EXPECT_EQ(probe({"read", (root_ / "readable.txt").string()}), "ok");
  EXPECT_EQ(probe({"fork", "3"}), "3");
  EXPECT_FALSE(processes_with(work_dirs_.back()).empty())
      << "without a PID namespace the children in a new session outlive the task";
}

}  // namespace
}  // namespace edgeflow::iexec
