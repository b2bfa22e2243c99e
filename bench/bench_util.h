// Shared by the link, ZeroMQ and MQTT relay benchmarks: each variant runs in a forked child,
// so its peak RSS (ru_maxrss from wait4) is its own; the child reports its result through a
// pipe. Variants are interleaved round by round and the best round of each is kept, because
// this machine is shared and absolute figures drift: compare the ratios taken in one run.
//
// Fork safety: the parent forks while single-threaded except for threads that hold no lock
// the child needs (the embedded broker's spawner thread idles on a condition variable; glibc
// resets malloc's locks in the child). Children leave with _exit.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace edgeflow::bench {

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What a child sends back: plain bytes through a pipe.
struct RunResult {
  bool ok = false;         // completed and delivered == sent
  uint64_t sent = 0;       // messages the producer sent
  uint64_t delivered = 0;  // messages the consumer saw
  double seconds = 0;      // first message produced .. last message consumed
  char note[240] = {};     // why it failed, or an extra figure

  void set_note(const std::string& text) { std::snprintf(note, sizeof note, "%s", text.c_str()); }
  double rate() const { return seconds > 0 ? static_cast<double>(delivered) / seconds : 0; }
};

struct Measured {
  RunResult result;
  double max_rss_mb = 0;
  double cpu_seconds = 0;  // user + system of the child
};

inline bool read_all(int fd, void* data, size_t size, int timeout_ms) {
  char* p = static_cast<char*>(data);
  int64_t deadline = now_ns() + static_cast<int64_t>(timeout_ms) * 1'000'000;
  while (size > 0) {
    int64_t left_ms = (deadline - now_ns()) / 1'000'000;
    if (left_ms <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

inline bool write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// A forked child running `body`. `body` gets a control fd it may read from (the parent's
// commands, see Child::send) and returns the result. The parent may do work of its own while
// the child runs (the relay benchmark drives load from the parent), then calls finish().
class Child {
 public:
  explicit Child(const std::function<RunResult(int control_fd)>& body) {
    int result_pipe[2], control_pipe[2];
    if (::pipe(result_pipe) != 0 || ::pipe(control_pipe) != 0) {
      std::perror("pipe");
      std::exit(1);
    }
    std::fflush(stdout);
    std::fflush(stderr);
    pid_ = ::fork();
    if (pid_ < 0) {
      std::perror("fork");
      std::exit(1);
    }
    if (pid_ == 0) {
      ::close(result_pipe[0]);
      ::close(control_pipe[1]);
      RunResult r;
      try {
        r = body(control_pipe[0]);
      } catch (const std::exception& e) {
        r = RunResult{};
        r.set_note(std::string("exception: ") + e.what());
      }
      write_all(result_pipe[1], &r, sizeof r);
      ::close(result_pipe[1]);
      ::_exit(0);
    }
    ::close(result_pipe[1]);
    ::close(control_pipe[0]);
    result_fd_ = result_pipe[0];
    control_fd_ = control_pipe[1];
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) finish(0);
  }

  // True once the child has sent its result or died (without waiting).
  bool exited() const {
    pollfd pfd{result_fd_, POLLIN, 0};
    return ::poll(&pfd, 1, 0) > 0;
  }
  // One byte to the child (it reads it from its control fd).
  void send(char command) { write_all(control_fd_, &command, 1); }
  // Waits for the child's result (at most timeout_ms; then it is killed and the run failed).
  Measured finish(int timeout_ms) {
    Measured m;
    if (!read_all(result_fd_, &m.result, sizeof m.result, timeout_ms)) {
      m.result = RunResult{};
      m.result.set_note("no result within " + std::to_string(timeout_ms / 1000) +
                        " s (killed) or the child died");
      ::kill(pid_, SIGKILL);
    }
    ::close(result_fd_);
    ::close(control_fd_);
    int status = 0;
    rusage ru{};
    while (::wait4(pid_, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    m.max_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
    m.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      m.result.ok = false;
      if (!m.result.note[0]) m.result.set_note("child exited abnormally");
    }
    return m;
  }

 private:
  pid_t pid_ = -1;
  int result_fd_ = -1;
  int control_fd_ = -1;
};

inline Measured run_forked(const std::function<RunResult()>& body, int timeout_ms) {
  Child child([&](int) { return body(); });
  return child.finish(timeout_ms);
}

// Reads one command byte from the parent; 0 when the parent went away or timeout_ms passed.
inline char read_command(int control_fd, int timeout_ms) {
  char c = 0;
  return read_all(control_fd, &c, 1, timeout_ms) ? c : 0;
}

struct Args {
  bool quick = false;
  int64_t count = 0;  // 0: the benchmark's default
  int rounds = 3;
  std::vector<std::string> only;  // --only k1,k2: run these variants alone (ratios of others: n/a)
};

// The --only list of the last parse_args(), read by run_rounds().
inline std::vector<std::string>& only_variants() {
  static std::vector<std::string> only;
  return only;
}

inline Args parse_args(int argc, char** argv, const char* usage) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--quick") {
      a.quick = true;
    } else if (s == "--count" && i + 1 < argc) {
      a.count = std::atoll(argv[++i]);
    } else if (s == "--rounds" && i + 1 < argc) {
      a.rounds = std::atoi(argv[++i]);
    } else if (s == "--only" && i + 1 < argc) {
      std::string list = argv[++i];
      for (size_t start = 0; start <= list.size();) {
        size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) a.only.push_back(list.substr(start, comma - start));
        start = comma + 1;
      }
    } else {
      std::fprintf(stderr, "usage: %s\n", usage);
      std::exit(2);
    }
  }
  if (a.quick) a.rounds = 1;
  only_variants() = a.only;
  if (a.rounds < 1 || a.count < 0) {
    std::fprintf(stderr, "usage: %s\n", usage);
    std::exit(2);
  }
  return a;
}

