// The CPU time of each stage turn, at a price a relay can pay per message.
//
// CLOCK_THREAD_CPUTIME_ID is a system call even where the vDSO serves the other clocks: 1.3 µs
// on the machines this project is measured on, more than a relay's whole `map` turn, and a
// message crossing three stages paid it four times. The monotonic clock is read in the vDSO
// (25 ns). So:
// - a short turn is charged its elapsed time on the monotonic clock, and the thread's CPU
//   clock is read about once a millisecond: when the short turns of that interval took more
//   elapsed time than the CPU the thread used (it was preempted), the difference is taken back
//   from them in proportion;
// - a counter whose turn took longer than kSlowTurn (a turn that computes a lot, or blocks on
//   a full window or an absent broker) reads the CPU clock before and after its next turns,
//   which costs under 1% of such a turn and charges a blocked turn nothing for the wait.
// Time between turns (waiting for work, a broker client's own reading) is charged to no turn.
#pragma once

#include <atomic>
#include <cstdint>

namespace edgeflow::turn_cpu {

inline constexpr int64_t kSlowTurn = 200'000;  // ns

// The CPU time charged to one stage copy.
struct Counter {
  std::atomic<int64_t> ns{0};
  std::atomic<bool> slow{false};  // its turns read the CPU clock exactly
};

// An id for the owner of some counters (an executor), unique in the process: a correction
// reaches only counters of the owner of the charge being made, so a thread that outlives an
// owner never touches its counters again.
uint64_t new_owner();

// A turn of `counter`, of `owner`, begins on this thread. What the thread did since its
// previous turn (slept, or a broker client's own work before a driven turn) is charged to no
// turn.
void begin(Counter& counter, uint64_t owner);

// The turn begun last on this thread ends: charge it to `counter`, which belongs to `owner`
// and must stay alive for as long as its owner does.
void charge(Counter& counter, uint64_t owner);

// Settle this thread's corrections now (before the thread ends or its owner goes).
void settle(uint64_t owner);

// Charge the turn nothing for what this thread does between pause() and resume() (an
// observer's own work inside a turn).
struct Pause {
  int64_t wall;
  int64_t cpu;  // -1: the turn is timed on the monotonic clock only
};
Pause pause();
void resume(const Pause& p);

}  // namespace edgeflow::turn_cpu
