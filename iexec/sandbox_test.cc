// The app registry, result digests and the sandbox, with small #!/bin/sh apps written by each
// test, and the forecast app shipped in apps/.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "iexec/app.h"
#include "iexec/sandbox_test_support.h"

namespace edgeflow::iexec {
namespace {

namespace fs = std::filesystem;
using Files = std::vector<std::pair<std::string, std::string>>;

const char* kIexecVector = "0xcc77508549295dd5de5876a2f4f00d4c3c27a547c6403450e43ab4de191bf1bc";
const char* kComputed =
    "printf '{\"deterministic-output-path\":\"/iexec_out/result.txt\"}' "
    "> \"$IEXEC_OUT/computed.json\"\n";

using testing::processes_with;
using testing::read_text;
using testing::write_text;

// Waits (bounded) until no live process has `needle` in its command line.
bool processes_gone(const std::string& needle) {
  for (int i = 0; i < 300; ++i) {
    if (processes_with(needle).empty()) return true;
    ::usleep(10000);
  }
  return false;
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ef-sandbox-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    // As root the sandbox runs apps as nobody, who must be able to reach the task folders.
    fs::permissions(root_, fs::perms(0755));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  fs::path root_;
};

class SandboxTest : public TempDir {
 protected:
  void SetUp() override {
    TempDir::SetUp();
    fs::create_directories(root_ / "apps");
    options_.work_root = (root_ / "work").string();
    taskid_ = crypto::keccak256("task-1");
  }

  AppSpec make_app(const std::string& name, const std::string& body, AppLimits limits = {}) {
    fs::path path = root_ / "apps" / (name + ".sh");
    write_text(path, "#!/bin/sh\n" + body);
    fs::permissions(path, fs::perms(0755));
    AppSpec app;
    app.name = name;
    app.path = path.string();
    app.sha256 = crypto::sha256_file(app.path);
    app.limits = limits;
    if (app.limits.timeout_us == AppLimits{}.timeout_us) app.limits.timeout_us = 5'000'000;
    return app;
  }

  RunResult run(const AppSpec& app, std::vector<TaskInput> inputs = {},
                std::vector<std::string> args = {}, const std::atomic<bool>* cancel = nullptr) {
    Sandbox sandbox(options_);
    RunRequest request;
    request.app = &app;
    request.taskid = taskid_;
    request.inputs = std::move(inputs);
    request.args = std::move(args);
    return sandbox.run(request, cancel);
  }

  // An app error yields error.txt holding exactly `line`, digested like any one-file result.
  static void expect_app_error(const RunResult& r, const std::string& line) {
    EXPECT_EQ(r.outcome, RunOutcome::kAppError) << r.cause;
    const std::string content = line + "\n";
    ASSERT_EQ(r.files.size(), 1u) << r.cause;
    EXPECT_EQ(r.files[0].first, "error.txt");
    EXPECT_EQ(r.files[0].second, content);
    EXPECT_EQ(r.result_digest, crypto::sha256(content));
    EXPECT_FALSE(r.output_is_folder);
    EXPECT_EQ(fs::path(r.output_path).filename(), "error.txt");
    EXPECT_EQ(r.cause.rfind(line, 0), 0u) << r.cause;
  }

