// iexec_bench's shared pieces: a forked child returning a plain struct, the small statistics
// and file helpers, the apps under test (App) and the task ids, and the entry points of the two
// parts (iexec_bench_sandbox.cc: 1. sandbox start-up; iexec_bench_protocol.cc: 2. tasks/s
// through the protocol). iexec_bench.cc holds main and describes the benchmark.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "crypto/crypto.h"

namespace edgeflow::iexec_bench {

namespace fs = std::filesystem;
using bench::now_ns;

extern bool g_keep;  // --keep: leave the temp folder (pipelines, journals, edgeflow logs)

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

double mean_of(const std::vector<double>& v);
double quantile(std::vector<double> v, double q);
std::string fmt(const char* f, double x);

// ---------------------------------------------------------------------------------------------
// Files

void write_text(const std::string& path, const std::string& text, mode_t mode);
std::string read_text(const std::string& path);
std::string tail_of(const std::string& path, size_t lines);
// A folder the sandbox can use as root: the app runs as nobody and must reach its task folder.
std::string make_temp_dir(const std::string& under, const std::string& prefix);

struct App {
  std::string key;    // "sh", "c", "cs"
  std::string label;  // for the table
  std::string path;
  crypto::Hash32 sha256;
  int64_t bytes = 0;
};

crypto::Hash32 task_id(uint64_t n);

// ---------------------------------------------------------------------------------------------
// The two parts; each returns false when a variant failed.

// 1. Sandbox start-up overhead (iexec_bench_sandbox.cc).
bool sandbox_part(const std::vector<App>& apps, int runs, int rounds, const std::string& root);
// 2. Tasks per second through the protocol (iexec_bench_protocol.cc).
bool protocol_part(const App& app, int tasks, int rounds, const std::string& root);

}  // namespace edgeflow::iexec_bench
