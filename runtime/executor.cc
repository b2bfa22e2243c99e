#include "runtime/executor.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include "runtime/event_timers.h"
#include "runtime/log.h"
#include "runtime/turn_cpu.h"

namespace edgeflow {
namespace {

int64_t system_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Instance;

// A worker runs the first stage copy its turn made ready itself, next, rather than queueing
// it for another worker it would have to wake (the "runnext" slot of Go's scheduler): a
// message crosses a chain of stages on one thread while the chain has work.
thread_local Instance* t_run_next = nullptr;
thread_local bool t_is_worker = false;
thread_local bool t_driving = false;  // this thread is in a driven source turn (make_driver)

struct Target {
  Instance* to;
  int port;
};

struct Item {
  MessagePtr message;
  int port;          // < 0: end of input on one incoming edge
  size_t bytes = 0;  // approx_bytes of the message when queued
};

// Stage copies ready to run, in arrival order.
class RunQueue {
 public:
  void push(Instance* x) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.push_back(x);
    }
    cv_.notify_one();
  }
  Instance* pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty() || closed_; });
    if (ready_.empty()) return nullptr;
    Instance* x = ready_.front();
    ready_.pop_front();
    return x;
  }
  void close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Instance*> ready_;
  bool closed_ = false;
};

}  // namespace

struct Executor::Engine {
  const PipelineSpec& pipeline;
  Plan plan;
  ExecutorOptions options;
  std::vector<std::unique_ptr<Instance>> instances;
  // Stage specs of the hidden link senders and receivers (stable addresses: deques).
  std::deque<StageSpec> link_stages;
  std::deque<OperatorEntry> link_entries;
  RunQueue run_queue;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::atomic<bool> drivable{false};  // start() is done: drivers may run source turns
  std::mutex done_mu;
  std::condition_variable done_cv;
  size_t unfinished = 0;
  bool started = false;
  const uint64_t cpu_owner = turn_cpu::new_owner();  // of the stage copies' cpu counters

  Engine(const PipelineSpec& p, Plan pl, ExecutorOptions o)
      : pipeline(p), plan(std::move(pl)), options(std::move(o)) {
    if (!options.clock) options.clock = system_now_us;
    if (options.threads < 1) options.threads = 1;
    if (options.batch < 1) options.batch = 1;
  }

  void worker();
  void source_loop(Instance* x);
  SourceStep source_turn(Instance* x);
  void run_turn(Instance* x);
  void instance_finished();
  void wake(Instance* x);
  void drive(Instance* x);
};

namespace {

struct Instance final : public Context {
  Executor::Engine* engine = nullptr;
  const StageSpec* spec = nullptr;
  std::string node_name;
  std::unique_ptr<Operator> op;
  bool is_source = false;
  int error_port = -1;
  std::vector<std::vector<Target>> targets;     // per output port
  std::vector<std::vector<MessagePtr>> outbox;  // per output port, filled during a turn
  int open_inputs = 0;                          // incoming edges not yet ended
  EventTimers timers;
  EventTimers::Due due;
  uint64_t seq = 0;
  uint64_t errors_logged = 0;
  std::shared_ptr<StageDurability> durable;  // set by a service (ExecutorOptions::durability)
  const StageInstance* plan_copy = nullptr;  // null for the hidden link stages

  // Guarded by mu.
  std::mutex mu;
  std::deque<Item> queue;
  size_t capacity = 1024;
  size_t max_bytes = size_t{64} << 20;
  size_t queued_bytes = 0;
  Overflow overflow = Overflow::kBlock;
  bool scheduled = false;  // in the run queue, running, or parked on a full downstream queue
  bool finished = false;
  std::vector<Instance*> waiters;  // upstream copies parked until this queue has room
  std::condition_variable source_cv;
  bool source_woken = false;
  // Sources: held for each turn (on_stop, generate, flush) by the source thread or by a
  // driver on another thread (make_driver), so the operator still runs on one thread at a time.
  std::mutex turn_mu;
  bool source_ended = false;  // guarded by turn_mu: no more turns
  bool driven_done = false;   // guarded by turn_mu: a driven generate() returned done

  std::atomic<uint64_t> in{0}, out{0}, errors{0}, dropped{0};
  turn_cpu::Counter cpu;
  std::atomic<size_t> high_water{0};
  std::atomic<size_t> bytes_high_water{0};
  std::atomic<bool> done{false};