// A variant's best round (highest rate) and the highest peak RSS of its rounds. A variant
// with any failed or lossy round has no figure.
struct Variant {
  Variant(std::string k, std::string l, std::function<Measured()> r)
      : key(std::move(k)), label(std::move(l)), run(std::move(r)) {}
  std::string key;    // short name used in ratio lines
  std::string label;  // table text
  std::function<Measured()> run;
  bool failed = false;
  std::string failure;
  RunResult best;
  double best_cpu_seconds = 0;  // of the best round
  double max_rss_mb = 0;
  std::vector<double> rates;

  void add(const Measured& m) {
    max_rss_mb = std::max(max_rss_mb, m.max_rss_mb);
    const RunResult& r = m.result;
    if (!r.ok || r.delivered < r.sent) {
      failed = true;
      failure = "delivered " + std::to_string(r.delivered) + " of " + std::to_string(r.sent) +
                (r.note[0] ? std::string(": ") + r.note : std::string());
      std::replace(failure.begin(), failure.end(), '\n', ' ');
      return;
    }
    rates.push_back(r.rate());
    if (r.rate() > best.rate()) best = r, best_cpu_seconds = m.cpu_seconds;
  }
  double rate() const { return failed ? 0 : best.rate(); }
};

// Runs every variant `rounds` times, interleaved; prints one progress line per run on stderr.
inline void run_rounds(std::vector<Variant>& variants, int rounds) {
  const std::vector<std::string>& only = only_variants();
  if (!only.empty())
    variants.erase(std::remove_if(variants.begin(), variants.end(),
                                  [&](const Variant& v) {
                                    return std::find(only.begin(), only.end(), v.key) == only.end();
                                  }),
                   variants.end());
  for (int round = 0; round < rounds; ++round) {
    for (Variant& v : variants) {
      if (v.failed) continue;
      Measured m = v.run();
      v.add(m);
      std::fprintf(stderr, "  round %d %-34s %s\n", round + 1, v.label.c_str(),
                   v.failed
                       ? ("FAILED: " + v.failure).c_str()
                       : (std::to_string(static_cast<int64_t>(m.result.rate())) + "/s").c_str());
    }
  }
}

// CPU us/msg: the child's user + system time over the messages it moved, in its best round
// (start-up included). Peak RSS: the highest of the rounds.
inline void print_table(const std::vector<Variant>& variants, const char* unit) {
  std::printf("%-4s %-38s %12s %8s %10s %7s  %s\n", "", "variant", unit, "seconds", "CPU us/msg",
              "RSS MB", "rounds (/s)");
  for (const Variant& v : variants) {
    if (v.failed) {
      std::printf("%-4s %-38s %12s %8s %10s %7.1f  FAILED: %s\n", v.key.c_str(), v.label.c_str(),
                  "-", "-", "-", v.max_rss_mb, v.failure.c_str());
      continue;
    }
    std::string all;
    for (double r : v.rates) all += (all.empty() ? "" : " ") + std::to_string(int64_t(r));
    const double cpu_us =
        v.best.delivered ? v.best_cpu_seconds * 1e6 / static_cast<double>(v.best.delivered) : 0;
    std::printf("%-4s %-38s %12.0f %8.3f %10.2f %7.1f  %s%s%s\n", v.key.c_str(), v.label.c_str(),
                v.rate(), v.best.seconds, cpu_us, v.max_rss_mb, all.c_str(),
                v.best.note[0] ? "  " : "", v.best.note);
  }
}

