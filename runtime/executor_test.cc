// Executor tests with small operators defined here: a counting source, a pass-through, a sink
// that can be held shut, a timer user and failing operators.
#include "runtime/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "runtime/blob_encoders.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

ExecutorOptions executor_options(int threads, size_t batch) {
  ExecutorOptions o;
  o.threads = threads;
  o.batch = batch;
  return o;
}

// Everything the sinks saw, per test.
struct Collected {
  std::mutex mu;
  std::vector<MessagePtr> messages;
  std::condition_variable cv;
  bool hold = false;  // while true, the slow sink blocks in process()
  std::atomic<int> closes{0};
  void reset() {
    std::lock_guard<std::mutex> lock(mu);
    messages.clear();
    hold = false;
    closes = 0;
  }
} g_collected;

class CountSource : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "test.count";
    s.summary = "emits readings n=1..count (count 0: until stopped)";
    s.outputs = {{"out", "reading", ""}};
    s.options = {opt_int("count", "").def("100"), opt_int("per_call", "").def("16"),
                 opt_int("pad", "bytes of padding per reading").def("0")};
    return s;
  }
  explicit CountSource(const Options& o)
      : count_(o.get_int("count")), per_call_(o.get_int("per_call")), pad_(o.get_int("pad")) {}
  SourceStep generate(Context& ctx) override {
    for (int64_t i = 0; i < per_call_; ++i) {
      if (count_ > 0 && n_ >= count_) return SourceStep::done();
      auto m = ctx.make_message(++n_ * 1'000'000);
      m->fields.push_back({"n", n_});
      if (pad_ > 0) m->fields.push_back({"pad", std::string(static_cast<size_t>(pad_), 'x')});
      ctx.emit(std::move(m));
    }
    return SourceStep::emitted();
  }

 private:
  int64_t count_, per_call_, pad_, n_ = 0;
};
EF_REGISTER_OPERATOR(CountSource)

// A camera-like source: its output is frames, so readers default to drop-oldest queues.
class FrameSource : public CountSource {
 public:
  static OperatorSpec spec() {
    OperatorSpec s = CountSource::spec();
    s.name = "test.frames";
    s.outputs = {{"out", "frame", ""}};
    return s;
  }
  using CountSource::CountSource;
};
EF_REGISTER_OPERATOR(FrameSource)

class Pass : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "test.pass";
    s.summary = "passes messages on; n divisible by fail_every goes to the error output";
    s.inputs = {{"in", "record", ""}};
    s.outputs = {{"out", "same", ""}};
    s.options = {opt_int("fail_every", "").def("0"), opt_bool("throw", "").def("false")};
    return s;
  }
  explicit Pass(const Options& o)
      : fail_every_(o.get_int("fail_every")), throw_(o.get_bool("throw")) {}
  void process(int, MessagePtr m, Context& ctx) override {
    int64_t n = std::get<int64_t>(find_field(m->fields, "n")->v);
    if (fail_every_ && n % fail_every_ == 0) {
      if (throw_) throw std::runtime_error("boom");
      ctx.error(m.get(), "bad n");
      return;
    }
    ctx.emit(std::move(m));
  }

 private:
  int64_t fail_every_;
  bool throw_;
};
EF_REGISTER_OPERATOR(Pass)

class Collect : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "test.collect";
    s.summary = "keeps what it receives in g_collected";
    s.inputs = {{"in", "any", ""}};
    s.options = {opt_bool("fail_open", "").def("false")};
    return s;
  }
  explicit Collect(const Options& o) : fail_open_(o.get_bool("fail_open")) {}
  void open(Context&) override {
    if (fail_open_) throw OperatorError("cannot open the thing");
  }
  void process(int, MessagePtr m, Context&) override {
    std::unique_lock<std::mutex> lock(g_collected.mu);
    g_collected.cv.wait(lock, [] { return !g_collected.hold; });
    g_collected.messages.push_back(std::move(m));
  }
  void close(Context&) override { g_collected.closes++; }

 private:
  bool fail_open_;
};
EF_REGISTER_OPERATOR(Collect)

