#include "edge/node_service.h"

#include <dlfcn.h>
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "brokers/mqtt/client.h"
#include "edge/battery_gauge.h"
#include "edge/part_runner.h"
#include "fleet/protocol.h"
#include "metrics/metrics_server.h"
#include "metrics/prometheus.h"
#include "metrics/service_metrics.h"
#include "operators/weather/power_supply.h"
#include "planner/solar.h"
#include "runtime/clock.h"
#include "runtime/duration.h"
#include "runtime/energy_rules.h"
#include "runtime/log.h"
#include "runtime/process_sample.h"

#ifndef EDGEFLOW_VERSION
#define EDGEFLOW_VERSION "dev"
#endif

namespace edgeflow {
namespace {

// CPU seconds, resident bytes and the 1-minute load of this process and machine.
struct HostSample {
  double cpu_s = 0;
  uint64_t rss = 0;
  double load1 = 0;
};
HostSample sample_host() {
  const ProcessSample p = sample_process();
  HostSample h;
  h.cpu_s = p.cpu_s;
  h.rss = p.rss_bytes;
  std::ifstream load("/proc/loadavg");
  load >> h.load1;
  return h;
}

class NodeService {
 public:
  NodeService(NodeConfig config, const NodeServiceHooks& hooks)
      : config_(std::move(config)),
        hooks_(hooks),
        started_ms_(steady_ms()),
        battery_(config_),
        energy_(std::make_shared<EnergyMode>()) {}
  ~NodeService() { stop_metrics(); }  // also on an early return of run()

  int run(sigset_t signals) {
    try {
      std::filesystem::create_directories(config_.data_dir);
      spool_ = std::make_unique<Spool>(config_.data_dir + "/spool.db", config_.spool);
    } catch (const std::exception& e) {
      logger().error("{}: {}", config_.file, e.what());
      return 1;
    }
    if (!start_metrics()) return 2;
    try {
      connect();
    } catch (const mqtt::MqttError& e) {  // settings it cannot use: a TLS file it cannot read
      logger().error("{}: {}", config_.file, e.what());
      return 2;
    }
    poll_battery();  // the kept part starts in the mode the charge calls for
    restore_part();
    notify("READY=1");
    uint64_t watchdog_us = 0;
    const bool watchdog =
        systemd().watchdog_enabled && systemd().watchdog_enabled(0, &watchdog_us) > 0;
    int64_t next_watchdog = 0, next_status = 0;
    timespec tick{0, 200'000'000};
    while (true) {
      int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGHUP) reload();
      if (sig == SIGTERM || sig == SIGINT) break;
      handle_deployments();
      supervise_part();
      if (steady_ms() >= next_battery_) poll_battery();
      if (hooks_.tick) {
        try {
          hooks_.tick(
              [this](const std::string& topic, const std::string& payload) {
                control_->publish(topic, payload.data(), payload.size(), 1, true, 0);
              },
              [this](const std::string& filter) { control_->subscribe(filter, 1); });
        } catch (const std::exception& e) {
          logger().error("service tick: {}", e.what());
        }
      }
      if (watchdog && steady_ms() >= next_watchdog) {
        notify("WATCHDOG=1");
        next_watchdog = steady_ms() + static_cast<int64_t>(watchdog_us / 2000);
      }
      std::string state = current_state();
      if (state != published_state_ || steady_ms() >= next_status) {
        publish_status(state);
        next_status = steady_ms() + config_.status_period_ms;
      }
      serve_calls();
    }
    stop_metrics();
    logger().info("stopping: draining the running part");
    notify("STOPPING=1");
    if (part_) {
      stop_part("service stopping");
    }
    battery_.save(true);
    publish_status("offline");
    control_->flush(2000);
    control_->disconnect();
    return 0;
  }

