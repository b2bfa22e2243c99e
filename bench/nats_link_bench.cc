// An edge-to-cloud link over NATS (links: {via: nats}) against the NATS C client moving the
// same readings in the same frames, on one server and on a 3-server cluster with the stream
// replicated three times, and against core NATS (no JetStream) for the servers' own limit:
//
//   n1  the link, one server                    n3  the link, 3 servers, replicas 3
//   r1  raw JetStream, one server               r3  raw JetStream, 3 servers, replicas 3
//   c1  raw core NATS publish -> subscribe, one server (nothing stored, nothing acknowledged)
//
// Cloud stages with replicas: three edges (`edgeflow run --node pi-N`, real processes) first
// store all their readings in the stream; then the cloud drains them, timed from its start
// to its exit, aggregating one-minute windows per origin into a file:
//
//   w1  the cloud with the window stage in its own process (no replicas)
//   w3  the window stage with replicas: 3 (three child processes, a partition each)
//   d1  raw JetStream drain: one pull consumer fetching, decoding and acknowledging the same
//       frames stored beforehand (the servers' own delivery limit)
//
// Raw JetStream: a publisher encodes readings with BatchWriter in frames of 256 (what the link
// sends: an executor turn), publishes asynchronously with 64 frames unacknowledged (the link's
// window) into an interest stream, and a pull consumer fetches 16 at a time, decodes and
// acknowledges each. Servers come from scripts/nats-cluster.sh, fresh for every run; each
// variant runs in a forked child. Time runs from the first reading made to the last counted.
//
//   build/bench/nats_link_bench [--quick] [--count N] [--rounds R]
#include <nats/nats.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_readings.h"
#include "bench/bench_util.h"
#include "brokers/link/batch.h"

