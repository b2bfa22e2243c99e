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

#include "brokers/link/transport.h"
#include "brokers/mqtt/client.h"
#include "cli/iexec_commands.h"
#include "cli/run_replicas.h"
#include "cloud/cloud_service.h"
#include "cloud/fleet_commands.h"
#include "cloud/operators.h"
#include "edge/node_service.h"
#include "loadgen/loadgen.h"
#include "metrics/metrics_server.h"
#include "metrics/prometheus.h"
#include "planner/measure.h"
#include "planner/plan_commands.h"
#include "runtime/duration.h"
#include "runtime/executor.h"
#include "runtime/log.h"
#include "runtime/operator_docs.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"
#include "runtime/plugins.h"
#include "runtime/registry.h"
#include "security/broker_config.h"
#include "security/run_broker.h"
#include "security/zmq_keys.h"

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
    std::cout << file << ": ok, pipeline '" << r.pipeline->name
              << "': " << r.pipeline->stages.size() << " stages, " << plan.instances.size()
              << " stage copies on " << r.pipeline->nodes.size() << " nodes, " << plan.links.size()
              << (plan.links.size() == 1 ? " link" : " links") << " between nodes\n";
    for (const LinkPlan& l : plan.links) {
      std::string from, to;
      for (const std::string& n : l.senders) from += (from.empty() ? "" : ",") + n;
      for (const std::string& n : l.receivers) to += (to.empty() ? "" : ",") + n;
      std::cout << "  link " << l.name << " via " << l.via << ": " << from << " -> " << to << "\n";
    }
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
  std::string why;
  const OperatorEntry* e = Registry::global().find(name, &why);
  if (!e && !why.empty()) {
    std::cerr << "edgeflow ops: " << why << "\n";
    return kExitFailure;
  }
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
        if (forward) forward(sig);
        executor.request_stop();
      }
    });
  }
  int received() const { return received_.load(); }
  std::function<void(int)> forward;  // also told of the first signal (child processes)

 private:
  sigset_t set_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<int> received_{0};
};

std::string human_bytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return text;
}

std::string status_line(const PipelineSpec& p, const std::vector<StageMetrics>& metrics,
                        const std::vector<LinkMetrics>& links, double secs, size_t width) {
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
  uint64_t sent = 0, wire = 0, reconnects = 0, refused = 0;
  for (const LinkMetrics& l : links) {
    refused += l.refused;
    if (l.direction != "send") continue;
    sent += l.messages;
    wire += l.wire_bytes;
    reconnects += l.reconnects;
  }
  if (!links.empty()) {
    line += " | links " + std::to_string(sent) + " msg " + human_bytes(static_cast<double>(wire));
    if (reconnects) line += " " + std::to_string(reconnects) + " reconnects";
    if (refused) line += " " + std::to_string(refused) + " refused";
  }
  if (line.size() > width) line.resize(width);
  return line;
}