 private:
  void connect() {
    mqtt::ClientOptions co;
    co.uri = config_.brokers[broker_index_ % config_.brokers.size()];
    co.client_id = "ef-node-" + config_.node;
    co.clean_session = true;
    co.keepalive_s = config_.keepalive_s;
    co.connect_timeout_ms = 3000;
    co.username = config_.username;
    co.password = config_.password;
    co.tls.ca_file = config_.security.ca_file;
    co.tls.cert_file = config_.security.cert_file;
    co.tls.key_file = config_.security.key_file;
    co.tls.verify_hostname = config_.security.verify_hostname;
    co.will_topic = fleet::status_topic(config_.node);
    co.will_payload = nlohmann::json({{"node", config_.node},
                                      {"state", "offline"},
                                      {"tier", hooks_.tier},
                                      {"version", "edgeflow " EDGEFLOW_VERSION},
                                      {"keepalive_s", config_.keepalive_s},
                                      {"reason", "connection lost"}})
                          .dump();
    co.will_retain = true;
    auto open = [&] {
      control_ = mqtt::make_client("mosquitto", co, [this](mqtt::Received&& r) {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        inbox_.push_back(std::move(r));
      });
      control_->subscribe(fleet::deploy_topic(config_.node), 1);
      for (const std::string& filter : hooks_.fleet_filters) control_->subscribe(filter, 1);
    };
    open();
    // The first attempt waits for its answer, so that a broker that refuses this node (a
    // wrong password, a certificate not trusted) or cannot be reached is in the log with the
    // cause; then the service keeps trying in the background, as a device at boot must.
    try {
      control_->connect();
    } catch (const mqtt::MqttError& e) {
      logger().error("node '{}': {}; trying again in the background", config_.node, e.what());
      co.retry_first_connect = true;
      open();
      control_->connect();
    }
    broker_uri_ = co.uri;
    logger().info("node '{}' ({}) on broker {}: waiting for deployments on {}", config_.node,
                  hooks_.tier, co.uri, fleet::deploy_topic(config_.node));
  }

  // The last accepted part, kept in data_dir, runs again after a restart or a power cut.
  void restore_part() {
    std::ifstream in(part_file());
    if (!in) return;
    std::stringstream text;
    text << in.rdbuf();
    fleet::Opened o = fleet::open(text.str(), config_.trust);
    if (!o.deployment) {
      set_error("the kept part " + part_file() + " is refused: " + o.error);
      return;
    }
    logger().info("resuming pipeline '{}' version {} kept in {}", o.deployment->pipeline,
                  o.deployment->version, part_file());
    accepted_text_ = text.str();
    start_part(*o.deployment);
  }

  void handle_deployments() {
    std::deque<mqtt::Received> batch;
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      batch.swap(inbox_);
    }
    for (mqtt::Received& r : batch) {
      if (r.topic == fleet::deploy_topic(config_.node)) on_deploy(r.payload);
      // The cloud's dashboard shows its own deployment too. (Its filters overlap this
      // node's topic, so the broker may deliver it twice: both ends ignore a repeat.)
      if (hooks_.on_fleet_message) {
        try {
          hooks_.on_fleet_message(r.topic, r.payload);
        } catch (const std::exception& e) {  // any node may publish anything: never fatal
          logger().error("message on {} not handled: {}", r.topic, e.what());
        }
      }
    }
  }

  void on_deploy(const std::string& payload) {
    if (payload.empty()) return;  // a cleared retained message
    if (config_.trust.empty()) {
      set_error("deployment refused: this service has no 'trust' address in " + config_.file);
      return;
    }
    fleet::Opened o = fleet::open(payload, config_.trust);
    if (!o.deployment) {
      set_error("deployment refused: " + o.error);
      return;
    }
    const fleet::Deployment& d = *o.deployment;
    if (d.node != config_.node) {
      set_error("deployment refused: it is for node '" + d.node + "', this is '" + config_.node +
                "'");
      return;
    }
    if (d.version == version_) return;  // the retained copy of what runs
    if (d.version < version_) {
      set_error("deployment refused: version " + std::to_string(d.version) +
                " is older than the running " + std::to_string(version_));
      return;
    }
    if (d.kind == "undeploy") {
      if (part_) stop_part("undeployed");
      rules_ = EnergyRules{};
      apply_energy_mode();
      version_ = d.version;
      current_.reset();
      std::error_code ec;
      std::filesystem::remove(part_file(), ec);
      clear_error();
      logger().info("pipeline '{}' undeployed (version {})", d.pipeline, d.version);
      return;
    }
    logger().info("deployment of pipeline '{}' version {} (part {}) from {}", d.pipeline, d.version,
                  d.part_hash, o.signer);
    std::optional<fleet::Deployment> previous = current_;
    std::string previous_text = accepted_text_;
    if (part_) stop_part("replaced by version " + std::to_string(d.version));
    std::string why;
    if (start_part(d, &why)) {
      accepted_text_ = payload;
      keep_part(payload);
      clear_error();
      return;
    }
    // Roll back: the old part (its spool untouched) runs again.
    version_ = d.version;  // refuse the failed version's retained copy next time
    if (previous) {
      start_part(*previous);
      version_ = d.version;
      set_error("version " + std::to_string(d.version) + " of '" + d.pipeline +
                "' failed to start (" + why + "); rolled back to version " +
                std::to_string(previous->version));
    } else {
      set_error("version " + std::to_string(d.version) + " of '" + d.pipeline +
                "' failed to start: " + why);
    }
    failed_version_ = d.version;
  }

