// `run --node NODE` for a node with a replicated stage (`replicas: N`): `--replica I/N` runs
// that replica alone; without it, the process starts all N as child processes, each with
// `--replica I/N` in its command line, and runs the node's other stages itself.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime/pipeline.h"

namespace edgeflow::cli {

struct ReplicaChoice {
  int index = -1;     // 0-based; -1: none chosen
  std::string node;   // the replica node to run (replica_node), when chosen
  std::string error;  // what is wrong with --replica, naming the fix
};

// `text` is --replica's value ("2/3"); `node` is --node's.
ReplicaChoice choose_replica(const PipelineSpec& pipeline, const std::string& node,
                             const std::string& text);

// The replicas of a node as child processes of this one.
class ReplicaChildren {
 public:
  ReplicaChildren() = default;
  ~ReplicaChildren();  // SIGTERM to those still running, then waits for them
  ReplicaChildren(const ReplicaChildren&) = delete;
  ReplicaChildren& operator=(const ReplicaChildren&) = delete;

  // Starts one child per replica: `args_for(i)` is its command line after the program
  // (1-based i). Throws std::runtime_error when a child cannot be started.
  void start(int count, const std::function<std::vector<std::string>(int)>& args_for);
  // Sends `sig` to every child still running.
  void signal(int sig);
  // Waits for every child; the first non-zero exit code, or 0. A child that died (a signal
  // it did not handle, or kExitLeaseLost) counts as 0 while another one still runs: its
  // partition moves to the others.
  int wait();
  // Collects children that ended, without waiting: the first non-zero exit code among
  // them, or 0 (counted as wait() counts).
  int reap();
  bool running() const;
  size_t size() const { return pids_.size(); }

 private:
  int outcome(size_t i, int status);  // the exit code as wait() counts it; logs a death
  std::vector<pid_t> pids_;
};

}  // namespace edgeflow::cli
