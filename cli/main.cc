// edgeflow: validate, run and describe stream pipelines.
//
// Exit codes: 0 success; 1 run-time failure (an operator could not open, a report could not
// be written); 2 invalid pipeline file or command line; 128+N after a clean shutdown on
// signal N (130 for Ctrl-C).
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "runtime/duration.h"
#include "runtime/executor.h"
#include "runtime/log.h"
#include "runtime/operator_docs.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitInvalid = 2;

int cmd_validate(const std::vector<std::string>& files) {
  int status = 0;
  for (const std::string& file : files) {
    LoadResult r = load_pipeline_file(file);
    if (!r.pipeline) {
      std::cerr << r.diags.str();
      std::cerr << file << ": " << r.diags.size()
                << (r.diags.size() == 1 ? " problem" : " problems") << "\n";
      status = kExitInvalid;
      continue;
    }
    Plan plan = place(*r.pipeline);
    size_t cross = 0;
    for (const PlanEdge& e : plan.edges) cross += e.crosses_nodes;
    std::cout << file << ": ok, pipeline '" << r.pipeline->name
              << "': " << r.pipeline->stages.size() << " stages, " << plan.instances.size()
              << " stage copies on " << r.pipeline->nodes.size() << " nodes, " << cross
              << " links between nodes\n";
  }
  return status;
}

int cmd_ops(const std::string& name, bool markdown) {
  if (markdown) {
    std::cout << operators_markdown();
    return 0;
  }
  if (name.empty()) {
    std::cout << operator_list_text();
    return 0;
  }
  const OperatorEntry* e = Registry::global().find(name);
  if (!e) {
    std::string near = nearest_name(name, Registry::global().names());
    std::cerr << "edgeflow ops: no operator '" << name << "'"
              << (near.empty() ? "" : "; did you mean '" + near + "'?") << "\n";
    return kExitInvalid;
  }
  std::cout << operator_text(*e);
  return 0;
}

// Signals are taken by one thread with sigwait, so no handler ever runs inside a worker.
class SignalWatch {
 public:
  SignalWatch() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // before any thread starts: all inherit it
  }
  ~SignalWatch() { stop(); }
  // Joins the watcher; call before the executor it watches goes away.
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void watch(Executor& executor) {
    thread_ = std::thread([this, &executor] {
      timespec tick{0, 200'000'000};
      while (!done_) {
        int sig = sigtimedwait(&set_, nullptr, &tick);
        if (sig <= 0) continue;
        if (received_.exchange(sig) != 0) {
          // Second signal: the user wants out now.
          static const char msg[] = "\nedgeflow: second signal, exiting at once\n";
          (void)!write(2, msg, sizeof msg - 1);
          _exit(128 + sig);
        }
        logger().info("{} received: finishing what was accepted (signal again to exit at once)",
                      sig == SIGINT ? "SIGINT" : "SIGTERM");
        executor.request_stop();
      }
    });
  }
  int received() const { return received_.load(); }

 private:
  sigset_t set_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<int> received_{0};
};

std::string status_line(const PipelineSpec& p, const std::vector<StageMetrics>& metrics,
                        double secs, size_t width) {
  // One figure per stage (summed over its copies): messages out, the flow at a glance.
  std::vector<std::string> order;
  std::map<std::string, uint64_t> outs, errors;
  for (const StageMetrics& m : metrics) {
    if (!outs.count(m.stage)) order.push_back(m.stage);
    outs[m.stage] += m.out;
    errors[m.stage] += m.errors;
  }
  char head[64];
  std::snprintf(head, sizeof head, "%02d:%02d ", static_cast<int>(secs) / 60,
                static_cast<int>(secs) % 60);
  std::string line = head + p.name + " |";
  uint64_t total_errors = 0;
  for (const std::string& s : order) {
    line += " " + s + " " + std::to_string(outs[s]);
    total_errors += errors[s];
  }
  line += " | errors " + std::to_string(total_errors);
  if (line.size() > width) line.resize(width);
  return line;
}