  const std::string& stage() const override { return spec->id; }
  const std::string& node() const override { return node_name; }
  const std::string& pipeline() const override;
  const LinkDefaults& links() const override;
  std::function<void()> make_waker() override {
    return [this] {
      {
        std::lock_guard<std::mutex> lock(mu);
        source_woken = true;
      }
      source_cv.notify_all();
    };
  }
  std::function<void()> make_driver() override;
  int64_t now_us() const override;
  bool stopping() const override;
  StageDurability* durability() override { return durable.get(); }
  const EnergyMode& energy() const override;
  void emit(int port, MessagePtr message) override {
    if (port < 0 || port >= static_cast<int>(outbox.size())) return;
    if (!targets[port].empty()) outbox[port].push_back(std::move(message));
    out.fetch_add(1, std::memory_order_relaxed);
  }
  void error(const Message* about, const std::string& what) override {
    uint64_t n = errors.fetch_add(1, std::memory_order_relaxed) + 1;
    // The first few in full, then one line per thousand: a flood of bad data must not
    // become a flood of log lines on a small device.
    if (n <= 5 || n % 1000 == 0) {
      logger().warn("stage '{}' on '{}': {}{}", spec->id, node_name, what,
                    n > 5 ? " (" + std::to_string(n) + " errors so far)" : "");
    }
    if (!targets[error_port].empty())
      outbox[error_port].push_back(make_error_record(spec->id, node_name, about, what, now_us()));
  }
  void clear_timers(const std::string& origin) override { timers.clear(origin); }
  void set_timer(const std::string& origin, int64_t event_time_us) override {
    timers.set(origin, event_time_us);
  }
  std::shared_ptr<Message> make_message(int64_t event_time_us) override {
    auto m = std::make_shared<Message>();
    m->stream = spec->id;
    m->origin = node_name;
    m->event_time_us = event_time_us;
    m->seq = ++seq;
    return m;
  }

  // Pushes into this queue; returns true when the caller must put it on the run queue.
  bool accept(std::vector<MessagePtr>& messages, int port, bool move) {
    std::lock_guard<std::mutex> lock(mu);
    for (MessagePtr& m : messages) {
      const size_t bytes = approx_bytes(*m);
      while (overflow == Overflow::kDropOldest && !queue.empty() &&
             (queue.size() >= capacity || queued_bytes + bytes > max_bytes)) {
        // Never drop an end-of-input marker: it carries no data but ends an edge.
        auto victim =
            std::find_if(queue.begin(), queue.end(), [](const Item& i) { return i.port >= 0; });
        if (victim == queue.end()) break;
        queued_bytes -= victim->bytes;
        queue.erase(victim);
        dropped.fetch_add(1, std::memory_order_relaxed);
      }
      queued_bytes += bytes;
      queue.push_back(Item{move ? std::move(m) : m, port, bytes});
    }
    note_size();
    return schedule_locked();
  }
  bool accept_end(int port) {
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(Item{nullptr, -1 - port});
    return schedule_locked();
  }
  bool schedule_locked() {
    if (scheduled || is_source) return false;
    scheduled = true;
    return true;
  }
  void note_size() {
    if (queue.size() > high_water.load(std::memory_order_relaxed))
      high_water.store(queue.size(), std::memory_order_relaxed);
    if (queued_bytes > bytes_high_water.load(std::memory_order_relaxed))
      bytes_high_water.store(queued_bytes, std::memory_order_relaxed);
  }

  // Room left downstream, or 0 after parking `self` on a full queue.
  size_t room_downstream(Instance* self, size_t want) {
    for (const auto& port_targets : targets) {
      for (const Target& t : port_targets) {
        Instance* d = t.to;
        if (d->overflow == Overflow::kDropOldest) continue;  // never waits
        std::lock_guard<std::mutex> lock(d->mu);
        if (d->queue.size() >= d->capacity || d->queued_bytes >= d->max_bytes) {
          d->waiters.push_back(self);
          return 0;
        }
        want = std::min(want, d->capacity - d->queue.size());
      }
    }
    return want;
  }

  void flush_outbox() {
    for (size_t p = 0; p < outbox.size(); ++p) {
      std::vector<MessagePtr>& batch = outbox[p];
      if (batch.empty()) continue;
      if (engine->options.on_flush && plan_copy) {
        // The observer's own work (`edgeflow profile` encodes every message, JPEG frames
        // included) is charged to no stage: it is not the stage's cost.
        const turn_cpu::Pause paused = turn_cpu::pause();
        engine->options.on_flush(*plan_copy, static_cast<int>(p), batch);
        turn_cpu::resume(paused);
      }
      const auto& ts = targets[p];
      for (size_t i = 0; i < ts.size(); ++i) {
        // The last target takes the pointers; earlier ones share them (no message copies).
        if (ts[i].to->accept(batch, ts[i].port, i + 1 == ts.size())) engine_push(ts[i].to);
      }
      batch.clear();
    }
  }