// A source fed by a thread of its own, as a broker client's network thread feeds
// mqtt.subscribe: feed() queues a reading and calls the driver from the feeding thread.
struct Fed {
  std::mutex mu;
  std::deque<int64_t> queue;
  std::function<void()> driver;
  std::atomic<int> generates{0};
  std::atomic<bool> ended{false};
  std::set<std::thread::id> sink_threads;  // guarded by mu
  void feed(int64_t n) {
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(n);
    }
    driver();
  }
} g_fed;

class FedSource : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "test.fed";
    s.summary = "emits what g_fed.feed() queued; done once g_fed.ended and drained";
    s.outputs = {{"out", "reading", ""}};
    return s;
  }
  explicit FedSource(const Options&) {}
  void open(Context& ctx) override { g_fed.driver = ctx.make_driver(); }
  SourceStep generate(Context& ctx) override {
    g_fed.generates++;
    std::deque<int64_t> batch;
    {
      std::lock_guard<std::mutex> lock(g_fed.mu);
      batch.swap(g_fed.queue);
    }
    for (int64_t n : batch) {
      auto m = ctx.make_message(n * 1'000'000);
      m->fields.push_back({"n", n});
      ctx.emit(std::move(m));
    }
    if (g_fed.ended) return SourceStep::done();
    return SourceStep::wait_until(ctx.now_us() + 10'000'000);  // the driver comes first
  }
};
EF_REGISTER_OPERATOR(FedSource)

// Collects like test.collect, and notes the thread each message arrived on.
class ThreadCollect : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "test.thread_collect";
    s.summary = "test.collect, noting the threads";
    s.inputs = {{"in", "any", ""}};
    return s;
  }
  explicit ThreadCollect(const Options&) {}
  void process(int, MessagePtr m, Context&) override {
    {
      std::lock_guard<std::mutex> lock(g_fed.mu);
      g_fed.sink_threads.insert(std::this_thread::get_id());
    }
    std::lock_guard<std::mutex> lock(g_collected.mu);
    g_collected.messages.push_back(std::move(m));
    g_collected.cv.notify_all();
  }
};
EF_REGISTER_OPERATOR(ThreadCollect)

// Sums n per origin in windows of `window` event-time seconds, closed by timers.
class TimerSum : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "test.timersum";
    s.summary = "sums n per 10 s window, emitted by event-time timers";
    s.inputs = {{"in", "reading", ""}};
    s.outputs = {{"out", "aggregate", ""}};
    return s;
  }
  explicit TimerSum(const Options&) {}
  void process(int, MessagePtr m, Context& ctx) override {
    int64_t end = (m->event_time_us / 10'000'000 + 1) * 10'000'000;
    auto& sum = sums_[{m->origin, end}];
    if (sum == 0) ctx.set_timer(m->origin, end);
    sum += std::get<int64_t>(find_field(m->fields, "n")->v);
  }
  void on_timer(const std::string& origin, int64_t t, Context& ctx) override {
    auto out = ctx.make_message(t);
    out->origin = origin;
    out->fields.push_back({"sum", sums_[{origin, t}]});
    sums_.erase({origin, t});
    ctx.emit(std::move(out));
  }

 private:
  std::map<std::pair<std::string, int64_t>, int64_t> sums_;
};
EF_REGISTER_OPERATOR(TimerSum)

PipelineSpec load(const std::string& yaml) {
  LoadResult r = load_pipeline_text(yaml, "test.yaml", ".");
  if (!r.pipeline) throw std::runtime_error(r.diags.str());
  return *r.pipeline;
}

std::vector<MessagePtr> run(const PipelineSpec& p, int threads = 2) {
  g_collected.reset();
  Executor ex(p, place(p), executor_options(threads, 64));
  ex.start();
  EXPECT_TRUE(ex.wait(30'000'000)) << "pipeline did not finish";
  std::lock_guard<std::mutex> lock(g_collected.mu);
  return g_collected.messages;
}