  SandboxOptions options_;
  crypto::Hash32 taskid_;
};

// ---- digests ----

TEST_F(TempDir, DigestPathMatchesIexecTestVector) {
  write_text(root_ / "f1", "A result");
  write_text(root_ / "f2", "Another result");
  EXPECT_EQ(crypto::sha256("A result").hex(),
            "0xd885f429a59e0816822fc0927be6a6af20ade2c79db49df6c6022f79cb27ac16");
  EXPECT_EQ(digest_path((root_ / "f1").string()), crypto::sha256("A result"));
  // Sub-folders and links are not part of a folder's digest.
  fs::create_directory(root_ / "sub");
  fs::create_symlink(root_ / "f1", root_ / "link");
  EXPECT_EQ(digest_path(root_.string()).hex(), kIexecVector);
  EXPECT_EQ(digest_files({{"f1", "A result"}, {"f2", "Another result"}}, true).hex(), kIexecVector);
  EXPECT_EQ(digest_files({{"x", "A result"}}, false), crypto::sha256("A result"));
  EXPECT_EQ(digest_callback(""), crypto::keccak256(""));
  EXPECT_THROW(digest_path((root_ / "missing").string()), AppError);
}

// ---- the sandbox ----

TEST_F(SandboxTest, GoodAppFileResult) {
  AppSpec app =
      make_app("good", std::string("printf 'hello' > \"$IEXEC_OUT/result.txt\"\n") + kComputed);
  RunResult r = run(app);
  ASSERT_EQ(r.outcome, RunOutcome::kOk) << r.cause;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.result_digest, crypto::sha256("hello"));
  EXPECT_FALSE(r.output_is_folder);
  EXPECT_EQ(r.files, (Files{{"result.txt", "hello"}}));
  EXPECT_EQ(digest_files(r.files, r.output_is_folder), r.result_digest);
  EXPECT_EQ(fs::path(r.output_path).filename(), "result.txt");
  EXPECT_FALSE(r.callback_data);
  EXPECT_GT(r.wall_us, 0);
  EXPECT_FALSE(r.work_dir.empty());
  EXPECT_FALSE(fs::exists(r.work_dir)) << "keep_work_dirs=false removes the task folder";
}

TEST_F(SandboxTest, OutputPathForms) {
  // Relative to IEXEC_OUT, and absolute inside it, as well as iExec's /iexec_out/...
  for (std::string named : {"result.txt", "$IEXEC_OUT/result.txt", "/iexec_out/./result.txt"}) {
    AppSpec app = make_app("forms",
                           "printf 'hi' > \"$IEXEC_OUT/result.txt\"\n"
                           "printf '{\"deterministic-output-path\":\"%s\"}' \"" +
                               named + "\" > \"$IEXEC_OUT/computed.json\"\n");
    RunResult r = run(app);
    ASSERT_EQ(r.outcome, RunOutcome::kOk) << named << ": " << r.cause;
    EXPECT_EQ(r.result_digest, crypto::sha256("hi")) << named;
  }
}

TEST_F(SandboxTest, FolderOutputMatchesIexecTestVector) {
  AppSpec app = make_app("folder",
                         "mkdir \"$IEXEC_OUT/out\" \"$IEXEC_OUT/out/sub\"\n"
                         "printf 'Another result' > \"$IEXEC_OUT/out/f2\"\n"
                         "printf 'A result' > \"$IEXEC_OUT/out/f1\"\n"
                         "ln -s /etc/passwd \"$IEXEC_OUT/out/link\"\n"
                         "printf '{\"deterministic-output-path\":\"/iexec_out/out\"}' "
                         "> \"$IEXEC_OUT/computed.json\"\n");
  RunResult r = run(app);
  ASSERT_EQ(r.outcome, RunOutcome::kOk) << r.cause;
  EXPECT_TRUE(r.output_is_folder);
  EXPECT_EQ(r.result_digest.hex(), kIexecVector);
  EXPECT_EQ(r.files, (Files{{"f1", "A result"}, {"f2", "Another result"}}));
  EXPECT_EQ(digest_files(r.files, true), r.result_digest);

  // Over max_upload_bytes: the same digest, streamed, and no files for the upload.
  options_.max_upload_bytes = 10;
  RunResult big = run(app);
  ASSERT_EQ(big.outcome, RunOutcome::kOk) << big.cause;
  EXPECT_EQ(big.result_digest.hex(), kIexecVector);
  EXPECT_TRUE(big.files.empty());
}

TEST_F(SandboxTest, CallbackData) {
  AppSpec app = make_app("callback",
                         "printf '{\"callback-data\":\"0x0102ff\","
                         "\"deterministic-output-path\":\"/iexec_out/none\"}' "
                         "> \"$IEXEC_OUT/computed.json\"\n");
  RunResult r = run(app);
  ASSERT_EQ(r.outcome, RunOutcome::kOk) << r.cause;
  ASSERT_TRUE(r.callback_data);
  EXPECT_EQ(*r.callback_data, std::string("\x01\x02\xff", 3));
  EXPECT_EQ(r.result_digest, crypto::keccak256(std::string("\x01\x02\xff", 3)));

  AppSpec bad = make_app("badcb",
                         "printf '{\"callback-data\":\"0xzz\"}' "
                         "> \"$IEXEC_OUT/computed.json\"\n");
  expect_app_error(run(bad), "app 'badcb': computed.json callback-data is not a 0x hex string");
}

TEST_F(SandboxTest, AppSeesIexecEnvironmentInputsAndArgs) {
  ::setenv("EF_SANDBOX_TEST_SECRET", "leak", 1);
  AppSpec app = make_app(
      "env",
      "{\n"
      "  echo \"IN=$IEXEC_IN\"; echo \"OUT=$IEXEC_OUT\"; echo \"TASK=$IEXEC_TASK_ID\"\n"
      "  echo \"N=$IEXEC_INPUT_FILES_NUMBER\"; echo \"FOLDER=$IEXEC_INPUT_FILES_FOLDER\"\n"
      "  echo \"F1=$IEXEC_INPUT_FILE_NAME_1\"; echo \"F2=$IEXEC_INPUT_FILE_NAME_2\"\n"
      "  echo \"DS=${IEXEC_DATASET_FILENAME-unset}\"; echo \"ARGS=$#:$*\"\n"
      "  echo \"PATH=$PATH\"; echo \"LANG=$LANG\"; echo \"HOME=$HOME\"; echo \"PWD=$(pwd)\"\n"
      "  echo \"SECRET=${EF_SANDBOX_TEST_SECRET-unset}\"\n"
      "  echo \"C1=$(cat \"$IEXEC_IN/$IEXEC_INPUT_FILE_NAME_1\")\"\n"
      "  echo \"C2=$(cat \"$IEXEC_IN/$IEXEC_INPUT_FILE_NAME_2\")\"\n"
      "  echo \"STDIN=$(cat)\"\n"
      "  echo \"UID=$(id -u)\"\n"
      "} > \"$IEXEC_OUT/env.txt\"\n"
      "printf '{\"deterministic-output-path\":\"/iexec_out/env.txt\"}' "
      "> \"$IEXEC_OUT/computed.json\"\n");
  app.args = {"default", "args"};
  RunResult r = run(app, {{"data.csv", "a,b"}, {"second.txt", "two"}}, {"one", "two words"});
  ::unsetenv("EF_SANDBOX_TEST_SECRET");
  ASSERT_EQ(r.outcome, RunOutcome::kOk) << r.cause;
  ASSERT_EQ(r.files.size(), 1u);
  const std::string dir = r.work_dir;
  const std::string expected =
      "IN=" + dir + "/iexec_in\nOUT=" + dir + "/iexec_out\nTASK=" + taskid_.hex() +
      "\nN=2\nFOLDER=" + dir +
      "/iexec_in\nF1=data.csv\nF2=second.txt\nDS=\nARGS=2:one two "
      "words\nPATH=/usr/local/bin:/usr/bin:/bin\nLANG=C\nHOME=" +
      dir + "\nPWD=" + dir +
      "\nSECRET=unset\nC1=a,b\nC2=two\nSTDIN=\nUID=" + std::to_string(r.uid) + "\n";
  EXPECT_EQ(r.files[0].second, expected);
  // As root the app runs as a task user of its own (which one depends on the tasks running at
  // the time, on the whole machine); otherwise as the worker's user (mapped in its namespace).
  const SandboxOptions defaults;
  if (::geteuid() == 0) {
    EXPECT_GE(r.uid, defaults.first_task_uid);
    EXPECT_LT(r.uid, defaults.first_task_uid + static_cast<uid_t>(defaults.task_uids));
  } else {
    EXPECT_EQ(r.uid, ::geteuid());
  }

  // Without task args, the app's default ones.
  RunResult d = run(app, {{"data.csv", "x"}});
  ASSERT_EQ(d.outcome, RunOutcome::kOk) << d.cause;
  EXPECT_NE(d.files.at(0).second.find("ARGS=2:default args\n"), std::string::npos)
      << d.files[0].second;
}

TEST_F(SandboxTest, NonZeroExitIsDeterministicErrorResult) {
  options_.keep_work_dirs = true;
  AppSpec app = make_app("fail",
                         "printf 'partial' > \"$IEXEC_OUT/result.txt\"\n"
                         "echo 'boom: no sensor' >&2\n"
                         "exit 3\n");
  RunResult a = run(app);
  expect_app_error(a, "app 'fail' exited with code 3");
  EXPECT_EQ(a.exit_code, 3);
  EXPECT_NE(a.cause.find("boom: no sensor"), std::string::npos) << a.cause;
  // Only error.txt is left in iexec_out, holding the line and nothing else.
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(fs::path(a.work_dir) / "iexec_out")) {
    left.push_back(e.path().filename().string());
  }
  EXPECT_EQ(left, std::vector<std::string>{"error.txt"});
  EXPECT_EQ(read_text(a.output_path), "app 'fail' exited with code 3\n");
  // Another run, in another folder: the same digest.
  RunResult b = run(app);
  EXPECT_NE(a.work_dir, b.work_dir);
  EXPECT_EQ(a.result_digest, b.result_digest);
}