  void finish_stage() {
    due.clear();
    timers.drain(due);
    fire_timers();
    try {
      op->close(*this);
    } catch (const std::exception& e) {
      error(nullptr, std::string("close failed: ") + e.what());
    }
    flush_outbox();
    for (const auto& port_targets : targets)
      for (const Target& t : port_targets)
        if (t.to->accept_end(t.port)) engine_push(t.to);
    {
      std::lock_guard<std::mutex> lock(mu);
      finished = true;
    }
    done.store(true);
  }

  // Runs the timers in `due`; an operator exception is counted, not fatal.
  void fire_timers() {
    for (auto& [origin, t] : due) {
      try {
        op->on_timer(origin, t, *this);
      } catch (const std::exception& e) {
        error(nullptr, std::string("timer failed: ") + e.what());
      }
    }
  }

  void engine_push(Instance* x);
};

}  // namespace

int64_t Instance::now_us() const { return engine->options.clock(); }
const std::string& Instance::pipeline() const { return engine->pipeline.name; }
bool Instance::stopping() const { return engine->stopping.load(std::memory_order_relaxed); }
const LinkDefaults& Instance::links() const { return engine->pipeline.links; }
const EnergyMode& Instance::energy() const {
  return engine->options.energy ? *engine->options.energy : EnergyMode::normal();
}
std::function<void()> Instance::make_driver() {
  return [this] { engine->drive(this); };
}
void Instance::engine_push(Instance* x) {
  if (t_is_worker && t_run_next == nullptr) {
    t_run_next = x;
    return;
  }
  engine->run_queue.push(x);
}

void Executor::Engine::wake(Instance* x) {
  if (x->is_source) {
    {
      std::lock_guard<std::mutex> lock(x->mu);
      x->source_woken = true;
    }
    x->source_cv.notify_all();
  } else {
    run_queue.push(x);  // still marked scheduled while parked
  }
}

void Executor::Engine::instance_finished() {
  bool all = false;
  {
    std::lock_guard<std::mutex> lock(done_mu);
    all = --unfinished == 0;
  }
  if (all) {
    run_queue.close();
    done_cv.notify_all();
  }
}

void Executor::Engine::worker() {
  t_is_worker = true;
  while (Instance* x = run_queue.pop()) {
    run_turn(x);
    while (Instance* next = std::exchange(t_run_next, nullptr)) run_turn(next);
  }
  turn_cpu::settle(cpu_owner);
}

void Executor::Engine::run_turn(Instance* x) {
  size_t room = x->room_downstream(x, options.batch);
  if (room == 0) return;  // parked: the full queue wakes it when it drains
  turn_cpu::begin(x->cpu, cpu_owner);

  std::vector<Item> batch;
  std::vector<Instance*> to_wake;
  {
    std::lock_guard<std::mutex> lock(x->mu);
    size_t n = std::min(room, x->queue.size());
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      x->queued_bytes -= x->queue.front().bytes;
      batch.push_back(std::move(x->queue.front()));
      x->queue.pop_front();
    }
    if (x->queue.size() < x->capacity && x->queued_bytes < x->max_bytes) to_wake.swap(x->waiters);
  }
  for (Instance* w : to_wake) wake(w);

  uint64_t processed = 0;
  bool ended = false;
  for (Item& item : batch) {
    if (item.port < 0) {
      if (--x->open_inputs == 0) ended = true;
      continue;
    }
    ++processed;
    const std::string origin = item.message->origin;
    int64_t t = item.message->event_time_us;
    try {
      x->op->process(item.port, std::move(item.message), *x);
    } catch (const std::exception& e) {
      // Operators report bad data through ctx.error; an escaped exception is a bug in the
      // operator, but one message must not take the whole pipeline down.
      x->error(nullptr, std::string("operator threw: ") + e.what());
    }
    if (!x->timers.empty()) {
      x->due.clear();
      x->timers.observe(origin, t, x->due);
      x->fire_timers();
    }
  }
  x->in.fetch_add(processed, std::memory_order_relaxed);
  if (processed > 0) {
    try {
      x->op->turn_end(*x);
    } catch (const std::exception& e) {
      x->error(nullptr, std::string("operator threw: ") + e.what());
    }
  }
  x->flush_outbox();
  if (ended) x->finish_stage();
  turn_cpu::charge(x->cpu, cpu_owner);
  if (ended) {
    instance_finished();
    return;
  }
  bool again;
  {
    std::lock_guard<std::mutex> lock(x->mu);
    again = !x->queue.empty();
    if (!again) x->scheduled = false;
  }
  if (again) run_queue.push(x);
}