class ExecutorThreads : public ::testing::TestWithParam<int> {};

TEST_P(ExecutorThreads, DeliversEveryMessageInOrderThroughAChain) {
  PipelineSpec p = load(R"(
pipeline: chain
stages:
  - {id: src, op: test.count, with: {count: 20000}}
  - {id: a, op: test.pass, from: src}
  - {id: b, op: test.pass, from: a}
  - {id: sink, op: test.collect, from: b}
)");
  auto got = run(p, GetParam());
  ASSERT_EQ(got.size(), 20000u);
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(std::get<int64_t>(find_field(got[i]->fields, "n")->v), static_cast<int64_t>(i + 1));
  EXPECT_EQ(got[0]->stream, "src");
  EXPECT_EQ(got[0]->origin, "edge");
  EXPECT_EQ(g_collected.closes.load(), 1);
}

TEST_P(ExecutorThreads, EdgeNodesFanInToTheCloudWithTheirOrigin) {
  PipelineSpec p = load(R"(
pipeline: fanin
nodes:
  pi-1: {tier: edge}
  pi-2: {tier: edge}
  pi-3: {tier: edge}
  hq: {tier: cloud}
stages:
  - {id: src, op: test.count, with: {count: 1000}}
  - {id: sink, op: test.collect, from: src, on: cloud}
)");
  Plan plan = place(p);
  EXPECT_EQ(plan.instances.size(), 4u);
  EXPECT_EQ(plan.edges.size(), 3u);
  for (const PlanEdge& e : plan.edges) EXPECT_TRUE(e.crosses_nodes);
  auto got = run(p, GetParam());
  ASSERT_EQ(got.size(), 3000u);
  std::map<std::string, int64_t> last;
  for (const MessagePtr& m : got) {
    int64_t n = std::get<int64_t>(find_field(m->fields, "n")->v);
    EXPECT_EQ(n, last[m->origin] + 1) << "order per origin";
    last[m->origin] = n;
  }
  EXPECT_EQ(last, (std::map<std::string, int64_t>{{"pi-1", 1000}, {"pi-2", 1000}, {"pi-3", 1000}}));
}

TEST_P(ExecutorThreads, EventTimeTimersFirePerOriginAndAtEndOfInput) {
  PipelineSpec p = load(R"(
pipeline: timers
nodes: {a: {tier: edge}, b: {tier: edge}, c: {tier: cloud}}
stages:
  - {id: src, op: test.count, with: {count: 25}}
  - {id: sum, op: test.timersum, from: src, on: cloud}
  - {id: sink, op: test.collect, from: sum}
)");
  auto got = run(p, GetParam());
  // n = 1..25 at t = n seconds: windows (0,10) -> 1..9, [10,20) -> 10..19, [20,30) -> 20..25
  std::map<std::string, std::vector<int64_t>> sums;
  for (const MessagePtr& m : got)
    sums[m->origin].push_back(std::get<int64_t>(find_field(m->fields, "sum")->v));
  std::vector<int64_t> expected = {45, 145, 135};
  EXPECT_EQ(sums["a"], expected);
  EXPECT_EQ(sums["b"], expected);
}

TEST_P(ExecutorThreads, ErrorsGoToTheErrorOutputAndTheCounter) {
  PipelineSpec p = load(R"(
pipeline: errors
stages:
  - {id: src, op: test.count, with: {count: 100}}
  - {id: check, op: test.pass, from: src, with: {fail_every: 10}}
  - {id: bad, op: test.collect, from: check.error}
)");
  g_collected.reset();
  Executor ex(p, place(p), executor_options(GetParam(), 64));
  ex.start();
  ASSERT_TRUE(ex.wait(30'000'000));
  std::lock_guard<std::mutex> lock(g_collected.mu);
  ASSERT_EQ(g_collected.messages.size(), 10u);
  EXPECT_EQ(*find_field(g_collected.messages[0]->fields, "error"), Value("bad n"));
  EXPECT_EQ(*find_field(g_collected.messages[0]->fields, "stage"), Value("check"));
  for (const StageMetrics& m : ex.metrics()) {
    if (m.stage == "check") {
      EXPECT_EQ(m.in, 100u);
      EXPECT_EQ(m.errors, 10u);
    }
  }
}

