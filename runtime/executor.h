// Runs a placed pipeline in one process. Every stage copy has a bounded input queue; a stage
// runs on one worker thread at a time, in batches; a stage whose downstream queue is full is
// parked until that queue drains (back-pressure up to the sources). Sources run on threads of
// their own, so a source waiting for its next reading never holds a worker.
//
// End of input travels as a marker behind the data on every edge: a stage finishes (timers
// fire, close() flushes) once every input has ended, then ends its outputs. request_stop()
// stops the sources and lets that same wave drain everything already accepted.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/link.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {

struct ExecutorOptions {
  int threads = 2;                 // worker threads for transforms and sinks
  size_t batch = 256;              // messages a stage handles per turn
  std::function<int64_t()> clock;  // wall clock in µs; system clock when empty
  // Carries the links between nodes. Null: edges between nodes are in-process queues (unit
  // tests, and the runtime alone); set: every link gets a sender and a receiver stage.
  LinkTransport* links = nullptr;
  // Run only this node's part of the plan (and its ends of links); "" runs every node.
  std::string only_node;
  // Nodes run by child processes of this one (a node's replicas): a receiver of a link from
  // them waits for their end of input after a stop, as it does in one process.
  std::vector<std::string> child_nodes;
  // A service's durable state per stage copy (stage id, node); null or empty: none.
  std::function<std::shared_ptr<StageDurability>(const std::string& stage, const std::string& node)>
      durability;
  // Sees what each stage copy hands on at the end of a turn, per output port (`edgeflow
  // profile` measures output sizes with it). Called on the copy's thread; empty: not called.
  std::function<void(const StageInstance& copy, int port, const std::vector<MessagePtr>& batch)>
      on_flush;
  // The node's energy mode, set by the edge service while the part runs (Context::energy());
  // null: "normal" throughout.
  std::shared_ptr<const EnergyMode> energy;
};

struct StageMetrics {
  std::string stage;
  std::string node;
  std::string op;
  uint64_t in = 0;
  uint64_t out = 0;
  uint64_t errors = 0;
  uint64_t dropped = 0;  // drop-oldest queues
  double cpu_seconds = 0;
  size_t queue_high_water = 0;
  size_t queue_capacity = 0;
  size_t queue_bytes_high_water = 0;  // approx_bytes (runtime/message.h)
  size_t queue_bytes_limit = 0;
  bool finished = false;
};

class Executor {
 public:
  // Throws std::invalid_argument when only_node names no node of the plan or is set without
  // a link transport.
  Executor(const PipelineSpec& pipeline, const Plan& plan, ExecutorOptions options = {});
  ~Executor();  // stops, drains and joins if still running
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Builds and opens every operator, inputs first, then starts the threads. Throws
  // OperatorError naming the stage and node when an operator cannot open (after closing the
  // ones already open); nothing has run then.
  void start();
  // Thread-safe. Sources stop; everything already accepted is processed and flushed.
  void request_stop();
  // Waits until every stage has finished; false on timeout (timeout_us < 0: no timeout).
  bool wait(int64_t timeout_us = -1);
  bool finished() const;
  std::vector<StageMetrics> metrics() const;

  struct Engine;  // the threads and stage copies; defined in executor.cc

 private:
  std::unique_ptr<Engine> engine_;
};

}  // namespace edgeflow
