// iExec task execution: what the sandbox costs per task, and how many tasks per second a pool
// of three workers finishes through the whole protocol (signed messages over MQTT, the PoCo
// ledger and its journal), each against a baseline measured in the same run.
//
// 1. Sandbox start-up overhead. A trivial app (a #!/bin/sh script that writes
//    $IEXEC_OUT/result.txt and computed.json; also the same as a tiny C program, dynamic and
//    static, when `cc` is there) run --runs times (default 200), one after the other:
//      s1  Sandbox::run, isolate_network true           s0  the same, isolate_network false
//      sx  s0 without PID namespace, seccomp filter and Landlock ruleset: s0 - sx is their cost
//      pf  plain fork+execve plus the sandbox's file work done here by hand: read + sha256 of
//          the app, a fresh task folder with iexec_in/ and iexec_out/, a copy of the app (and
//          lchown to nobody when root, as the sandbox does), then the result read and digested
//          and the folder removed: so pf - p is that file work and s0 - pf the rest
//      p   plain fork+execve of the same app with the same environment variables, stdin from
//          /dev/null, stdout/stderr to files, cwd an existing task folder, waitpid: baseline
//      pv  the same with posix_spawn (vfork-like): what fork itself costs in p
//      s1-big  s1 in a process first given the shape of a running edgeflow (anonymous and
//          file-backed memory and mappings as measured): fork copies the caller's mappings,
//          so the sandbox inside edgeflow costs more than inside this small bench
//      s1-c, p-c, s1-cs, p-cs  s1 and p with the C app, dynamic (14 KB) and static (~680 KB:
//          the checksum and copy grow with the executable)
//    The sandbox also reports the app's own wall time (fork .. reap, RunResult::wall_us), so
//    its time splits into "outside fork..reap" (checksum, copy, folders, result, cleanup) and
//    "fork..reap" (the child's set-up: signals, group, namespaces, limits, fds; then the app).
//
// 2. Tasks per second through the full protocol. An embedded mosquitto on a free loopback
//    port; the real `edgeflow` binary runs a pipeline written to a temp folder: one
//    iexec.scheduler (cloud, wallet created beforehand so the workers can pin it, journal in
//    the temp folder, time_ref 60s, fsync true or false) and three iexec.worker nodes (slots 1,
//    heartbeat 1s). When the pool is ready (the announcement, three workers online, one
//    heartbeat, then three warm-up tasks completed), --tasks requests (default 100) built as
//    `edgeflow task submit` builds them (unsigned, a unique id each, trust 1 or 3) are
//    published on the requests topic at once; the time runs from the first publish to the
//    last COMPLETED result on results/#. Latency: each task's result arrival minus its
//    publish. Baseline in the same run: the same number of Sandbox::run calls on 3 threads
//    (the pool's 3 slots) without any protocol. Trust 3 needs 2 replicates only while the
//    workers are fresh: PoCo's weight max(score / 3, 3) - 1 reaches 3 at score 12, and a
//    weight-3 worker alone passes trust 3, so the table shows the replicates per task seen.
//    Rows: b baseline; t1, t3 trust 1 and 3 with fsync true; t1n, t3n with fsync false.
//
// Each variant runs in a forked child, variants interleave round by round (alternating the
// order), and the best round of each is kept (lowest mean; highest tasks/s): the machine is
// shared and absolute times drift, compare the ratios.
//
//   build-ibench/bench/iexec_bench [--runs N] [--tasks N] [--rounds R] [--quick]
//                                  [--only sandbox|protocol] [--keep]
// --quick: one round, 50 runs, 30 tasks. --keep: leave the temp folder (pipelines, journals,
// edgeflow logs). EDGEFLOW_BINARY overrides the edgeflow built beside this bench.
//
// Layout: this file holds the apps and main; iexec_bench_support.{h,cc} the shared helpers;
// iexec_bench_sandbox.cc part 1; iexec_bench_protocol.cc part 2.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bench/iexec_bench_support.h"
#include "crypto/crypto.h"

extern char** environ;