  bool start_part(const fleet::Deployment& d, std::string* why = nullptr) {
    PartSettings s;
    s.node = config_.node;
    s.broker = broker_uri_;
    s.security = config_.security;
    s.data_dir = config_.data_dir;
    s.files_dir = config_.files_dir;
    s.spool = spool_.get();
    s.energy = energy_;
    s.before_start = [this](const PipelineSpec& p) { on_part_loaded(p); };
    try {
      part_ = std::make_unique<PartRunner>(d, s);
    } catch (const std::exception& e) {
      part_.reset();
      logger().error("pipeline '{}' version {} did not start: {}", d.pipeline, d.version, e.what());
      if (why) *why = e.what();
      if (!why) {
        // A kept or rolled-back part that cannot start (a device not plugged in yet, a
        // file not there yet) is tried again with back-off.
        retry_ = d;
        retry_at_ = steady_ms() + backoff_ms_;
        logger().info("trying again in {} s", backoff_ms_ / 1000);
        backoff_ms_ = std::min<int64_t>(backoff_ms_ * 2, 60000);
        set_error("pipeline '" + d.pipeline + "' did not start: " + e.what());
      }
      current_ = d;
      version_ = d.version;
      return false;
    }
    retry_.reset();
    backoff_ms_ = 1000;
    current_ = d;
    version_ = d.version;
    part_started_ms_ = steady_ms();
    ended_ = false;
    logger().info("running pipeline '{}' version {} on '{}'", d.pipeline, d.version, config_.node);
    return true;
  }

  void stop_part(const std::string& why) {
    logger().info("stopping pipeline '{}' ({}): draining", part_->deployment().pipeline, why);
    if (!part_->drain(20000))
      logger().warn("the part did not drain in 20 s; what it had not spooled is lost");
    part_.reset();
  }

  // A part whose sources ended (a replayed file) waits; one that could not start is tried
  // again with back-off.
  void supervise_part() {
    if (part_ && !ended_ && part_->finished()) {
      ended_ = true;
      logger().info("pipeline '{}': its input ended", part_->deployment().pipeline);
    }
    if (!part_ && retry_ && steady_ms() >= retry_at_) {
      fleet::Deployment d = *retry_;
      if (start_part(d)) clear_error();
    }
  }

  // /metrics: scrapes come on the server's threads and are answered from this one (the part
  // and the spool are this thread's), within one turn of the loop (200 ms). While it is busy
  // for longer (starting, a deployment draining the old part), a scrape gets 503 after 3 s
  // rather than old figures under a new time.
  bool start_metrics() {
    const std::string address =
        hooks_.metrics_address.empty() ? config_.metrics : hooks_.metrics_address;
    auto render = [this]() -> std::optional<std::string> {
      std::optional<metrics::Response> r = on_service_thread([this] {
        return metrics::Response{200, "", metrics_text()};
      });
      if (!r) return std::nullopt;
      return std::move(r->body);
    };
    const char* option = hooks_.metrics_address.empty() ? "metrics:" : "--metrics";
    try {
      if (!address.empty()) {
        metrics_server_ = std::make_unique<metrics::MetricsServer>(address, render);
        logger().info("metrics for Prometheus on {}", metrics_server_->url());
      }
      option = "--http";
      if (!hooks_.http_address.empty()) {
        http_server_ = std::make_unique<metrics::MetricsServer>(hooks_.http_address, render,
                                                                hooks_.http_event_streams);
        for (const NodeServiceHooks::HttpRoute& r : hooks_.http_routes) {
          auto handle = [this, &r](const std::string& path) {
            return on_service_thread([&r, path] { return r.handle(path); });
          };
          if (r.kind == NodeServiceHooks::HttpRoute::kEvents) {
            http_server_->serve_events(r.path, [handle, path = r.path] {
              std::optional<metrics::Response> got = handle(path);
              return got && got->status == 200 ? std::optional<std::string>(std::move(got->body))
                                               : std::nullopt;
            });
          } else if (r.kind == NodeServiceHooks::HttpRoute::kAction) {
            http_server_->serve_actions(
                r.path, config_.operators_file,
                [this, &r](const std::string& path, const std::string& user) {
                  return on_service_thread([&r, path, user] { return r.act(path, user); });
                });
          } else if (r.kind == NodeServiceHooks::HttpRoute::kTree) {
            http_server_->serve_tree(r.path, handle);
          } else {
            http_server_->serve_tree(r.path, [handle, path = r.path](const std::string& asked) {
              if (asked != path) return std::optional<metrics::Response>({404, "", "no " + asked});
              return handle(asked);
            });
          }
        }
        std::string paths = "/metrics";
        for (const NodeServiceHooks::HttpRoute& r : hooks_.http_routes) paths += ", " + r.path;
        logger().info("HTTP API on {} ({}); {}", http_server_->base_url(), paths,
                      config_.operators_file.empty()
                          ? "read-only (no operators: file)"
                          : "operators of " + config_.operators_file + " may act");
      }
    } catch (const std::exception& e) {
      logger().error("{}: {} {}", config_.file, option, e.what());
      return false;
    }
    return true;
  }

