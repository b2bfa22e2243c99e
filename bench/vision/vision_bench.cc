// Motion detection frames per second: vision.motion run by the executor (a source handing
// out frames already in memory -> vision.motion -> a sink counting events) against a raw
// OpenCV loop doing the same work on the same frames in the same process: gray, blur,
// background subtraction (MOG2) or frame differencing, erode, dilate, connected components,
// box merging, and the start/end hysteresis. Nothing is decoded (frames are rendered once,
// before timing) and nothing is dropped (the stage's queue blocks). Both sides must find the
// same number of events, or the benchmark fails. Rounds alternate loop and pipeline; the best
// round of each is kept, because this machine is shared and absolute times drift; the median
// of the rounds' pipeline/loop ratios is printed beside, and so is the CPU time per frame (all
// threads of the process, best round), which other processes disturb less than wall time.
//
//   build/bench/vision/vision_bench [--frames N] [--distinct D] [--rounds R] [--quick]
//
// N frames are processed per round, cycling through D distinct rendered frames (memory:
// D x width x height x 3 bytes per resolution). The target is pipeline >= 0.95 x loop.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/background_segm.hpp>
#include <string>
#include <vector>

#include "bench/vision/raw_motion.h"
#include "operators/camera/synthetic_scene.h"
#include "operators/image/frame.h"
#include "operators/vision/motion_detector.h"
#include "runtime/executor.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

// The frames of the current measurement, rendered before timing starts.
const std::vector<cv::Mat>* g_frames = nullptr;
std::atomic<int64_t> g_events{0};

class BenchFrames : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "bench.frames";
    s.summary = "hands out frames already in memory, cycling";
    s.outputs = {{"out", "frame", ""}};
    s.options = {opt_int("count", "").def("100")};
    return s;
  }
  explicit BenchFrames(const Options& o) : count_(o.get_int("count")) {}
  SourceStep generate(Context& ctx) override {
    for (int i = 0; i < 4 && n_ < count_; ++i, ++n_) {
      auto m = ctx.make_message(n_ * 100'000);
      m->fields.push_back({"frame", n_});
      // Shares the pixels (cv::Mat is reference-counted): no copy, as a camera source.
      m->blob = make_frame_blob((*g_frames)[static_cast<size_t>(n_) % g_frames->size()]);
      ctx.emit(std::move(m));
    }
    return n_ < count_ ? SourceStep::emitted() : SourceStep::done();
  }

 private:
  int64_t count_, n_ = 0;
};
EF_REGISTER_OPERATOR(BenchFrames)

