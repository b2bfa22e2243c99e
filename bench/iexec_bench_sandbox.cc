// iexec_bench, part 1: sandbox start-up overhead. Sandbox::run (with and without the network
// namespace, without the PID namespace/seccomp/Landlock, in an edgeflow-sized process) against
// plain fork+execve and posix_spawn of the same app, with and without the sandbox's file work.
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "bench/iexec_bench_support.h"
#include "crypto/crypto.h"
#include "iexec/app.h"

namespace edgeflow::iexec_bench {
namespace {

using nlohmann::json;

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

}  // namespace

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

}  // namespace edgeflow::iexec_bench