  void stop_metrics() {
    {
      std::lock_guard<std::mutex> lock(calls_mu_);
      calls_closed_ = true;
    }
    calls_cv_.notify_all();
    metrics_server_.reset();
    http_server_.reset();
  }

  // A server thread: has `render` run on the service's thread (the part and the spool are
  // its) and returns the answer; nullopt when that thread is busy for 3 s or stopping.
  std::optional<metrics::Response> on_service_thread(std::function<metrics::Response()> render) {
    auto call = std::make_shared<ServiceCall>();
    call->render = std::move(render);
    std::unique_lock<std::mutex> lock(calls_mu_);
    if (calls_closed_) return std::nullopt;
    calls_.push_back(call);
    if (!calls_cv_.wait_for(lock, std::chrono::seconds(3),
                            [&] { return call->done || calls_closed_; }) ||
        !call->done) {
      // Not rendered later for nobody (if the service thread has not taken it yet).
      calls_.erase(std::remove(calls_.begin(), calls_.end(), call), calls_.end());
      return std::nullopt;
    }
    if (!call->error.empty()) throw std::runtime_error(call->error);  // answered 500
    return std::move(call->answer);
  }

  // The service's thread, once per loop turn.
  void serve_calls() {
    std::deque<std::shared_ptr<ServiceCall>> todo;
    {
      std::lock_guard<std::mutex> lock(calls_mu_);
      todo.swap(calls_);
    }
    if (todo.empty()) return;
    for (auto& call : todo) {
      try {
        call->answer = call->render();
      } catch (const std::exception& e) {  // a bug here must not take the service down
        call->error = e.what();
        logger().error("HTTP: {}", call->error);
      }
    }
    {
      std::lock_guard<std::mutex> lock(calls_mu_);
      for (auto& call : todo) call->done = true;
    }
    calls_cv_.notify_all();
  }

  std::string metrics_text() {
    metrics::NodeFigures n;
    n.node = config_.node;
    n.tier = hooks_.tier;
    n.state = published_state_;
    if (current_) {
      n.pipeline = current_->pipeline;
      n.part_hash = current_->part_hash;
    }
    n.part_running = part_ != nullptr && !ended_;
    n.broker_connected = control_ && control_->connected();
    const SpoolStats sp = spool_->stats();
    n.spool_frames = sp.frames;
    n.spool_bytes = sp.bytes;
    n.spool_dropped_messages = sp.dropped_messages;
    // Wall clocks step back (a Pi without a clock before NTP): never a negative age.
    n.spool_oldest_age_s =
        sp.oldest_us ? std::max(0.0, (wall_ms() * 1000 - sp.oldest_us) / 1e6) : 0;
    n.energy_mode = energy_->mode();
    n.charge_pct = reading_.charge_pct;
    if (reading_.source == "model") {
      n.model_watts = reading_.watts;
      n.model_harvest_w = reading_.harvest_w;
    }
    std::string text = metrics::node_text(n);
    if (part_ && current_)
      text += metrics::pipeline_text(
          {current_->pipeline, part_->stage_metrics(), part_->link_metrics()});
    if (hooks_.metrics_text) text += hooks_.metrics_text();
    return text + metrics::process_text();
  }

