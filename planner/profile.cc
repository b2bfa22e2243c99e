#include "planner/profile.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "brokers/link/batch.h"
#include "brokers/link/transport.h"
#include "brokers/mqtt/embedded_broker.h"
#include "runtime/duration.h"
#include "runtime/executor.h"
#include "runtime/operator.h"
#include "runtime/placement.h"
#include "security/run_broker.h"

namespace edgeflow {

double StageProfile::cpu_per_message() const {
  const uint64_t n = source ? out : in;
  return n == 0 ? 0 : cpu_seconds / static_cast<double>(n);
}

const PortProfile* StageProfile::port(const std::string& name) const {
  for (const PortProfile& p : ports)
    if (p.port == name) return &p;
  return nullptr;
}

double StageProfile::out_per_in(const std::string& name) const {
  const PortProfile* p = port(name);
  if (!p) return 0;
  const uint64_t base = source ? out : in;
  return base == 0 ? 0 : static_cast<double>(p->messages) / static_cast<double>(base);
}

double StageProfile::bytes_per_message(const std::string& name) const {
  const PortProfile* p = port(name);
  return !p || p->messages == 0
             ? 0
             : static_cast<double>(p->payload_bytes) / static_cast<double>(p->messages);
}

double StageProfile::frames_per_message(const std::string& name) const {
  const PortProfile* p = port(name);
  return !p || p->messages == 0
             ? 1
             : static_cast<double>(p->flushes) / static_cast<double>(p->messages);
}

const StageProfile* PipelineProfile::stage(const std::string& id) const {
  for (const StageProfile& s : stages)
    if (s.stage == id) return &s;
  return nullptr;
}

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

// What the on_flush hook sees, per stage copy and port. Each copy's hook runs on one thread
// at a time, but copies run in parallel: one mutex (a profile run is not a benchmark).
struct Observed {
  struct Port {
    uint64_t messages = 0, bytes = 0, flushes = 0;
    int64_t first_event = INT64_MAX, last_event = INT64_MIN;
  };
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, std::map<int, Port>> copies;  // (stage, node)
  uint64_t unencodable = 0;

  void add(const StageInstance& copy, const PipelineSpec& p, int port,
           const std::vector<MessagePtr>& batch) {
    uint64_t bytes = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    uint64_t bad = 0;
    for (const MessagePtr& m : batch) {
      BatchWriter w;
      std::string why;
      if (w.add(*m, why))
        bytes += w.bytes();
      else
        ++bad;
      lo = std::min(lo, m->event_time_us);
      hi = std::max(hi, m->event_time_us);
    }
    std::lock_guard<std::mutex> lock(mu);
    Port& o = copies[{p.stages[copy.stage].id, copy.node}][port];
    o.messages += batch.size();
    o.bytes += bytes;
    o.flushes += 1;
    o.first_event = std::min(o.first_event, lo);
    o.last_event = std::max(o.last_event, hi);
    unencodable += bad;
  }
};

std::string iso_now() {
  return format_iso8601(std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count() /
                        1'000'000 * 1'000'000);
}

}  // namespace