namespace edgeflow {
namespace {

using bench::now_ns;
using bench::RunResult;

constexpr int kFrame = 256, kWindow = 64, kFetch = 16;

// A fresh cluster of `n` servers for one run, stopped when it goes.
class Servers {
 public:
  explicit Servers(int n) {
    dir_ = std::filesystem::temp_directory_path() / ("ef-nats-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    const std::string cmd = std::string("bash ") + EDGEFLOW_SOURCE_DIR +
                            "/scripts/nats-cluster.sh start " + dir_.string() + " " +
                            std::to_string(n) + " > /dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("nats-cluster.sh start failed");
    std::ifstream in(dir_ / "servers");
    std::getline(in, list_);
  }
  ~Servers() {
    const std::string cmd = std::string("bash ") + EDGEFLOW_SOURCE_DIR +
                            "/scripts/nats-cluster.sh stop " + dir_.string();
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "nats-cluster.sh stop failed\n");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& list() const { return list_; }  // nats://...,nats://...
  std::string yaml() const {
    std::string out, rest = list_;
    for (size_t at; !rest.empty(); rest = at == std::string::npos ? "" : rest.substr(at + 1)) {
      at = rest.find(',');
      out += (out.empty() ? "\"" : ", \"") + rest.substr(0, at) + "\"";
    }
    return "[" + out + "]";
  }

 private:
  std::filesystem::path dir_;
  std::string list_;
};

natsConnection* connect(const std::string& servers) {
  natsOptions* o = nullptr;
  natsOptions_Create(&o);
  std::vector<std::string> urls;
  for (size_t from = 0, at; from <= servers.size(); from = at + 1) {
    at = servers.find(',', from);
    if (at == std::string::npos) at = servers.size();
    urls.push_back(servers.substr(from, at - from));
  }
  std::vector<const char*> ptrs;
  for (const std::string& u : urls) ptrs.push_back(u.c_str());
  natsOptions_SetServers(o, ptrs.data(), static_cast<int>(ptrs.size()));
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_Connect(&nc, o);
  natsOptions_Destroy(o);
  if (s != NATS_OK) throw std::runtime_error(std::string("connect: ") + natsStatus_GetText(s));
  return nc;
}

void check(natsStatus s, const char* what) {
  if (s != NATS_OK) throw std::runtime_error(std::string(what) + ": " + natsStatus_GetText(s));
}

// Encodes readings into frames of kFrame, calling send(frame, end) for each.
template <typename Send>
void make_frames(int64_t count, Send send) {
  BatchWriter writer;
  std::string frame, why;
  uint64_t frames = 0;
  auto finish = [&](bool end) {
    BatchHeader h;
    h.sender = "edge";
    h.session = 42;
    h.sequence = ++frames;
    h.end = end;
    writer.finish(h, frame);
    send(frame);
  };
  for (int64_t n = 0; n < count; ++n) {
    auto m = make_reading(n);
    if (!writer.add(*m, why)) throw std::runtime_error(why);
    if (writer.count() >= static_cast<size_t>(kFrame)) finish(false);
  }
  finish(true);
}

struct Counter {
  std::atomic<int64_t> received{0}, bad{0}, last_ns{0};
  void frame(const char* data, int size) {
    DecodedBatch b = decode_batch(data, static_cast<size_t>(size));
    if (!b.error.empty()) {
      ++bad;
      return;
    }
    received += static_cast<int64_t>(b.messages.size());
    last_ns = now_ns();
  }
};

RunResult finish_run(Counter& c, int64_t count, int64_t t0, int timeout_ms) {
  RunResult res;
  res.sent = static_cast<uint64_t>(count);
  int64_t seen = -1, seen_at = now_ns();
  const int64_t deadline = t0 + static_cast<int64_t>(timeout_ms) * 1'000'000;
  while (c.received < count && now_ns() < deadline && now_ns() - seen_at < 10'000'000'000) {
    if (c.received != seen) seen = c.received, seen_at = now_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  res.delivered = static_cast<uint64_t>(c.received.load());
  res.seconds = static_cast<double>(c.last_ns - t0) / 1e9;
  res.ok = c.received == count && c.bad == 0;
  if (c.bad) res.set_note(std::to_string(c.bad.load()) + " bad frames");
  return res;
}

// An interest stream on one subject, with a durable pull consumer acknowledging explicitly.
void add_stream_and_consumer(jsCtx* js, const char* stream, const char* subject,
                             const char* durable, int replicas) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = stream;
  const char* subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_InterestPolicy;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = replicas;
  jsErrCode code;
  check(js_AddStream(nullptr, js, &cfg, nullptr, &code), "add stream");
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable;
  cc.AckPolicy = js_AckExplicit;
  cc.AckWait = 10'000'000'000;
  check(js_AddConsumer(nullptr, js, stream, &cc, nullptr, &code), "add consumer");
}

// Publishes `count` readings in frames to `subject`, asynchronously with the window, and
// waits up to `wait_ms` for the servers to store them all.
void publish_frames(jsCtx* js, const char* subject, int64_t count, int64_t wait_ms) {
  make_frames(count, [&](const std::string& frame) {
    // MaxPending is the window: a full one makes the call wait (StallWait) and retry.
    while (js_PublishAsync(js, subject, frame.data(), static_cast<int>(frame.size()), nullptr) ==
           NATS_TIMEOUT) {
    }
  });
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = wait_ms;
  js_PublishAsyncComplete(js, &po);
}

// A pull consumer's loop: fetches, counts and acknowledges frames until `done` or `count`.
void consume(natsSubscription* sub, Counter& c, const std::atomic<bool>& done, int64_t count) {
  jsErrCode code;
  while (!done && c.received < count) {
    natsMsgList list{};
    if (natsSubscription_Fetch(&list, sub, kFetch, 500, &code) == NATS_OK) {
      for (int i = 0; i < list.Count; ++i) {
        c.frame(natsMsg_GetData(list.Msgs[i]), natsMsg_GetDataLength(list.Msgs[i]));
        natsMsg_Ack(list.Msgs[i], nullptr);
      }
    }
    natsMsgList_Destroy(&list);
  }
}

// Raw JetStream: async publish with a window, a pull consumer that acknowledges each frame.
RunResult run_raw_jetstream(const std::string& servers, int replicas, int64_t count,
                            int timeout_ms) {
  natsConnection* pc = connect(servers);
  natsConnection* sc = connect(servers);
  jsCtx *pjs = nullptr, *sjs = nullptr;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = kWindow;
  check(natsConnection_JetStream(&pjs, pc, &jo), "jetstream");
  check(natsConnection_JetStream(&sjs, sc, nullptr), "jetstream");
  add_stream_and_consumer(pjs, "RAW", "raw.link", "raw-cloud", replicas);
  jsErrCode code;
  natsSubscription* sub = nullptr;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "RAW";
  so.Consumer = "raw-cloud";
  check(js_PullSubscribe(&sub, sjs, "raw.link", "raw-cloud", nullptr, &so, &code), "subscribe");
  Counter c;
  std::atomic<bool> done{false};
  std::thread consumer([&] { consume(sub, c, done, count); });
  const int64_t t0 = now_ns();
  publish_frames(pjs, "raw.link", count, 30'000);
  RunResult res = finish_run(c, count, t0, timeout_ms);
  done = true;
  consumer.join();
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(pjs);
  jsCtx_Destroy(sjs);
  natsConnection_Destroy(pc);
  natsConnection_Destroy(sc);
  return res;
}

// Core NATS: publish -> subscribe, nothing stored, the servers' own limit.
RunResult run_raw_core(const std::string& servers, int64_t count, int timeout_ms) {
  natsConnection* pc = connect(servers);
  natsConnection* sc = connect(servers);
  Counter c;
  natsSubscription* sub = nullptr;
  check(natsConnection_Subscribe(
            &sub, sc, "raw.core",
            [](natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
              static_cast<Counter*>(closure)->frame(natsMsg_GetData(m), natsMsg_GetDataLength(m));
              natsMsg_Destroy(m);
            },
            &c),
        "subscribe");
  natsSubscription_SetPendingLimits(sub, -1, -1);  // a slow consumer is measured, not cut
  natsConnection_Flush(sc);
  const int64_t t0 = now_ns();
  make_frames(count, [&](const std::string& frame) {
    check(natsConnection_Publish(pc, "raw.core", frame.data(), static_cast<int>(frame.size())),
          "publish");
  });
  natsConnection_Flush(pc);
  RunResult res = finish_run(c, count, t0, timeout_ms);
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(pc);
  natsConnection_Destroy(sc);
  return res;
}

// Raw JetStream drain: the frames are stored first (not timed), then one pull consumer
// fetches, decodes and acknowledges them all.
RunResult run_raw_drain(const std::string& servers, int64_t count, int timeout_ms) {
  natsConnection* nc = connect(servers);
  jsCtx* js = nullptr;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = kWindow;
  check(natsConnection_JetStream(&js, nc, &jo), "jetstream");
  add_stream_and_consumer(js, "DRAIN", "raw.drain", "drain", 1);
  jsErrCode code;
  publish_frames(js, "raw.drain", count, 60'000);
  natsSubscription* sub = nullptr;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "DRAIN";
  so.Consumer = "drain";
  check(js_PullSubscribe(&sub, js, "raw.drain", "drain", nullptr, &so, &code), "subscribe");
  Counter c;
  std::atomic<bool> done{false};
  const int64_t t0 = now_ns();
  std::thread consumer([&] { consume(sub, c, done, count); });
  RunResult res = finish_run(c, count, t0, timeout_ms);
  done = true;
  consumer.join();
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return res;
}

// `edgeflow ARGS...`, waited for; its exit code (-1: it could not be run or took too long).
int run_edgeflow(const std::vector<std::string>& args, int timeout_ms) {
  std::vector<std::string> argv = {NATS_BENCH_EDGEFLOW};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> ptrs;
  for (std::string& a : argv) ptrs.push_back(a.data());
  ptrs.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execv(ptrs[0], ptrs.data());
    _exit(127);
  }
  const int64_t deadline = now_ns() + static_cast<int64_t>(timeout_ms) * 1'000'000;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (now_ns() > deadline) {
      kill(pid, SIGTERM);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Three edges store `count` readings in all (a third each), then the cloud drains them with
// the window stage in `replicas` processes; timed from the cloud's start to its exit. The
// file's windows must hold every reading.
RunResult run_replicated_cloud(const std::string& servers_yaml, int replicas, int64_t count,
                               int timeout_ms) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ef-replicas-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int64_t each = count / 3;
  {
    std::ofstream y(dir / "p.yaml");
    y << "pipeline: replicas-bench\n"
         "nodes: {pi-1: {tier: edge}, pi-3: {tier: edge}, pi-7: {tier: edge}, cloud: {tier: "
         "cloud}}\n"
         "links: {via: nats, nats: {servers: "
      << servers_yaml
      << "}}\n"
         "stages:\n"
         "  - {id: sensors, op: weather.simulate, on: edge, with: {period: 1s, speed: 0, count: "
      << each
      << ", start: \"2026-06-01T00:00:00Z\"}}\n"
         "  - {id: minute, op: weather.aggregate, on: cloud, from: sensors, replicas: "
      << replicas
      << ", with: {window: 60s, fields: [temperature, humidity], stats: [count, mean]}}\n"
         "  - {id: out, op: file.write, on: cloud, from: minute, with: {path: out.jsonl}}\n";
  }
  RunResult res;
  res.sent = static_cast<uint64_t>(each * 3);
  const std::string file = (dir / "p.yaml").string();
  for (const char* edge : {"pi-1", "pi-3", "pi-7"})
    if (run_edgeflow({"run", file, "--node", edge, "--quiet"}, timeout_ms) != 0) {
      res.set_note(std::string("edge ") + edge + " failed");
      return res;
    }
  const int64_t t0 = now_ns();
  const int code = run_edgeflow({"run", file, "--node", "cloud", "--quiet"}, timeout_ms);
  res.seconds = static_cast<double>(now_ns() - t0) / 1e9;
  std::ifstream in(dir / "out.jsonl");
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find("\"temperature_count\":");
    if (at != std::string::npos) res.delivered += std::stoull(line.substr(at + 20));
  }
  res.ok = code == 0 && res.delivered == res.sent;
  if (code != 0) res.set_note("the cloud exited with " + std::to_string(code));
  std::filesystem::remove_all(dir);
  return res;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  using namespace edgeflow::bench;
  Args args = parse_args(argc, argv, "nats_link_bench [--quick] [--count N] [--rounds R]");
  const int64_t count = args.count ? args.count : args.quick ? 200'000 : 1'000'000;
  const int timeout_ms = args.quick ? 60'000 : 300'000;
  // The servers start in the parent (their memory is not the child's) and fresh per run.
  auto variant = [=](int servers, char kind) {
    return [=] {
      Servers s(servers);
      const int replicas = servers >= 3 ? 3 : 1;
      return run_forked(
          [&] {
            if (kind == 'n') {
              const std::string links = "{via: nats, nats: {servers: " + s.yaml() +
                                        ", replicas: " + std::to_string(replicas) + "}}";
              return run_readings_pipeline(count, links, true, "", timeout_ms);
            }
            if (kind == 'r') return run_raw_jetstream(s.list(), replicas, count, timeout_ms);
            if (kind == 'w') return run_replicated_cloud(s.yaml(), 1, count, timeout_ms);
            if (kind == 'W') return run_replicated_cloud(s.yaml(), 3, count, timeout_ms);
            if (kind == 'd') return run_raw_drain(s.list(), count, timeout_ms);
            return run_raw_core(s.list(), count, timeout_ms);
          },
          timeout_ms + 15'000);
    };
  };
  std::vector<Variant> vs;
  vs.emplace_back("n1", "NATS link, one server", variant(1, 'n'));
  vs.emplace_back("r1", "raw JetStream, one server, 256/frame", variant(1, 'r'));
  vs.emplace_back("n3", "NATS link, 3 servers, replicas 3", variant(3, 'n'));
  vs.emplace_back("r3", "raw JetStream, 3 servers, replicas 3", variant(3, 'r'));
  vs.emplace_back("c1", "raw core NATS pub/sub, one server", variant(1, 'c'));
  vs.emplace_back("w1", "cloud drains 3 edges, window, no replicas", variant(1, 'w'));
  vs.emplace_back("w3", "cloud drains 3 edges, window, replicas 3", variant(1, 'W'));
  vs.emplace_back("d1", "raw JetStream drain, one pull consumer", variant(1, 'd'));
  std::printf("nats_link_bench: %lld readings (3 numbers + origin) edge -> cloud, %s\n",
              static_cast<long long>(count),
              args.quick ? "quick: one round" : ("best of " + std::to_string(args.rounds)).c_str());
  run_rounds(vs, args.rounds);
  print_table(vs, "readings/s");
  print_ratio(vs, "n1", "r1", "NATS link / raw JetStream, one server", 0.8);
  print_ratio(vs, "n3", "r3", "NATS link / raw JetStream, 3 servers R3", 0.8);
  print_ratio(vs, "r1", "c1", "raw JetStream / core NATS (what storing and acknowledging cost)");
  print_ratio(vs, "n3", "n1", "NATS link, 3 servers R3 / one server");
  print_ratio(vs, "w3", "w1", "cloud draining, replicas 3 / no replicas");
  print_ratio(vs, "w1", "d1", "cloud draining, no replicas / raw JetStream drain");
  print_ratio(vs, "w3", "d1", "cloud draining, replicas 3 / raw JetStream drain");
  return any_failed(vs) ? 1 : 0;
}