// One call of generate(), its output handed on and its CPU charged; the caller holds the turn.
SourceStep Executor::Engine::source_turn(Instance* x) {
  turn_cpu::begin(x->cpu, cpu_owner);
  SourceStep step;
  try {
    step = x->op->generate(*x);
  } catch (const std::exception& e) {
    x->error(nullptr, std::string("source failed and stops: ") + e.what());
    step = SourceStep::done();
  }
  x->flush_outbox();
  turn_cpu::charge(x->cpu, cpu_owner);
  return step;
}

void Executor::Engine::source_loop(Instance* x) {
  bool stop_seen = false;
  std::unique_lock<std::mutex> turn(x->turn_mu, std::defer_lock);
  for (;;) {
    turn.lock();
    if (x->driven_done) break;
    if (stopping.load() && !stop_seen) {
      stop_seen = true;
      bool end_now = true;
      turn_cpu::begin(x->cpu, cpu_owner);
      try {
        end_now = x->op->on_stop(*x);
      } catch (const std::exception& e) {
        x->error(nullptr, std::string("stop failed: ") + e.what());
      }
      turn_cpu::charge(x->cpu, cpu_owner);
      if (end_now) break;
    }
    if (x->room_downstream(x, 1) == 0) {
      turn.unlock();
      std::unique_lock<std::mutex> lock(x->mu);
      x->source_cv.wait(lock, [&] { return x->source_woken || (stopping.load() && !stop_seen); });
      x->source_woken = false;
      continue;
    }
    const SourceStep step = source_turn(x);
    if (step.kind == SourceStep::kDone) break;
    turn.unlock();
    if (step.kind == SourceStep::kWaitUntil) {
      int64_t delay = step.wake_us - options.clock();
      std::unique_lock<std::mutex> lock(x->mu);
      if (delay > 0 && !x->source_woken) {
        x->source_cv.wait_for(lock, std::chrono::microseconds(delay),
                              [&] { return x->source_woken || (stopping.load() && !stop_seen); });
      }
      x->source_woken = false;
    }
  }
  x->source_ended = true;  // still holding the turn: no driver runs a turn after this
  turn_cpu::begin(x->cpu, cpu_owner);
  x->finish_stage();
  turn_cpu::charge(x->cpu, cpu_owner);
  turn_cpu::settle(cpu_owner);
  turn.unlock();
  instance_finished();
}

void Executor::Engine::drive(Instance* x) {
  // Before start() ends (an operator's open() may already receive), once stopping (on_stop
  // is the source thread's), and from inside another driven turn: the source thread does it.
  if (!drivable.load(std::memory_order_acquire) || stopping.load() || t_driving) return wake(x);
  std::unique_lock<std::mutex> turn(x->turn_mu, std::try_to_lock);
  // The source thread is in a turn: wake() makes it look again before it sleeps.
  if (!turn.owns_lock()) return wake(x);
  if (x->source_ended) return;
  t_driving = true;
  const bool was_worker = std::exchange(t_is_worker, true);  // runnext: the chain runs here
  bool hand_over = false;              // more to do, or done: the source thread takes it from here
  if (x->room_downstream(x, 1) > 0) {  // else parked: the source thread is woken when room
    const SourceStep step = source_turn(x);
    if (step.kind == SourceStep::kDone) x->driven_done = true;
    hand_over = step.kind != SourceStep::kWaitUntil;
  }
  turn.unlock();
  if (hand_over) wake(x);
  while (Instance* next = std::exchange(t_run_next, nullptr)) {
    // A link sender blocks while its broker or receiver is away: never on the caller's
    // thread (a broker client's, which must go on with keep-alives), but on a worker, as
    // before (start() gives each sender a worker of its own for that).
    if (!next->plan_copy) {
      run_queue.push(next);
      continue;
    }
    run_turn(next);
  }
  t_is_worker = was_worker;
  t_driving = false;
}

