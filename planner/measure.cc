#include "planner/measure.h"

#include <cmath>
#include <cstdio>

#include "planner/plan_output.h"

namespace edgeflow {

namespace {

const LinkPlan* find_link(const Plan& plan, const std::string& name) {
  for (const LinkPlan& l : plan.links)
    if (l.name == name) return &l;
  return nullptr;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// "+4.1%"; "-" when nothing was measured to compare with.
std::string pct(double predicted, double measured) {
  if (measured == 0) return predicted == 0 ? "0.0%" : "-";
  return fmt("%+.1f%%", 100.0 * (predicted - measured) / measured);
}

nlohmann::json pct_json(double predicted, double measured) {
  if (measured == 0) return predicted == 0 ? nlohmann::json(0.0) : nlohmann::json(nullptr);
  return 100.0 * (predicted - measured) / measured;
}

}  // namespace

Measured measure_run(const PipelineSpec& pipeline, const Plan& plan,
                     const std::vector<StageMetrics>& stages, const std::vector<LinkMetrics>& links,
                     double seconds, const PredictOptions& options) {
  Measured m;
  m.seconds = seconds > 0 ? seconds : 1e-9;
  std::map<std::string, std::pair<double, int>> source_out;  // stage -> (messages, copies)
  std::map<std::string, size_t> node_index;
  auto node = [&](const std::string& plan_node) -> NodePrediction& {
    const std::string name = base_node(plan_node);  // a replica counts on its machine
    auto [it, fresh] = node_index.try_emplace(name, m.nodes.size());
    if (fresh) {
      NodePrediction np;
      np.node = name;
      const NodeSpec* ns = pipeline.node(name);
      np.tier = ns ? ns->tier : "";
      m.nodes.push_back(np);
    }
    return m.nodes[it->second];
  };
  for (const StageMetrics& s : stages) {
    NodePrediction& np = node(s.node);
    np.cpu_core_seconds_per_s += s.cpu_seconds / m.seconds;
    if (s.op.rfind("link.", 0) == 0) continue;
    np.messages_in_per_s += static_cast<double>(s.in) / m.seconds;
    const StageSpec* spec = nullptr;
    for (const StageSpec& st : pipeline.stages)
      if (st.id == s.stage) spec = &st;
    if (spec && spec->entry && spec->entry->spec.is_source()) {
      auto& [msgs, copies] = source_out[s.stage];
      msgs += static_cast<double>(s.out);
      copies += 1;
    }
  }
  for (const auto& [stage, mc] : source_out)
    m.source_rates[stage] = mc.first / mc.second / m.seconds;

  for (const LinkMetrics& l : links) {
    const LinkPlan* lp = find_link(plan, l.link);
    const double frames = static_cast<double>(l.batches) / m.seconds;
    const double payload = static_cast<double>(l.payload_bytes) / m.seconds;
    const double frame_bytes = frames > 0 ? payload / frames : 0;
    NodePrediction& np = node(l.node);
    if (lp)
      add_link_traffic(pipeline, *lp, frames, frame_bytes, l.direction == "send" ? &np : nullptr,
                       l.direction == "send" ? nullptr : &np);
    if (l.direction != "send") continue;
    LinkPrediction lm;
    lm.link = l.link;
    lm.from_node = l.node;
    lm.via = l.via;
    lm.messages_per_s = static_cast<double>(l.messages) / m.seconds;
    lm.frames_per_s = frames;
    lm.payload_bytes_per_s = payload;
    lm.wire_bytes_per_s = static_cast<double>(l.wire_bytes) / m.seconds;
    m.links.push_back(lm);
  }
  for (NodePrediction& np : m.nodes) fill_energy(pipeline, np, options);
  return m;
}

nlohmann::json measured_nodes_json(const Measured& m) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const NodePrediction& np : m.nodes) nodes.push_back(node_json(np));
  return nodes;
}

std::optional<Measured> measured_from_report(const std::string& text, const std::string& file,
                                             const PipelineSpec& pipeline, const Plan& plan,
                                             const PredictOptions& options, std::string* error) {
  std::vector<StageMetrics> stages;
  std::vector<LinkMetrics> links;
  double seconds = 0;
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (j.value("pipeline", "") != pipeline.name) {
      *error = file + ": a report of pipeline '" + j.value("pipeline", "?") + "', not '" +
               pipeline.name + "'";
      return std::nullopt;
    }
    seconds = j.at("wall_seconds").get<double>();
    for (const auto& s : j.at("stages")) {
      StageMetrics m;
      m.stage = s.at("stage").get<std::string>();
      m.node = s.at("node").get<std::string>();
      m.op = s.at("op").get<std::string>();
      m.in = s.at("in").get<uint64_t>();
      m.out = s.at("out").get<uint64_t>();
      m.cpu_seconds = s.at("cpu_seconds").get<double>();
      stages.push_back(m);
    }
    for (const auto& l : j.at("links")) {
      LinkMetrics m;
      m.link = l.at("link").get<std::string>();
      m.node = l.at("node").get<std::string>();
      m.direction = l.at("direction").get<std::string>();
      m.via = l.at("via").get<std::string>();
      m.messages = l.at("messages").get<uint64_t>();
      m.payload_bytes = l.at("payload_bytes").get<uint64_t>();
      m.wire_bytes = l.at("wire_bytes_estimate").get<uint64_t>();
      m.batches = l.at("batches").get<uint64_t>();
      links.push_back(m);
    }
  } catch (const nlohmann::json::exception& e) {
    *error = file + ": not a report of edgeflow run --report (" + std::string(e.what()) + ")";
    return std::nullopt;
  }
  return measure_run(pipeline, plan, stages, links, seconds, options);
}