TEST_P(ExecutorThreads, AnOperatorThatThrowsIsCountedNotFatal) {
  PipelineSpec p = load(R"(
pipeline: throws
stages:
  - {id: src, op: test.count, with: {count: 100}}
  - {id: check, op: test.pass, from: src, with: {fail_every: 2, throw: true}}
  - {id: sink, op: test.collect, from: check}
)");
  auto got = run(p, GetParam());
  EXPECT_EQ(got.size(), 50u);
}

INSTANTIATE_TEST_SUITE_P(Threads, ExecutorThreads, ::testing::Values(1, 2, 4));

TEST(Executor, BackPressureBoundsTheQueueAndLosesNothing) {
  PipelineSpec p = load(R"(
pipeline: pressure
stages:
  - {id: src, op: test.count, with: {count: 5000, per_call: 1}}
  - {id: sink, op: test.collect, from: src, queue: {capacity: 8}}
)");
  g_collected.reset();
  g_collected.hold = true;
  Executor ex(p, place(p), executor_options(2, 64));
  ex.start();
  // The sink is held shut: the source must stop once the queue is full.
  uint64_t emitted = 0;
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const StageMetrics& m : ex.metrics())
      if (m.stage == "src") emitted = m.out;
  }
  // 8 queued, plus the batch the held sink already took from its queue (at most 8), plus
  // the one the source holds while it waits for room.
  EXPECT_LE(emitted, 8u + 8u + 1u);
  {
    std::lock_guard<std::mutex> lock(g_collected.mu);
    g_collected.hold = false;
  }
  g_collected.cv.notify_all();
  ASSERT_TRUE(ex.wait(30'000'000));
  EXPECT_EQ(g_collected.messages.size(), 5000u);
  for (const StageMetrics& m : ex.metrics())
    if (m.stage == "sink") {
      EXPECT_LE(m.queue_high_water, 8u);
    }
}

// Readings of 10 KiB into a queue of 1000 messages but 64 KiB: the bytes bound first.
TEST(Executor, BackPressureBoundsTheQueueInBytes) {
  PipelineSpec p = load(R"(
pipeline: pressure
stages:
  - {id: src, op: test.count, with: {count: 300, per_call: 1, pad: 10240}}
  - {id: sink, op: test.collect, from: src, queue: {capacity: 1000, bytes: 64KiB}}
)");
  g_collected.reset();
  g_collected.hold = true;
  Executor ex(p, place(p), executor_options(2, 64));
  ex.start();
  uint64_t emitted = 0;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const StageMetrics& m : ex.metrics())
      if (m.stage == "src") emitted = m.out;
  }
  // Room is checked before each step of the source (one reading): the queue stops at the
  // first reading that reaches 64 KiB (7 of about 10.3 KiB), plus the batch the held sink
  // took (at most 7 more) and the reading the source holds.
  EXPECT_GE(emitted, 7u);
  EXPECT_LE(emitted, 7u + 7u + 1u);
  {
    std::lock_guard<std::mutex> lock(g_collected.mu);
    g_collected.hold = false;
  }
  g_collected.cv.notify_all();
  ASSERT_TRUE(ex.wait(30'000'000));
  EXPECT_EQ(g_collected.messages.size(), 300u);
  for (const StageMetrics& m : ex.metrics())
    if (m.stage == "sink") {
      EXPECT_EQ(m.queue_bytes_limit, 65536u);
      EXPECT_GT(m.queue_bytes_high_water, 60000u);
      EXPECT_LT(m.queue_bytes_high_water, 65536u + 11000u);
    }
}

