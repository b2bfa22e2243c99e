#include "runtime/turn_cpu.h"

#include <time.h>

#include <array>
#include <cstddef>

namespace edgeflow::turn_cpu {
namespace {

constexpr int64_t kInterval = 1'000'000;  // ns between reads of the thread's CPU clock
constexpr size_t kMaxPending = 16;        // distinct counters per interval, then settle early

int64_t clock_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t thread_cpu_ns() { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }
int64_t now_ns() { return clock_ns(CLOCK_MONOTONIC); }

struct Pending {
  Counter* counter;
  int64_t charged;  // elapsed ns charged to it in this interval
};

struct ThreadClock {
  int64_t mark = 0;            // monotonic ns at the turn's beginning (or an exclusion's end)
  int64_t exact_start = -1;    // this thread's CPU ns at the beginning of a slow turn; -1: none
  int64_t interval_start = 0;  // monotonic ns when the interval began; 0: none
  int64_t cpu_start = 0;       // this thread's CPU ns then
  uint64_t owner = 0;          // of the pending counters
  std::array<Pending, kMaxPending> pending{};
  size_t n = 0;

  void begin_interval(int64_t now, int64_t cpu_now) {
    n = 0;
    interval_start = now;
    cpu_start = cpu_now;
  }

  // Take back what the short turns of the interval were charged beyond the CPU the thread
  // used in it (less `exact`, charged already to a slow turn), and begin the next interval.
  void settle(int64_t now, int64_t cpu_now, int64_t exact) {
    int64_t charged = 0;
    for (size_t i = 0; i < n; ++i) charged += pending[i].charged;
    const int64_t excess = charged - (cpu_now - cpu_start - exact);
    if (excess > 0) {
      for (size_t i = 0; i < n; ++i) {
        const auto back = static_cast<int64_t>(static_cast<double>(excess) *
                                               static_cast<double>(pending[i].charged) /
                                               static_cast<double>(charged));
        pending[i].counter->ns.fetch_sub(back, std::memory_order_relaxed);
      }
    }
    begin_interval(now, cpu_now);
  }
};

thread_local ThreadClock t_clock;
std::atomic<uint64_t> g_owners{0};

}  // namespace

uint64_t new_owner() { return g_owners.fetch_add(1, std::memory_order_relaxed) + 1; }

Pause pause() { return {now_ns(), t_clock.exact_start >= 0 ? thread_cpu_ns() : -1}; }

void resume(const Pause& p) {
  t_clock.mark += now_ns() - p.wall;
  if (p.cpu >= 0 && t_clock.exact_start >= 0) t_clock.exact_start += thread_cpu_ns() - p.cpu;
}

void begin(Counter& counter, uint64_t owner) {
  ThreadClock& c = t_clock;
  c.mark = now_ns();
  if (c.owner != owner) {
    // The pending counters of another owner may be gone: they keep what they were charged.
    c.owner = owner;
    c.n = 0;
    c.interval_start = 0;
  }
  const bool slow = counter.slow.load(std::memory_order_relaxed);
  if (slow || c.interval_start == 0) {
    const int64_t cpu = thread_cpu_ns();
    c.exact_start = slow ? cpu : -1;
    // The first turn of this thread for this owner opens the interval, so it is capped too.
    if (c.interval_start == 0) c.begin_interval(c.mark, cpu);
  } else {
    c.exact_start = -1;
  }
}

void charge(Counter& counter, uint64_t owner) {
  ThreadClock& c = t_clock;
  const int64_t now = now_ns();
  const int64_t spent = now - c.mark;
  c.mark = now;
  if (c.owner != owner) {  // begin() was for another owner: nothing to correct against
    c.owner = owner;
    c.n = 0;
    c.interval_start = 0;
  }
  if (c.exact_start >= 0) {
    const int64_t cpu_now = thread_cpu_ns();
    const int64_t used = cpu_now - c.exact_start;
    c.exact_start = -1;
    counter.ns.fetch_add(used, std::memory_order_relaxed);
    if (spent < kSlowTurn / 2) counter.slow.store(false, std::memory_order_relaxed);
    if (c.interval_start == 0)
      c.begin_interval(now, cpu_now);
    else
      c.settle(now, cpu_now, used);  // the CPU clock was read anyway
    return;
  }
  counter.ns.fetch_add(spent, std::memory_order_relaxed);
  if (spent >= kSlowTurn) counter.slow.store(true, std::memory_order_relaxed);
  if (c.interval_start == 0) {
    // The thread's CPU clock before this turn is unknown: this one charge stays as it is.
    c.begin_interval(now, thread_cpu_ns());
    return;
  }
  size_t i = 0;
  while (i < c.n && c.pending[i].counter != &counter) ++i;
  if (i == c.n) {
    if (c.n == kMaxPending) {  // settle early; this one charge stays as it is
      c.settle(now, thread_cpu_ns(), 0);
      return;
    }
    c.pending[c.n++] = {&counter, 0};
  }
  c.pending[i].charged += spent;
  if (now - c.interval_start >= kInterval) c.settle(now, thread_cpu_ns(), 0);
}

void settle(uint64_t owner) {
  ThreadClock& c = t_clock;
  if (c.owner == owner && c.interval_start != 0 && c.n > 0) c.settle(now_ns(), thread_cpu_ns(), 0);
  c.interval_start = 0;
  c.n = 0;
}

}  // namespace edgeflow::turn_cpu
