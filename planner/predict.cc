#include "planner/predict.h"

#include <algorithm>
#include <ctime>

#include "brokers/link/batch.h"
#include "brokers/link/transport.h"
#include "planner/device_profile.h"
#include "planner/solar.h"

namespace edgeflow {

namespace {

// Bytes of a frame's header (brokers/link/batch.h) from `sender` well into a session.
double frame_header_bytes(const std::string& sender, double messages_per_frame) {
  BatchWriter w;
  std::string frame;
  BatchHeader h;
  h.sender = sender;
  h.session = 0x8000000000000000ull;  // random per session: a full 64-bit number
  h.sequence = 100000;
  h.count = static_cast<uint32_t>(std::max(1.0, messages_per_frame));
  w.finish(h, frame);
  return static_cast<double>(frame.size());
}

// What the link's protocol carries above TCP per frame of `payload` bytes, for the energy
// model (which adds TCP/IP and the link layer itself): the link's wire estimate less the
// TCP/IP headers it counts (52 bytes a segment, brokers/channel.h) and the acknowledgement.
double stream_bytes(const PipelineSpec& p, const LinkPlan& l, double payload) {
  if (l.via == "mqtt") {
    std::string path = l.name;
    path.replace(path.find("->"), 2, "/");
    const double topic = static_cast<double>(("edgeflow/" + p.name + "/" + path).size());
    return payload + topic + 2 + (p.links.mqtt_qos > 0 ? 2 : 0) + 1 + (payload < 16000 ? 2 : 3);
  }
  if (l.via == "nats") {
    // HPUB with its message id header and the stream's acknowledgement on one side; the
    // delivery (HMSG) and the consumer's acknowledgement on the other (nats_wire_bytes).
    const double subject = static_cast<double>(("edgeflow." + p.name + "." + l.name).size());
    return payload + subject + 125;
  }
  return payload + 2 + 26 + 18;  // ZeroMQ acked: the payload part, header part and the ack
}

int current_month() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm.tm_mon + 1;
}

}  // namespace

void add_link_traffic(const PipelineSpec& pipeline, const LinkPlan& lp, double frames,
                      double frame_bytes, NodePrediction* sender, NodePrediction* receiver) {
  const double stream = frames * stream_bytes(pipeline, lp, frame_bytes);
  for (NodePrediction* np : {sender, receiver}) {
    if (!np) continue;
    const NodeSpec* ns = pipeline.node(np->node);
    WireTraffic w =
        estimate_wire(stream, frames, ns && !ns->network.empty() ? ns->network : "wifi");
    if (np == sender) {
      np->load.tx_bytes_per_s += w.tx_bytes;
      np->load.rx_bytes_per_s += w.rx_bytes;
      np->load.tx_packets_per_s += w.tx_packets;
      np->load.rx_packets_per_s += w.rx_packets;
    } else {
      np->load.rx_bytes_per_s += w.tx_bytes;
      np->load.tx_bytes_per_s += w.rx_bytes;
      np->load.rx_packets_per_s += w.tx_packets;
      np->load.tx_packets_per_s += w.rx_packets;
    }
    // Each frame wakes the radio at both ends.
    np->load.bursts_per_s = std::max(0.0, np->load.bursts_per_s) + frames;
  }
}

void fill_energy(const PipelineSpec& pipeline, NodePrediction& np, const PredictOptions& options) {
  const NodeSpec* ns = pipeline.node(np.node);
  std::string device = ns ? ns->device : "";
  if (device.empty() && np.tier == "cloud") device = options.cloud_default_device;
  std::string error;
  std::optional<SolarSpec> solar;
  if (ns) {
    solar = solar_for_node(pipeline, *ns, &error);
    if (!solar && !error.empty()) np.note = error;
  }
  np.month =
      options.month > 0 ? options.month : (solar && solar->month ? *solar->month : current_month());
  if (device.empty()) {
    np.note = "no device: profile (add device: rpi-4 or a profile file to the node)";
    return;
  }
  auto dp = load_device_profile(device, pipeline.base_dir, &error);
  if (!dp) {
    np.note = error;
    return;
  }
  np.device = dp->name;
  if (np.load.bursts_per_s < 0) np.load.bursts_per_s = 0;
  np.load.cpu_core_seconds_per_s = np.cpu_core_seconds_per_s;
  np.load.network = ns ? ns->network : "";
  np.energy = node_energy(*dp, np.load, solar, np.month);
  np.has_energy = np.energy.error.empty();
  if (!np.has_energy) np.note = np.energy.error;
}

std::string placement_line(const PipelineSpec& pipeline) {
  std::string s;
  for (const StageSpec& st : pipeline.stages) s += (s.empty() ? "" : " ") + st.id + "@" + st.on;
  return s;
}