// A drop-oldest queue keeps under its bytes by dropping the oldest readings, counted.
TEST(Executor, DropOldestQueueDropsToStayUnderItsBytes) {
  PipelineSpec p = load(R"(
pipeline: pressure
stages:
  - {id: src, op: test.count, with: {count: 200, per_call: 1, pad: 10240}}
  - {id: sink, op: test.collect, from: src,
     queue: {capacity: 1000, bytes: 64KiB, overflow: drop-oldest}}
)");
  g_collected.reset();
  g_collected.hold = true;
  Executor ex(p, place(p), executor_options(2, 64));
  ex.start();
  uint64_t emitted = 0;
  for (int i = 0; i < 2000 && emitted < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const StageMetrics& m : ex.metrics())
      if (m.stage == "src") emitted = m.out;
  }
  EXPECT_EQ(emitted, 200u);  // a drop-oldest queue never holds its source up
  {
    std::lock_guard<std::mutex> lock(g_collected.mu);
    g_collected.hold = false;
  }
  g_collected.cv.notify_all();
  ASSERT_TRUE(ex.wait(30'000'000));
  for (const StageMetrics& m : ex.metrics())
    if (m.stage == "sink") {
      EXPECT_LE(m.queue_bytes_high_water, 65536u);
      EXPECT_GT(m.dropped, 150u);
      EXPECT_EQ(g_collected.messages.size() + m.dropped, 200u);
    }
}

TEST(Executor, StopFinishesWhatWasAccepted) {
  PipelineSpec p = load(R"(
pipeline: endless
stages:
  - {id: src, op: test.count, with: {count: 0}}
  - {id: a, op: test.pass, from: src}
  - {id: sink, op: test.collect, from: a}
)");
  g_collected.reset();
  Executor ex(p, place(p), executor_options(2, 64));
  ex.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ex.request_stop();
  ASSERT_TRUE(ex.wait(30'000'000));
  uint64_t produced = 0;
  for (const StageMetrics& m : ex.metrics())
    if (m.stage == "src") produced = m.out;
  EXPECT_GT(produced, 0u);
  EXPECT_EQ(g_collected.messages.size(), produced) << "every accepted message reached the sink";
  EXPECT_EQ(g_collected.closes.load(), 1);
}