namespace edgeflow::iexec_bench {
namespace {

const char* kComputed = "{\"deterministic-output-path\":\"/iexec_out/result.txt\"}";

const std::string kScript =
    "#!/bin/sh\n"
    "echo \"hello $IEXEC_TASK_ID\" > \"$IEXEC_OUT/result.txt\"\n"
    "echo '" +
    std::string(kComputed) + "' > \"$IEXEC_OUT/computed.json\"\n";

// The same app in C: only open/write, so a static link stays small.
const std::string kCSource = R"(#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int put(const char* dir, const char* name, const char* a, const char* b) {
  char path[4096];
  size_t d = strlen(dir), n = strlen(name);
  if (d + n + 2 > sizeof path) return 1;
  memcpy(path, dir, d);
  path[d] = '/';
  memcpy(path + d + 1, name, n + 1);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 1;
  int bad = write(fd, a, strlen(a)) < 0 || write(fd, b, strlen(b)) < 0;
  return close(fd) != 0 || bad;
}
int main(void) {
  const char* out = getenv("IEXEC_OUT");
  const char* id = getenv("IEXEC_TASK_ID");
  if (!out) return 2;
  if (put(out, "result.txt", "hello ", id ? id : "")) return 1;
  return put(out, "computed.json",
             "{\"deterministic-output-path\":\"/iexec_out/result.txt\"}", "\n");
}
)";

// Runs a command to completion; true when it exited 0.
bool run_command(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = ::posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return false;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: iexec_bench [--runs N] [--tasks N] [--rounds R] [--quick] "
               "[--only sandbox|protocol] [--keep]\n");
  return 2;
}

}  // namespace
}  // namespace edgeflow::iexec_bench

int main(int argc, char** argv) {
  using namespace edgeflow;
  using namespace edgeflow::iexec_bench;
  int runs = 0, tasks = 0, rounds = 3;
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--keep") {
      g_keep = true;
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--tasks" && i + 1 < argc) {
      tasks = std::atoi(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
      if (only != "sandbox" && only != "protocol") return usage();
    } else {
      return usage();
    }
  }
  if (quick) rounds = 1;
  if (runs == 0) runs = quick ? 50 : 200;
  if (tasks == 0) tasks = quick ? 30 : 100;
  if (runs < 1 || tasks < 1 || rounds < 1) return usage();
  // SIGPIPE from a broker that went away must not end the run silently.
  ::signal(SIGPIPE, SIG_IGN);

  const std::string root = make_temp_dir(fs::temp_directory_path().string(), "iexec-bench-");
  std::vector<App> apps;
  {
    App sh{"sh", "sh script", root + "/app.sh", {}, 0};
    write_text(sh.path, kScript, 0755);
    apps.push_back(sh);
    write_text(root + "/app.c", kCSource, 0644);
    if (run_command({"cc", "-O2", "-s", "-o", root + "/app-dyn", root + "/app.c"},
                    root + "/cc.log"))
      apps.push_back({"c", "C dynamic", root + "/app-dyn", {}, 0});
    else
      std::fprintf(stderr, "no C app: cc failed (%s)\n", tail_of(root + "/cc.log", 2).c_str());
    if (run_command({"cc", "-O2", "-s", "-static", "-o", root + "/app-static", root + "/app.c"},
                    root + "/cc.log"))
      apps.push_back({"cs", "C static", root + "/app-static", {}, 0});
    for (App& a : apps) {
      a.sha256 = crypto::sha256_file(a.path);
      a.bytes = static_cast<int64_t>(fs::file_size(a.path));
    }
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::printf("iexec_bench on %s, %u CPUs, euid %d%s\n", host, std::thread::hardware_concurrency(),
              static_cast<int>(::geteuid()),
              ::geteuid() == 0 ? " (root: the sandbox drops to nobody, plain runs stay root)" : "");
  std::printf("load average: %s", read_text("/proc/loadavg").c_str());
  bool failed = false;
  if (only != "protocol") failed = !sandbox_part(apps, runs, rounds, root);
  if (only != "sandbox") {
    try {
      if (!protocol_part(apps.front(), tasks, rounds, root)) failed = true;
    } catch (const std::exception& e) {
      std::printf("protocol part failed: %s\n", e.what());
      failed = true;
    }
  }
  std::printf("load average at the end: %s", read_text("/proc/loadavg").c_str());
  if (failed || g_keep) {
    std::printf("kept %s for inspection (pool-*/: pipeline, journal, edgeflow.log)\n",
                root.c_str());
    return failed ? 1 : 0;
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return 0;
}