Prediction predict(const PipelineSpec& pipeline, const Plan& plan, const PipelineProfile& profile,
                   const PredictOptions& options) {
  Prediction out;
  out.month = 0;
  out.pipeline = pipeline.name;
  out.placement = placement_line(pipeline);

  // Rates through the placed graph: instances are in topological order of their stages.
  const size_t n = plan.instances.size();
  std::vector<double> in_rate(n, 0);
  std::vector<std::vector<double>> out_rate(n);
  std::vector<double> cpu(n, 0);
  std::vector<const StageProfile*> prof(n, nullptr);
  std::vector<std::string> missing;
  for (size_t i = 0; i < n; ++i) {
    const StageSpec& spec = pipeline.stages[plan.instances[i].stage];
    prof[i] = profile.stage(spec.id);
    if (prof[i] && prof[i]->op != spec.op) {
      // A source profiled on sample data (--set STAGE.op=csv.replay) stands in for the
      // file's source: its rate, output and bytes are used, with a word about it.
      if (prof[i]->source && spec.entry->spec.is_source()) {
        const std::string w = "stage '" + spec.id + "' was profiled as " + prof[i]->op +
                              ", standing in for " + spec.op +
                              ": its rate, output and bytes are the stand-in's";
        if (std::find(out.warnings.begin(), out.warnings.end(), w) == out.warnings.end())
          out.warnings.push_back(w);
      } else {
        prof[i] = nullptr;
      }
    }
    const auto& outputs = spec.entry->spec.outputs;
    out_rate[i].assign(outputs.size(), 0);
    if (!prof[i]) {
      if (std::find(missing.begin(), missing.end(), spec.id) == missing.end())
        missing.push_back(spec.id);
      continue;
    }
    const StageProfile& sp = *prof[i];
    double base;
    if (sp.source) {
      auto it = options.source_rates.find(spec.id);
      base = it != options.source_rates.end() ? it->second : sp.rate_per_copy;
    } else {
      for (const PlanEdge& e : plan.edges)
        if (e.to == static_cast<int>(i)) in_rate[i] += out_rate[e.from][e.from_port];
      base = in_rate[i];
    }
    for (size_t p = 0; p < outputs.size(); ++p)
      out_rate[i][p] = base * sp.out_per_in(outputs[p].name);
    cpu[i] = base * sp.cpu_per_message();
  }
  for (const std::string& id : missing)
    out.warnings.push_back("stage '" + id +
                           "' is not in the profile (or its operator changed): its CPU and output "
                           "are left out; run edgeflow profile again");

  // Nodes.
  std::map<std::string, size_t> node_index;
  for (const NodeSpec& node : pipeline.nodes) {
    NodePrediction np;
    np.node = node.name;
    np.tier = node.tier;
    node_index[node.name] = out.nodes.size();
    out.nodes.push_back(np);
  }
  for (size_t i = 0; i < n; ++i) {
    auto it = node_index.find(base_node(plan.instances[i].node));  // replicas: their machine
    if (it == node_index.end()) continue;
    out.nodes[it->second].cpu_core_seconds_per_s += cpu[i];
    out.nodes[it->second].messages_in_per_s += in_rate[i];
  }

  // Links: one entry per (link, sending node, receiving node).
  std::map<std::tuple<int, std::string, std::string>, size_t> link_index;
  for (const PlanEdge& e : plan.edges) {
    if (!e.crosses_nodes || e.link < 0 || !prof[e.from]) continue;
    const LinkPlan& lp = plan.links[e.link];
    const StageInstance& from = plan.instances[e.from];
    const StageInstance& to = plan.instances[e.to];
    const StageSpec& spec = pipeline.stages[from.stage];
    const std::string& port = spec.entry->spec.outputs[e.from_port].name;
    const double msgs = out_rate[e.from][e.from_port];
    const double frames = std::min(msgs, msgs * prof[e.from]->frames_per_message(port));
    const double per_frame = frames > 0 ? msgs / frames : 1;
    const double payload = msgs * prof[e.from]->bytes_per_message(port) +
                           frames * frame_header_bytes(from.node, per_frame);
    auto key = std::make_tuple(e.link, from.node, to.node);
    auto [it, fresh] = link_index.try_emplace(key, out.links.size());
    if (fresh) {
      LinkPrediction l;
      l.link = lp.name;
      l.from_node = from.node;
      l.to_node = to.node;
      l.via = lp.via;
      out.links.push_back(l);
    }
    LinkPrediction& l = out.links[it->second];
    l.messages_per_s += msgs;
    l.frames_per_s += frames;
    l.payload_bytes_per_s += payload;
    const double frame_bytes = frames > 0 ? payload / frames : 0;
    const double wire = frames * static_cast<double>(link_wire_bytes(
                                     pipeline, lp, static_cast<uint64_t>(frame_bytes + 0.5)));
    l.wire_bytes_per_s += wire;

    // The link's ends: CPU per frame, and the traffic each node's radio carries.
    const std::string from_base = base_node(from.node), to_base = base_node(to.node);
    NodePrediction* sender =
        node_index.count(from_base) ? &out.nodes[node_index[from_base]] : nullptr;
    NodePrediction* receiver =
        node_index.count(to_base) ? &out.nodes[node_index[to_base]] : nullptr;
    if (profile.links.measured) {
      if (sender) sender->cpu_core_seconds_per_s += frames * profile.links.send_cpu_per_frame;
      if (receiver)
        receiver->cpu_core_seconds_per_s += frames * profile.links.receive_cpu_per_frame;
    }
    add_link_traffic(pipeline, lp, frames, frame_bytes, sender, receiver);
  }
  if (!profile.links.measured && !plan.links.empty())
    out.warnings.push_back(
        "the profiled placement had no link between nodes, so the CPU of link ends is not "
        "counted; profile a placement with one for it");

  // Energy per node.
  for (NodePrediction& np : out.nodes) {
    fill_energy(pipeline, np, options);
    if (np.has_energy || out.month == 0) out.month = np.month;
  }
  if (options.month > 0) out.month = options.month;
  if (out.month == 0) out.month = current_month();
  return out;
}

}  // namespace edgeflow
