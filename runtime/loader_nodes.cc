// `nodes:` of a pipeline file: each node's tier, device, address, network and solar spec.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "runtime/loader_internal.h"
#include "runtime/options_yaml.h"

namespace edgeflow {

const std::vector<SolarKey>& solar_keys() {
  // Defaults live with the model (planner/solar.h); these are what a file may say.
  static const std::vector<SolarKey> keys = {
      {"panel_w", 0, 1e6, false, true, false, "panel peak watts (STC rating); 0 for none"},
      {"battery_wh", 0, 1e6, true, true, false, "battery capacity in watt-hours (mAh x V / 1000)"},
      {"lat", -90, 90, false, true, false, "site latitude in degrees, negative south"},
      {"tilt", 0, 90, false, false, false,
       "panel tilt from horizontal in degrees, facing the equator (default |lat|)"},
      {"derating", 0, 1, true, false, false,
       "panel output over its rating: heat, dust, wiring, mismatch (default 0.75)"},
      {"converter_eff", 0, 1, true, false, false, "charge controller efficiency (default 0.85)"},
      {"usable_fraction", 0, 1, true, false, false,
       "share of the battery's watt-hours the device gets (default 0.8)"},
      {"cloudiness", 0, 1, false, false, false,
       "share of clear-sky sunshine the site gets (default 0.7; 1 with a table)"},
      {"month", 1, 12, false, false, true, "month the planner shows when none is asked for"},
  };
  return keys;
}

const std::vector<std::string>& network_kinds() {
  static const std::vector<std::string> kinds = {"wifi", "ethernet", "cellular"};
  return kinds;
}

std::vector<std::string> PipelineSpec::nodes_for(const std::string& on) const {
  std::vector<std::string> out;
  for (const NodeSpec& n : nodes)
    if (n.tier == on || n.name == on) out.push_back(n.name);
  return out;
}

namespace {

const std::vector<std::string> kNodeKeys = {"tier", "device", "address", "network", "solar"};

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

void load_network(LoadContext& cx, const YAML::Node& network, NodeSpec& node) {
  auto n = cx.scalar(network, "", "node network");
  if (!n) return;
  const std::vector<std::string>& kinds = network_kinds();
  if (std::find(kinds.begin(), kinds.end(), *n) == kinds.end()) {
    std::string near = nearest_name(*n, kinds);
    cx.diags.add(mark_of(network), "", "node '" + node.name + "' has unknown network '" + *n + "'",
                 (near.empty() ? "" : "did you mean '" + near + "'? ") +
                     "a network is wifi, ethernet or cellular");
    return;
  }
  node.network = *n;
}

void load_solar(LoadContext& cx, const YAML::Node& solar, NodeSpec& node) {
  if (!solar.IsDefined()) return;
  node.solar_mark = mark_of(solar);
  if (!solar.IsMap()) {
    cx.diags.add(mark_of(solar), "",
                 "'solar' of node '" + node.name + "' must be a map like {panel_w: 10}");
    return;
  }
  const std::string owner = "solar of node '" + node.name + "'";
  std::vector<std::string> known = {"table"};
  for (const SolarKey& k : solar_keys()) known.push_back(k.name);
  // `efficiency` was accepted (and ignored) before the planner used these keys; it said
  // neither which losses nor where, so it is refused with the two keys that replace it.
  if (solar["efficiency"].IsDefined()) {
    cx.diags.add(mark_of(solar["efficiency"]), "", owner + ": 'efficiency' is ambiguous",
                 "say derating (panel, heat and wiring losses, default 0.75) or converter_eff "
                 "(charge controller, default 0.85)");
    known.push_back("efficiency");
  }
  cx.check_keys(solar, known, "", "solar key");
  for (const auto& kv : solar) {
    if (!kv.first.IsScalar()) continue;
    const std::string& key = kv.first.Scalar();
    if (key == "table") {
      if (auto t = cx.scalar(kv.second, "", owner + ": 'table'")) {
        if (t->empty())
          cx.diags.add(mark_of(kv.second), "", owner + ": 'table' is empty",
                       "name a CSV file of 12 lines month,kWh/m2/day (see docs/planner.md)");
        node.solar_table = *t;
      }
      continue;
    }
    auto k = std::find_if(solar_keys().begin(), solar_keys().end(),
                          [&](const SolarKey& sk) { return key == sk.name; });
    if (k == solar_keys().end()) continue;  // reported by check_keys
    if (!kv.second.IsScalar()) {
      cx.diags.add(mark_of(kv.second), "", owner + ": '" + key + "' must be a number",
                   k->description);
      continue;
    }
    double v = 0;
    try {
      v = kv.second.as<double>();
    } catch (const YAML::Exception&) {
      cx.diags.add(mark_of(kv.second), "",
                   owner + ": '" + key + "' must be a number (got '" + kv.second.Scalar() + "')",
                   k->description);
      continue;
    }
    bool below = k->lo_exclusive ? !(v > k->lo) : !(v >= k->lo);
    if (below || !(v <= k->hi) || (k->integer && v != static_cast<int>(v))) {
      cx.diags.add(mark_of(kv.second), "",
                   owner + ": '" + key + "' must be " + (k->integer ? "a whole number " : "") +
                       (k->lo_exclusive ? "> " : "from ") + number_text(k->lo) +
                       (k->lo_exclusive ? " and <= " : " to ") + number_text(k->hi) + " (got " +
                       kv.second.Scalar() + ")",
                   k->description);
      continue;
    }
    node.solar.emplace_back(key, v);
  }
  for (const SolarKey& k : solar_keys())
    if (k.required && !solar[k.name].IsDefined())
      cx.diags.add(mark_of(solar), "", owner + " has no '" + std::string(k.name) + "'",
                   std::string("add ") + k.name + ": " + k.description);
}

}  // namespace

void load_nodes(LoadContext& cx, const YAML::Node& nodes) {
  if (!nodes.IsDefined() || nodes.IsNull()) {
    cx.spec.nodes.resize(2);
    cx.spec.nodes[0].name = cx.spec.nodes[0].tier = "edge";
    cx.spec.nodes[1].name = cx.spec.nodes[1].tier = "cloud";
    return;
  }
  if (!nodes.IsMap()) {
    cx.diags.add(mark_of(nodes), "", "'nodes' must be a map of node names to {tier: edge|cloud}");
    return;
  }
  std::set<std::string> seen;
  for (const auto& kv : nodes) {
    std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "";
    SourceMark m = mark_of(kv.first);
    if (!valid_name(name)) {
      cx.diags.add(m, "", "node name '" + name + "' may hold only letters, digits, '-' and '_'");
      continue;
    }
    if (!seen.insert(name).second) cx.diags.add(m, "", "duplicate node '" + name + "'");
    NodeSpec node;
    node.name = name;
    node.mark = m;
    const YAML::Node& body = kv.second;
    if (!body.IsMap()) {
      cx.diags.add(m, "", "node '" + name + "' must be a map like {tier: edge}");
      continue;
    }
    cx.check_keys(body, kNodeKeys, "", "key of node '" + name + "'");
    YAML::Node tier = body["tier"];
    if (!tier.IsDefined()) {
      cx.diags.add(m, "", "node '" + name + "' has no tier", "add tier: edge or tier: cloud");
    } else if (auto t = cx.scalar(tier, "", "node tier")) {
      if (std::find(kTiers.begin(), kTiers.end(), *t) == kTiers.end()) {
        cx.diags.add(mark_of(tier), "", "node '" + name + "' has unknown tier '" + *t + "'",
                     "a tier is edge or cloud");
      }
      node.tier = *t;
    }
    if (body["device"].IsDefined())
      if (auto d = cx.scalar(body["device"], "", "node device")) node.device = *d;
    if (body["address"].IsDefined())
      if (auto a = cx.scalar(body["address"], "", "node address")) node.address = *a;
    if (body["network"].IsDefined()) load_network(cx, body["network"], node);
    load_solar(cx, body["solar"], node);
    cx.spec.nodes.push_back(std::move(node));
  }
}

}  // namespace edgeflow
