// What a task app must not get away with (SECURITY.md, "the app"): processes that outlive the
// task (setsid, double fork, a fork bomb), network sockets, ptrace and new namespaces, writes
// outside its folder, reading the worker's key. The app is sandbox_probe, a real executable
// run by the real sandbox; the tests need root, as a worker does to confine its apps.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "iexec/app.h"
#include "iexec/sandbox_test_support.h"

namespace edgeflow::iexec {
namespace {

namespace fs = std::filesystem;

using testing::processes_with;
using testing::write_text;

class SandboxEscape : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "the sandbox confines apps as root (it runs them as nobody)";
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
  std::string probe(std::vector<std::string> args, RunResult* out = nullptr) {
    Sandbox sandbox(options_);
    RunRequest request;
    request.app = &app_;
    request.taskid = crypto::keccak256("escape-" + std::to_string(++tasks_));
    request.args = std::move(args);
    RunResult r = sandbox.run(request);
    work_dirs_.push_back(r.work_dir);
    EXPECT_TRUE(r.pid_namespace && r.syscalls_filtered && r.files_confined) << r.warning;
    if (out) *out = r;
    if (r.outcome != RunOutcome::kOk || r.files.size() != 1) return "no answer: " + r.cause;
    return r.files[0].second;
  }

  fs::path root_;
  SandboxOptions options_;
  AppSpec app_;
  int tasks_ = 0;
  std::vector<std::string> work_dirs_;
};

TEST_F(SandboxEscape, ProcessesInANewSessionEndWithTheTask) {
  // Each child calls setsid, so a kill of the app's process group would miss all of them.
  RunResult r;
  EXPECT_EQ(probe({"fork", "3"}, &r), "3");
  EXPECT_EQ(processes_with(r.work_dir), std::vector<pid_t>{})
      << "children of the app outlived its task";
}

TEST_F(SandboxEscape, AForkBombStopsAtTheProcessLimitAndEndsWithTheTask) {
  app_.limits.processes = 8;
  RunResult r;
  std::string started = probe({"fork", "200"}, &r);
  // The app itself is one of user nobody's processes; other tasks' apps may be others.
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

TEST_F(SandboxEscape, WithTheControlsOffTheSameProbesGetThrough) {
  // The controls above are what stops the probes, not the probe failing by itself.
  options_.filter_syscalls = false;
  options_.confine_files = false;
  Sandbox sandbox(options_);
  RunRequest request;
  request.app = &app_;
  request.taskid = crypto::keccak256("escape-open");
  request.args = {"socket-inet"};
  RunResult r = sandbox.run(request);
  ASSERT_EQ(r.outcome, RunOutcome::kOk) << r.cause;
  EXPECT_EQ(r.files.at(0).second, "ok");
  EXPECT_FALSE(r.syscalls_filtered);
  EXPECT_FALSE(r.files_confined);
}

}  // namespace
}  // namespace edgeflow::iexec
