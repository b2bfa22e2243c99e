// Runtime overhead per message per stage: a 5-stage chain (source -> 3 x increment -> sink)
// run by the executor, against a hand-written loop doing the same work (make a reading, edit
// it three times, sum it) in the same process, same run. Prints the ratio, because this
// machine is shared and absolute times drift.
//
//   build/bench/chain_bench [messages]      (default 2000000)
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "runtime/executor.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

ExecutorOptions executor_options(int threads, size_t batch) {
  ExecutorOptions o;
  o.threads = threads;
  o.batch = batch;
  return o;
}

std::atomic<int64_t> g_sink_sum{0};

class BenchSource : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "bench.source";
    s.summary = "emits readings n=0..count-1";
    s.outputs = {{"out", "reading", ""}};
    s.options = {opt_int("count", "").def("1000")};
    return s;
  }
  explicit BenchSource(const Options& o) : count_(o.get_int("count")) {}
  SourceStep generate(Context& ctx) override {
    for (int i = 0; i < 256 && n_ < count_; ++i, ++n_) {
      auto m = ctx.make_message(n_);
      m->fields.push_back({"n", n_});
      ctx.emit(std::move(m));
    }
    return n_ < count_ ? SourceStep::emitted() : SourceStep::done();
  }

 private:
  int64_t count_, n_ = 0;
};
EF_REGISTER_OPERATOR(BenchSource)

class BenchIncrement : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "bench.inc";
    s.summary = "adds 1 to n, in place when it owns the message";
    s.inputs = {{"in", "record", ""}};
    s.outputs = {{"out", "same", ""}};
    return s;
  }
  explicit BenchIncrement(const Options&) {}
  void process(int, MessagePtr m, Context& ctx) override {
    auto w = make_mutable(std::move(m));
    std::get<int64_t>(w->fields[0].value.v) += 1;
    ctx.emit(std::move(w));
  }
};
EF_REGISTER_OPERATOR(BenchIncrement)

class BenchSink : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "bench.sink";
    s.summary = "sums n";
    s.inputs = {{"in", "record", ""}};
    return s;
  }
  explicit BenchSink(const Options&) {}
  void process(int, MessagePtr m, Context&) override {
    sum_ += std::get<int64_t>(m->fields[0].value.v);
  }
  void close(Context&) override { g_sink_sum += sum_; }

 private:
  int64_t sum_ = 0;
};
EF_REGISTER_OPERATOR(BenchSink)

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The same work with no runtime: allocate the reading, edit it three times, sum it.
double hand_loop(int64_t count, int64_t& sum) {
  auto t0 = std::chrono::steady_clock::now();
  sum = 0;
  for (int64_t n = 0; n < count; ++n) {
    auto m = std::make_shared<Message>();
    m->stream = "src";
    m->origin = "edge";
    m->event_time_us = n;
    m->fields.push_back({"n", n});
    for (int k = 0; k < 3; ++k) std::get<int64_t>(m->fields[0].value.v) += 1;
    MessagePtr shared = std::move(m);
    sum += std::get<int64_t>(shared->fields[0].value.v);
  }
  return seconds_since(t0);
}

double pipeline_run(int64_t count, int threads, int64_t& sum) {
  std::string yaml =
      "pipeline: bench\nstages:\n"
      "  - {id: src, op: bench.source, with: {count: " +
      std::to_string(count) +
      "}}\n"
      "  - {id: a, op: bench.inc, from: src}\n"
      "  - {id: b, op: bench.inc, from: a}\n"
      "  - {id: c, op: bench.inc, from: b}\n"
      "  - {id: sink, op: bench.sink, from: c}\n";
  LoadResult r = load_pipeline_text(yaml, "bench.yaml", ".");
  if (!r.pipeline) {
    std::fprintf(stderr, "%s", r.diags.str().c_str());
    std::exit(1);
  }
  g_sink_sum = 0;
  auto t0 = std::chrono::steady_clock::now();
  {
    Executor ex(*r.pipeline, place(*r.pipeline), executor_options(threads, 256));
    ex.start();
    ex.wait();
  }
  double s = seconds_since(t0);
  sum = g_sink_sum;
  return s;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  int64_t count = argc > 1 ? std::atoll(argv[1]) : 2'000'000;
  const int kStages = 5, kRounds = 5;
  int64_t expected = count * (count - 1) / 2 + 3 * count;
  std::printf(
      "5-stage chain, %lld messages, best of %d rounds (baseline and pipeline interleaved)\n",
      static_cast<long long>(count), kRounds);
  std::printf("%-8s %12s %12s %8s %22s\n", "threads", "loop ns/msg", "chain ns/msg", "ratio",
              "overhead ns/msg/stage");
  for (int threads : {1, 2}) {
    double best_loop = 1e30, best_pipe = 1e30;
    for (int round = 0; round < kRounds; ++round) {
      int64_t loop_sum = 0, pipe_sum = 0;
      best_loop = std::min(best_loop, hand_loop(count, loop_sum));
      best_pipe = std::min(best_pipe, pipeline_run(count, threads, pipe_sum));
      if (loop_sum != expected || pipe_sum != expected) {
        std::fprintf(stderr, "wrong result: loop %lld pipeline %lld expected %lld\n",
                     static_cast<long long>(loop_sum), static_cast<long long>(pipe_sum),
                     static_cast<long long>(expected));
        return 1;
      }
    }
    double loop_ns = best_loop * 1e9 / static_cast<double>(count);
    double pipe_ns = best_pipe * 1e9 / static_cast<double>(count);
    std::printf("%-8d %12.1f %12.1f %7.2fx %22.1f\n", threads, loop_ns, pipe_ns, pipe_ns / loop_ns,
                (pipe_ns - loop_ns) / kStages);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS %.1f MB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