  std::string current_state() {
    if (!error_.empty()) return "error";
    if (!part_ || ended_) return "waiting";
    uint64_t flow = 0;
    for (const StageMetrics& m : part_->stage_metrics()) flow += m.in + m.out;
    const bool flowing = flow != last_flow_;
    last_flow_ = flow;
    if (flowing) last_flow_ms_ = steady_ms();
    // Working while data moved in the last status period.
    return steady_ms() - last_flow_ms_ <= config_.status_period_ms ? "working" : "waiting";
  }

  void publish_status(const std::string& state) {
    published_state_ = state;
    HostSample h = sample_host();
    const int64_t now = steady_ms();
    double cpu_percent = 0;
    if (last_sample_ms_ > 0 && now > last_sample_ms_)
      cpu_percent = 100.0 * (h.cpu_s - last_cpu_s_) / ((now - last_sample_ms_) / 1000.0);
    last_cpu_s_ = h.cpu_s;
    last_sample_ms_ = now;
    nlohmann::json s = {{"node", config_.node},
                        {"state", state},
                        {"tier", hooks_.tier},
                        {"version", "edgeflow " EDGEFLOW_VERSION},
                        {"time", format_iso8601(wall_ms() * 1000)},
                        {"uptime_s", (now - started_ms_) / 1000},
                        {"cpu_percent", std::round(cpu_percent * 10) / 10},
                        {"rss_bytes", h.rss},
                        {"load1", h.load1},
                        {"keepalive_s", config_.keepalive_s},
                        {"status_period_s", config_.status_period_ms / 1000.0},
                        {"device", config_.device},
                        {"labels", config_.labels}};
    s["pipeline"] = current_ ? nlohmann::json(current_->pipeline) : nlohmann::json(nullptr);
    s["part_hash"] = current_ ? nlohmann::json(current_->part_hash) : nlohmann::json(nullptr);
    s["part_version"] = current_ ? nlohmann::json(current_->version) : nlohmann::json(nullptr);
    s["part_running"] = part_ != nullptr && !ended_;
    if (failed_version_) s["failed_version"] = failed_version_;
    if (!error_.empty()) s["error"] = error_;
    SpoolStats sp = spool_->stats();
    s["spool"] = {{"bytes", sp.bytes},
                  {"frames", sp.frames},
                  {"oldest_age_s", sp.oldest_us ? (wall_ms() * 1000 - sp.oldest_us) / 1000000 : 0},
                  {"dropped_messages", sp.dropped_messages},
                  {"error", sp.error}};
    nlohmann::json links = nlohmann::json::array();
    if (part_) {
      for (const LinkMetrics& m : part_->link_metrics()) {
        links.push_back({{"link", m.link},
                         {"direction", m.direction},
                         {"messages", m.messages},
                         {"payload_bytes", m.payload_bytes},
                         {"wire_bytes", m.wire_bytes},
                         {"backlog", m.unacknowledged},
                         {"reconnects", m.reconnects},
                         {"duplicates_dropped", m.duplicates},
                         {"refused", m.refused}});
      }
    }
    s["links"] = links;
    s["broker_connected"] = control_->connected();
    nlohmann::json batteries = nlohmann::json::array();
    for (const PowerSupplyReading& p : read_power_supplies(config_.sysfs_root)) {
      nlohmann::json b = {{"name", p.name}};
      if (p.type) b["type"] = *p.type;
      if (p.status) b["status"] = *p.status;
      if (p.capacity_percent) b["capacity_percent"] = *p.capacity_percent;
      if (p.voltage_v) b["voltage_v"] = *p.voltage_v;
      if (p.power_w) b["power_w"] = *p.power_w;
      batteries.push_back(b);
    }
    if (!batteries.empty()) s["power_supplies"] = batteries;
    s["energy"] = energy_status();
    const std::string text = s.dump();
    control_->publish(fleet::status_topic(config_.node), text.data(), text.size(), 1, true, 0);
    std::string line = state + (current_ ? " " + current_->pipeline : std::string()) +
                       (error_.empty() ? "" : ": " + error_);
    notify("STATUS=" + line);
  }