namespace {

// The hidden stage of one end of a link: a sender (sink) or a receiver (source) made by the
// transport, with the queue policy of the link's downstream stage.
StageSpec link_stage(std::deque<OperatorEntry>& entries, const PipelineSpec& pipeline,
                     const LinkPlan& link, const std::string& node, bool sender, bool peers_local,
                     LinkTransport* transport) {
  OperatorEntry entry;
  entry.spec.name = "link." + link.via + (sender ? ".send" : ".receive");
  if (sender)
    entry.spec.inputs = {{"in", "any", ""}};
  else
    entry.spec.outputs = {{"out", "any", ""}};
  entry.spec.outputs.push_back({"error", "record", ""});
  const LinkPlan* l = &link;
  entry.factory = [=](const Options&) {
    return sender ? transport->make_sender(*l, node, peers_local)
                  : transport->make_receiver(*l, node, peers_local);
  };
  entries.push_back(std::move(entry));
  const StageSpec& downstream = pipeline.stages[link.to_stage];
  StageSpec spec;
  spec.id = link.name + (sender ? " (send)" : " (receive)");
  spec.op = entries.back().spec.name;
  spec.on = node;
  spec.entry = &entries.back();
  spec.queue_capacity = downstream.queue_capacity;
  spec.queue_bytes = downstream.queue_bytes;
  spec.overflow = sender ? downstream.overflow : Overflow::kBlock;
  spec.output_type = downstream.output_type;
  return spec;
}

}  // namespace

Executor::Executor(const PipelineSpec& pipeline, const Plan& plan, ExecutorOptions options)
    : engine_(std::make_unique<Engine>(pipeline, plan, std::move(options))) {
  Engine& e = *engine_;
  LinkTransport* transport = e.options.links;
  const std::string& only = e.options.only_node;
  if (!only.empty()) {
    if (!transport && !e.plan.links.empty())
      throw std::invalid_argument("running one node of a pipeline with links needs a transport");
    if (!pipeline.node(only)) throw std::invalid_argument("no node named '" + only + "'");
  }
  auto included = [&](const std::string& node) { return only.empty() || node == only; };
  auto add = [&](const StageSpec* spec, const std::string& node) {
    auto x = std::make_unique<Instance>();
    x->engine = &e;
    x->spec = spec;
    x->node_name = node;
    const OperatorSpec& ospec = spec->entry->spec;
    x->is_source = ospec.is_source();
    x->error_port = ospec.output_index("error");
    x->targets.resize(ospec.outputs.size());
    x->outbox.resize(ospec.outputs.size());
    x->capacity = spec->queue_capacity;
    x->max_bytes = spec->queue_bytes;
    x->overflow = spec->overflow;
    if (e.options.durability) x->durable = e.options.durability(spec->id, node);
    e.instances.push_back(std::move(x));
    return e.instances.back().get();
  };
  auto connect = [](Instance* from, int port, Instance* to, int to_port) {
    from->targets[port].push_back({to, to_port});
    to->open_inputs++;
  };

  auto senders_are_children = [&](const LinkPlan& link) {
    const auto& kids = e.options.child_nodes;
    for (const std::string& s : link.senders)
      if (std::find(kids.begin(), kids.end(), s) == kids.end()) return false;
    return !kids.empty();
  };
  // Receivers first: they bind or subscribe before any sender of this process opens.
  std::map<std::pair<int, std::string>, Instance*> receivers, senders;
  if (transport) {
    for (const LinkPlan& link : e.plan.links)
      for (const std::string& node : link.receivers)
        if (included(node)) {
          e.link_stages.push_back(link_stage(e.link_entries, pipeline, link, node, false,
                                             only.empty() || senders_are_children(link),
                                             transport));
          receivers[{link.id, node}] = add(&e.link_stages.back(), node);
        }
  }
  std::vector<Instance*> by_plan(e.plan.instances.size(), nullptr);
  for (size_t i = 0; i < e.plan.instances.size(); ++i) {
    const StageInstance& si = e.plan.instances[i];
    if (!included(si.node)) continue;
    by_plan[i] = add(&pipeline.stages[si.stage], si.node);
    by_plan[i]->plan_copy = &si;
  }
  if (transport) {
    for (const LinkPlan& link : e.plan.links)
      for (const std::string& node : link.senders)
        if (included(node)) {
          e.link_stages.push_back(
              link_stage(e.link_entries, pipeline, link, node, true, only.empty(), transport));
          senders[{link.id, node}] = add(&e.link_stages.back(), node);
        }
  }

  std::set<std::pair<Instance*, Instance*>> joined;  // a link end is joined to a copy once
  for (const PlanEdge& edge : e.plan.edges) {
    Instance* from = by_plan[edge.from];
    Instance* to = by_plan[edge.to];
    if (!edge.crosses_nodes || !transport) {
      if (from && to) connect(from, edge.from_port, to, edge.to_port);
      continue;
    }
    if (from) {
      Instance* s = senders.at({edge.link, from->node_name});
      if (joined.insert({from, s}).second) connect(from, edge.from_port, s, 0);
    }
    if (to) {
      Instance* r = receivers.at({edge.link, to->node_name});
      if (joined.insert({r, to}).second) connect(r, 0, to, edge.to_port);
    }
  }
  e.unfinished = e.instances.size();
}