TEST_F(SandboxTest, CrashReportsSignal) {
  AppSpec app = make_app("crash", "kill -SEGV $$\nsleep 5\n");
  RunResult r = run(app);
  expect_app_error(r, "app 'crash' was killed by signal 11 (SIGSEGV)");
  EXPECT_EQ(r.signal, SIGSEGV);
}

TEST_F(SandboxTest, TimeoutKillsTheWholeProcessGroup) {
  options_.keep_work_dirs = true;
  AppLimits limits;
  limits.timeout_us = 1'000'000;
  // Odd durations: their command lines tell this test's processes from any other.
  AppSpec app = make_app("sleepy", "sleep 30.0101 &\nsleep 30.0102\n", limits);
  auto start = std::chrono::steady_clock::now();
  RunResult r = run(app);
  auto took = std::chrono::steady_clock::now() - start;
  expect_app_error(r, "app 'sleepy' timed out after 1s");
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_LT(took, std::chrono::seconds(10)) << "killed well before the app's own 30 s sleep";
  EXPECT_TRUE(processes_gone("30.0101")) << "the app's background child survived";
}

TEST_F(SandboxTest, BackgroundChildIsKilledAfterNormalExit) {
  // The marker says the child had started before the app exited.
  AppSpec app = make_app("leaver", std::string("(touch started; exec sleep 30.0201) &\n"
                                               "while [ ! -e started ]; do sleep 0.01; done\n"
                                               "printf 'x' > \"$IEXEC_OUT/result.txt\"\n") +
                                       kComputed);
  RunResult r = run(app);
  ASSERT_EQ(r.outcome, RunOutcome::kOk) << r.cause;
  EXPECT_TRUE(processes_gone("30.0201")) << "the app's background child survived";
}

