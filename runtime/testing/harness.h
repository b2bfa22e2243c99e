// Drives one operator alone, in the spirit of MediaPipe's CalculatorRunner and GStreamer's
// harness: options from a YAML snippet, messages pushed with their event times, outputs read
// back per port, a fake wall clock that only moves when the test moves it.
//
//   OperatorHarness h("weather.aggregate", "{window: 60s, fields: [temperature]}");
//   h.push_reading(0, {{"temperature", 20.0}});
//   h.finish();
//   ASSERT_EQ(h.output().size(), 1u);
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/event_timers.h"
#include "runtime/operator.h"
#include "runtime/registry.h"

namespace edgeflow {

class OperatorHarness : public Context {
 public:
  // Throws std::runtime_error carrying the formatted diagnostics when the options are invalid
  // (use option_problems() to test those).
  OperatorHarness(const std::string& op, const std::string& options_yaml = "",
                  std::string node = "edge", std::string stage = "under-test");
  ~OperatorHarness() override;

  // The formatted load errors for these options ("" when they are valid).
  static std::string option_problems(const std::string& op, const std::string& options_yaml);

  void open();  // done by the first push/generate when not called
  void push(MessagePtr message, int port = 0);
  // A reading at `event_time_us` with these fields; origin defaults to the harness node.
  void push_reading(int64_t event_time_us, Fields fields, const std::string& origin = "");
  // Sources: one call of generate().
  SourceStep step();
  // Sources: calls generate() until done or `max_steps`, jumping the fake clock to each wake
  // time. Returns the number of calls.
  size_t run_source(size_t max_steps = 1000000);
  // End of input: remaining timers fire, then close().
  void finish();

  void set_clock(int64_t us) { clock_us_ = us; }
  void advance_clock(int64_t us) { clock_us_ += us; }

  const std::vector<MessagePtr>& output(const std::string& port = "out") const;
  std::vector<MessagePtr> take(const std::string& port = "out");
  const std::vector<std::string>& errors() const { return errors_; }
  Operator& op() { return *op_; }
  const OperatorSpec& spec() const { return entry_->spec; }

  // Context
  const std::string& stage() const override { return stage_; }
  const std::string& node() const override { return node_; }
  int64_t now_us() const override { return clock_us_; }
  void emit(int port, MessagePtr message) override;
  void error(const Message* about, const std::string& what) override;
  void set_timer(const std::string& origin, int64_t event_time_us) override;
  void clear_timers(const std::string& origin) override { timers_.clear(origin); }
  std::shared_ptr<Message> make_message(int64_t event_time_us) override;
  const std::string& pipeline() const override { return pipeline_; }
  const LinkDefaults& links() const override { return links_; }
  std::function<void()> make_waker() override;
  // Sources fed by another thread: waits (real time, at most timeout_ms) until the waker is
  // called or was called since the last wait. True when woken.
  bool wait_for_wake(int timeout_ms);
  LinkDefaults& mutable_links() { return links_; }
  // Set the energy mode the operator sees, as the edge service would.
  EnergyMode& energy_mode() { return energy_; }
  const EnergyMode& energy() const override { return energy_; }

 private:
  void fire(EventTimers::Due& due);

  const OperatorEntry* entry_;
  std::unique_ptr<Operator> op_;
  std::string node_, stage_;
  std::string pipeline_ = "test";
  LinkDefaults links_;
  EnergyMode energy_;
  struct WakeState;
  std::shared_ptr<WakeState> wake_;
  int64_t clock_us_ = 1'700'000'000'000'000;  // a fixed, recent date
  uint64_t seq_ = 0;
  bool opened_ = false, finished_ = false;
  EventTimers timers_;
  std::map<std::string, std::vector<MessagePtr>> outputs_;
  std::vector<std::string> errors_;
};

}  // namespace edgeflow