TEST(Executor, ADriverRunsTheChainOnTheFeedingThreadInOrderAndLosesNothing) {
  PipelineSpec p = load(R"(
pipeline: driven
stages:
  - {id: src, op: test.fed}
  - {id: a, op: test.pass, from: src}
  - {id: sink, op: test.thread_collect, from: a}
)");
  g_collected.reset();
  g_fed.ended = false;
  g_fed.generates = 0;
  g_fed.sink_threads.clear();
  g_fed.queue.clear();
  Executor ex(p, place(p), executor_options(2, 64));
  ex.start();
  // Once the source thread has made its first call and gone to sleep, a feed runs the turn
  // of the source, the pass and the sink on the feeding thread itself.
  for (int i = 0; i < 500 && g_fed.generates.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  constexpr int kCount = 200;
  std::thread feeder([] {
    for (int n = 1; n <= kCount; ++n) {
      g_fed.feed(n);
      if (n == 1) {  // the first one has gone all the way before feed() returned
        std::lock_guard<std::mutex> lock(g_fed.mu);
        EXPECT_TRUE(g_fed.sink_threads.count(std::this_thread::get_id()));
      }
    }
  });
  feeder.join();
  {
    std::unique_lock<std::mutex> lock(g_collected.mu);
    ASSERT_TRUE(g_collected.cv.wait_for(lock, std::chrono::seconds(30),
                                        [] { return g_collected.messages.size() == kCount; }));
  }
  g_fed.ended = true;
  ex.request_stop();
  ASSERT_TRUE(ex.wait(30'000'000));
  ASSERT_EQ(g_collected.messages.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i)
    EXPECT_EQ(std::get<int64_t>(find_field(g_collected.messages[i]->fields, "n")->v), i + 1);
  // Stopped: a late feed is the source thread's job again, and nothing runs a turn any more.
  g_fed.feed(kCount + 1);
  EXPECT_EQ(g_collected.messages.size(), static_cast<size_t>(kCount));
}

TEST(Executor, FrameReadersDefaultToDropOldestUnlessTheFileSaysOtherwise) {
  PipelineSpec p = load(R"(
pipeline: frames
stages:
  - {id: cam, op: test.frames}
  - {id: a, op: test.collect, from: cam}
  - {id: b, op: test.collect, from: cam, queue: {overflow: block}}
  - {id: n, op: test.count}
  - {id: c, op: test.collect, from: n}
)");
  EXPECT_EQ(p.stage("a")->overflow, Overflow::kDropOldest);
  EXPECT_EQ(p.stage("a")->queue_capacity, 4u);
  EXPECT_EQ(p.stage("b")->overflow, Overflow::kBlock);
  EXPECT_EQ(p.stage("c")->overflow, Overflow::kBlock);  // readings, not frames
  EXPECT_EQ(p.stage("c")->queue_capacity, 1024u);
}

// Raw frames may cross a link when a blob encoder for frames is registered: the link encodes
// them, and the file loads.
#ifndef EDGEFLOW_NO_VISION  // built without the vision family: no frame encoder to test
TEST(Executor, FramesCrossALinkWithARegisteredEncoder) {
  LoadResult r = load_pipeline_text(R"(
pipeline: frames
stages:
  - {id: cam, op: test.frames, on: edge}
  - {id: sink, op: test.collect, from: cam, on: cloud}
)",
                                    "test.yaml", ".");
  // operators/image registers JPEG for frames; every test binary links the operators.
  ASSERT_NE(find_blob_encoder_for_port("frame"), nullptr);
  EXPECT_TRUE(r.pipeline) << r.diags.str();
}
#endif

TEST(Executor, DropOldestQueuesCountWhatTheyDrop) {
  PipelineSpec p = load(R"(
pipeline: frames
stages:
  - {id: src, op: test.count, with: {count: 2000, per_call: 1}}
  - {id: sink, op: test.collect, from: src, queue: {capacity: 4, overflow: drop-oldest}}
)");
  g_collected.reset();
  g_collected.hold = true;
  Executor ex(p, place(p), executor_options(2, 64));
  ex.start();
  // The source never waits for a drop-oldest queue, so it finishes while the sink is shut.
  for (int i = 0; i < 2000; ++i) {
    bool done = false;
    for (const StageMetrics& m : ex.metrics())
      if (m.stage == "src") done = m.finished;
    if (done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  {
    std::lock_guard<std::mutex> lock(g_collected.mu);
    g_collected.hold = false;
  }
  g_collected.cv.notify_all();
  ASSERT_TRUE(ex.wait(30'000'000));
  uint64_t dropped = 0;
  for (const StageMetrics& m : ex.metrics())
    if (m.stage == "sink") dropped = m.dropped;
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(g_collected.messages.size() + dropped, 2000u);
  // The newest survive.
  EXPECT_EQ(std::get<int64_t>(find_field(g_collected.messages.back()->fields, "n")->v), 2000);
}

TEST(Executor, AnOperatorThatCannotOpenNamesItsStageAndClosesTheOthers) {
  PipelineSpec p = load(R"(
pipeline: broken
stages:
  - {id: src, op: test.count}
  - {id: first, op: test.collect, from: src}
  - {id: second, op: test.collect, from: src, with: {fail_open: true}}
)");
  g_collected.reset();
  Executor ex(p, place(p), {});
  try {
    ex.start();
    FAIL() << "start() should throw";
  } catch (const OperatorError& e) {
    EXPECT_STREQ(e.what(), "stage 'second' on node 'edge' (test.collect): cannot open the thing");
  }
  EXPECT_EQ(g_collected.closes.load(), 1) << "the sink that opened was closed";
}

}  // namespace
}  // namespace edgeflow