// The peak RSS of a forked child that does nothing: the binary's libraries and what the
// parent had resident, a floor inside every variant's figure (ef_operators links OpenCV, whose
// libraries alone bring ~15 MB).
inline void print_rss_floor() {
  Measured m = run_forked(
      [] {
        RunResult r;
        r.ok = true;
        return r;
      },
      10'000);
  std::printf("RSS floor (an idle forked child of this binary): %.1f MB\n", m.max_rss_mb);
}

inline const Variant* find_variant(const std::vector<Variant>& vs, const std::string& key) {
  for (const Variant& v : vs)
    if (v.key == key) return &v;
  return nullptr;
}

// "ratio: b/e 0.84x  (what it means)"; n/a when either side has no figure.
inline void print_ratio(const std::vector<Variant>& vs, const std::string& num,
                        const std::string& den, const std::string& meaning, double target = 0) {
  const Variant* a = find_variant(vs, num);
  const Variant* b = find_variant(vs, den);
  if (!a || !b || a->failed || b->failed || b->rate() <= 0) {
    std::printf("ratio: %s/%s n/a  (%s)\n", num.c_str(), den.c_str(), meaning.c_str());
    return;
  }
  double r = a->rate() / b->rate();
  std::string verdict;
  if (target > 0) verdict = r >= target ? "  [target >= " : "  [BELOW target ";
  if (target > 0) {
    char t[32];
    std::snprintf(t, sizeof t, "%.2fx]", target);
    verdict += t;
  }
  // Round by round (the variants of one round ran back to back): how stable the ratio is.
  std::string per_round;
  const size_t rounds = std::min(a->rates.size(), b->rates.size());
  if (rounds > 1) {
    double lo = 1e300, hi = 0;
    for (size_t i = 0; i < rounds; ++i) {
      if (b->rates[i] <= 0) continue;
      lo = std::min(lo, a->rates[i] / b->rates[i]);
      hi = std::max(hi, a->rates[i] / b->rates[i]);
    }
    char t[64];
    std::snprintf(t, sizeof t, "  rounds %.2f-%.2fx", lo, hi);
    per_round = t;
  }
  std::printf("ratio: %s/%s %.2fx  (%s)%s%s\n", num.c_str(), den.c_str(), r, meaning.c_str(),
              verdict.c_str(), per_round.c_str());
}

// CPU time per message of `num` over that of `den`, each in its best round: lower is better.
inline void print_cpu_ratio(const std::vector<Variant>& vs, const std::string& num,
                            const std::string& den, const std::string& meaning,
                            double target_at_most = 0) {
  const Variant* a = find_variant(vs, num);
  const Variant* b = find_variant(vs, den);
  auto per_message = [](const Variant& v) {
    return v.best.delivered ? v.best_cpu_seconds / static_cast<double>(v.best.delivered) : 0.0;
  };
  if (!a || !b || a->failed || b->failed || per_message(*b) <= 0) {
    std::printf("cpu ratio: %s/%s n/a  (%s)\n", num.c_str(), den.c_str(), meaning.c_str());
    return;
  }
  const double r = per_message(*a) / per_message(*b);
  char verdict[48] = "";
  if (target_at_most > 0)
    std::snprintf(verdict, sizeof verdict, "  [%s %.2fx]",
                  r <= target_at_most ? "target <=" : "ABOVE target", target_at_most);
  std::printf("cpu ratio: %s/%s %.2fx  (%s)%s\n", num.c_str(), den.c_str(), r, meaning.c_str(),
              verdict);
}

// A test CA, and a certificate for localhost and 127.0.0.1, made by scripts/make-test-ca.sh in
// a fresh folder for the TLS variants; "" (and a line saying so) when that fails.
inline std::string make_test_ca(const std::string& source_dir) {
  char tmpl[] = "/tmp/edgeflow-bench-ca-XXXXXX";
  if (!::mkdtemp(tmpl)) return "";
  const std::string cmd =
      "bash " + source_dir + "/scripts/make-test-ca.sh " + tmpl + " localhost >/dev/null 2>&1";
  if (std::system(cmd.c_str()) == 0) return tmpl;
  std::printf("(no TLS variants: scripts/make-test-ca.sh failed; is openssl installed?)\n");
  return "";
}

inline bool any_failed(const std::vector<Variant>& vs) {
  for (const Variant& v : vs)
    if (v.failed) return true;
  return false;
}

}  // namespace edgeflow::bench