Executor::~Executor() {
  if (engine_->started) {
    request_stop();
    wait();
  }
  for (std::thread& t : engine_->threads)
    if (t.joinable()) t.join();
  // Operators go first, while the instances' mutexes and wakers they may still call exist.
  for (auto& x : engine_->instances) x->op.reset();
}

void Executor::start() {
  Engine& e = *engine_;
  // Instances are grouped by stage in topological order: inputs open before their readers.
  for (size_t i = 0; i < e.instances.size(); ++i) {
    Instance& x = *e.instances[i];
    try {
      x.op = x.spec->entry->factory(x.spec->options);
      x.op->open(x);
    } catch (const std::exception& ex) {
      for (size_t j = i; j-- > 0;) {
        try {
          e.instances[j]->op->close(*e.instances[j]);
        } catch (const std::exception&) {
        }
      }
      throw OperatorError("stage '" + x.spec->id + "' on node '" + x.node_name + "' (" +
                          x.spec->op + "): " + ex.what());
    }
  }
  e.started = true;
  // A link sender may block its worker while the broker or receiver is away (back-pressure);
  // one worker more per sender keeps the stages downstream of it in this process running.
  int workers = e.options.threads;
  for (const OperatorEntry& entry : e.link_entries) workers += !entry.spec.is_source();
  for (int i = 0; i < workers; ++i) e.threads.emplace_back([&e] { e.worker(); });
  for (auto& x : e.instances) {
    if (x->is_source) {
      Instance* raw = x.get();
      e.threads.emplace_back([&e, raw] { e.source_loop(raw); });
    }
  }
  e.drivable.store(true, std::memory_order_release);
}

void Executor::request_stop() {
  Engine& e = *engine_;
  e.stopping.store(true);
  if (e.options.links) e.options.links->stop_requested();
  for (auto& x : e.instances) {
    if (!x->is_source) continue;
    {
      std::lock_guard<std::mutex> lock(x->mu);
      x->source_woken = true;
    }
    x->source_cv.notify_all();
  }
}

bool Executor::wait(int64_t timeout_us) {
  Engine& e = *engine_;
  {
    std::unique_lock<std::mutex> lock(e.done_mu);
    auto done = [&] { return e.unfinished == 0; };
    if (timeout_us < 0) {
      e.done_cv.wait(lock, done);
    } else if (!e.done_cv.wait_for(lock, std::chrono::microseconds(timeout_us), done)) {
      return false;
    }
  }
  for (std::thread& t : e.threads)
    if (t.joinable()) t.join();
  return true;
}

bool Executor::finished() const {
  std::lock_guard<std::mutex> lock(engine_->done_mu);
  return engine_->unfinished == 0;
}

std::vector<StageMetrics> Executor::metrics() const {
  std::vector<StageMetrics> out;
  for (const auto& x : engine_->instances) {
    StageMetrics m;
    m.stage = x->spec->id;
    m.node = x->node_name;
    m.op = x->spec->op;
    m.in = x->in.load(std::memory_order_relaxed);
    m.out = x->out.load(std::memory_order_relaxed);
    m.errors = x->errors.load(std::memory_order_relaxed);
    m.dropped = x->dropped.load(std::memory_order_relaxed);
    m.cpu_seconds = static_cast<double>(x->cpu.ns.load(std::memory_order_relaxed)) / 1e9;
    m.queue_high_water = x->high_water.load(std::memory_order_relaxed);
    m.queue_capacity = x->capacity;
    m.queue_bytes_high_water = x->bytes_high_water.load(std::memory_order_relaxed);
    m.queue_bytes_limit = x->max_bytes;
    m.finished = x->done.load();
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace edgeflow
