#include "planner/plan_output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace edgeflow {

std::string human_bytes_iec(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

namespace {

std::string verdict(const NodePrediction& n) {
  if (!n.has_energy) return "-";
  if (!n.energy.has_solar) return n.energy.saturated ? "saturated" : "no solar";
  std::string v = n.energy.positive ? "positive" : "negative";
  if (n.energy.saturated) v += ", saturated";
  return v;
}

}  // namespace

std::string plan_table(const Prediction& p) {
  std::string t =
      "placement: " + p.placement + "   (solar month " + std::to_string(p.month) + ")\n";
  char row[320];
  if (p.links.empty()) {
    t += "links: none (every stage on one node)\n";
  } else {
    t += "link                           from -> to             msgs/s   frames/s   payload/day   "
         "wire/day\n";
    for (const LinkPrediction& l : p.links) {
      std::snprintf(row, sizeof row, "%-30s %-19s %8.3f %10.3f %13s %10s\n", l.link.c_str(),
                    (l.from_node + " -> " + l.to_node).c_str(), l.messages_per_s, l.frames_per_s,
                    human_bytes_iec(l.bytes_per_day()).c_str(),
                    human_bytes_iec(l.wire_bytes_per_day()).c_str());
      t += row;
    }
  }
  t += "node       device        CPU     watts   Wh/day   harvest Wh/day  autonomy h  verdict\n";
  for (const NodePrediction& n : p.nodes) {
    if (n.has_energy) {
      std::string harvest = "-", autonomy = "-";
      if (n.energy.has_solar) {
        std::snprintf(row, sizeof row, "%.1f", n.energy.harvest_wh_per_day);
        harvest = row;
        std::snprintf(row, sizeof row, "%.1f", n.energy.autonomy_h);
        autonomy = row;
      }
      std::snprintf(row, sizeof row, "%-10s %-12s %5.2f%% %8.3f %8.2f %16s %11s  %s\n",
                    n.node.c_str(), n.device.c_str(), 100 * n.energy.cpu_util, n.energy.watts,
                    n.energy.wh_per_day, harvest.c_str(), autonomy.c_str(), verdict(n).c_str());
    } else {
      std::snprintf(row, sizeof row, "%-10s %-12s %5s %8s %8s %16s %11s  - (%s)\n", n.node.c_str(),
                    "-", "-", "-", "-", "-", "-", n.note.c_str());
    }
    t += row;
  }
  for (const std::string& w : p.warnings) t += "warning: " + w + "\n";
  return t;
}

nlohmann::json plan_json(const Prediction& p) {
  nlohmann::json links = nlohmann::json::array();
  for (const LinkPrediction& l : p.links)
    links.push_back({{"link", l.link},
                     {"from_node", l.from_node},
                     {"to_node", l.to_node},
                     {"via", l.via},
                     {"messages_per_s", l.messages_per_s},
                     {"frames_per_s", l.frames_per_s},
                     {"bytes_per_day", l.bytes_per_day()},
                     {"wire_bytes_per_day", l.wire_bytes_per_day()}});
  nlohmann::json nodes = nlohmann::json::array();
  for (const NodePrediction& n : p.nodes) {
    nlohmann::json j = {{"node", n.node},
                        {"tier", n.tier},
                        {"cpu_core_seconds_per_s", n.cpu_core_seconds_per_s},
                        {"tx_bytes_per_s", n.load.tx_bytes_per_s},
                        {"rx_bytes_per_s", n.load.rx_bytes_per_s}};
    if (n.has_energy) {
      j["device"] = n.device;
      j["network"] = n.energy.network;
      j["cpu_util"] = n.energy.cpu_util;
      j["saturated"] = n.energy.saturated;
      j["watts"] = n.energy.watts;
      j["wh_per_day"] = n.energy.wh_per_day;
      if (n.energy.has_solar) {
        j["harvest_wh_per_day"] = n.energy.harvest_wh_per_day;
        j["autonomy_h"] = n.energy.autonomy_h;
        j["positive"] = n.energy.positive;
      } else {
        j["harvest_wh_per_day"] = nullptr;
        j["autonomy_h"] = nullptr;
        j["positive"] = nullptr;
      }
    } else {
      for (const char* k :
           {"cpu_util", "watts", "wh_per_day", "harvest_wh_per_day", "autonomy_h", "positive"})
        j[k] = nullptr;
    }
    if (!n.note.empty()) j["note"] = n.note;
    nodes.push_back(j);
  }
  return {{"pipeline", p.pipeline}, {"placement", p.placement}, {"month", p.month},
          {"links", links},         {"nodes", nodes},           {"warnings", p.warnings}};
}

namespace {

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '&':
        o += "&amp;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

}  // namespace

std::string plan_svg(const PipelineSpec& pipeline, const Plan& plan, const Prediction& p) {
  // Layout: a column per node (pipeline order), its stage copies stacked in topological order.
  const int col_w = 230, gap = 90, box_w = 170, box_h = 34, top = 70, row_h = 56;
  std::map<std::string, int> col;
  std::map<std::string, int> rows;
  for (const NodeSpec& n : pipeline.nodes) col.emplace(n.name, static_cast<int>(col.size()));
  std::vector<std::pair<int, int>> pos(plan.instances.size());  // (x, y) of each copy
  for (size_t i = 0; i < plan.instances.size(); ++i) {
    const StageInstance& si = plan.instances[i];
    int c = col.count(si.node) ? col[si.node] : 0;
    int r = rows[si.node]++;
    pos[i] = {20 + c * (col_w + gap) + (col_w - box_w) / 2, top + 40 + r * row_h};
  }
  int max_rows = 1;
  for (const auto& [n, r] : rows) max_rows = std::max(max_rows, r);
  const int width = 40 + static_cast<int>(col.size()) * (col_w + gap) - gap;
  const int height = top + 60 + max_rows * row_h + 30;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
                  "\" height=\"" + std::to_string(height) +
                  "\" font-family=\"sans-serif\" font-size=\"12\">\n"
                  "<defs><marker id=\"a\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
                  "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 "
                  "L0,10 z\" fill=\"#444\"/></marker></defs>\n"
                  "<text x=\"20\" y=\"24\" font-size=\"15\" font-weight=\"bold\">" +
                  xml_escape(p.pipeline + ": " + p.placement) + "</text>\n";
  for (const NodePrediction& n : p.nodes) {
    if (!col.count(n.node)) continue;
    const int x = 20 + col[n.node] * (col_w + gap);
    const char* fill = !n.has_energy || !n.energy.has_solar ? "#eeeeee"
                       : n.energy.positive                  ? "#d8f0d8"
                                                            : "#f6d0d0";
    char label[200];
    if (n.has_energy)
      std::snprintf(label, sizeof label, "%s (%s) %.2f W%s", n.node.c_str(), n.device.c_str(),
                    n.energy.watts, n.energy.has_solar ? (n.energy.positive ? " +" : " -") : "");
    else
      std::snprintf(label, sizeof label, "%s", n.node.c_str());
    s += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(top) + "\" width=\"" +
         std::to_string(col_w) + "\" height=\"" + std::to_string(height - top - 20) +
         "\" rx=\"8\" fill=\"" + fill + "\" stroke=\"#888\"/>\n";
    s += "<text x=\"" + std::to_string(x + 8) + "\" y=\"" + std::to_string(top + 20) +
         "\" font-weight=\"bold\">" + xml_escape(label) + "</text>\n";
  }
  std::map<std::tuple<std::string, std::string, std::string>, double> link_bytes;
  for (const LinkPrediction& l : p.links)
    link_bytes[{l.link, l.from_node, l.to_node}] += l.bytes_per_day();
  for (const PlanEdge& e : plan.edges) {
    auto [x1, y1] = pos[e.from];
    auto [x2, y2] = pos[e.to];
    int sx = x1 + box_w / 2, sy = y1 + box_h, tx = x2 + box_w / 2, ty = y2;
    if (e.crosses_nodes) {
      sx = x1 + (x2 > x1 ? box_w : 0);
      sy = y1 + box_h / 2;
      tx = x2 + (x2 > x1 ? 0 : box_w);
      ty = y2 + box_h / 2;
    }
    s += "<line x1=\"" + std::to_string(sx) + "\" y1=\"" + std::to_string(sy) + "\" x2=\"" +
         std::to_string(tx) + "\" y2=\"" + std::to_string(ty) + "\" stroke=\"" +
         (e.crosses_nodes ? "#c05000" : "#444") + "\" stroke-width=\"" +
         (e.crosses_nodes ? "2" : "1") + "\" marker-end=\"url(#a)\"/>\n";
    if (e.crosses_nodes && e.link >= 0) {
      const std::string& name = plan.links[e.link].name;
      double b = link_bytes[{name, plan.instances[e.from].node, plan.instances[e.to].node}];
      s += "<text x=\"" + std::to_string((sx + tx) / 2) + "\" y=\"" +
           std::to_string((sy + ty) / 2 - 6) + "\" text-anchor=\"middle\" fill=\"#c05000\">" +
           xml_escape(human_bytes_iec(b) + "/day") + "</text>\n";
    }
  }
  for (size_t i = 0; i < plan.instances.size(); ++i) {
    const StageSpec& st = pipeline.stages[plan.instances[i].stage];
    auto [x, y] = pos[i];
    s += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) + "\" width=\"" +
         std::to_string(box_w) + "\" height=\"" + std::to_string(box_h) +
         "\" rx=\"5\" fill=\"white\" stroke=\"#333\"/>\n";
    s += "<text x=\"" + std::to_string(x + box_w / 2) + "\" y=\"" + std::to_string(y + 14) +
         "\" text-anchor=\"middle\" font-weight=\"bold\">" + xml_escape(st.id) + "</text>\n";
    s += "<text x=\"" + std::to_string(x + box_w / 2) + "\" y=\"" + std::to_string(y + 28) +
         "\" text-anchor=\"middle\" fill=\"#555\" font-size=\"11\">" + xml_escape(st.op) +
         "</text>\n";
  }
  s += "</svg>\n";
  return s;
}

}  // namespace edgeflow