namespace {

struct LinkPair {
  const LinkPrediction* measured;
  LinkPrediction predicted;  // summed over the receivers of (link, from_node)
};

std::vector<LinkPair> pair_links(const Prediction& p, const Measured& m) {
  std::vector<LinkPair> out;
  for (const LinkPrediction& ml : m.links) {
    LinkPair lp{&ml, {}};
    for (const LinkPrediction& pl : p.links) {
      if (pl.link != ml.link || pl.from_node != ml.from_node) continue;
      lp.predicted.messages_per_s += pl.messages_per_s;
      lp.predicted.frames_per_s += pl.frames_per_s;
      lp.predicted.payload_bytes_per_s += pl.payload_bytes_per_s;
      lp.predicted.wire_bytes_per_s += pl.wire_bytes_per_s;
    }
    out.push_back(lp);
  }
  return out;
}

const NodePrediction* find_node(const Prediction& p, const std::string& name) {
  for (const NodePrediction& n : p.nodes)
    if (n.node == name) return &n;
  return nullptr;
}

}  // namespace

std::string compare_table(const Prediction& p, const Measured& m) {
  std::string t = "per second of the run (" + fmt("%.1f", m.seconds) +
                  " s), at the rates its sources produced\n";
  t += "link                           from      msgs/s pred   meas   err    bytes/s pred     meas"
       "     err\n";
  for (const LinkPair& lp : pair_links(p, m)) {
    char row[256];
    std::snprintf(row, sizeof row, "%-30s %-9s %9.2f %8.2f %7s %11.0f %9.0f %7s\n",
                  lp.measured->link.c_str(), lp.measured->from_node.c_str(),
                  lp.predicted.messages_per_s, lp.measured->messages_per_s,
                  pct(lp.predicted.messages_per_s, lp.measured->messages_per_s).c_str(),
                  lp.predicted.payload_bytes_per_s, lp.measured->payload_bytes_per_s,
                  pct(lp.predicted.payload_bytes_per_s, lp.measured->payload_bytes_per_s).c_str());
    t += row;
  }
  t += "node       CPU ms/s pred    meas    err    watts pred   meas    err\n";
  for (const NodePrediction& mn : m.nodes) {
    const NodePrediction* pn = find_node(p, mn.node);
    if (!pn) continue;
    char row[256];
    const double pc = pn->cpu_core_seconds_per_s * 1e3, mc = mn.cpu_core_seconds_per_s * 1e3;
    if (pn->has_energy && mn.has_energy) {
      std::snprintf(row, sizeof row, "%-10s %13.2f %7.2f %7s %10.3f %6.3f %7s\n", mn.node.c_str(),
                    pc, mc, pct(pc, mc).c_str(), pn->energy.watts, mn.energy.watts,
                    pct(pn->energy.watts, mn.energy.watts).c_str());
    } else {
      std::snprintf(row, sizeof row, "%-10s %13.2f %7.2f %7s %10s %6s\n", mn.node.c_str(), pc, mc,
                    pct(pc, mc).c_str(), "-", "-");
    }
    t += row;
  }
  return t;
}

nlohmann::json compare_json(const Prediction& p, const Measured& m) {
  nlohmann::json links = nlohmann::json::array();
  for (const LinkPair& lp : pair_links(p, m)) {
    const LinkPrediction& pr = lp.predicted;
    const LinkPrediction& me = *lp.measured;
    links.push_back(
        {{"link", me.link},
         {"from_node", me.from_node},
         {"predicted",
          {{"messages_per_s", pr.messages_per_s},
           {"payload_bytes_per_s", pr.payload_bytes_per_s},
           {"wire_bytes_per_s", pr.wire_bytes_per_s}}},
         {"measured",
          {{"messages_per_s", me.messages_per_s},
           {"payload_bytes_per_s", me.payload_bytes_per_s},
           {"wire_bytes_per_s", me.wire_bytes_per_s}}},
         {"error_pct",
          {{"messages_per_s", pct_json(pr.messages_per_s, me.messages_per_s)},
           {"payload_bytes_per_s", pct_json(pr.payload_bytes_per_s, me.payload_bytes_per_s)},
           {"wire_bytes_per_s", pct_json(pr.wire_bytes_per_s, me.wire_bytes_per_s)}}}});
  }
  nlohmann::json nodes = nlohmann::json::array();
  for (const NodePrediction& mn : m.nodes) {
    const NodePrediction* pn = find_node(p, mn.node);
    if (!pn) continue;
    nlohmann::json j = {{"node", mn.node},
                        {"predicted", {{"cpu_core_seconds_per_s", pn->cpu_core_seconds_per_s}}},
                        {"measured", {{"cpu_core_seconds_per_s", mn.cpu_core_seconds_per_s}}},
                        {"error_pct",
                         {{"cpu_core_seconds_per_s",
                           pct_json(pn->cpu_core_seconds_per_s, mn.cpu_core_seconds_per_s)}}}};
    if (pn->has_energy && mn.has_energy) {
      j["predicted"]["watts"] = pn->energy.watts;
      j["measured"]["watts"] = mn.energy.watts;
      j["error_pct"]["watts"] = pct_json(pn->energy.watts, mn.energy.watts);
    }
    nodes.push_back(j);
  }
  return {{"seconds", m.seconds}, {"links", links}, {"nodes", nodes}};
}

}  // namespace edgeflow