bool write_report(const std::string& path, const PipelineSpec& p,
                  const std::vector<StageMetrics>& metrics,
                  const std::vector<LinkMetrics>& link_metrics, const std::string& node,
                  double secs, const std::string& ended_by) {
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
                      {"queue_capacity", m.queue_capacity},
                      {"queue_bytes_high_water", m.queue_bytes_high_water},
                      {"queue_bytes_limit", m.queue_bytes_limit}});
  }
  nlohmann::json links = nlohmann::json::array();
  for (const LinkMetrics& l : link_metrics) {
    links.push_back({{"link", l.link},
                     {"node", l.node},
                     {"direction", l.direction},
                     {"via", l.via},
                     {"messages", l.messages},
                     {"payload_bytes", l.payload_bytes},
                     {"wire_bytes_estimate", l.wire_bytes},
                     {"batches", l.batches},
                     {"reconnects", l.reconnects},
                     {"duplicates_dropped", l.duplicates},
                     {"bad_frames", l.errors},
                     {"unacknowledged", l.unacknowledged},
                     {"refused", l.refused}});
  }
  // Per node: CPU, traffic and, through the node's device profile, watts and Wh/day, in the
  // run's wall time (a source replaying time faster than real time inflates them alike).
  Measured measured = measure_run(p, place(p), metrics, link_metrics, secs, PredictOptions{});
  nlohmann::json report = {{"pipeline", p.name},
                           {"file", p.file},
                           {"node", node.empty() ? nlohmann::json(nullptr) : nlohmann::json(node)},
                           {"broker", p.links.mqtt_broker},
                           {"mqtt_client", p.links.mqtt_client},
                           {"wall_seconds", secs},
                           {"ended_by", ended_by},
                           {"stages", stages},
                           {"links", links},
                           {"nodes", measured_nodes_json(measured)}};
  std::ofstream out(path);
  out << report.dump(2) << "\n";
  out.close();
  if (!out) {
    logger().error("cannot write the report to '{}': {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

struct RunArgs {
  std::string file, for_text, report, node, broker, mqtt_client, metrics, replica;
  int threads = 2;
  bool quiet = false;
  bool local_links = false;
  std::vector<std::string> sets;
};

int cmd_run(const RunArgs& args) {
  // First of all: a Ctrl-C while the file loads stays pending until the watcher takes it,
  // instead of killing the process with the default action.
  SignalWatch signals;
  std::vector<OptionOverride> overrides;
  for (const std::string& s : args.sets) {
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
  if (!args.for_text.empty()) {
    auto d = parse_duration_us(args.for_text);
    if (!d || *d <= 0) {
      std::cerr << "edgeflow run: --for must be a positive duration like 30s or 5m (got '"
                << args.for_text << "')\n";
      return kExitInvalid;
    }
    run_for_us = *d;
  }
  LoadResult r = load_pipeline_file(args.file, overrides);
  if (!r.pipeline) {
    std::cerr << r.diags.str();
    return kExitInvalid;
  }
  PipelineSpec pipeline = std::move(*r.pipeline);
  if (!args.broker.empty()) pipeline.links.mqtt_broker = args.broker;
  if (!args.mqtt_client.empty()) pipeline.links.mqtt_client = args.mqtt_client;
  if (args.node.find(':') != std::string::npos) {
    std::cerr << "edgeflow run: --node '" << args.node
              << "' names the replicas of a stage: run one with --node " << base_node(args.node)
              << " --replica I/N\n";
    return kExitInvalid;
  }
  if (!args.node.empty() && !pipeline.node(args.node)) {
    std::vector<std::string> names;
    for (const NodeSpec& n : pipeline.nodes) names.push_back(n.name);
    std::string near = nearest_name(args.node, names), list;
    for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
    std::cerr << "edgeflow run: --node '" << args.node << "' is not a node of " << args.file
              << (near.empty() ? "" : "; did you mean '" + near + "'?") << " (nodes: " << list
              << ")\n";
    return kExitInvalid;
  }
  // A node with a replicated stage: --replica I/N runs that replica; without it, the
  // replicas are started as child processes beside the node's other stages (cli/run_replicas.h).
  std::string node = args.node, node_label = args.node;
  int replica = -1;
  cli::ReplicaChildren replicas;
  if (args.replica == "none") {
    if (node.empty() || !pipeline.replicated_on(node)) {
      std::cerr << "edgeflow run: --replica none: node '" << node
                << "' runs no stage with replicas\n";
      return kExitInvalid;
    }
  } else if (!args.replica.empty()) {
    cli::ReplicaChoice c = cli::choose_replica(pipeline, args.node, args.replica);
    if (!c.error.empty()) {
      std::cerr << "edgeflow run: " << c.error << "\n";
      return kExitInvalid;
    }
    node = c.node;
    replica = c.index;
    node_label = node + " replica " + args.replica;
  }
  // Started once everything is checked, just before this node's part (below).
  const StageSpec* spawn =
      args.replica.empty() && !node.empty() ? pipeline.replicated_on(node) : nullptr;
  if (!args.node.empty() && args.local_links) {
    std::cerr << "edgeflow run: --local-links runs every node in this process; it cannot be "
                 "combined with --node\n";
    return kExitInvalid;
  }
  const Plan plan = place(pipeline);

  // Links between nodes are real MQTT or ZeroMQ unless --local-links asks for in-process
  // queues. With MQTT links and no broker named, start our own on a free loopback port.
  bool use_links = !plan.links.empty() && !args.local_links;
  bool mqtt_links = false;
  for (const LinkPlan& l : plan.links) mqtt_links |= l.via == "mqtt";
  // iExec stages talk to each other over the pipeline's broker even without links.
  bool pool_stages = false;
  for (const StageSpec& s : pipeline.stages)
    pool_stages |=
        (s.op == "iexec.scheduler" || s.op == "iexec.worker" || s.op == "iexec.request") &&
        !s.options.has("broker");
  security::RunBroker broker;
  if (((use_links && mqtt_links) || pool_stages) && pipeline.links.mqtt_broker.empty()) {
    if (!args.node.empty()) {
      std::cerr << "edgeflow run: --node '" << args.node
                << "' joins the other nodes over MQTT, so it needs a broker they share: set "
                   "links: { mqtt: { broker: \"tcp://HOST:1883\" } } in "
                << args.file << " or pass --broker tcp://HOST:1883\n";
      return kExitInvalid;
    }
    try {
      broker = security::start_run_broker();
    } catch (const std::exception& e) {
      logger().error("{}", e.what());
      return kExitFailure;
    }
    // Every stage that names no broker of its own connects with this run's credentials.
    pipeline.links.mqtt_broker = broker.broker->uri();
    pipeline.links.mqtt_security = MqttSecurity{};
    pipeline.links.mqtt_security.credentials_file = broker.credentials_file;
    if (!args.quiet)
      logger().info(
          "embedded broker on {}, for clients with the credentials in {} (watch it: "
          "XDG_CONFIG_HOME={} mosquitto_sub -t '#' -v; link frames on edgeflow/... are msgpack)",
          broker.broker->uri(), broker.credentials_file, broker.client_config_dir);
  }
  std::unique_ptr<LinkTransport> transport;
  if (use_links) transport = make_link_transport(pipeline, plan);
  if (transport) transport->set_replica(replica);
  ExecutorOptions eo;
  eo.threads = args.threads;
  eo.links = transport.get();
  eo.only_node = node;
  if (spawn) eo.child_nodes = {replica_node(args.node, spawn->id)};
  Executor executor(pipeline, plan, eo);
  auto link_metrics = [&] { return transport ? transport->metrics() : std::vector<LinkMetrics>{}; };
  // Listening before the pipeline starts: an address that cannot be used stops nothing.
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (!args.metrics.empty()) {
    try {
      metrics_server = std::make_unique<metrics::MetricsServer>(args.metrics, [&] {
        return metrics::prometheus_text({pipeline.name, executor.metrics(), link_metrics()});
      });
    } catch (const std::exception& e) {
      logger().error("--metrics {}", e.what());
      return kExitInvalid;
    }
    logger().info("metrics for Prometheus on {}", metrics_server->url());
  }
  if (spawn) {
    try {
      replicas.start(spawn->replicas, [&](int i) {
        std::vector<std::string> a = {
            "run",       args.file,
            "--node",    args.node,
            "--replica", std::to_string(i) + "/" + std::to_string(spawn->replicas),
            "--threads", std::to_string(args.threads)};
        for (const std::string& set : args.sets) a.insert(a.end(), {"--set", set});
        if (!args.broker.empty()) a.insert(a.end(), {"--broker", args.broker});
        if (!args.mqtt_client.empty()) a.insert(a.end(), {"--mqtt-client", args.mqtt_client});
        if (!args.for_text.empty()) a.insert(a.end(), {"--for", args.for_text});
        if (!args.report.empty())
          a.insert(a.end(), {"--report", args.report + ".replica-" + std::to_string(i)});
        if (args.quiet) a.push_back("--quiet");
        return a;
      });
    } catch (const std::exception& e) {
      logger().error("{}", e.what());
      return kExitFailure;
    }
    // The replicas have a process group of their own: a signal reaches them through here, once.
    signals.forward = [&](int sig) { replicas.signal(sig); };
    if (!args.quiet)
      logger().info("started {} replicas of stage '{}' (run --node {} --replica I/{})",
                    spawn->replicas, spawn->id, args.node, spawn->replicas);
  }
  try {
    executor.start();
  } catch (const OperatorError& e) {
    logger().error("{}", e.what());
    return kExitFailure;
  }
  signals.watch(executor);
  if (!args.quiet) {
    size_t copies = 0;
    for (const StageMetrics& m : executor.metrics()) copies += m.op.rfind("link.", 0) != 0;
    const size_t links = use_links ? plan.links.size() : 0;
    logger().info("running '{}'{}: {} stage copies, {} link{}", pipeline.name,
                  node.empty() ? "" : " node '" + node_label + "'", copies, links,
                  links == 1 ? "" : "s");
  }
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  bool live = !args.quiet && isatty(STDERR_FILENO);
  std::string ended_by = "end of input";
  int replicas_exit = 0;
  while (!executor.wait(250'000)) {
    if (run_for_us > 0 && elapsed() * 1e6 >= static_cast<double>(run_for_us) &&
        ended_by == "end of input") {
      ended_by = "--for " + args.for_text;
      executor.request_stop();
    }
    // A replica that failed (a refused connection) would leave its share unread and this
    // part waiting for its end of input: stop. One that died is taken over (reap() says 0).
    // (After a signal, passed on to them, they end with 128 + its number: not a failure.)
    if (const int code = replicas.reap(); code != 0 && replicas_exit == 0 && !signals.received()) {
      replicas_exit = code;
      logger().error("a replica ended with exit code {}; stopping", code);
      replicas.signal(SIGTERM);
      ended_by = "a replica's failure";
      executor.request_stop();
    }
    if (live) {
      winsize ws{};
      size_t width =
          ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col - 1 : 99;
      std::string line =
          status_line(pipeline, executor.metrics(), link_metrics(), elapsed(), width);
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    }
  }
  // The replicas end after this part only when it was stopped: they are waited for while
  // signals are still watched (and forwarded to them).
  if (ended_by.rfind("--for", 0) == 0) replicas.signal(SIGTERM);
  while (replicas.running()) {
    if (const int code = replicas.reap(); code != 0 && replicas_exit == 0 && !signals.received())
      replicas_exit = code;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  signals.stop();  // no signal may reach the executor once it starts to wind down
  if (live) std::fprintf(stderr, "\r\033[K");
  if (signals.received()) ended_by = signals.received() == SIGINT ? "SIGINT" : "SIGTERM";
  auto metrics = executor.metrics();
  uint64_t errors = 0;
  for (const StageMetrics& m : metrics) errors += m.errors;
  if (!args.quiet) {
    logger().info("pipeline '{}'{} finished ({}) after {:.1f}s, {} errors", pipeline.name,
                  node.empty() ? "" : " node '" + node_label + "'", ended_by, elapsed(), errors);
  }
  for (const LinkMetrics& l : link_metrics())  // a security matter: said even with --quiet
    if (l.refused) logger().warn("{}", refused_note(l));
  if (!args.report.empty() &&
      !write_report(args.report, pipeline, metrics, link_metrics(), node, elapsed(), ended_by))
    return kExitFailure;
  if (const int code = replicas.wait(); code != 0 && replicas_exit == 0) replicas_exit = code;
  if (signals.received()) return 128 + signals.received();
  if (replicas_exit != 0) {
    logger().error("a replica ended with exit code {}", replicas_exit);
    return replicas_exit;
  }
  return 0;
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

  RunArgs ra;
  auto* run =
      app.add_subcommand("run", "Run a pipeline until its input ends, --for elapses, or Ctrl-C");
  run->add_option("FILE", ra.file, "pipeline file")->required();
  run->add_option("--for", ra.for_text,
                  "stop after this long (e.g. 30s, 5m), finishing what was accepted");
  run->add_option("--metrics", ra.metrics,
                  "serve Prometheus metrics on http://ADDR/metrics while running: a port "
                  "(127.0.0.1), HOST:PORT, or :PORT for every interface");
  run->add_option("--report", ra.report,
                  "write per-stage and per-link figures to this JSON file at the end");
  run->add_option("--threads", ra.threads, "worker threads")->check(CLI::Range(1, 64));
  run->add_flag("--quiet", ra.quiet, "no status line or summary");
  run->add_option("--set", ra.sets, "override an option: STAGE.OPTION=VALUE (repeatable)");
  run->add_option("--node", ra.node,
                  "run only this node's part (an edge device, the cloud), joined to the other "
                  "nodes through the pipeline's broker");
  run->add_option("--replica", ra.replica,
                  "with --node: run replica I of N of the node's stage with replicas: N (1-based, "
                  "like 2/3), or none of them (none: they run elsewhere); without it, --node "
                  "starts all N as child processes");
  run->add_option("--broker", ra.broker, "MQTT broker URI, overriding links.mqtt.broker");
  run->add_option("--mqtt-client", ra.mqtt_client, "MQTT client library for links")
      ->check(CLI::IsMember({"mosquitto", "paho"}));
  run->add_flag("--local-links", ra.local_links,
                "join nodes with in-process queues instead of MQTT/ZeroMQ (no broker)");

  std::string ops_name;
  bool ops_markdown = false;
  auto* ops = app.add_subcommand("ops", "List operators, or describe one");
  ops->add_option("NAME", ops_name, "operator name");
  ops->add_flag("--markdown", ops_markdown, "all operators as Markdown (docs/operators.md)");

  std::string wallet_file;
  auto* wallet = app.add_subcommand("wallet", "Key files of iExec schedulers and workers");
  wallet->require_subcommand(1);
  auto* wallet_new =
      wallet->add_subcommand("new", "Write a new key file (mode 0600), print its address");
  wallet_new->add_option("FILE", wallet_file, "key file to create")->required();
  auto* wallet_address = wallet->add_subcommand("address", "Print the address of a key file");
  wallet_address->add_option("FILE", wallet_file, "key file")->required();

  TaskSubmitArgs ta;
  auto* task = app.add_subcommand("task", "iExec tasks of a running pool");
  task->require_subcommand(1);
  auto* submit = task->add_subcommand(
      "submit", "Request a task from the pool's scheduler; prints the task id (or the result)");
  submit->add_option("PIPELINE", ta.pipeline_file, "pipeline file with the iexec.scheduler")
      ->required();
  submit->add_option("--app", ta.app, "app name in the scheduler's registry")->required();
  submit->add_option("--arg", ta.args, "an argument for the app (repeatable)");
  submit->add_option("--input", ta.inputs, "an input file (repeatable)");
  submit->add_option("--trust", ta.trust, "PoCo trust (1: one worker suffices)")
      ->check(CLI::Range(1, 1000000));
  submit->add_option("--time-ref", ta.time_ref,
                     "the task's time reference (deadlines are 7x, 10x)");
  submit->add_option("--broker", ta.broker, "MQTT broker URI; default: links.mqtt.broker");
  submit->add_option("--credentials", ta.credentials,
                     "MQTT credentials file (username, password; mode 0600), such as the one "
                     "edgeflow run prints for its embedded broker");
  submit->add_option("--pool", ta.pool, "workerpool; default: the pipeline's scheduler's");
  submit->add_option("--wallet", ta.wallet, "sign the request with this key file");
  submit->add_option("--scheduler", ta.scheduler,
                     "address of the scheduler you trust; refuse another one announced");
  submit->add_option("--wait", ta.wait, "wait this long for the result and print it (e.g. 60s)");
  submit->add_option("--id", ta.id, "request id (0x + 64 hex): the same id is the same task");

  std::string service_config, service_metrics, cloud_http;
  const char* service_metrics_help =
      "serve Prometheus metrics on http://ADDR/metrics: a port (on 127.0.0.1), HOST:PORT or "
      ":PORT (every interface); overrides the config's metrics:";
  auto* edge = app.add_subcommand(
      "edge", "The edge runtime service: runs the part the cloud deploys to this node");
  edge->add_option("--config", service_config, "service config (YAML)")->required();
  edge->add_option("--metrics", service_metrics, service_metrics_help);
  auto* cloud = app.add_subcommand(
      "cloud", "The cloud service: the fleet's registry and the cloud parts deployed to it");
  cloud->add_option("--config", service_config, "service config (YAML)")->required();
  cloud->add_option("--metrics", service_metrics, service_metrics_help);
  cloud->add_option("--http", cloud_http,
                    "serve the fleet dashboard on http://ADDR/, its JSON API (/api/...) and "
                    "/metrics; forms as for --metrics; read-only unless the config names "
                    "operators: (docs/dashboard.md)");

  std::string operator_file, operator_name;
  auto* op = app.add_subcommand("operator", "Who may act on the cloud's dashboard (log in)");
  op->require_subcommand(1);
  auto* op_add = op->add_subcommand(
      "add", "Add an operator or change their password (read from standard input)");
  auto* op_remove = op->add_subcommand("remove", "Remove an operator");
  for (CLI::App* sub : {op_add, op_remove}) {
    sub->add_option("FILE", operator_file,
                    "operators file (mode 0600; operators: in the "
                    "cloud config)")
        ->required();
    sub->add_option("NAME", operator_name, "the operator's name")->required();
  }

  DeployArgs da;
  auto* deploy = app.add_subcommand(
      "deploy", "Sign each node's part of a pipeline and send it; wait until they run it");
  deploy->add_option("FILE", da.file, "pipeline file")->required();
  deploy->add_option("--broker", da.broker, "the fleet's MQTT broker URI")->required();
  deploy->add_option("--tls-ca", da.access.tls_ca,
                     "CA file for an mqtts:// broker (default: the system's)");
  deploy->add_option("--credentials", da.access.credentials,
                     "YAML file with username and password (mode 0600)");
  deploy->add_option("--key", da.key, "cloud key file (edgeflow wallet new)")->required();
  deploy->add_option("--set", da.sets, "override an option: STAGE.OPTION=VALUE (repeatable)");
  deploy->add_option("--wait", da.wait, "how long to wait for the nodes (default 60s)");
  UndeployArgs ua;
  auto* undeploy = app.add_subcommand("undeploy", "Stop a pipeline on every node running it");
  undeploy->add_option("PIPELINE", ua.pipeline, "pipeline name")->required();
  undeploy->add_option("--broker", ua.broker, "the fleet's MQTT broker URI")->required();
  undeploy->add_option("--tls-ca", ua.access.tls_ca,
                       "CA file for an mqtts:// broker (default: the system's)");
  undeploy->add_option("--credentials", ua.access.credentials,
                       "YAML file with username and password (mode 0600)");
  undeploy->add_option("--key", ua.key, "cloud key file")->required();
  undeploy->add_option("--wait", ua.wait, "how long to wait for the nodes (default 30s)");
  NodesArgs na;
  auto* nodes = app.add_subcommand("nodes", "The fleet: each node's state, pipeline and spool");
  nodes->add_option("--broker", na.broker, "the fleet's MQTT broker URI")->required();
  nodes->add_option("--tls-ca", na.access.tls_ca,
                    "CA file for an mqtts:// broker (default: the system's)");
  nodes->add_option("--credentials", na.access.credentials,
                    "YAML file with username and password (mode 0600)");
  nodes->add_flag("--json", na.json, "a JSON array of objects");
  nodes->add_option("--wait", na.wait, "how long to collect status messages (default 1s)");

  ProfileArgs pa;
  auto* profile = app.add_subcommand(
      "profile", "Run a pipeline's own sources for a while; save each operator's cost per message");
  profile->add_option("FILE", pa.file, "pipeline file")->required();
  profile->add_option("--for", pa.seconds, "how long to run (default 10s)");
  profile->add_option("--out", pa.out, "profile file (default FILE.profile.json beside it)");
  profile->add_option("--set", pa.sets, "override: STAGE.OPTION=VALUE or STAGE.on=NODE");
  profile->add_option("--broker", pa.broker, "MQTT broker for links (default: an embedded one)");
  security::BrokerConfigArgs bc;
  auto* broker_config = app.add_subcommand(
      "broker-config",
      "Write a Mosquitto config for the pipeline's fleet: TLS, a password and an ACL per node");
  broker_config->add_option("FILE", bc.file, "pipeline file (links.mqtt.broker names the broker)")
      ->required();
  broker_config->add_option("--out", bc.out, "folder for mosquitto.conf, passwd, acl, credentials/")
      ->required();
  broker_config->add_option("--bind", bc.bind,
                            "listener address (default: the broker URI's host if an IP, else all)");
  broker_config->add_flag("--force", bc.force, "replace an existing passwd and credentials");
  security::KeysArgs ka;
  auto* keys = app.add_subcommand("keys", "Make keys for links");
  keys->require_subcommand(1);
  auto* keys_zmq = keys->add_subcommand(
      "zmq", "A ZeroMQ CURVE key pair for a node: writes DIR/NODE.zmq.key, prints the public key");
  keys_zmq->add_option("NODE", ka.node, "node name")->required();
  keys_zmq->add_option("--out", ka.out, "folder for the key file (default keys)");
  keys_zmq->add_flag("--force", ka.force, "replace an existing key file");
  PlanArgs pl;
  auto* plan = app.add_subcommand(
      "plan", "Predict link traffic and each node's energy for a placement (needs a profile)");
  plan->add_option("FILE", pl.file, "pipeline file")->required();
  plan->add_option("--profile", pl.profile, "profile file (default FILE.profile.json)");
  plan->add_option("--set", pl.sets, "move a stage: STAGE.on=NODE|edge|cloud (repeatable)");
  plan->add_option("--rate", pl.rates, "a source's messages/s per copy: STAGE=RATE");
  plan->add_option("--month", pl.month, "month of the solar figures (default: now)")
      ->check(CLI::Range(1, 12));
  plan->add_flag("--json", pl.json, "JSON instead of tables");
  plan->add_option("--svg", pl.svg, "draw the placed graph into this SVG file");
  plan->add_flag("--explore", pl.explore,
                 "rank every placement of the stages marked on: [edge, cloud]");
  plan->add_option("--objective", pl.objective, "--explore ranks by bytes, energy or autonomy")
      ->check(CLI::IsMember({"bytes", "energy", "autonomy"}));
  plan->add_option("--compare", pl.compare,
                   "a report of run --report on this placement: prediction beside it");

  loadgen::Options lg;
  std::string lg_clients = "shared";
  auto* load = app.add_subcommand(
      "loadgen", "Publish like a fleet of plain MQTT sensors: JSON readings, a topic each");
  load->add_option("--broker", lg.broker, "MQTT broker URI")->required();
  load->add_option("--sensors", lg.sensors, "how many sensors (default 1000)");
  load->add_option("--rate", lg.rate, "readings per second of each sensor (default 1)");
  auto* lg_seconds = load->add_option("--seconds", lg.seconds, "how long to publish (default 10)");
  load->add_option("--count", lg.count, "readings per sensor, then stop (instead of --seconds)")
      ->excludes(lg_seconds);
  load->add_option("--topic", lg.topic, "topic of each sensor (default sensors/{id}/reading)");
  load->add_option("--qos", lg.qos, "0 or 1 (default 0)")->check(CLI::Range(0, 1));
  load->add_option("--clients", lg_clients,
                   "shared: one connection for all (default); per-sensor: a client id each "
                   "(at most 300)")
      ->check(CLI::IsMember({"shared", "per-sensor"}));
  load->add_option("--seed", lg.seed, "seed of the readings' values (default 1)");
  load->add_option("--tls-ca", lg.tls_ca, "CA file for an mqtts:// broker");
  load->add_option("--credentials", lg.credentials, "YAML file with username and password");

  // Build step of each plugin (hidden): writes FILE.so.ops beside it.
  std::string manifest_plugin, manifest_out;
  auto* manifest = app.add_subcommand("plugin-manifest", "");
  manifest->group("");
  manifest->add_option("PLUGIN", manifest_plugin)->required();
  manifest->add_option("--out", manifest_out)->required();

  for (CLI::App* sub : {validate, run, ops, wallet, task, edge, cloud, op, deploy, undeploy, nodes,
                        profile, plan, load})
    sub->set_version_flag("--version", std::string("edgeflow ") + EDGEFLOW_VERSION);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  // A command's own errors are its to explain; this is for what escapes one (a library that
  // cannot be loaded on first use, runtime/lazy_library.h): said, not a crash.
  try {
    if (*validate) return cmd_validate(validate_files);
    if (*run) return cmd_run(ra);
    if (*ops) return cmd_ops(ops_name, ops_markdown);
    if (*wallet_new) return cmd_wallet_new(wallet_file);
    if (*wallet_address) return cmd_wallet_address(wallet_file);
    if (*submit) return cmd_task_submit(ta);
    if (*edge) {
      NodeServiceHooks hooks;
      hooks.metrics_address = service_metrics;
      return run_node_service(service_config, hooks);
    }
    if (*cloud) return run_cloud_service(service_config, service_metrics, cloud_http);
    if (*op_add) return cmd_operator("add", operator_file, operator_name);
    if (*op_remove) return cmd_operator("remove", operator_file, operator_name);
    if (*deploy) return cmd_deploy(da);
    if (*undeploy) return cmd_undeploy(ua);
    if (*nodes) return cmd_nodes(na);
    if (*load) {
      lg.per_sensor_clients = lg_clients == "per-sensor";
      return loadgen::cmd_loadgen(lg);
    }
    if (*profile) return cmd_profile(pa);
    if (*plan) return cmd_plan(pl);
    if (*broker_config) return security::cmd_broker_config(bc);
    if (*keys_zmq) return security::cmd_keys_zmq(ka);
    if (*manifest) {
      std::string why;
      if (write_plugin_manifest(manifest_plugin, manifest_out, &why)) return 0;
      std::cerr << "edgeflow plugin-manifest: " << why << "\n";
      return kExitFailure;
    }
  } catch (const std::exception& e) {
    std::cerr << "edgeflow: " << e.what() << "\n";
    return kExitFailure;
  }
  return 2;
}