TEST_F(SandboxTest, CancelKillsTheApp) {
  AppSpec app = make_app("long", "sleep 30\n");
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  auto start = std::chrono::steady_clock::now();
  RunResult r = run(app, {}, {}, &cancel);
  auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  expect_app_error(r, "app 'long' was cancelled");
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST_F(SandboxTest, ComputedJsonProblems) {
  expect_app_error(run(make_app("nojson", "exit 0\n")), "app 'nojson' wrote no computed.json");
  expect_app_error(run(make_app("badjson", "echo '{oops' > \"$IEXEC_OUT/computed.json\"\n")),
                   "app 'badjson': computed.json is not a JSON object");
  expect_app_error(run(make_app("nokey", "echo '{\"x\":1}' > \"$IEXEC_OUT/computed.json\"\n")),
                   "app 'nokey': computed.json has neither deterministic-output-path nor "
                   "callback-data");
  expect_app_error(run(make_app("noout",
                                "echo '{\"deterministic-output-path\":\"/iexec_out/x\"}' "
                                "> \"$IEXEC_OUT/computed.json\"\n")),
                   "app 'noout': computed.json names output '/iexec_out/x' which does not exist");
}

TEST_F(SandboxTest, OutputOutsideIexecOutIsAnAppError) {
  expect_app_error(run(make_app("escape",
                                "echo secret > \"$HOME/x\"\n"
                                "echo '{\"deterministic-output-path\":\"../x\"}' "
                                "> \"$IEXEC_OUT/computed.json\"\n")),
                   "app 'escape': computed.json names output '../x' outside IEXEC_OUT");
  expect_app_error(run(make_app("link",
                                "ln -s /etc/passwd \"$IEXEC_OUT/p\"\n"
                                "echo '{\"deterministic-output-path\":\"/iexec_out/p\"}' "
                                "> \"$IEXEC_OUT/computed.json\"\n")),
                   "app 'link': computed.json names output '/iexec_out/p' outside IEXEC_OUT");
  expect_app_error(run(make_app("etc",
                                "echo '{\"deterministic-output-path\":\"/etc/passwd\"}' "
                                "> \"$IEXEC_OUT/computed.json\"\n")),
                   "app 'etc': computed.json names output '/etc/passwd' outside IEXEC_OUT");
}

TEST_F(SandboxTest, ErrorLinesDoNotDependOnTheTaskFolder) {
  // The app names its output through $IEXEC_OUT; the error shows /iexec_out/..., the same on
  // every worker.
  AppSpec app = make_app("absmissing",
                         "printf '{\"deterministic-output-path\":\"%s\"}' "
                         "\"$IEXEC_OUT/missing\" > \"$IEXEC_OUT/computed.json\"\n");
  expect_app_error(run(app),
                   "app 'absmissing': computed.json names output '/iexec_out/missing' which does "
                   "not exist");
}

TEST_F(SandboxTest, LinksInsideIexecOutAreFollowed) {
  AppSpec app = make_app("inlink",
                         "printf 'hi' > \"$IEXEC_OUT/result.txt\"\n"
                         "ln -s result.txt \"$IEXEC_OUT/link\"\n"
                         "echo '{\"deterministic-output-path\":\"/iexec_out/link\"}' "
                         "> \"$IEXEC_OUT/computed.json\"\n");
  RunResult r = run(app);
  ASSERT_EQ(r.outcome, RunOutcome::kOk) << r.cause;
  EXPECT_EQ(r.result_digest, crypto::sha256("hi"));
}

TEST_F(SandboxTest, ReplacedIexecOutNeverLeadsOutside) {
  // An app that swaps iexec_out for a link to a folder of the host: the error clean-up must
  // not empty that folder, and nothing is read through the link.
  fs::path host = root_ / "host";
  fs::create_directory(host);
  write_text(host / "precious", "keep me");
  write_text(host / "computed.json", "{\"callback-data\":\"0x01\"}");
  for (int code : {0, 1}) {
    AppSpec app = make_app("swap", "rm -rf \"$IEXEC_OUT\"\nln -s '" + host.string() +
                                       "' \"$IEXEC_OUT\"\nexit " + std::to_string(code) + "\n");
    RunResult r = run(app);
    EXPECT_EQ(r.outcome, RunOutcome::kAppError) << r.cause;
    EXPECT_EQ(read_text(host / "precious"), "keep me");
    if (code == 0) {
      expect_app_error(r, "app 'swap' removed or replaced its IEXEC_OUT folder");
    }
  }
  // Folders the app made unreadable are still cleaned up.
  options_.keep_work_dirs = true;
  RunResult r = run(make_app("locked",
                             "mkdir -p \"$IEXEC_OUT/a/b\"\necho x > \"$IEXEC_OUT/a/b/f\"\n"
                             "chmod 000 \"$IEXEC_OUT/a/b\" \"$IEXEC_OUT/a\"\nexit 1\n"));
  expect_app_error(r, "app 'locked' exited with code 1");
  EXPECT_FALSE(fs::exists(fs::path(r.work_dir) / "iexec_out" / "a"));
}

TEST_F(SandboxTest, TamperedAppIsRefusedAndDoesNotRun) {
  fs::path marker_dir = root_ / "markers";
  fs::create_directory(marker_dir);
  fs::permissions(marker_dir, fs::perms(0777));  // so the app could write it as nobody
  options_.confine_files = false;                // and outside its task folder
  const fs::path marker = marker_dir / "ran";
  AppSpec app = make_app("tampered", "touch '" + marker.string() + "'\nexit 1\n");
  // Untampered, the app runs and leaves its marker: the check below means something.
  EXPECT_EQ(run(app).outcome, RunOutcome::kAppError);
  ASSERT_TRUE(fs::exists(marker));
  fs::remove(marker);

  std::ofstream(app.path, std::ios::app) << "echo extra\n";
  const std::string file_has = crypto::sha256_file(app.path).hex();
  RunResult r = run(app);
  EXPECT_EQ(r.outcome, RunOutcome::kRefused);
  EXPECT_EQ(r.cause, "sha256 mismatch for app 'tampered' (" + app.path + "): registered " +
                         app.sha256.hex() + ", file has " + file_has +
                         "; re-register it with sha256sum " + app.path + " if the change is yours");
  EXPECT_FALSE(fs::exists(marker)) << "a tampered app ran";
  EXPECT_TRUE(r.files.empty());
}

TEST_F(SandboxTest, MissingExecutableIsRefused) {
  AppSpec app = make_app("gone", "exit 0\n");
  fs::remove(app.path);
  RunResult r = run(app);
  EXPECT_EQ(r.outcome, RunOutcome::kRefused);
  EXPECT_NE(r.cause.find(app.path), std::string::npos) << r.cause;
  EXPECT_NE(r.cause.find("No such file"), std::string::npos) << r.cause;
}

TEST_F(SandboxTest, NotExecutableFormatIsRefused) {
  AppSpec app = make_app("noshebang", "");
  write_text(app.path, "echo no shebang line\n");
  app.sha256 = crypto::sha256_file(app.path);
  RunResult r = run(app);
  EXPECT_EQ(r.outcome, RunOutcome::kRefused);
  EXPECT_NE(r.cause.find("#!/bin/sh"), std::string::npos) << r.cause;
}

TEST_F(SandboxTest, BadInputNamesAreRefused) {
  AppSpec app = make_app("inputs", "exit 0\n");
  for (std::string name : {"a/b", "", ".", "..", "/etc/passwd"}) {
    RunResult r = run(app, {{name, "x"}});
    EXPECT_EQ(r.outcome, RunOutcome::kRefused) << "'" << name << "'";
    EXPECT_NE(r.cause.find("bad input file name"), std::string::npos) << r.cause;
  }
  EXPECT_EQ(run(app, {{"a", "1"}, {"a", "2"}}).outcome, RunOutcome::kRefused);
}

TEST_F(SandboxTest, FileSizeLimit) {
  AppLimits limits;
  limits.file_bytes = 1000;
  AppSpec app = make_app(
      "big",
      "head -c 5000 /dev/zero > \"$IEXEC_OUT/result.txt\" || exit 7\n" + std::string(kComputed),
      limits);
  RunResult r = run(app);
  EXPECT_EQ(r.outcome, RunOutcome::kAppError) << r.cause;
  EXPECT_EQ(r.exit_code, 7) << r.cause;  // head was killed by SIGXFSZ
}

TEST_F(SandboxTest, NetworkIsolation) {
  AppSpec app = make_app("net",
                         "cat /proc/net/dev > \"$IEXEC_OUT/net.txt\"\n"
                         "echo '{\"deterministic-output-path\":\"net.txt\"}' "
                         "> \"$IEXEC_OUT/computed.json\"\n");
  RunResult r = run(app);
  ASSERT_EQ(r.outcome, RunOutcome::kOk) << r.cause;
  if (!r.network_isolated) GTEST_SKIP() << "not isolated here: " << r.warning;
  std::set<std::string> interfaces;
  std::istringstream lines(r.files.at(0).second);
  for (std::string line; std::getline(lines, line);) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    interfaces.insert(name);
  }
  EXPECT_EQ(interfaces, std::set<std::string>{"lo"}) << r.files[0].second;
}

