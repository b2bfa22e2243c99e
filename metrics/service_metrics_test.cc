// The services' Prometheus families, and the Grafana dashboard in docs/ against them: every
// metric name a dashboard query uses must be one that edgeflow serves.
#include "metrics/service_metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "metrics/prometheus.h"

namespace edgeflow::metrics {
namespace {

// Every family name (from # TYPE lines) in `text`.
std::set<std::string> names_in(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("# TYPE ", 0) == 0) out.insert(line.substr(7, line.find(' ', 7) - 7));
  return out;
}

NodeFigures a_node() {
  NodeFigures n;
  n.node = "pi-1";
  n.tier = "edge";
  n.state = "working";
  n.pipeline = "weather";
  n.energy_mode = "saver";
  n.charge_pct = 64;
  n.model_watts = 1.5;
  n.model_harvest_w = 3.25;
  n.spool_bytes = 4096;
  n.spool_frames = 3;
  return n;
}

TEST(ServiceMetrics, TheNodeStateIsOneHotAndTheChargeIsARatio) {
  const std::string text = node_text(a_node());
  EXPECT_NE(text.find("edgeflow_node_state{node=\"pi-1\",state=\"working\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("edgeflow_node_state{node=\"pi-1\",state=\"waiting\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("edgeflow_battery_charge_ratio{node=\"pi-1\"} 0.64000000000000001\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("edgeflow_energy_mode{node=\"pi-1\",mode=\"saver\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("edgeflow_spool_bytes{node=\"pi-1\"} 4096\n"), std::string::npos);
  // Each family's HELP and TYPE come once, before its first sample.
  EXPECT_EQ(text.find("# TYPE edgeflow_node_state gauge"),
            text.rfind("# TYPE edgeflow_node_state gauge"));
  // No charge known: no sample, rather than a made-up one.
  NodeFigures unknown = a_node();
  unknown.charge_pct.reset();
  EXPECT_EQ(node_text(unknown).find("edgeflow_battery_charge_ratio"), std::string::npos);
}

TEST(ServiceMetrics, TheFleetCountsNodesPerStateAndEscapesLabels) {
  std::vector<FleetNodeFigures> fleet(3);
  fleet[0].node = "pi-1";
  fleet[0].state = "working";
  fleet[1].node = "pi-2";
  fleet[1].state = "offline";
  fleet[2].node = "odd \"name\"\\";
  fleet[2].state = "unknown";
  fleet[2].last_seen_ms = 1'700'000'000'000;
  const std::string text = fleet_text(fleet);
  EXPECT_NE(text.find("edgeflow_fleet_nodes{state=\"offline\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("edgeflow_fleet_nodes{state=\"unknown\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("edgeflow_fleet_nodes{state=\"working\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("edgeflow_fleet_nodes{state=\"error\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("edgeflow_fleet_node_state{node=\"pi-2\",state=\"offline\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("node=\"odd \\\"name\\\"\\\\\""), std::string::npos) << text;
  EXPECT_NE(text.find("edgeflow_fleet_node_last_seen_timestamp_seconds{node=\"odd "),
            std::string::npos);
}

TEST(MetricNames, TheGrafanaDashboardQueriesOnlyNamesThatAreServed) {
  // Everything served: a part's stage and link families, the process, a node, the fleet.
  Snapshot s;
  s.pipeline = "p";
  s.stages.emplace_back();
  s.links.emplace_back();
  FleetNodeFigures f;
  f.node = "pi-1";
  f.state = "working";
  f.last_seen_ms = 1;
  f.charge_pct = 50;
  f.spool_bytes = 1;
  std::set<std::string> served =
      names_in(prometheus_text(s) + node_text(a_node()) + fleet_text({f}));
  ASSERT_GT(served.size(), 30u);

  std::ifstream in(std::string(EDGEFLOW_SOURCE_DIR) + "/docs/grafana/edgeflow-fleet.json");
  ASSERT_TRUE(in) << "docs/grafana/edgeflow-fleet.json";
  const nlohmann::json dashboard = nlohmann::json::parse(in);
  const std::regex name(R"(\b((?:edgeflow|process)_[a-z_]+))");
  size_t queries = 0;
  for (const auto& panel : dashboard.at("panels")) {
    for (const auto& target : panel.at("targets")) {
      const std::string expr = target.at("expr");
      ++queries;
      for (std::sregex_iterator it(expr.begin(), expr.end(), name), end; it != end; ++it)
        EXPECT_TRUE(served.count((*it)[1].str()))
            << "panel '" << panel.value("title", "") << "' queries " << (*it)[1].str()
            << ", which nothing serves";
    }
  }
  EXPECT_GT(queries, 10u);
}

}  // namespace
}  // namespace edgeflow::metrics