bool write_report(const std::string& path, const PipelineSpec& p,
                  const std::vector<StageMetrics>& metrics, double secs,
                  const std::string& ended_by) {
  nlohmann::json stages = nlohmann::json::array();
  for (const StageMetrics& m : metrics) {
    stages.push_back({{"stage", m.stage},
                      {"node", m.node},
                      {"op", m.op},
                      {"in", m.in},
                      {"out", m.out},
                      {"errors", m.errors},
                      {"dropped", m.dropped},
                      {"cpu_seconds", m.cpu_seconds},
                      {"queue_high_water", m.queue_high_water},
                      {"queue_capacity", m.queue_capacity}});
  }
  nlohmann::json report = {{"pipeline", p.name},
                           {"file", p.file},
                           {"wall_seconds", secs},
                           {"ended_by", ended_by},
                           {"stages", stages}};
  std::ofstream out(path);
  out << report.dump(2) << "\n";
  out.close();
  if (!out) {
    logger().error("cannot write the report to '{}': {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

int cmd_run(const std::string& file, const std::string& for_text, const std::string& report,
            int threads, bool quiet, const std::vector<std::string>& sets) {
  // First of all: a Ctrl-C while the file loads stays pending until the watcher takes it,
  // instead of killing the process with the default action.
  SignalWatch signals;
  std::vector<OptionOverride> overrides;
  for (const std::string& s : sets) {
    auto o = parse_override(s);
    if (!o) {
      std::cerr
          << "edgeflow run: --set takes STAGE.OPTION=VALUE, like out.path=/tmp/out.jsonl (got '"
          << s << "')\n";
      return kExitInvalid;
    }
    overrides.push_back(*o);
  }
  int64_t run_for_us = -1;
  if (!for_text.empty()) {
    auto d = parse_duration_us(for_text);
    if (!d || *d <= 0) {
      std::cerr << "edgeflow run: --for must be a positive duration like 30s or 5m (got '"
                << for_text << "')\n";
      return kExitInvalid;
    }
    run_for_us = *d;
  }
  LoadResult r = load_pipeline_file(file, overrides);
  if (!r.pipeline) {
    std::cerr << r.diags.str();
    return kExitInvalid;
  }
  const PipelineSpec& pipeline = *r.pipeline;
  Executor executor(pipeline, place(pipeline), ExecutorOptions{threads, 256, {}});
  try {
    executor.start();
  } catch (const OperatorError& e) {
    logger().error("{}", e.what());
    return kExitFailure;
  }
  signals.watch(executor);
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  bool live = !quiet && isatty(STDERR_FILENO);
  std::string ended_by = "end of input";
  while (!executor.wait(250'000)) {
    if (run_for_us > 0 && elapsed() * 1e6 >= static_cast<double>(run_for_us) &&
        ended_by == "end of input") {
      ended_by = "--for " + for_text;
      executor.request_stop();
    }
    if (live) {
      winsize ws{};
      size_t width =
          ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col - 1 : 99;
      std::string line = status_line(pipeline, executor.metrics(), elapsed(), width);
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    }
  }
  signals.stop();  // no signal may reach the executor once it starts to wind down
  if (live) std::fprintf(stderr, "\r\033[K");
  if (signals.received()) ended_by = signals.received() == SIGINT ? "SIGINT" : "SIGTERM";
  auto metrics = executor.metrics();
  uint64_t errors = 0;
  for (const StageMetrics& m : metrics) errors += m.errors;
  if (!quiet) {
    logger().info("pipeline '{}' finished ({}) after {:.1f}s, {} errors", pipeline.name, ended_by,
                  elapsed(), errors);
  }
  if (!report.empty() && !write_report(report, pipeline, metrics, elapsed(), ended_by))
    return kExitFailure;
  return signals.received() ? 128 + signals.received() : 0;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  {
    // Before anything else: `run` turns SIGINT/SIGTERM into a clean stop, and a signal that
    // arrives during start-up must wait for it rather than kill the process.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }
  CLI::App app{"edgeflow: stream pipelines from edge devices to the cloud"};
  app.set_version_flag("--version", std::string("edgeflow ") + EDGEFLOW_VERSION);
  app.require_subcommand(1);

  std::vector<std::string> validate_files;
  auto* validate =
      app.add_subcommand("validate", "Check pipeline files; every problem, one per line");
  validate->add_option("FILE", validate_files, "pipeline files")->required();

  std::string run_file, run_for, run_report;
  int run_threads = 2;
  bool run_quiet = false;
  auto* run =
      app.add_subcommand("run", "Run a pipeline until its input ends, --for elapses, or Ctrl-C");
  run->add_option("FILE", run_file, "pipeline file")->required();
  run->add_option("--for", run_for,
                  "stop after this long (e.g. 30s, 5m), finishing what was accepted");
  run->add_option("--report", run_report, "write per-stage figures to this JSON file at the end");
  run->add_option("--threads", run_threads, "worker threads")->check(CLI::Range(1, 64));
  run->add_flag("--quiet", run_quiet, "no status line or summary");
  std::vector<std::string> run_sets;
  run->add_option("--set", run_sets, "override an option: STAGE.OPTION=VALUE (repeatable)");

  std::string ops_name;
  bool ops_markdown = false;
  auto* ops = app.add_subcommand("ops", "List operators, or describe one");
  ops->add_option("NAME", ops_name, "operator name");
  ops->add_flag("--markdown", ops_markdown, "all operators as Markdown (docs/operators.md)");

  for (CLI::App* sub : {validate, run, ops})
    sub->set_version_flag("--version", std::string("edgeflow ") + EDGEFLOW_VERSION);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (*validate) return cmd_validate(validate_files);
  if (*run) return cmd_run(run_file, run_for, run_report, run_threads, run_quiet, run_sets);
  if (*ops) return cmd_ops(ops_name, ops_markdown);
  return 2;
}