TEST_F(SandboxTest, WithoutNetworkIsolationTheAppStillRuns) {
  options_.isolate_network = false;
  // Only the network's warning is in question (not seccomp's, Landlock's or the PID
  // namespace's, all three refused under qemu-user).
  options_.filter_syscalls = options_.confine_files = options_.pid_namespace = false;
  AppSpec app =
      make_app("nonet", std::string("printf 'x' > \"$IEXEC_OUT/result.txt\"\n") + kComputed);
  RunResult r = run(app);
  ASSERT_EQ(r.outcome, RunOutcome::kOk) << r.cause;
  EXPECT_FALSE(r.network_isolated);
  EXPECT_TRUE(r.warning.empty()) << "isolation was not asked for: " << r.warning;
}

TEST_F(SandboxTest, CpuLimit) {
  AppLimits limits;
  limits.cpu_seconds = 1;
  limits.timeout_us = 10'000'000;
  RunResult r = run(make_app("spin", "while :; do :; done\n", limits));
  EXPECT_EQ(r.outcome, RunOutcome::kAppError);
  EXPECT_FALSE(r.timed_out) << r.cause;
  EXPECT_TRUE(r.signal == SIGXCPU || r.signal == SIGKILL) << r.cause;
  EXPECT_GE(r.cpu_us, 900'000) << r.cause;
}

TEST_F(SandboxTest, ParallelRunsOfTheSameTask) {
  options_.keep_work_dirs = true;
  AppSpec app =
      make_app("copy", "cat \"$IEXEC_IN/$IEXEC_INPUT_FILE_NAME_1\" > \"$IEXEC_OUT/result.txt\"\n" +
                           std::string(kComputed));
  constexpr int kThreads = 4, kRuns = 3;
  std::vector<RunResult> results(kThreads * kRuns);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRuns; ++i) {
        results[t * kRuns + i] = run(app, {{"in.txt", "input " + std::to_string(t * kRuns + i)}});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> dirs;
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_EQ(results[i].outcome, RunOutcome::kOk) << results[i].cause;
    EXPECT_EQ(results[i].result_digest, crypto::sha256("input " + std::to_string(i)));
    dirs.insert(results[i].work_dir);
  }
  EXPECT_EQ(dirs.size(), results.size()) << "two runs of one task shared a folder";
}

