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

nlohmann::json node_json(const NodePrediction& n) {
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
  return j;
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
  for (const NodePrediction& n : p.nodes) nodes.push_back(node_json(n));
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
  // Layout: edge nodes stacked in a column on the left, cloud nodes on the right; each node a
  // row with its stage copies left to right in topological order. Links run between columns.
  const int box_w = 150, box_h = 34, pad = 14, gap_x = 24, node_h = box_h + 44, node_gap = 16;
  const int top = 44, col_gap = 150;
  std::map<std::string, int> count;  // stage copies per node
  for (const StageInstance& si : plan.instances) count[si.node]++;
  auto node_w = [&](const std::string& n) {
    int k = std::max(1, count[n]);
    return 2 * pad + k * box_w + (k - 1) * gap_x;
  };
  int left_w = 200, right_w = 200;
  for (const NodeSpec& n : pipeline.nodes)
    (n.tier == "cloud" ? right_w : left_w) =
        std::max(n.tier == "cloud" ? right_w : left_w, node_w(n.name));
  std::map<std::string, std::pair<int, int>> node_xy;
  int y_left = top, y_right = top;
  for (const NodeSpec& n : pipeline.nodes) {
    bool cloud = n.tier == "cloud";
    int& y = cloud ? y_right : y_left;
    node_xy[n.name] = {cloud ? 20 + left_w + col_gap : 20, y};
    y += node_h + node_gap;
  }
  std::vector<std::pair<int, int>> pos(plan.instances.size());  // (x, y) of each copy
  std::map<std::string, int> slot;
  for (size_t i = 0; i < plan.instances.size(); ++i) {
    const std::string n = base_node(plan.instances[i].node);  // replicas: in their node's box
    auto [nx, ny] = node_xy[n];
    int k = slot[n]++;
    pos[i] = {nx + pad + k * (box_w + gap_x), ny + 32};
  }
  const int width = 40 + left_w + col_gap + right_w;
  const int height = std::max(y_left, y_right) + 10;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
                  "\" height=\"" + std::to_string(height) +
                  "\" font-family=\"sans-serif\" font-size=\"12\">\n"
                  "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
                  "<defs><marker id=\"a\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
                  "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 "
                  "L0,10 z\" fill=\"#444\"/></marker></defs>\n"
                  "<text x=\"20\" y=\"26\" font-size=\"15\" font-weight=\"bold\">" +
                  xml_escape(p.pipeline + ": " + p.placement) + "</text>\n";
  for (const NodePrediction& n : p.nodes) {
    if (!node_xy.count(n.node)) continue;
    auto [x, y] = node_xy[n.node];
    const char* fill = !n.has_energy || !n.energy.has_solar ? "#eeeeee"
                       : n.energy.positive                  ? "#d8f0d8"
                                                            : "#f6d0d0";
    char label[200];
    if (n.has_energy && n.energy.has_solar)
      std::snprintf(label, sizeof label, "%s (%s): %.2f W, %.0f of %.0f Wh/day, %.0f h",
                    n.node.c_str(), n.device.c_str(), n.energy.watts, n.energy.wh_per_day,
                    n.energy.harvest_wh_per_day, n.energy.autonomy_h);
    else if (n.has_energy)
      std::snprintf(label, sizeof label, "%s (%s): %.2f W", n.node.c_str(), n.device.c_str(),
                    n.energy.watts);
    else
      std::snprintf(label, sizeof label, "%s", n.node.c_str());
    s += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) + "\" width=\"" +
         std::to_string(node_w(n.node)) + "\" height=\"" + std::to_string(node_h) +
         "\" rx=\"8\" fill=\"" + fill + "\" stroke=\"#888\"/>\n";
    s += "<text x=\"" + std::to_string(x + 8) + "\" y=\"" + std::to_string(y + 18) +
         "\" font-weight=\"bold\">" + xml_escape(label) + "</text>\n";
  }
  std::map<std::tuple<std::string, std::string, std::string>, double> link_bytes;
  for (const LinkPrediction& l : p.links)
    link_bytes[{l.link, l.from_node, l.to_node}] += l.bytes_per_day();
  for (const PlanEdge& e : plan.edges) {
    auto [x1, y1] = pos[e.from];
    auto [x2, y2] = pos[e.to];
    const bool right = x2 >= x1;
    int sx = x1 + (right ? box_w : 0), sy = y1 + box_h / 2;
    int tx = x2 + (right ? 0 : box_w), ty = y2 + box_h / 2;
    s += "<line x1=\"" + std::to_string(sx) + "\" y1=\"" + std::to_string(sy) + "\" x2=\"" +
         std::to_string(tx) + "\" y2=\"" + std::to_string(ty) + "\" stroke=\"" +
         (e.crosses_nodes ? "#c05000" : "#444") + "\" stroke-width=\"" +
         (e.crosses_nodes ? "2" : "1") + "\" marker-end=\"url(#a)\"/>\n";
    if (e.crosses_nodes && e.link >= 0) {
      const std::string& name = plan.links[e.link].name;
      double b = link_bytes[{name, plan.instances[e.from].node, plan.instances[e.to].node}];
      // Near the sending end, so the labels of links fanning in do not pile up.
      const int lx = sx + (tx - sx) / 4, ly = sy + (ty - sy) / 4 - 6;
      s += "<text x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly) +
           "\" text-anchor=\"middle\" fill=\"#c05000\">" + xml_escape(human_bytes_iec(b) + "/day") +
           "</text>\n";
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