class BenchEvents : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "bench.events";
    s.summary = "counts messages";
    s.inputs = {{"in", "any", ""}};
    return s;
  }
  explicit BenchEvents(const Options&) {}
  void process(int, MessagePtr, Context&) override { ++n_; }
  void close(Context&) override { g_events += n_; }

 private:
  int64_t n_ = 0;
};
EF_REGISTER_OPERATOR(BenchEvents)

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of this process so far, every thread (OpenCV's own included).
double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// The work of vision.motion written as a plain OpenCV loop. Returns start + end messages.
int64_t raw_loop(const std::vector<cv::Mat>& frames, int64_t count, bool mog2, double& seconds) {
  auto t0 = std::chrono::steady_clock::now();
  bench::RawMotion loop(mog2);
  for (int64_t i = 0; i < count; ++i) loop.frame(frames[static_cast<size_t>(i) % frames.size()]);
  seconds = seconds_since(t0);
  return loop.messages();
}

int64_t pipeline_run(int64_t count, const char* method, int threads, double& seconds) {
  std::string yaml =
      "pipeline: vision-bench\nstages:\n"
      "  - {id: src, op: bench.frames, with: {count: " +
      std::to_string(count) +
      "}}\n"
      "  - {id: motion, op: vision.motion, from: src, queue: {capacity: 16, overflow: block}, "
      "with: {method: " +
      method +
      "}}\n"
      "  - {id: sink, op: bench.events, from: motion}\n";
  LoadResult r = load_pipeline_text(yaml, "vision-bench.yaml", ".");
  if (!r.pipeline) {
    std::fprintf(stderr, "%s", r.diags.str().c_str());
    std::exit(1);
  }
  g_events = 0;
  ExecutorOptions o;
  o.threads = threads;
  auto t0 = std::chrono::steady_clock::now();
  {
    Executor ex(*r.pipeline, place(*r.pipeline), o);
    ex.start();
    ex.wait();
  }
  seconds = seconds_since(t0);
  return g_events;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  int64_t frames = 600, distinct = 120;
  int rounds = 7;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      frames = 120, distinct = 60, rounds = 2;
    } else if (a == "--frames" && i + 1 < argc) {
      frames = std::atoll(argv[++i]);
    } else if (a == "--distinct" && i + 1 < argc) {
      distinct = std::atoll(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: vision_bench [--frames N] [--distinct D] [--rounds R] [--quick]\n");
      return 2;
    }
  }
  std::printf(
      "vision.motion in a pipeline vs a raw OpenCV loop: %lld frames per round (cycling %lld "
      "rendered frames), best of %d rounds, OpenCV threads %d\n",
      static_cast<long long>(frames), static_cast<long long>(distinct), rounds,
      cv::getNumThreads());
  std::printf("%-10s %-6s %9s %9s %7s %8s %8s %8s %9s\n", "frame", "method", "loop fps", "pipe fps",
              "ratio", "median", "loop CPU", "pipe CPU", "messages");
  std::printf("%-10s %-6s %9s %9s %7s %8s %8s %8s\n", "", "", "(best)", "(best)", "", "ratio",
              "ms/frame", "ms/frame");
  bool ok = true;
  for (cv::Size size : {cv::Size(640, 480), cv::Size(1280, 720)}) {
    SyntheticScene::Config sc;
    sc.width = size.width;
    sc.height = size.height;
    sc.object_size = size.height / 8;
    sc.object_speed = size.width / 160.0;
    sc.repeat = true;
    SyntheticScene scene(sc);
    std::vector<cv::Mat> rendered;
    for (int64_t i = 0; i < distinct; ++i) rendered.push_back(scene.render(i));
    g_frames = &rendered;
    for (const char* method : {"mog2", "diff"}) {
      bool mog2 = std::strcmp(method, "mog2") == 0;
      double best_loop = 1e30, best_pipe = 1e30, cpu_loop = 1e30, cpu_pipe = 1e30;
      int64_t loop_events = 0, pipe_events = 0;
      std::vector<double> pair_ratios;
      for (int round = 0; round < rounds; ++round) {
        double loop_s = 0, pipe_s = 0;
        // Alternate which goes first, so neither always runs on a warmer (or colder) machine.
        for (int k = 0; k < 2; ++k) {
          double c0 = process_cpu_seconds();
          if ((k == 0) == (round % 2 == 0)) {
            loop_events = raw_loop(rendered, frames, mog2, loop_s);
            cpu_loop = std::min(cpu_loop, process_cpu_seconds() - c0);
          } else {
            pipe_events = pipeline_run(frames, method, 2, pipe_s);
            cpu_pipe = std::min(cpu_pipe, process_cpu_seconds() - c0);
          }
        }
        best_loop = std::min(best_loop, loop_s);
        best_pipe = std::min(best_pipe, pipe_s);
        pair_ratios.push_back(loop_s / pipe_s);
        if (loop_events != pipe_events) {
          std::fprintf(stderr, "%dx%d %s: loop found %lld event messages, pipeline %lld\n",
                       size.width, size.height, method, static_cast<long long>(loop_events),
                       static_cast<long long>(pipe_events));
          return 1;
        }
      }
      std::sort(pair_ratios.begin(), pair_ratios.end());
      double median = pair_ratios[pair_ratios.size() / 2];
      double n = static_cast<double>(frames);
      double loop_fps = n / best_loop, pipe_fps = n / best_pipe;
      std::printf("%4dx%-5d %-6s %9.1f %9.1f %6.3fx %7.3fx %8.2f %8.2f %9lld\n", size.width,
                  size.height, method, loop_fps, pipe_fps, pipe_fps / loop_fps, median,
                  cpu_loop * 1e3 / n, cpu_pipe * 1e3 / n, static_cast<long long>(pipe_events));
      ok = ok && pipe_fps >= 0.95 * loop_fps;
    }
  }
  std::printf("target pipeline >= 0.95 x loop: %s\n", ok ? "met" : "NOT met");
  return 0;
}