// ---- the registry ----

class RegistryTest : public TempDir {
 protected:
  std::string write(const std::string& yaml) {
    fs::path path = root_ / "registry.yaml";
    write_text(path, yaml);
    return path.string();
  }
  // The error names the file and line, and says `what`.
  void expect_error(const std::string& yaml, int line, const std::string& what) {
    std::string path = write(yaml);
    try {
      AppRegistry::load(path);
      ADD_FAILURE() << "no error for:\n" << yaml;
    } catch (const AppError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(path + ":" + std::to_string(line) + ":"), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }
};

const std::string kSha = "9f2c1b5f0c4a3f8e6a1d7e2b9c0f4a5d6e7f8091a2b3c4d5e6f708192a3b4c5d";

TEST_F(RegistryTest, LoadsAppsAndResolvesRelativePaths) {
  std::string path = write(
      "apps:\n"
      "  forecast:\n"
      "    path: bin/forecast.sh\n"
      "    sha256: " +
      kSha +
      "\n"
      "    args: [\"3\", \"x\"]\n"
      "    limits: { cpu: 1500ms, memory: 64MiB, file_size: 1MB, "
      "open_files: 32, timeout: 2m }\n"
      "  other:\n"
      "    path: ../elsewhere/./other\n"
      "    sha256: 0x" +
      kSha +
      "\n"
      "    limits:\n"
      "      memory: 512KiB\n"
      "      file_size: 4096\n"
      "      timeout: 500ms\n"
      "  abs:\n"
      "    path: /opt/apps/abs\n"
      "    sha256: " +
      kSha + "\n");
  AppRegistry reg = AppRegistry::load(path);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"forecast", "other", "abs"}));
  const AppSpec* f = reg.find("forecast");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->path, (root_ / "bin/forecast.sh").string());
  EXPECT_EQ(f->sha256.hex(), "0x" + kSha);
  EXPECT_EQ(f->args, (std::vector<std::string>{"3", "x"}));
  EXPECT_EQ(f->limits.cpu_seconds, 2);  // rounded up to whole seconds
  EXPECT_EQ(f->limits.memory_bytes, 64ll << 20);
  EXPECT_EQ(f->limits.file_bytes, 1000000);
  EXPECT_EQ(f->limits.open_files, 32);
  EXPECT_EQ(f->limits.timeout_us, 120'000'000);
  const AppSpec* o = reg.find("other");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->path, (root_.parent_path() / "elsewhere/other").string());
  EXPECT_EQ(o->limits.memory_bytes, 512 * 1024);
  EXPECT_EQ(o->limits.file_bytes, 4096);
  EXPECT_EQ(o->limits.timeout_us, 500'000);
  EXPECT_EQ(o->limits.cpu_seconds, AppLimits{}.cpu_seconds);
  EXPECT_TRUE(o->args.empty());
  EXPECT_EQ(reg.find("abs")->path, "/opt/apps/abs");
  EXPECT_EQ(reg.find("nope"), nullptr);
}

