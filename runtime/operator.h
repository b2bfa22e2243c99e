// The operator API. An operator declares its contract (OperatorSpec), is built from validated
// Options, and is driven by the runtime through open / process / close. The runtime never
// calls one instance from two threads at once, so operators need no locks of their own.
//
// Bad data at run time goes to ctx.error(), never to an exception: exceptions belong to
// construction (OptionError) and open() (OperatorError: a missing file, an absent device).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "runtime/durability.h"
#include "runtime/energy_mode.h"
#include "runtime/link_settings.h"
#include "runtime/message.h"
#include "runtime/schema.h"

namespace edgeflow {

class OperatorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Context {
 public:
  virtual ~Context() = default;

  virtual const std::string& stage() const = 0;     // stage id from the pipeline file
  virtual const std::string& node() const = 0;      // node this instance runs on
  virtual const std::string& pipeline() const = 0;  // pipeline name from the file
  // The pipeline's `links:` settings; mqtt_broker is the URI in use (the embedded broker's
  // when the file names none). Operators that talk MQTT default to this broker.
  virtual const LinkDefaults& links() const = 0;
  // Wall clock in µs since the epoch, injected: a fake clock under the test harness. Use it
  // for pacing sources only; windows and timers run on event time.
  virtual int64_t now_us() const = 0;

  // Sends a message on output port `port` (index into the spec's outputs).
  virtual void emit(int port, MessagePtr message) = 0;
  void emit(MessagePtr message) { emit(0, std::move(message)); }

  // Bad data: counted, logged, and sent on the "error" output as a record holding `what`,
  // the stage, and the offending message's stream, origin and event time when there is one.
  virtual void error(const Message* about, const std::string& what) = 0;

  // Event-time timer: on_timer(origin, t) runs once the watermark of `origin` on this stage
  // (the highest event time seen from it) reaches t, and at end of input for all that remain.
  virtual void set_timer(const std::string& origin, int64_t event_time_us) = 0;
  // Cancels the origin's timers and forgets its watermark: an operator that freed the state of
  // an idle origin frees what the runtime keeps for it too.
  virtual void clear_timers(const std::string& origin) = 0;

  // A new message stamped with this stage as stream, this node as origin, and the next
  // sequence number of this stage.
  virtual std::shared_ptr<Message> make_message(int64_t event_time_us) = 0;

  // Sources fed by another thread (a broker callback): a thread-safe callable that ends the
  // current SourceStep::wait_until early, so the source need not poll. Cheap to call often.
  virtual std::function<void()> make_waker() = 0;
  // The same, faster: when the source thread is idle, the callable runs the source's turn
  // (generate(), then each stage that turn makes ready, as a worker would) on the calling
  // thread and returns after it; otherwise it wakes the source thread. A message then goes
  // from a broker's network thread to the sink with no hand-over between threads. The caller
  // must hold no lock that generate() takes, and is busy for that turn (it reads nothing
  // meanwhile: back-pressure, as a full queue is). A wait_until the driven turn returns is
  // not kept: the source thread's own schedule stands. Default: make_waker().
  virtual std::function<void()> make_driver() { return make_waker(); }

  // True once a stop was requested (SIGINT, --for): a sink that waits for a broker or a peer
  // should bound that wait from now on, so a shutdown never hangs.
  virtual bool stopping() const { return false; }

  // Stages run by a service (edge, cloud) with a disk spool: where a replayable source
  // resumes, where a sink commits. Null under plain `run`.
  virtual StageDurability* durability() { return nullptr; }

  // The node's energy mode (runtime/energy_mode.h): what the edge service sheds as the
  // battery runs down; "normal" outside a service. It outlives the operator, so a stage's own
  // threads (a link's publisher) may keep the reference and read it.
  virtual const EnergyMode& energy() const { return EnergyMode::normal(); }
};

// What a source did in one call of generate().
struct SourceStep {
  enum Kind { kEmitted, kWaitUntil, kDone };
  Kind kind = kDone;
  int64_t wake_us = 0;  // kWaitUntil: wall-clock time (Context::now_us) to call again

  static SourceStep emitted() { return {kEmitted, 0}; }
  static SourceStep wait_until(int64_t us) { return {kWaitUntil, us}; }
  static SourceStep done() { return {kDone, 0}; }
};

class Operator {
 public:
  virtual ~Operator() = default;

  virtual void open(Context& ctx) { (void)ctx; }
  // Transforms and sinks: one message on input port `port`. The runtime passes its own
  // reference, so make_mutable(std::move(message)) edits in place on a straight chain.
  virtual void process(int port, MessagePtr message, Context& ctx) {
    (void)port, (void)message, (void)ctx;
  }
  virtual void on_timer(const std::string& origin, int64_t event_time_us, Context& ctx) {
    (void)origin, (void)event_time_us, (void)ctx;
  }
  // After each turn (a batch of process() calls, and the timers they fired): a sink that
  // buffers output (a link batching messages, a file) flushes here, so batches grow with load
  // and an idle stream is never held back.
  virtual void turn_end(Context& ctx) { (void)ctx; }
  // End of input or shutdown: emit what is buffered, flush files. Called once.
  virtual void close(Context& ctx) { (void)ctx; }

  // Sources (no input ports): emit a few messages (bounded work per call) and say when to
  // call again. The runtime calls this only while downstream queues have room.
  virtual SourceStep generate(Context& ctx) {
    (void)ctx;
    return SourceStep::done();
  }
  // Sources, on SIGINT/SIGTERM or Executor::request_stop: true ends the source at once (the
  // default: a sensor just stops reading). False keeps generate() running until it returns
  // done: a source holding data already accepted (a link receiver whose sender is still
  // draining) finishes delivering it first.
  virtual bool on_stop(Context& ctx) {
    (void)ctx;
    return true;
  }
};

}  // namespace edgeflow
