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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "brokers/mqtt/client.h"
#include "brokers/mqtt/embedded_broker.h"
#include "crypto/crypto.h"
#include "iexec/app.h"
#include "iexec/protocol.h"

#ifndef IEXEC_BENCH_EDGEFLOW
#define IEXEC_BENCH_EDGEFLOW "edgeflow"
#endif

extern char** environ;

namespace edgeflow {
namespace {

namespace fs = std::filesystem;
using bench::now_ns;

bool g_keep = false;  // --keep: leave the temp folder (pipelines, journals, edgeflow logs)
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// A forked child returning a plain struct through a pipe (bench_util's Child carries only
// bench::RunResult; these results carry more figures).

template <class R>
struct Forked {
  R result{};
  bool ok = false;  // the child sent its result and exited 0
  double cpu_seconds = 0;
};

template <class R>
Forked<R> run_forked(const std::function<R()>& body, int timeout_ms) {
  Forked<R> f;
  int fds[2];
  if (::pipe(fds) != 0) {
    std::perror("pipe");
    std::exit(1);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(1);
  }
  if (pid == 0) {
    ::close(fds[0]);
    R r{};
    try {
      r = body();
    } catch (const std::exception& e) {
      r = R{};
      std::snprintf(r.note, sizeof r.note, "exception: %s", e.what());
    }
    bench::write_all(fds[1], &r, sizeof r);
    ::_exit(0);
  }
  ::close(fds[1]);
  const bool got = bench::read_all(fds[0], &f.result, sizeof f.result, timeout_ms);
  if (!got) {
    f.result = R{};
    std::snprintf(f.result.note, sizeof f.result.note, "no result within %d s (killed)",
                  timeout_ms / 1000);
    ::kill(pid, SIGKILL);
  }
  ::close(fds[0]);
  int status = 0;
  rusage ru{};
  while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  f.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                  static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  f.ok = got && WIFEXITED(status) && WEXITSTATUS(status) == 0 && f.result.ok;
  return f;
}

template <class R>
void set_note(R& r, const std::string& text) {
  std::snprintf(r.note, sizeof r.note, "%s", text.c_str());
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Files

void write_text(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
  ::chmod(path.c_str(), mode);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail_of(const std::string& path, size_t lines) {
  std::string t = read_text(path);
  size_t at = t.size();
  for (size_t n = 0; n <= lines && at > 0; ++n) {
    size_t p = t.rfind('\n', at - 1);
    if (p == std::string::npos) return t;
    at = p;
  }
  return t.substr(at + 1);
}

// A folder the sandbox can use as root: the app runs as nobody and must reach its task folder.
std::string make_temp_dir(const std::string& under, const std::string& prefix) {
  std::string t = (fs::path(under) / (prefix + "XXXXXX")).string();
  if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp " + t + ": " + std::strerror(errno));
  ::chmod(t.c_str(), 0755);
  return t;
}

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

struct App {
  std::string key;    // "sh", "c", "cs"
  std::string label;  // for the table
  std::string path;
  crypto::Hash32 sha256;
  int64_t bytes = 0;
};

// ---------------------------------------------------------------------------------------------
// 1. Sandbox start-up overhead

struct SpawnStats {
  bool ok = false;
  int32_t runs = 0;
  double mean_ms = 0, median_ms = 0, p90_ms = 0, min_ms = 0;
  double inner_ms = 0;  // mean fork .. reap (sandbox: RunResult::wall_us)
  bool isolated = false;
  char note[240] = {};
};

crypto::Hash32 task_id(uint64_t n) {
  return crypto::Packed().add_uint256(n).add_uint256(static_cast<uint64_t>(::getpid())).keccak();
}

std::vector<std::string> app_env(const std::string& dir, const crypto::Hash32& taskid) {
  // As Sandbox::run builds it.
  return {"PATH=/usr/local/bin:/usr/bin:/bin",
          "HOME=" + dir,
          "LANG=C",
          "IEXEC_IN=" + dir + "/iexec_in",
          "IEXEC_OUT=" + dir + "/iexec_out",
          "IEXEC_TASK_ID=" + taskid.hex(),
          "IEXEC_INPUT_FILES_NUMBER=0",
          "IEXEC_INPUT_FILES_FOLDER=" + dir + "/iexec_in",
          "IEXEC_DATASET_FILENAME="};
}

SpawnStats finish_stats(const std::vector<double>& ms, const std::vector<double>& inner) {
  SpawnStats s;
  s.ok = true;
  s.runs = static_cast<int32_t>(ms.size());
  s.mean_ms = mean_of(ms);
  s.median_ms = quantile(ms, 0.5);
  s.p90_ms = quantile(ms, 0.9);
  s.min_ms = ms.empty() ? 0 : *std::min_element(ms.begin(), ms.end());
  s.inner_ms = mean_of(inner);
  return s;
}

// Gives this process an address space shaped like a running edgeflow's (measured on the
// pool of part 2: 17 MB anonymous in ~160 mappings, 56 MB file-backed, ~1450 mappings in all,
// mostly shared-library segments): fork() duplicates every mapping and copies the page tables
// of the anonymous ones, and the child's exec tears the copy down, so the sandbox's fork costs
// more in a big process than in this small bench. The file is mapped read-only at offset 0 each
// time, so the kernel cannot merge the mappings; a PROT_NONE page ends each anonymous region.
void inflate_address_space(const std::string& file, int64_t file_bytes, int file_maps,
                           int64_t anon_bytes, int anon_maps) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  auto round = [&](int64_t b, int n) {
    return (static_cast<size_t>(b / n) + page - 1) / page * page;
  };
  const size_t fsize = round(file_bytes, file_maps);
  {
    std::string bytes(fsize, 'x');
    write_text(file, bytes, 0644);
  }
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + file);
  volatile char sink = 0;
  for (int i = 0; i < file_maps; ++i) {
    void* p = ::mmap(nullptr, fsize, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap of a file failed");
    for (size_t at = 0; at < fsize; at += page) sink = sink + static_cast<const char*>(p)[at];
  }
  ::close(fd);
  const size_t asize = round(anon_bytes, anon_maps);
  for (int i = 0; i < anon_maps; ++i) {
    void* p =
        ::mmap(nullptr, asize + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    std::memset(p, 1, asize);
    ::mprotect(static_cast<char*>(p) + asize, page, PROT_NONE);
  }
}

SpawnStats run_sandbox(const App& app, bool isolate, int runs, const std::string& root,
                       bool big_parent = false, bool confine = true) {
  if (big_parent)
    inflate_address_space(root + "/filler-" + std::to_string(::getpid()), 56ll << 20, 1300,
                          17ll << 20, 150);
  iexec::AppSpec spec;
  spec.name = "bench";
  spec.path = app.path;
  spec.sha256 = app.sha256;
  iexec::SandboxOptions so;
  so.work_root = make_temp_dir(root, "sbx-");
  so.isolate_network = isolate;
  // The PID namespace, the seccomp filter and the Landlock ruleset (the defaults).
  so.pid_namespace = so.filter_syscalls = so.confine_files = confine;
  iexec::Sandbox sandbox(so);
  std::vector<double> ms, inner;
  bool isolated = true;
  for (int i = 0; i < runs; ++i) {
    iexec::RunRequest req;
    req.app = &spec;
    req.taskid = task_id(static_cast<uint64_t>(i));
    const int64_t t0 = now_ns();
    iexec::RunResult r = sandbox.run(req);
    const int64_t t1 = now_ns();
    if (r.outcome != iexec::RunOutcome::kOk) {
      SpawnStats s;
      set_note(s, "run " + std::to_string(i) + ": " + r.cause);
      return s;
    }
    isolated = isolated && r.network_isolated;
    ms.push_back(static_cast<double>(t1 - t0) / 1e6);
    inner.push_back(static_cast<double>(r.wall_us) / 1e3);
  }
  fs::remove_all(so.work_root);
  SpawnStats s = finish_stats(ms, inner);
  s.isolated = isolated;
  if (isolate && !isolated) set_note(s, "network isolation was NOT in effect");
  return s;
}

enum class Plain { kFork, kSpawn, kForkWithFiles };

// stdin /dev/null, stdout/stderr to the task folder's files, as the sandbox sets them.
struct StdFds {
  int in = -1, out = -1, err = -1;
  explicit StdFds(const std::string& dir) {
    in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    out = ::open((dir + "/stdout.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    err = ::open((dir + "/stderr.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0 || err < 0) throw std::runtime_error("cannot open the std fds in " + dir);
  }
  ~StdFds() {
    ::close(in);
    ::close(out);
    ::close(err);
  }
};

// One plain run; returns the exit status (-1: could not start) and sets *fork_ns.
int plain_once(Plain how, const std::string& exe, const std::string& dir,
               const std::vector<std::string>& env_s, int64_t* fork_ns) {
  std::vector<char*> envp;
  for (const std::string& e : env_s) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(exe.c_str()), nullptr};
  StdFds fds(dir);
  const int64_t t0 = now_ns();
  pid_t pid = -1;
  if (how == Plain::kSpawn) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
    posix_spawn_file_actions_adddup2(&fa, fds.in, 0);
    posix_spawn_file_actions_adddup2(&fa, fds.out, 1);
    posix_spawn_file_actions_adddup2(&fa, fds.err, 2);
    int rc = ::posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
  } else {
    pid = ::fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      if (::chdir(dir.c_str()) != 0 || ::dup2(fds.in, 0) < 0 || ::dup2(fds.out, 1) < 0 ||
          ::dup2(fds.err, 2) < 0)
        ::_exit(126);
      ::execve(exe.c_str(), argv, envp.data());
      ::_exit(127);
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  *fork_ns = now_ns() - t0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

SpawnStats run_plain(const App& app, Plain how, int runs, const std::string& root) {
  const std::string base = make_temp_dir(root, "plain-");
  std::vector<double> ms, inner;
  const bool as_root = ::geteuid() == 0;
  // The existing task folder of p and pv.
  if (how != Plain::kForkWithFiles) {
    fs::create_directories(base + "/iexec_in");
    fs::create_directories(base + "/iexec_out");
  }
  for (int i = 0; i < runs; ++i) {
    const crypto::Hash32 id = task_id(static_cast<uint64_t>(i));
    const int64_t t0 = now_ns();
    std::string dir = base, exe = app.path;
    if (how == Plain::kForkWithFiles) {
      // The sandbox's file work: the app read once and checked, a fresh folder, a copy.
      std::string bytes = read_text(app.path);
      if (crypto::sha256(bytes) != app.sha256) throw std::runtime_error("sha256 mismatch");
      dir = base + "/" + id.hex().substr(2) + "-XXXXXX";
      if (!::mkdtemp(dir.data())) throw std::runtime_error("mkdtemp failed");
      if (::mkdir((dir + "/iexec_in").c_str(), 0755) != 0 ||
          ::mkdir((dir + "/iexec_out").c_str(), 0755) != 0)
        throw std::runtime_error("mkdir failed");
      exe = dir + "/app";
      int fd = ::open(exe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500);
      if (fd < 0 || !bench::write_all(fd, bytes.data(), bytes.size()) || ::close(fd) != 0)
        throw std::runtime_error("cannot write the app copy");
      if (as_root) {
        for (const char* p : {"", "/iexec_in", "/iexec_out", "/app"})
          if (::lchown((dir + p).c_str(), 65534, 65534) != 0) throw std::runtime_error("lchown");
      }
    }
    int64_t fork_ns = 0;
    int rc = plain_once(how, exe, dir, app_env(dir, id), &fork_ns);
    if (rc != 0) {
      SpawnStats s;
      set_note(s, "run " + std::to_string(i) + ": exit status " + std::to_string(rc));
      return s;
    }
    if (how == Plain::kForkWithFiles) {
      // The result read back and digested, then the folder removed.
      std::string computed = read_text(dir + "/iexec_out/computed.json");
      if (json::parse(computed, nullptr, false).is_discarded())
        throw std::runtime_error("bad computed.json");
      crypto::Hash32 d = crypto::sha256(read_text(dir + "/iexec_out/result.txt"));
      if (d.is_zero()) throw std::runtime_error("digest");
      fs::remove_all(dir);
    }
    const int64_t t1 = now_ns();
    ms.push_back(static_cast<double>(t1 - t0) / 1e6);
    inner.push_back(static_cast<double>(fork_ns) / 1e6);
  }
  fs::remove_all(base);
  return finish_stats(ms, inner);
}

struct SpawnVariant {
  SpawnVariant(std::string k, std::string l, std::function<SpawnStats()> b)
      : key(std::move(k)), label(std::move(l)), body(std::move(b)) {}
  std::string key, label;
  std::function<SpawnStats()> body;
  bool failed = false;
  std::string failure;
  SpawnStats best;
  double best_cpu = 0;
  std::vector<double> means;
};

void print_spawn_table(const std::vector<SpawnVariant>& vs, int runs) {
  std::printf("%-6s %-50s %8s %8s %8s %8s %10s %8s  %s\n", "", "variant (ms per run)", "mean",
              "median", "p90", "min", "fork..reap", "CPU ms", "rounds (mean)");
  for (const SpawnVariant& v : vs) {
    if (v.failed) {
      std::printf("%-6s %-50s FAILED: %s\n", v.key.c_str(), v.label.c_str(), v.failure.c_str());
      continue;
    }
    std::string all;
    for (double m : v.means) all += (all.empty() ? "" : " ") + fmt("%.3f", m);
    std::printf("%-6s %-50s %8.3f %8.3f %8.3f %8.3f %10.3f %8.3f  %s%s%s\n", v.key.c_str(),
                v.label.c_str(), v.best.mean_ms, v.best.median_ms, v.best.p90_ms, v.best.min_ms,
                v.best.inner_ms, v.best_cpu * 1e3 / runs, all.c_str(), v.best.note[0] ? "  " : "",
                v.best.note);
  }
}

const SpawnVariant* find_spawn(const std::vector<SpawnVariant>& vs, const std::string& key) {
  for (const SpawnVariant& v : vs)
    if (v.key == key && !v.failed) return &v;
  return nullptr;
}

void spawn_ratio(const std::vector<SpawnVariant>& vs, const std::string& a, const std::string& b,
                 const std::string& meaning) {
  const SpawnVariant* x = find_spawn(vs, a);
  const SpawnVariant* y = find_spawn(vs, b);
  if (!x || !y || y->best.mean_ms <= 0) {
    std::printf("ratio: %s/%s n/a  (%s)\n", a.c_str(), b.c_str(), meaning.c_str());
    return;
  }
  std::printf(
      "ratio: %s/%s %.2fx mean, %.2fx median; overhead %+.3f ms mean, %+.3f ms median per run  "
      "(%s)\n",
      a.c_str(), b.c_str(), x->best.mean_ms / y->best.mean_ms,
      x->best.median_ms / y->best.median_ms, x->best.mean_ms - y->best.mean_ms,
      x->best.median_ms - y->best.median_ms, meaning.c_str());
}

bool sandbox_part(const std::vector<App>& apps, int runs, int rounds, const std::string& root) {
  std::vector<SpawnVariant> vs;
  const int timeout_ms = 120'000 + runs * 1000;
  auto add = [&](std::string key, std::string label, std::function<SpawnStats()> body) {
    vs.emplace_back(std::move(key), std::move(label), std::move(body));
  };
  for (const App& app : apps) {
    const std::string sfx = app.key == "sh" ? "" : "-" + app.key;
    const std::string what = app.label;
    add("s1" + sfx, "Sandbox::run, net ns, " + what,
        [&app, runs, root] { return run_sandbox(app, true, runs, root); });
    if (app.key == "sh") {
      add("s0", "Sandbox::run, no net ns, " + what,
          [&app, runs, root] { return run_sandbox(app, false, runs, root); });
      add("sx", "Sandbox::run, no ns, seccomp or Landlock, " + what,
          [&app, runs, root] { return run_sandbox(app, false, runs, root, false, false); });
      add("pf", "fork+exec + checksum/copy/dir/cleanup, " + what,
          [&app, runs, root] { return run_plain(app, Plain::kForkWithFiles, runs, root); });
    }
    if (app.key == "sh") {
      add("s1-big", "Sandbox::run, net ns, in an edgeflow-sized process",
          [&app, runs, root] { return run_sandbox(app, true, runs, root, true); });
    }
    add("p" + sfx, "plain fork+execve + waitpid, " + what,
        [&app, runs, root] { return run_plain(app, Plain::kFork, runs, root); });
    if (app.key == "sh") {
      add("pv", "plain posix_spawn + waitpid, " + what,
          [&app, runs, root] { return run_plain(app, Plain::kSpawn, runs, root); });
    }
  }
  std::printf("\n== 1. sandbox start-up: %d runs per variant, one at a time, %s ==\n", runs,
              rounds == 1 ? "one round" : ("best of " + std::to_string(rounds)).c_str());
  for (const App& a : apps)
    std::printf("   app %-3s %s (%lld bytes)\n", a.key.c_str(), a.path.c_str(),
                static_cast<long long>(a.bytes));
  for (int round = 0; round < rounds; ++round) {
    std::vector<SpawnVariant*> order;
    for (SpawnVariant& v : vs) order.push_back(&v);
    if (round % 2 == 1) std::reverse(order.begin(), order.end());
    for (SpawnVariant* v : order) {
      if (v->failed) continue;
      Forked<SpawnStats> f = run_forked<SpawnStats>(v->body, timeout_ms);
      if (!f.ok) {
        v->failed = true;
        v->failure = f.result.note[0] ? f.result.note : "the child failed";
      } else {
        v->means.push_back(f.result.mean_ms);
        if (v->best.runs == 0 || f.result.mean_ms < v->best.mean_ms) {
          v->best = f.result;
          v->best_cpu = f.cpu_seconds;
        }
      }
      std::fprintf(stderr, "  round %d %-6s %-50s %s\n", round + 1, v->key.c_str(),
                   v->label.c_str(),
                   v->failed ? ("FAILED: " + v->failure).c_str()
                             : (fmt("%.3f", f.result.mean_ms) + " ms mean").c_str());
    }
  }
  print_spawn_table(vs, runs);
  std::printf(
      "(fork..reap: sandbox = its RunResult::wall_us, fork to wait4; plain = fork/spawn to\n"
      " waitpid. CPU ms: the child's user+system per run, apps included. s1-big: s1 in a child\n"
      " given edgeflow's measured shape first: 17 MB anonymous in 150 mappings + 56 MB of a file\n"
      " in 1300 read-only mappings.)\n");
  spawn_ratio(vs, "s1", "p", "sandbox with network namespace / plain fork+exec, sh app");
  spawn_ratio(vs, "s0", "p", "sandbox without network namespace / plain fork+exec, sh app");
  spawn_ratio(vs, "s1", "s0", "cost of the network namespace (unshare)");
  spawn_ratio(vs, "s0", "sx", "cost of the PID namespace, seccomp filter and Landlock ruleset");
  spawn_ratio(
      vs, "s1-big", "s1",
      "the same sandbox in a process shaped like edgeflow: 17 MB anon + 56 MB file, 1450 maps");
  spawn_ratio(vs, "pf", "p", "checksum + copy + task folder + result read + cleanup, by hand");
  spawn_ratio(vs, "s0", "pf", "the rest of the sandbox: child set-up, limits, report pipe, wait");
  spawn_ratio(vs, "p", "pv", "fork+execve / posix_spawn");
  spawn_ratio(vs, "s1-c", "p-c", "sandbox / plain, dynamic C app");
  spawn_ratio(vs, "s1-cs", "p-cs", "sandbox / plain, static C app");
  if (const SpawnVariant* s1 = find_spawn(vs, "s1")) {
    if (const SpawnVariant* s0 = find_spawn(vs, "s0")) {
      if (const SpawnVariant* p = find_spawn(vs, "p")) {
        const SpawnVariant* pf = find_spawn(vs, "pf");
        std::printf("breakdown of s1 (mean ms per run, sh app): total %.3f = plain app %.3f",
                    s1->best.mean_ms, p->best.mean_ms);
        if (pf) std::printf(" + file work (pf-p) %.3f", pf->best.mean_ms - p->best.mean_ms);
        std::printf(" + network ns (s1-s0) %.3f", s1->best.mean_ms - s0->best.mean_ms);
        if (pf) std::printf(" + rest (s0-pf) %.3f", s0->best.mean_ms - pf->best.mean_ms);
        std::printf(
            "\n  sandbox's own split of s0: fork..reap %.3f (plain p: %.3f), outside it %.3f "
            "(checksum, copy, folders, result, cleanup)\n",
            s0->best.inner_ms, p->best.inner_ms, s0->best.mean_ms - s0->best.inner_ms);
      }
    }
  }
  for (const SpawnVariant& v : vs)
    if (v.failed) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// 2. Tasks per second through the protocol

struct PoolStats {
  bool ok = false;
  int32_t tasks = 0, completed = 0, failed = 0;
  double seconds = 0;  // first publish .. last COMPLETED (baseline: first run .. last run)
  double mean_latency_ms = 0, p50_latency_ms = 0, max_latency_ms = 0;
  double replicates_per_task = 0;  // contributors in the results
  double cpu_ms_per_task = 0;      // edgeflow (and its apps) over the timed window
  double ready_seconds = 0;        // spawn .. pool ready (warm-up done)
  double rss_kb_per_task = 0;      // edgeflow's VmRSS growth over the timed window, per task
  char note[240] = {};
  double rate() const { return seconds > 0 ? completed / seconds : 0; }
};

PoolStats run_baseline(const App& app, int tasks, const std::string& root) {
  iexec::AppSpec spec;
  spec.name = "bench";
  spec.path = app.path;
  spec.sha256 = app.sha256;
  iexec::SandboxOptions so;
  so.work_root = make_temp_dir(root, "base-");
  iexec::Sandbox sandbox(so);
  std::atomic<int> next{0}, bad{0};
  std::mutex mu;
  std::string cause;
  std::vector<double> lat;
  const int64_t t0 = now_ns();
  auto worker = [&] {
    for (int i; (i = next.fetch_add(1)) < tasks;) {
      iexec::RunRequest req;
      req.app = &spec;
      req.taskid = task_id(static_cast<uint64_t>(i));
      iexec::RunResult r = sandbox.run(req);
      std::lock_guard<std::mutex> lock(mu);
      lat.push_back(static_cast<double>(now_ns() - t0) / 1e6);
      if (r.outcome != iexec::RunOutcome::kOk) {
        ++bad;
        cause = r.cause;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  PoolStats s;
  s.seconds = static_cast<double>(now_ns() - t0) / 1e9;
  s.tasks = tasks;
  s.failed = bad.load();
  s.completed = tasks - s.failed;
  s.ok = s.failed == 0;
  s.mean_latency_ms = mean_of(lat);  // all "submitted" at t0, as the protocol's are
  s.p50_latency_ms = quantile(lat, 0.5);
  s.max_latency_ms = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  s.replicates_per_task = 1;
  if (!s.ok) set_note(s, std::to_string(s.failed) + " failed: " + cause);
  fs::remove_all(so.work_root);
  return s;
}

// user + system of a process and of the children it reaped (the apps), in ms.
double proc_cpu_ms(pid_t pid) {
  std::string s = read_text("/proc/" + std::to_string(pid) + "/stat");
  size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 2));
  std::vector<std::string> f;
  for (std::string w; in >> w;) f.push_back(w);
  // After the name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
  if (f.size() < 15) return 0;
  double ticks = 0;
  for (int i = 11; i <= 14; ++i) ticks += std::atof(f[static_cast<size_t>(i)].c_str());
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double proc_rss_kb(pid_t pid) {
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6);
  return 0;
}

// Messages from the client's thread, stamped on arrival.
struct Inbox {
  struct Item {
    std::string topic, payload;
    int64_t at_ns;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> q;
  void push(mqtt::Received&& r) {
    const int64_t t = now_ns();
    {
      std::lock_guard<std::mutex> lock(mu);
      q.push_back({std::move(r.topic), std::move(r.payload), t});
    }
    cv.notify_all();
  }
  // Takes what arrived, waiting up to timeout_ms for something.
  std::deque<Item> take(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !q.empty(); });
    std::deque<Item> out;
    out.swap(q);
    return out;
  }
};

struct Edgeflow {
  pid_t pid = -1;
  std::string log;
  // Alive: has not exited yet (reaps it when it has).
  bool alive() {
    if (pid <= 0) return false;
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      pid = -1;
      return false;
    }
    return true;
  }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    const int64_t until = now_ns() + 10'000'000'000;
    while (alive() && now_ns() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      pid = -1;
    }
  }
  ~Edgeflow() { stop(); }
};

std::string edgeflow_binary() {
  const char* e = std::getenv("EDGEFLOW_BINARY");
  return e && *e ? e : IEXEC_BENCH_EDGEFLOW;
}

void spawn_edgeflow(Edgeflow& ef, const std::string& pipeline, const std::string& log) {
  const std::string bin = edgeflow_binary();
  ef.log = log;
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const char* argv[] = {bin.c_str(), "run", pipeline.c_str(), "--quiet", nullptr};
    ::execv(bin.c_str(), const_cast<char* const*>(argv));
    std::fprintf(stderr, "cannot execute %s: %s\n", bin.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  ef.pid = pid;
}

PoolStats run_protocol(const App& app, int tasks, int trust, bool fsync, const std::string& uri,
                       const std::string& root) {
  PoolStats s;
  s.tasks = tasks;
  const int64_t spawn_ns = now_ns();
  const std::string dir = make_temp_dir(root, "pool-");
  const std::string pipeline_name = "iexec-bench";
  write_text(dir + "/registry.yaml",
             "apps:\n  bench:\n    path: " + app.path +
                 "\n    sha256: " + app.sha256.hex().substr(2) + "\n",
             0644);
  crypto::Wallet sched = crypto::Wallet::generate();
  sched.save(dir + "/scheduler.key");
  write_text(dir + "/pipeline.yaml",
             "pipeline: " + pipeline_name +
                 "\n"
                 "nodes:\n"
                 "  w1: { tier: edge }\n"
                 "  w2: { tier: edge }\n"
                 "  w3: { tier: edge }\n"
                 "  cloud: { tier: cloud }\n"
                 "links: { mqtt: { broker: \"" +
                 uri +
                 "\" } }\n"
                 "stages:\n"
                 "  - id: scheduler\n"
                 "    op: iexec.scheduler\n"
                 "    on: cloud\n"
                 "    with: { wallet: scheduler.key, create_wallet: true, apps: registry.yaml,\n"
                 "            journal: poco.journal, time_ref: 60s, open_pool: true, "
                 "open_requests: true, fsync: " +
                 (fsync ? "true" : "false") +
                 " }\n"
                 "  - id: worker\n"
                 "    op: iexec.worker\n"
                 "    on: edge\n"
                 "    with: { wallet: \"{node}.key\", create_wallet: true, apps: registry.yaml,\n"
                 "            slots: 1, heartbeat: 1s, scheduler: \"" +
                 sched.address().hex() + "\", work_dir: \"" + dir + "/tasks/{node}\" }\n",
             0644);
  Edgeflow ef;
  spawn_edgeflow(ef, dir + "/pipeline.yaml", dir + "/edgeflow.log");
  auto fail = [&](const std::string& why) {
    std::string t = tail_of(ef.log, 3);
    std::replace(t.begin(), t.end(), '\n', ' ');
    set_note(s, why + " (" + dir + "; log: " + t + ")");
    s.ok = false;
    return s;
  };

  const iexec::Topics topics(pipeline_name, "default");
  Inbox inbox;
  mqtt::ClientOptions co;
  co.uri = uri;
  co.client_id = "iexec-bench-" + std::to_string(::getpid());
  auto client = mqtt::make_client("mosquitto", co,
                                  [&inbox](mqtt::Received&& m) { inbox.push(std::move(m)); });
  client->connect();
  client->subscribe(topics.announce(), 1);
  client->subscribe(topics.base + "/workers/+/online", 1);
  client->subscribe(topics.base + "/results/#", 1);

  std::map<crypto::Hash32, int64_t> published;  // taskid -> publish time
  std::map<crypto::Hash32, std::pair<int64_t, json>> results;
  bool announced = false;
  std::set<std::string> online;
  auto pump = [&](int timeout_ms) {
    for (Inbox::Item& it : inbox.take(timeout_ms)) {
      if (it.topic == topics.announce()) {
        announced = true;
      } else if (it.topic.size() > 7 && it.topic.compare(it.topic.size() - 7, 7, "/online") == 0) {
        if (it.payload == "true") online.insert(it.topic);
        if (it.payload == "false") online.erase(it.topic);
      } else if (it.topic.rfind(topics.base + "/results/", 0) == 0) {
        auto id = crypto::parse_hash32(it.topic.substr(topics.base.size() + 9));
        json j = json::parse(it.payload, nullptr, false);
        if (id && !j.is_discarded() && !results.count(*id))
          results.emplace(*id, std::make_pair(it.at_ns, std::move(j)));
      }
    }
  };
  uint64_t serial = 0;
  auto submit = [&](int n, int trust_level) {
    std::vector<crypto::Hash32> ids;
    for (int i = 0; i < n; ++i) {
      crypto::Hash32 id = crypto::Packed()
                              .add_uint256(static_cast<uint64_t>(::getpid()))
                              .add_uint256(static_cast<uint64_t>(now_ns()))
                              .add_uint256(++serial)
                              .keccak();
      json body = {{"type", "request"},         {"id", iexec::bin(id)},    {"app", "bench"},
                   {"args", json::array()},     {"inputs", json::array()}, {"trust", trust_level},
                   {"requester", "iexec_bench"}};
      const std::string msg = iexec::seal_unsigned(body);
      const crypto::Hash32 deal = crypto::Packed().add(sched.address()).add(id).keccak();
      const crypto::Hash32 taskid = crypto::Packed().add(deal).add_uint256(0).keccak();
      published[taskid] = now_ns();
      if (!client->publish(topics.requests(), msg.data(), msg.size(), 1, false, 10'000))
        throw std::runtime_error("the broker did not take request " + std::to_string(i));
      ids.push_back(taskid);
    }
    return ids;
  };
  // Waits until every id has a result; false on the deadline or when 30 s pass without one.
  auto await = [&](const std::vector<crypto::Hash32>& ids, int64_t deadline_ns) {
    size_t have = 0;
    int64_t progress_at = now_ns();
    for (;;) {
      size_t n = 0;
      for (const crypto::Hash32& id : ids) n += results.count(id);
      if (n == ids.size()) return true;
      if (n != have) have = n, progress_at = now_ns();
      if (now_ns() > deadline_ns || now_ns() - progress_at > 30'000'000'000) return false;
      if (!ef.alive()) return false;
      pump(200);
    }
  };

  // ---- the pool is ready ----
  const int64_t ready_deadline = now_ns() + 60'000'000'000;
  while (!(announced && online.size() == 3)) {
    if (!ef.alive()) return fail("edgeflow exited during start-up");
    if (now_ns() > ready_deadline)
      return fail("no announcement and 3 workers online within 60 s (announced " +
                  std::to_string(announced) + ", online " + std::to_string(online.size()) + ")");
    pump(100);
  }
  // One heartbeat: every worker has said hello after the scheduler subscribed.
  const int64_t hb = now_ns() + 1'200'000'000;
  while (now_ns() < hb) pump(static_cast<int>((hb - now_ns()) / 1'000'000) + 1);
  std::vector<crypto::Hash32> warm = submit(3, 1);
  if (!await(warm, now_ns() + 60'000'000'000)) return fail("warm-up tasks got no result");
  for (const crypto::Hash32& id : warm)
    if (results.at(id).second.value("status", "") != "COMPLETED")
      return fail("warm-up task: " + results.at(id).second.dump().substr(0, 160));
  s.ready_seconds = static_cast<double>(now_ns() - spawn_ns) / 1e9;

  // ---- timed ----
  const double cpu0 = proc_cpu_ms(ef.pid);
  const double rss0 = proc_rss_kb(ef.pid);
  const int64_t t0 = now_ns();
  std::vector<crypto::Hash32> ids = submit(tasks, trust);
  const bool all = await(ids, t0 + (60 + static_cast<int64_t>(tasks) * 2) * 1'000'000'000);
  const double cpu1 = ef.pid > 0 ? proc_cpu_ms(ef.pid) : cpu0;
  const double rss1 = ef.pid > 0 ? proc_rss_kb(ef.pid) : rss0;
  std::vector<double> lat;
  int64_t last = t0;
  int64_t contributors = 0;
  std::string first_failure;
  for (const crypto::Hash32& id : ids) {
    auto it = results.find(id);
    if (it == results.end()) continue;
    const json& j = it->second.second;
    if (j.value("status", "") == "COMPLETED") {
      ++s.completed;
      last = std::max(last, it->second.first);
      lat.push_back(static_cast<double>(it->second.first - published.at(id)) / 1e6);
      if (j.contains("contributors"))
        contributors += static_cast<int64_t>(j["contributors"].size());
    } else {
      ++s.failed;
      if (first_failure.empty()) first_failure = j.value("cause", j.dump().substr(0, 120));
    }
  }
  s.seconds = static_cast<double>(last - t0) / 1e9;
  s.mean_latency_ms = mean_of(lat);
  s.p50_latency_ms = quantile(lat, 0.5);
  s.max_latency_ms = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  s.replicates_per_task = s.completed ? static_cast<double>(contributors) / s.completed : 0;
  s.cpu_ms_per_task = s.completed ? (cpu1 - cpu0) / s.completed : 0;
  s.rss_kb_per_task = s.completed ? (rss1 - rss0) / s.completed : 0;
  client->disconnect();
  ef.stop();
  if (!all || s.completed != tasks) {
    return fail(std::to_string(s.completed) + " of " + std::to_string(tasks) + " COMPLETED, " +
                std::to_string(s.failed) + " FAILED" +
                (first_failure.empty() ? "" : ": " + first_failure) +
                (all ? "" : "; results missing"));
  }
  s.ok = true;
  if (!g_keep) fs::remove_all(dir);
  return s;
}

struct PoolVariant {
  PoolVariant(std::string k, std::string l, std::function<Forked<PoolStats>()> r)
      : key(std::move(k)), label(std::move(l)), run(std::move(r)) {}
  std::string key, label;
  std::function<Forked<PoolStats>()> run;
  bool failed = false;
  std::string failure;
  PoolStats best;
  std::vector<double> rates;
};

bool protocol_part(const App& app, int tasks, int rounds, const std::string& root) {
  const int timeout_ms = (180 + tasks * 3) * 1000;
  auto with_broker = [=](int trust, bool fsync) {
    return [=] {
      mqtt::EmbeddedBrokerOptions bo;
      bo.persistence = false;
      mqtt::EmbeddedBroker broker(bo);
      broker.start();
      const std::string uri = broker.uri();
      return run_forked<PoolStats>(
          [&] { return run_protocol(app, tasks, trust, fsync, uri, root); }, timeout_ms);
    };
  };
  std::vector<PoolVariant> vs;
  vs.emplace_back("b", "Sandbox::run on 3 threads, no protocol", [=] {
    Forked<PoolStats> f =
        run_forked<PoolStats>([&] { return run_baseline(app, tasks, root); }, timeout_ms);
    f.result.cpu_ms_per_task = f.cpu_seconds * 1e3 / tasks;
    return f;
  });
  vs.emplace_back("t1", "protocol, trust 1, fsync true", with_broker(1, true));
  vs.emplace_back("t1n", "protocol, trust 1, fsync false", with_broker(1, false));
  vs.emplace_back("t3", "protocol, trust 3, fsync true", with_broker(3, true));
  vs.emplace_back("t3n", "protocol, trust 3, fsync false", with_broker(3, false));

  std::printf(
      "\n== 2. tasks/s through the protocol: %d tasks at once, 3 workers x 1 slot, sh app, %s ==\n",
      tasks, rounds == 1 ? "one round" : ("best of " + std::to_string(rounds)).c_str());
  std::printf("   edgeflow: %s\n", edgeflow_binary().c_str());
  for (int round = 0; round < rounds; ++round) {
    std::vector<PoolVariant*> order;
    for (PoolVariant& v : vs) order.push_back(&v);
    if (round % 2 == 1) std::reverse(order.begin(), order.end());
    for (PoolVariant* v : order) {
      if (v->failed) continue;
      Forked<PoolStats> f = v->run();
      if (!f.ok) {
        v->failed = true;
        v->failure = f.result.note[0] ? f.result.note : "the child failed";
      } else {
        v->rates.push_back(f.result.rate());
        if (f.result.rate() > v->best.rate()) v->best = f.result;
      }
      std::fprintf(stderr, "  round %d %-4s %-40s %s\n", round + 1, v->key.c_str(),
                   v->label.c_str(),
                   v->failed ? ("FAILED: " + v->failure).c_str()
                             : (fmt("%.1f", f.result.rate()) + " tasks/s").c_str());
    }
  }
  std::printf("%-4s %-40s %8s %8s %9s %9s %9s %8s %8s %8s %7s  %s\n", "", "variant", "tasks/s",
              "seconds", "lat mean", "lat p50", "lat max", "repl/tsk", "CPU ms/t", "RSS KB/t",
              "ready s", "rounds (tasks/s)");
  for (const PoolVariant& v : vs) {
    if (v.failed) {
      std::printf("%-4s %-40s FAILED: %s\n", v.key.c_str(), v.label.c_str(), v.failure.c_str());
      continue;
    }
    std::string all;
    for (double r : v.rates) all += (all.empty() ? "" : " ") + fmt("%.1f", r);
    const PoolStats& b = v.best;
    std::printf("%-4s %-40s %8.1f %8.2f %9.1f %9.1f %9.1f %8.2f %8.1f %8s %7s  %s\n", v.key.c_str(),
                v.label.c_str(), b.rate(), b.seconds, b.mean_latency_ms, b.p50_latency_ms,
                b.max_latency_ms, b.replicates_per_task, b.cpu_ms_per_task,
                v.key == "b" ? "-" : fmt("%.1f", b.rss_kb_per_task).c_str(),
                v.key == "b" ? "-" : fmt("%.1f", b.ready_seconds).c_str(), all.c_str());
  }
  std::printf(
      "(latency: result on results/<taskid> minus its request's publish, all published at once;\n"
      " baseline: end of each run minus the start. repl/tsk: contributors per completed task.\n"
      " CPU ms/t: user+system per task, apps included: edgeflow's over the timed window (not the\n"
      " broker's nor this bench's); the baseline child's whole run. RSS KB/t: edgeflow's VmRSS\n"
      " growth over the timed window per task. ready s: edgeflow spawned .. warm-up done.)\n");
  auto find = [&](const std::string& k) -> const PoolVariant* {
    for (const PoolVariant& v : vs)
      if (v.key == k && !v.failed) return &v;
    return nullptr;
  };
  auto ratio = [&](const std::string& a, const std::string& b, const std::string& meaning) {
    const PoolVariant* x = find(a);
    const PoolVariant* y = find(b);
    if (!x || !y || y->best.rate() <= 0) {
      std::printf("ratio: %s/%s n/a  (%s)\n", a.c_str(), b.c_str(), meaning.c_str());
      return;
    }
    std::printf("ratio: %s/%s %.2fx  (%s)\n", a.c_str(), b.c_str(), x->best.rate() / y->best.rate(),
                meaning.c_str());
  };
  ratio("t1", "b", "protocol trust 1 / sandbox alone on 3 threads");
  ratio("t1n", "b", "protocol trust 1 without fsync / sandbox alone");
  ratio("t3", "b", "protocol trust 3 / sandbox alone (one run per task)");
  ratio("t3n", "b", "protocol trust 3 without fsync / sandbox alone");
  ratio("t1n", "t1", "what fsync of the journal costs, trust 1");
  ratio("t3n", "t3", "what fsync of the journal costs, trust 3");
  ratio("t3", "t1", "trust 3 / trust 1");
  if (const PoolVariant* t3 = find("t3")) {
    if (const PoolVariant* b = find("b")) {
      const double need = t3->best.replicates_per_task;
      if (need > 0)
        std::printf(
            "ratio: t3/(b/%.2f) %.2fx  (trust 3 against the sandbox doing the same %.2f runs per "
            "task)\n",
            need, t3->best.rate() / (b->best.rate() / need), need);
    }
  }
  for (const PoolVariant& v : vs)
    if (v.failed) return false;
  return true;
}

int usage() {
  std::fprintf(stderr,
               "usage: iexec_bench [--runs N] [--tasks N] [--rounds R] [--quick] "
               "[--only sandbox|protocol] [--keep]\n");
  return 2;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
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