TEST_F(RegistryTest, ErrorsNameFileLineAndFix) {
  const std::string app = "apps:\n  a:\n    path: a.sh\n";
  try {
    AppRegistry::load((root_ / "missing.yaml").string());
    ADD_FAILURE() << "no error for a missing file";
  } catch (const AppError& e) {
    EXPECT_NE(std::string(e.what()).find((root_ / "missing.yaml").string()), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("cannot read"), std::string::npos) << e.what();
  }
  expect_error("apps:\n  a: [1, 2\n  b: c\n", 3, "malformed YAML");
  expect_error("app:\n  a: {}\n", 1, "did you mean 'apps'");
  expect_error(app + "    sha: " + kSha + "\n", 4,
               "unknown key 'sha' in app 'a'; did you mean 'sha256'");
  expect_error(app + "    sha256: " + kSha + "\n    limits: { cpu: 1s, memroy: 1MiB }\n", 5,
               "did you mean 'memory'");
  expect_error("apps:\n  a:\n    sha256: " + kSha + "\n", 3, "has no path");
  expect_error(app, 3, "has no sha256");
  expect_error(app + "    sha256: abc123\n", 4, "64 hex digits");
  expect_error(app + "    sha256: " + kSha + "\n    limits: { memory: 64 Mo }\n", 5,
               "bad size '64 Mo'");
  expect_error(app + "    sha256: " + kSha + "\n    limits: { timeout: 10 }\n", 5,
               "bad duration '10'");
  expect_error(app + "    sha256: " + kSha + "\n    args: 3\n", 5, "args must be a list");
}

