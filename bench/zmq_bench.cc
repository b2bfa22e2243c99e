// Throughput of a ZeroMQ link carrying small readings (3 numbers + origin), encode and decode
// included, against raw cppzmq PUSH/PULL moving the same readings in the same process:
//
//   a  ZeroMQ link, mode acked (DEALER/ROUTER, acknowledged window), batched by the link
//   p  ZeroMQ link, mode push (PUSH/PULL), batched by the link
//   r  raw PUSH/PULL, one reading per zmq message: encode_message on the PUSH side, one
//      decode_message per zmq message on the PULL side
//   rb raw PUSH/PULL, 1000 readings per zmq message (BatchWriter / decode_batch): what
//      batching is worth
//
// The pipeline is bench.readings (node edge) -> bench.count (node cloud). Time runs from the
// first reading made to the last one counted. Each variant runs in a forked child (its own
// peak RSS). Endpoints are 127.0.0.1 with a port picked by the kernel.
//
//   build-bench/bench/zmq_bench [--quick] [--count N] [--rounds R]
#include <stdexcept>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "bench/bench_readings.h"
#include "bench/bench_util.h"
#include "brokers/codec.h"
#include "brokers/link/batch.h"

namespace edgeflow {
namespace {

using bench::now_ns;
using bench::RunResult;

// Raw PUSH/PULL: `batch` 1 sends each encoded reading as one zmq message; more uses frames.
RunResult run_raw(int64_t count, int batch, int timeout_ms) {
  RunResult res;
  res.sent = static_cast<uint64_t>(count);
  zmq::context_t zctx(1);
  zmq::socket_t pull(zctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::rcvtimeo, 10'000);  // no progress for 10 s: the run is lossy
  // Frames of 1000 readings are ~40 kB: the default high-water marks (1000 messages a side)
  // would let 80 MB pile up. 100 frames a side keeps the memory near the link's window.
  if (batch > 1) pull.set(zmq::sockopt::rcvhwm, 100);
  pull.bind("tcp://127.0.0.1:*");
  const std::string endpoint = pull.get(zmq::sockopt::last_endpoint);

  int64_t received = 0, bad = 0, last_ns = 0;
  const int64_t deadline = now_ns() + static_cast<int64_t>(timeout_ms) * 1'000'000;
  std::thread consumer([&] {
    zmq::message_t msg;
    while (received < count && now_ns() < deadline) {
      if (!pull.recv(msg, zmq::recv_flags::none)) break;  // timeout
      const char* data = static_cast<const char*>(msg.data());
      if (batch == 1) {
        DecodeResult d = decode_message(data, msg.size());
        if (!d.message || d.consumed != msg.size() || !reading_ok(*d.message)) ++bad;
        ++received;
      } else {
        DecodedBatch b = decode_batch(data, msg.size());
        if (!b.error.empty()) ++bad;
        for (const MessagePtr& m : b.messages) bad += !reading_ok(*m);
        received += static_cast<int64_t>(b.messages.size());
      }
      last_ns = now_ns();
    }
  });

  zmq::socket_t push(zctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  if (batch > 1) push.set(zmq::sockopt::sndhwm, 100);
  push.connect(endpoint);
  const int64_t t0 = now_ns();
  std::string buf, why;
  BatchWriter writer;
  uint64_t frames = 0;
  auto send_frame = [&](bool end) {
    BatchHeader h;
    h.sender = "edge";
    h.session = 42;
    h.sequence = ++frames;
    h.end = end;
    writer.finish(h, buf);
    push.send(zmq::buffer(buf), zmq::send_flags::none);
  };
  for (int64_t n = 0; n < count; ++n) {
    auto m = make_reading(n);
    if (batch == 1) {
      buf.clear();
      encode_message(*m, buf);
      push.send(zmq::buffer(buf), zmq::send_flags::none);
    } else {
      if (!writer.add(*m, why)) throw std::runtime_error(why);
      if (writer.count() >= static_cast<size_t>(batch)) send_frame(false);
    }
  }
  if (batch > 1 && !writer.empty()) send_frame(true);
  consumer.join();
  res.delivered = static_cast<uint64_t>(received);
  res.seconds = static_cast<double>(last_ns - t0) / 1e9;
  res.ok = received == count && bad == 0;
  if (bad) res.set_note(std::to_string(bad) + " malformed");
  if (batch > 1) res.set_note(std::to_string(frames) + " zmq messages");
  return res;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  using namespace edgeflow::bench;
  Args args = parse_args(argc, argv, "zmq_bench [--quick] [--count N] [--rounds R]");
  const int64_t count = args.count ? args.count : args.quick ? 300'000 : 1'000'000;
  const int timeout_ms = args.quick ? 60'000 : 300'000;
  auto link = [&](const std::string& mode) {
    const std::string links = "{via: zmq, zmq: {mode: " + mode + "}}";
    return [=] {
      return run_forked([&] { return run_readings_pipeline(count, links, true, "", timeout_ms); },
                        timeout_ms + 15'000);
    };
  };
  auto raw = [&](int batch) {
    return [=] {
      return run_forked([&] { return run_raw(count, batch, timeout_ms); }, timeout_ms + 15'000);
    };
  };
  std::vector<Variant> vs;
  vs.emplace_back("a", "ZeroMQ link, mode acked", link("acked"));
  vs.emplace_back("p", "ZeroMQ link, mode push", link("push"));
  vs.emplace_back("r", "raw PUSH/PULL, 1 reading/zmq msg", raw(1));
  vs.emplace_back("rb", "raw PUSH/PULL, 1000 readings/zmq msg", raw(1000));

  std::printf("zmq_bench: %lld readings (3 numbers + origin) edge -> cloud, %s\n",
              static_cast<long long>(count),
              args.quick ? "quick: one round" : ("best of " + std::to_string(args.rounds)).c_str());
  run_rounds(vs, args.rounds);
  print_table(vs, "readings/s");
  print_rss_floor();
  print_ratio(vs, "a", "r", "acked link / raw per-message PUSH/PULL", 0.8);
  print_ratio(vs, "p", "r", "push link / raw per-message PUSH/PULL", 0.8);
  print_ratio(vs, "a", "rb", "acked link / raw batched PUSH/PULL");
  print_ratio(vs, "p", "rb", "push link / raw batched PUSH/PULL");
  print_ratio(vs, "rb", "r", "what batching 1000 per zmq message is worth, raw");
  return any_failed(vs) ? 1 : 0;
}