  // The battery's charge, then the mode the part's rules call for.
  void poll_battery() {
    next_battery_ = steady_ms() + config_.battery.poll_ms;
    MeasuredLoad load;
    load.cpu_seconds = sample_host().cpu_s;
    if (part_) {
      for (const LinkMetrics& m : part_->link_metrics()) {
        const bool send = m.direction == "send";
        (send ? load.tx_bytes : load.rx_bytes) += static_cast<double>(m.payload_bytes);
        (send ? load.tx_writes : load.rx_writes) += static_cast<double>(m.batches);
      }
    }
    reading_ = battery_.read(wall_ms() * 1000, load);
    battery_.save(false);
    if (reading_.note != battery_note_) {
      battery_note_ = reading_.note;
      if (!battery_note_.empty() && !rules_.empty())
        logger().warn("battery charge unknown ({}): the energy mode stays '{}'", battery_note_,
                      energy_->mode());
    }
    apply_energy_mode();
  }

  // A part was loaded (before its operators open): its rules, and the model for its node.
  void on_part_loaded(const PipelineSpec& p) {
    rules_ = p.energy;
    energy_index_ = -1;  // chosen afresh for these rules
    if (const NodeSpec* n = p.node(config_.node)) {
      std::string error;
      std::optional<SolarSpec> solar = solar_for_node(p, *n, &error);
      const std::string why = battery_.configure_model(
          n->device.empty() ? config_.device : n->device, p.base_dir, solar, n->network);
      if (!error.empty()) logger().warn("battery model: {}", error);
      if (!why.empty() && config_.battery.source == "model")
        logger().warn("battery model cannot run: {}", why);
    }
    // Read the charge again now that the model knows the node: a part restored at boot on
    // the model must start in the mode its kept charge calls for, not in "normal".
    poll_battery();
  }

  void apply_energy_mode() {
    const double pct = reading_.charge_pct ? *reading_.charge_pct : std::nan("");
    const int index = rules_.empty() ? -1 : select_energy_mode(rules_, energy_index_, pct);
    EnergyActions actions = energy_actions(rules_, index);
    if (actions.mode != energy_->mode()) {
      logger().info("energy mode '{}' (charge {}, from {})", actions.mode,
                    reading_.charge_pct ? std::to_string(std::lround(pct)) + "%" : "unknown",
                    reading_.source);
      published_state_.clear();  // the status says so now
    }
    energy_index_ = index;
    energy_->set(std::move(actions));
  }

  nlohmann::json energy_status() const {
    nlohmann::json e = {{"mode", energy_->mode()}, {"source", reading_.source}};
    e["charge_pct"] = reading_.charge_pct
                          ? nlohmann::json(std::round(*reading_.charge_pct * 10) / 10)
                          : nlohmann::json(nullptr);
    if (!reading_.supply.empty()) e["supply"] = reading_.supply;
    if (!reading_.status.empty()) e["battery_status"] = reading_.status;
    if (reading_.source == "model") {
      e["watts"] = std::round(reading_.watts * 1000) / 1000;
      e["harvest_w"] = std::round(reading_.harvest_w * 1000) / 1000;
    }
    if (!reading_.note.empty()) e["note"] = reading_.note;
    nlohmann::json modes = nlohmann::json::array();
    for (const EnergyModeSpec& m : rules_.modes)
      modes.push_back({{"name", m.name}, {"below_pct", m.below_pct}});
    e["modes"] = modes;
    return e;
  }

  void reload() {
    try {
      NodeConfig fresh = load_node_config(config_.file, hooks_.tier == "edge");
      if (fresh.node != config_.node || fresh.brokers != config_.brokers ||
          fresh.data_dir != config_.data_dir || fresh.metrics != config_.metrics ||
          fresh.operators_file != config_.operators_file) {
        logger().warn(
            "SIGHUP: node, broker, data_dir, metrics and operators change only with a restart "
            "(systemctl restart edgeflow-{}); the operators file's contents are read at each "
            "action",
            hooks_.tier);
      }
      config_.status_period_ms = fresh.status_period_ms;
      config_.labels = fresh.labels;
      config_.device = fresh.device;
      config_.trust = fresh.trust;
      config_.files_dir = fresh.files_dir;
      config_.battery.poll_ms = fresh.battery.poll_ms;
      next_battery_ = 0;
      logger().info("SIGHUP: re-read {}", config_.file);
      published_state_.clear();  // publish the new labels now
    } catch (const ConfigError& e) {
      logger().error("SIGHUP: {}; keeping the running config", e.what());
    }
  }

