// The weather pipeline the link tests run over every transport (tests/links_test.cc for MQTT
// and ZeroMQ, tests/links_nats_test.cc for NATS), and how they compare its windows with the
// same pipeline on in-process queues.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace edgeflow::testing {

using json = nlohmann::json;

inline std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

struct Transport {
  std::string name;  // test suffix
  std::string via;
  std::string client;  // MQTT client library
};

inline void PrintTo(const Transport& t, std::ostream* os) { *os << t.name; }

// Two edge nodes aggregate their own readings; the cloud writes the aggregates to a file.
// `count` readings per node at one per event second: count/60 full one-minute windows.
inline std::string weather_pipeline(const Transport& t, const std::string& links_extra, int count,
                                    double speed) {
  std::ostringstream y;
  y << "pipeline: links-test\n"
       "nodes:\n"
       "  pi-1: {tier: edge, address: 127.0.0.1}\n"
       "  pi-2: {tier: edge, address: 127.0.0.1}\n"
       "  cloud: {tier: cloud, address: 127.0.0.1}\n"
       "links: {via: "
    << t.via << (t.client.empty() ? "" : ", mqtt: {client: " + t.client + links_extra + "}")
    << (t.client.empty() ? links_extra : "")  // zmq: {...}, nats: {...}
    << "}\n"
       "stages:\n"
       "  - id: sensors\n"
       "    op: weather.simulate\n"
       "    on: edge\n"
       "    with: {period: 1s, speed: "
    << speed << ", count: " << count
    << ", start: \"2026-06-01T00:00:00Z\"}\n"
       "  - id: minute\n"
       "    op: weather.aggregate\n"
       "    on: edge\n"
       "    from: sensors\n"
       "    with: {window: 60s, fields: [temperature], stats: [min, mean, max]}\n"
       "  - id: out\n"
       "    op: file.write\n"
       "    on: cloud\n"
       "    from: minute\n"
       "    with: {path: out.jsonl}\n";
  return y.str();
}

// Aggregates per origin node keyed by window start; fails on a window seen twice.
inline std::map<std::string, std::map<std::string, json>> by_origin(
    const std::vector<json>& lines) {
  std::map<std::string, std::map<std::string, json>> out;
  for (const json& j : lines) {
    std::string origin = j.value("node", "");  // file.write names the origin "node"
    std::string start = j.value("window_start", "");
    EXPECT_FALSE(out[origin].count(start)) << "window " << start << " of " << origin << " twice";
    json copy = j;
    out[origin][start] = copy;
  }
  return out;
}

// The windows of a run over NATS against those of an in-process run. Readings delivered
// again come after newer ones, so a mean may differ in its last bits (another order of
// summing); counts, minima and maxima may not.
inline void expect_same_windows(std::map<std::string, std::map<std::string, json>> got,
                                const std::map<std::string, std::map<std::string, json>>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [origin, windows] : want)
    for (const auto& [start, w] : windows) {
      const json& g = got[origin][start];
      EXPECT_EQ(g.value("count", -1), w["count"]) << origin << " " << start;
      EXPECT_EQ(g.value("temperature_min", 0.0), w["temperature_min"]) << origin << " " << start;
      EXPECT_EQ(g.value("temperature_max", 0.0), w["temperature_max"]) << origin << " " << start;
      EXPECT_NEAR(g.value("temperature_mean", 0.0), w["temperature_mean"].get<double>(), 1e-9)
          << origin << " " << start;
    }
}

inline int total_count(const std::map<std::string, json>& windows) {
  int n = 0;
  for (const auto& [start, j] : windows) n += j.value("count", 0);
  return n;
}

// The same pipeline with in-process queues: what every transport must reproduce exactly.
inline std::vector<json> reference_run(const std::string& yaml) {
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  ProcessResult r =
      run_process({edgeflow_binary(), "run", dir + "/p.yaml", "--local-links", "--quiet"}, 120);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json_lines(read_file(dir + "/out.jsonl"));
}

// `edgeflow run DIR/p.yaml --node NAME`, its report in DIR/NAME.json.
inline std::unique_ptr<Process> run_node(const std::string& dir, const std::string& name) {
  return std::make_unique<Process>(
      std::vector<std::string>{edgeflow_binary(), "run", dir + "/p.yaml", "--node", name,
                               "--report", dir + "/" + name + ".json"});
}

}  // namespace edgeflow::testing
