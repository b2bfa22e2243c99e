#include "runtime/testing/harness.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "runtime/diagnostics.h"
#include "runtime/options_yaml.h"

namespace edgeflow {
namespace {

const OperatorEntry& find_entry(const std::string& op) {
  const OperatorEntry* entry = Registry::global().find(op);
  if (!entry) throw std::runtime_error("no operator '" + op + "' registered");
  return *entry;
}

}  // namespace

std::string OperatorHarness::option_problems(const std::string& op,
                                             const std::string& options_yaml) {
  const OperatorEntry& entry = find_entry(op);
  Diagnostics diags("<options>");
  try {
    Options options = parse_options(YAML::Load(options_yaml), entry.spec, "under-test", {}, diags);
    if (diags.empty()) entry.factory(options);
  } catch (const OptionError& e) {
    diags.add({}, "under-test", "option '" + e.option() + "': " + e.what(), e.hint());
  } catch (const YAML::Exception& e) {
    diags.add({}, "under-test", e.what());
  }
  return diags.str();
}

OperatorHarness::OperatorHarness(const std::string& op, const std::string& options_yaml,
                                 std::string node, std::string stage)
    : entry_(&find_entry(op)), node_(std::move(node)), stage_(std::move(stage)) {
  Diagnostics diags("<options>");
  Options options = parse_options(YAML::Load(options_yaml), entry_->spec, stage_, {}, diags);
  if (!diags.empty()) throw std::runtime_error(diags.str());
  op_ = entry_->factory(options);
}

struct OperatorHarness::WakeState {
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
};

OperatorHarness::~OperatorHarness() = default;

std::function<void()> OperatorHarness::make_waker() {
  if (!wake_) wake_ = std::make_shared<WakeState>();
  std::weak_ptr<WakeState> weak = wake_;
  return [weak] {
    if (auto w = weak.lock()) {
      {
        std::lock_guard<std::mutex> lock(w->mu);
        w->woken = true;
      }
      w->cv.notify_all();
    }
  };
}

bool OperatorHarness::wait_for_wake(int timeout_ms) {
  if (!wake_) wake_ = std::make_shared<WakeState>();
  std::unique_lock<std::mutex> lock(wake_->mu);
  bool woken =
      wake_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return wake_->woken; });
  wake_->woken = false;
  return woken;
}

void OperatorHarness::open() {
  if (opened_) return;
  opened_ = true;
  op_->open(*this);
}

void OperatorHarness::push(MessagePtr message, int port) {
  open();
  std::string origin = message->origin;
  int64_t t = message->event_time_us;
  op_->process(port, std::move(message), *this);
  EventTimers::Due due;
  timers_.observe(origin, t, due);
  fire(due);
  op_->turn_end(*this);  // each push is one turn
}

void OperatorHarness::push_reading(int64_t event_time_us, Fields fields,
                                   const std::string& origin) {
  auto m = std::make_shared<Message>();
  m->stream = "input";
  m->event_time_us = event_time_us;
  m->origin = origin.empty() ? node_ : origin;
  m->fields = std::move(fields);
  push(std::move(m));
}

SourceStep OperatorHarness::step() {
  open();
  return op_->generate(*this);
}

size_t OperatorHarness::run_source(size_t max_steps) {
  size_t steps = 0;
  while (steps < max_steps) {
    SourceStep s = step();
    ++steps;
    if (s.kind == SourceStep::kDone) break;
    if (s.kind == SourceStep::kWaitUntil && s.wake_us > clock_us_) clock_us_ = s.wake_us;
  }
  return steps;
}

void OperatorHarness::finish() {
  if (finished_) return;
  open();
  finished_ = true;
  EventTimers::Due due;
  timers_.drain(due);
  fire(due);
  op_->close(*this);
}

void OperatorHarness::fire(EventTimers::Due& due) {
  for (auto& [origin, t] : due) op_->on_timer(origin, t, *this);
}

const std::vector<MessagePtr>& OperatorHarness::output(const std::string& port) const {
  static const std::vector<MessagePtr> kEmpty;
  if (entry_->spec.output_index(port) < 0)
    throw std::runtime_error("operator '" + entry_->spec.name + "' has no output '" + port + "'");
  auto it = outputs_.find(port);
  return it == outputs_.end() ? kEmpty : it->second;
}

std::vector<MessagePtr> OperatorHarness::take(const std::string& port) {
  std::vector<MessagePtr> out = output(port);
  outputs_[port].clear();
  return out;
}

void OperatorHarness::emit(int port, MessagePtr message) {
  const auto& outputs = entry_->spec.outputs;
  if (port < 0 || port >= static_cast<int>(outputs.size()))
    throw std::logic_error("emit on port " + std::to_string(port) + " of " + entry_->spec.name);
  outputs_[outputs[port].name].push_back(std::move(message));
}

void OperatorHarness::error(const Message* about, const std::string& what) {
  errors_.push_back(what);
  emit(entry_->spec.output_index("error"),
       make_error_record(stage_, node_, about, what, clock_us_));
}

void OperatorHarness::set_timer(const std::string& origin, int64_t event_time_us) {
  timers_.set(origin, event_time_us);
}

std::shared_ptr<Message> OperatorHarness::make_message(int64_t event_time_us) {
  auto m = std::make_shared<Message>();
  m->stream = stage_;
  m->origin = node_;
  m->event_time_us = event_time_us;
  m->seq = ++seq_;
  return m;
}

}  // namespace edgeflow