// ---- the forecast app shipped in apps/ ----

fs::path source_dir() {
  if (const char* env = std::getenv("EDGEFLOW_SOURCE_DIR")) return env;
  return fs::path(__FILE__).parent_path().parent_path();
}

TEST_F(SandboxTest, ShippedForecastApp) {
  const fs::path registry = source_dir() / "apps" / "registry.yaml";
  AppRegistry reg = AppRegistry::load(registry.string());
  const AppSpec* app = reg.find("forecast");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->path, (source_dir() / "apps/forecast/forecast.sh").lexically_normal().string());
  ASSERT_EQ(crypto::sha256_file(app->path), app->sha256)
      << "apps/registry.yaml is stale: put the output of sha256sum " << app->path;
  EXPECT_NE(fs::status(app->path).permissions() & fs::perms::owner_exec, fs::perms::none);
  EXPECT_EQ(app->args, std::vector<std::string>{"3"});

  const std::string csv =
      "origin,window_end,count,temperature_mean,humidity_mean,pressure_mean,pressure_max\n"
      "s1,2024-06-01T12:01:00Z,10,20.5,60,1010.0,1011\n"
      "s1,2024-06-01T12:02:00Z,10,21.0,,1010.5,1011\n"
      "s1,2024-06-01T12:03:00Z,10,21.5,59,1011.0,1012\n"
      "s1,2024-06-01T12:04:00Z,10,22.0,58,1011.6,1012\n"
      "s1,2024-06-01T12:05:00Z,10,22.5,57,1012.0,1013\n";
  RunResult a = run(*app, {{"weather.csv", csv}});
  ASSERT_EQ(a.outcome, RunOutcome::kOk) << a.cause;
  ASSERT_EQ(a.files.size(), 1u);
  EXPECT_EQ(a.files[0].first, "forecast.json");
  nlohmann::json f = nlohmann::json::parse(a.files[0].second);
  EXPECT_EQ(f["windows"], 5);
  EXPECT_EQ(f["ahead"], 3);
  EXPECT_EQ(f["last_window_end"], "2024-06-01T12:05:00Z");
  EXPECT_NE(f["outlook"].get<std::string>().find("rising"), std::string::npos) << f.dump();
  EXPECT_DOUBLE_EQ(f["temperature_mean"]["trend_per_window"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(f["temperature_mean"]["forecast"].get<double>(), 24.0);
  EXPECT_DOUBLE_EQ(f["pressure_mean"]["last"].get<double>(), 1012.0);
  RunResult b = run(*app, {{"weather.csv", csv}});
  EXPECT_EQ(a.result_digest, b.result_digest);

  // No data rows: the app's own error, as a deterministic error result.
  RunResult empty = run(*app, {{"weather.csv", "window_end,pressure_mean\n"}});
  expect_app_error(empty, "app 'forecast' exited with code 2");
}

}  // namespace
}  // namespace edgeflow::iexec