  void keep_part(const std::string& payload) {
    // Written aside and renamed: a power cut leaves the old part or the new one, whole.
    const std::string tmp = part_file() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << payload;
      out.flush();
      if (!out) {
        set_error("cannot keep the part in " + part_file() + ": " + std::strerror(errno));
        return;
      }
    }
    FILE* f = std::fopen(tmp.c_str(), "r");
    if (f) {
      fdatasync(fileno(f));
      std::fclose(f);
    }
    std::rename(tmp.c_str(), part_file().c_str());
  }

  std::string part_file() const { return config_.data_dir + "/part.json"; }
  void set_error(const std::string& e) {
    if (e != error_) logger().error("{}", e);
    error_ = e;
  }
  void clear_error() {
    error_.clear();
    failed_version_ = 0;
  }
  // libsystemd, loaded only under systemd (NOTIFY_SOCKET set): linking it would map it and
  // its nine libraries (gcrypt, zstd, lz4, ...) into every edgeflow command.
  struct Systemd {
    decltype(&sd_notify) notify = nullptr;
    decltype(&sd_watchdog_enabled) watchdog_enabled = nullptr;
  };
  static const Systemd& systemd() {
    static const Systemd sd = [] {
      Systemd s;
      if (!std::getenv("NOTIFY_SOCKET")) return s;
      void* lib = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
      if (!lib) {
        logger().warn("NOTIFY_SOCKET is set but libsystemd.so.0 cannot be loaded: {}", dlerror());
        return s;
      }
      s.notify = reinterpret_cast<decltype(&sd_notify)>(dlsym(lib, "sd_notify"));
      s.watchdog_enabled =
          reinterpret_cast<decltype(&sd_watchdog_enabled)>(dlsym(lib, "sd_watchdog_enabled"));
      return s;
    }();
    return sd;
  }
  static void notify(const std::string& text) {
    if (systemd().notify) systemd().notify(0, text.c_str());
  }

  NodeConfig config_;
  NodeServiceHooks hooks_;
  int64_t started_ms_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<mqtt::Client> control_;
  std::string broker_uri_;
  size_t broker_index_ = 0;
  std::mutex inbox_mu_;
  std::deque<mqtt::Received> inbox_;

  std::unique_ptr<PartRunner> part_;
  std::optional<fleet::Deployment> current_;  // what runs (or should run)
  std::string accepted_text_;
  uint64_t version_ = 0;
  uint64_t failed_version_ = 0;
  std::optional<fleet::Deployment> retry_;
  int64_t retry_at_ = 0, backoff_ms_ = 1000;
  bool ended_ = false;
  int64_t part_started_ms_ = 0;
  std::string error_;
  std::string published_state_;
  uint64_t last_flow_ = 0;
  int64_t last_flow_ms_ = 0;
  double last_cpu_s_ = 0;
  int64_t last_sample_ms_ = 0;

  // Energy-aware operation: the charge, the running part's rules, the mode they call for.
  BatteryGauge battery_;
  BatteryReading reading_;
  std::string battery_note_;
  EnergyRules rules_;
  int energy_index_ = -1;               // into rules_.modes; -1: normal
  std::shared_ptr<EnergyMode> energy_;  // shared with the running part's operators
  int64_t next_battery_ = 0;

  // /metrics and the HTTP API (start_metrics): a request waits for this thread to render.
  struct ServiceCall {
    std::function<metrics::Response()> render;
    metrics::Response answer;
    std::string error;
    bool done = false;  // under calls_mu_
  };
  std::mutex calls_mu_;
  std::condition_variable calls_cv_;
  std::deque<std::shared_ptr<ServiceCall>> calls_;
  bool calls_closed_ = false;
  std::unique_ptr<metrics::MetricsServer> http_server_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;  // last two: stopped first
};

}  // namespace

int run_node_service(const std::string& config_path, const NodeServiceHooks& hooks) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  NodeConfig config;
  try {
    config = load_node_config(config_path, hooks.tier == "edge");
  } catch (const ConfigError& e) {
    logger().error("{}", e.what());
    return 2;
  }
  NodeService service(std::move(config), hooks);
  return service.run(set);
}

}  // namespace edgeflow