PipelineProfile profile_pipeline(const PipelineSpec& pipeline_in, const ProfileOptions& options) {
  PipelineSpec pipeline = pipeline_in;
  const Plan plan = place(pipeline);
  security::RunBroker broker;  // as edgeflow run's: only this profile's credentials get in
  bool mqtt_links = false;
  for (const LinkPlan& l : plan.links) mqtt_links |= l.via == "mqtt";
  if (!options.broker.empty()) pipeline.links.mqtt_broker = options.broker;
  if (mqtt_links && pipeline.links.mqtt_broker.empty()) {
    broker = security::start_run_broker();
    pipeline.links.mqtt_broker = broker.broker->uri();
    pipeline.links.mqtt_security = MqttSecurity{};
    pipeline.links.mqtt_security.credentials_file = broker.credentials_file;
  }
  std::unique_ptr<LinkTransport> transport;
  if (!plan.links.empty()) transport = make_link_transport(pipeline, plan);

  Observed observed;
  ExecutorOptions eo;
  eo.threads = options.threads;
  eo.links = transport.get();
  eo.on_flush = [&](const StageInstance& copy, int port, const std::vector<MessagePtr>& batch) {
    observed.add(copy, pipeline, port, batch);
  };
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::vector<StageMetrics> metrics;
  std::vector<LinkMetrics> links;
  {
    Executor executor(pipeline, plan, eo);
    try {
      executor.start();
    } catch (const OperatorError& e) {
      throw std::runtime_error(e.what());
    }
    while (!executor.wait(100'000))
      if (elapsed() >= options.seconds) executor.request_stop();
    metrics = executor.metrics();
    if (transport) links = transport->metrics();
  }

  PipelineProfile out;
  out.pipeline = pipeline.name;
  out.file = pipeline.file;
  out.machine = cpu_model();
  out.created = iso_now();
  out.seconds = elapsed();
  std::lock_guard<std::mutex> lock(observed.mu);
  for (const StageSpec& spec : pipeline.stages) {
    StageProfile s;
    s.stage = spec.id;
    s.op = spec.op;
    s.source = spec.entry->spec.is_source();
    double rate_sum = 0;
    int rated = 0;
    for (const StageMetrics& m : metrics) {
      if (m.stage != spec.id || m.op != spec.op) continue;
      s.copies += 1;
      s.in += m.in;
      s.out += m.out;
      s.errors += m.errors;
      s.cpu_seconds += m.cpu_seconds;
    }
    const auto& outputs = spec.entry->spec.outputs;
    for (size_t p = 0; p < outputs.size(); ++p) {
      PortProfile pp;
      pp.port = outputs[p].name;
      for (const auto& [key, ports] : observed.copies) {
        if (key.first != spec.id) continue;
        auto it = ports.find(static_cast<int>(p));
        if (it == ports.end()) continue;
        pp.messages += it->second.messages;
        pp.payload_bytes += it->second.bytes;
        pp.flushes += it->second.flushes;
        if (s.source && outputs[p].name == "out" && it->second.messages > 1 &&
            it->second.last_event > it->second.first_event) {
          rate_sum += static_cast<double>(it->second.messages - 1) /
                      (static_cast<double>(it->second.last_event - it->second.first_event) / 1e6);
          ++rated;
        }
      }
      s.ports.push_back(pp);
    }
    if (rated > 0) s.rate_per_copy = rate_sum / rated;
    out.stages.push_back(std::move(s));
  }
  // The hidden link stages: CPU per frame, sender and receiver.
  double send_cpu = 0, receive_cpu = 0;
  for (const StageMetrics& m : metrics) {
    if (m.op.rfind("link.", 0) != 0) continue;
    (m.op.size() > 5 && m.op.substr(m.op.size() - 5) == ".send" ? send_cpu : receive_cpu) +=
        m.cpu_seconds;
  }
  uint64_t sent_frames = 0, received_frames = 0;
  for (const LinkMetrics& l : links)
    (l.direction == "send" ? sent_frames : received_frames) += l.batches;
  if (sent_frames > 0 && received_frames > 0) {
    out.links.measured = true;
    out.links.frames = sent_frames;
    out.links.send_cpu_per_frame = send_cpu / static_cast<double>(sent_frames);
    out.links.receive_cpu_per_frame = receive_cpu / static_cast<double>(received_frames);
  }
  return out;
}

std::string profile_to_json(const PipelineProfile& p) {
  nlohmann::json stages = nlohmann::json::array();
  for (const StageProfile& s : p.stages) {
    nlohmann::json ports = nlohmann::json::array();
    for (const PortProfile& pp : s.ports)
      ports.push_back({{"port", pp.port},
                       {"messages", pp.messages},
                       {"payload_bytes", pp.payload_bytes},
                       {"flushes", pp.flushes},
                       {"bytes_per_message", s.bytes_per_message(pp.port)},
                       {"out_per_in", s.out_per_in(pp.port)}});
    stages.push_back({{"stage", s.stage},
                      {"op", s.op},
                      {"copies", s.copies},
                      {"source", s.source},
                      {"in", s.in},
                      {"out", s.out},
                      {"errors", s.errors},
                      {"cpu_seconds", s.cpu_seconds},
                      {"cpu_ns_per_message", s.cpu_per_message() * 1e9},
                      {"rate_per_copy", s.rate_per_copy},
                      {"ports", ports}});
  }
  nlohmann::json j = {{"edgeflow_profile", 1},
                      {"pipeline", p.pipeline},
                      {"file", p.file},
                      {"machine", p.machine},
                      {"created", p.created},
                      {"seconds", p.seconds},
                      {"links",
                       {{"measured", p.links.measured},
                        {"frames", p.links.frames},
                        {"send_cpu_ns_per_frame", p.links.send_cpu_per_frame * 1e9},
                        {"receive_cpu_ns_per_frame", p.links.receive_cpu_per_frame * 1e9}}},
                      {"stages", stages}};
  return j.dump(2) + "\n";
}

std::optional<PipelineProfile> profile_from_json(const std::string& text, const std::string& file,
                                                 std::string* error) {
  PipelineProfile p;
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object() || !j.contains("edgeflow_profile")) {
      *error = file +
               ": not an edgeflow profile (no 'edgeflow_profile' key); make one with "
               "edgeflow profile PIPELINE";
      return std::nullopt;
    }
    p.pipeline = j.at("pipeline").get<std::string>();
    p.file = j.value("file", "");
    p.machine = j.value("machine", "");
    p.created = j.value("created", "");
    p.seconds = j.at("seconds").get<double>();
    const auto& l = j.at("links");
    p.links.measured = l.at("measured").get<bool>();
    p.links.frames = l.value("frames", uint64_t{0});
    p.links.send_cpu_per_frame = l.at("send_cpu_ns_per_frame").get<double>() / 1e9;
    p.links.receive_cpu_per_frame = l.at("receive_cpu_ns_per_frame").get<double>() / 1e9;
    for (const auto& sj : j.at("stages")) {
      StageProfile s;
      s.stage = sj.at("stage").get<std::string>();
      s.op = sj.at("op").get<std::string>();
      s.copies = sj.at("copies").get<int>();
      s.source = sj.at("source").get<bool>();
      s.in = sj.at("in").get<uint64_t>();
      s.out = sj.at("out").get<uint64_t>();
      s.errors = sj.value("errors", uint64_t{0});
      s.cpu_seconds = sj.at("cpu_seconds").get<double>();
      s.rate_per_copy = sj.at("rate_per_copy").get<double>();
      for (const auto& pj : sj.at("ports")) {
        PortProfile pp;
        pp.port = pj.at("port").get<std::string>();
        pp.messages = pj.at("messages").get<uint64_t>();
        pp.payload_bytes = pj.at("payload_bytes").get<uint64_t>();
        pp.flushes = pj.at("flushes").get<uint64_t>();
        s.ports.push_back(pp);
      }
      p.stages.push_back(std::move(s));
    }
  } catch (const nlohmann::json::exception& e) {
    *error = file + ": not a readable edgeflow profile (" + e.what() +
             "); make it again with edgeflow profile PIPELINE";
    return std::nullopt;
  }
  return p;
}

std::string default_profile_path(const std::string& pipeline_file) {
  std::string base = pipeline_file;
  for (const char* ext : {".yaml", ".yml"}) {
    const std::string e = ext;
    if (base.size() > e.size() && base.compare(base.size() - e.size(), e.size(), e) == 0) {
      base.resize(base.size() - e.size());
      break;
    }
  }
  return base + ".profile.json";
}

}  // namespace edgeflow
