// The bench-only operators of the link benchmarks (include from exactly one source file per
// binary: it registers them) and the runner of their pipeline:
//
//   bench.readings (node edge) -> bench.count (node cloud)
//
// so placement cuts one link, carried by the transport named in the `links:` text.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "bench/bench_util.h"
#include "brokers/link/transport.h"
#include "runtime/executor.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

// Set by the bench operators; each variant runs in a child of its own, so no reset races.
std::atomic<int64_t> g_emitted{0};
std::atomic<int64_t> g_first_ns{0};
std::atomic<int64_t> g_counted{0};
std::atomic<int64_t> g_last_ns{0};

constexpr int64_t kEpochUs = 1'790'000'000'000'000;

// The reading every variant builds: three numbers; stream and origin set by the caller.
inline void fill_reading(Message& m, int64_t n) {
  const double x = static_cast<double>(n % 1000);
  m.fields.reserve(3);
  m.fields.push_back({"temperature", 12.0 + x * 0.01});
  m.fields.push_back({"humidity", 60.0 + x * 0.02});
  m.fields.push_back({"pressure", 1000.0 + x * 0.03});
}

// What a consumer checks of each reading it gets.
inline bool reading_ok(const Message& m) { return m.fields.size() == 3 && m.origin == "edge"; }

// A raw baseline's copy of what the source makes.
inline std::shared_ptr<Message> make_reading(int64_t n) {
  auto m = std::make_shared<Message>();
  m->stream = "readings";
  m->origin = "edge";
  m->seq = static_cast<uint64_t>(n);
  m->event_time_us = kEpochUs + n * 1000;
  fill_reading(*m, n);
  return m;
}

class BenchReadings : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "bench.readings";
    s.summary = "emits count small readings (3 numbers) as fast as allowed, 256 per call";
    s.outputs = {{"out", "reading", ""}};
    s.options = {opt_int("count", "readings to emit").def("1000")};
    return s;
  }
  explicit BenchReadings(const Options& o) : count_(o.get_int("count")) {}
  SourceStep generate(Context& ctx) override {
    if (n_ == 0) g_first_ns.store(bench::now_ns());
    for (int i = 0; i < 256 && n_ < count_; ++i, ++n_) {
      auto m = ctx.make_message(kEpochUs + n_ * 1000);
      fill_reading(*m, n_);
      ctx.emit(std::move(m));
    }
    g_emitted.store(n_);
    return n_ < count_ ? SourceStep::emitted() : SourceStep::done();
  }

 private:
  int64_t count_, n_ = 0;
};
EF_REGISTER_OPERATOR(BenchReadings)

class BenchCount : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "bench.count";
    s.summary = "counts readings and notes when the last one arrived";
    s.inputs = {{"in", "record", ""}};
    return s;
  }
  explicit BenchCount(const Options&) {}
  void process(int, MessagePtr m, Context&) override {
    ++count_;
    if (!reading_ok(*m)) ++bad_;
  }
  // Once per turn: the time of the turn holding the last reading is that reading's time.
  void turn_end(Context&) override { publish(); }
  void close(Context&) override { publish(); }

 private:
  void publish() {
    if (count_ == g_counted.load()) return;
    g_last_ns.store(bench::now_ns());
    g_counted.store(bad_ ? -bad_ : count_);  // a malformed reading fails the run
  }
  int64_t count_ = 0, bad_ = 0;
};
EF_REGISTER_OPERATOR(BenchCount)

inline std::string readings_pipeline(int64_t count, const std::string& links) {
  return "pipeline: linkbench\n"
         "nodes: {edge: {tier: edge}, cloud: {tier: cloud}}\n"
         "links: " +
         links +
         "\n"
         "stages:\n"
         "  - {id: readings, op: bench.readings, on: edge, with: {count: " +
         std::to_string(count) +
         "}}\n"
         "  - {id: count, op: bench.count, on: cloud, from: readings}\n";
}

// Runs the pipeline once (in the calling process: call it in a forked child). `use_links`
// false: in-process queues between the nodes, the runtime's ceiling.
inline bench::RunResult run_readings_pipeline(int64_t count, const std::string& links,
                                              bool use_links, const std::string& broker_uri,
                                              int timeout_ms) {
  bench::RunResult res;
  res.sent = static_cast<uint64_t>(count);
  LoadResult lr = load_pipeline_text(readings_pipeline(count, links), "bench.yaml", ".");
  if (!lr.pipeline) {
    res.set_note("pipeline: " + lr.diags.str());
    return res;
  }
  PipelineSpec pipeline = std::move(*lr.pipeline);
  pipeline.links.mqtt_broker = broker_uri;
  const Plan plan = place(pipeline);
  std::unique_ptr<LinkTransport> transport;
  if (use_links) transport = make_link_transport(pipeline, plan);
  ExecutorOptions eo;
  eo.links = transport.get();
  uint64_t errors = 0;
  bool finished = false;
  {
    Executor ex(pipeline, plan, eo);
    ex.start();
    finished = ex.wait(static_cast<int64_t>(timeout_ms) * 1000);
    if (!finished) {
      if (transport) transport->stop_requested();
      ex.request_stop();
      ex.wait(5'000'000);
    }
    for (const StageMetrics& m : ex.metrics()) errors += m.errors;
  }
  const int64_t counted = g_counted.load();
  res.delivered = counted > 0 ? static_cast<uint64_t>(counted) : 0;
  res.seconds = static_cast<double>(g_last_ns.load() - g_first_ns.load()) / 1e9;
  res.ok = finished && errors == 0 && counted == count && g_emitted.load() == count;
  if (transport) {
    uint64_t batches = 0, messages = 0;
    for (const LinkMetrics& l : transport->metrics())
      if (l.direction == "send") batches += l.batches, messages += l.messages;
    if (batches) res.set_note(std::to_string(messages / batches) + " msg/frame");
  }
  if (!finished) res.set_note("did not finish within the timeout");
  if (errors) res.set_note(std::to_string(errors) + " stage errors");
  if (counted < 0) res.set_note(std::to_string(-counted) + " malformed readings");
  return res;
}

}  // namespace
}  // namespace edgeflow
