// What the cloud's dashboard shows, gathered from the fleet's MQTT traffic on the service's
// thread: the pipelines deployed (from the retained deployments: their graph, placed on the
// nodes), each link's bytes/s (from the counters in successive node statuses), recent motion
// events with their snapshots and iExec tasks (from the topics the deployed pipelines'
// sinks and schedulers publish on). Node states come from the registry beside it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cloud/registry.h"
#include "metrics/service_metrics.h"

namespace edgeflow {

class FleetView {
 public:
  // `trust`: the address deployments must be signed by to be shown; "" shows any signer's
  // (each pipeline says whose key signed it).
  explicit FleetView(std::string trust);

  // Every message of the fleet the cloud service follows (statuses, deployments, feeds).
  void on_message(const std::string& topic, const std::string& payload, int64_t now_ms);
  // A node forgotten by an operator: its link rates go.
  void forget(const std::string& node) { rates_.erase(node); }
  // Topic filters to follow from now on (the feeds of pipelines deployed since the last call).
  std::vector<std::string> take_new_filters();

  // The JSON API (docs/dashboard.md).
  nlohmann::json nodes_json(const NodeRegistry& registry) const;
  nlohmann::json pipelines_json(const NodeRegistry& registry) const;
  nlohmann::json motion_json() const;
  nlohmann::json tasks_json() const;
  nlohmann::json state_json(const NodeRegistry& registry, int64_t now_ms) const;
  // iExec results seen, per pipeline and final status (/metrics).
  std::vector<metrics::IexecTaskCount> task_counts() const;
  // The JPEG of a motion event ("<origin>/<event_id>"), if it came.
  const std::string* snapshot(const std::string& key) const;

  static constexpr size_t kMotionEvents = 30;  // kept, newest first; their snapshots too
  static constexpr size_t kTasks = 50;
  static constexpr size_t kSnapshotBytes = 2 << 20;  // a larger one is not kept
  static constexpr size_t kLinksPerNode = 64;        // link ends whose rate is kept
  static constexpr size_t kFeeds = 256;              // topic filters followed
  static constexpr size_t kWorkersPerTask = 32;

 private:
  struct Feed {
    enum Kind { kMotion, kSnapshot, kTaskEvents, kTaskResult } kind;
    std::string pipeline;
    std::vector<std::string> levels;  // the topic template, split at '/'
  };
  struct Deployed {
    std::string pipeline, file_name, part_hash, signer;
    uint64_t version = 0;
    std::string file_text, base_dir;
    std::vector<std::string> sets;
  };
  struct PipelineView {
    uint64_t version = 0;
    nlohmann::json graph;  // stages, placed copies, links; or {"error": ...}
  };
  struct LinkRate {
    double bytes = 0;
    int64_t at_ms = 0;  // the node's clock (its status's `time`)
    std::optional<double> bytes_per_s;
  };
  struct Snapshot {
    std::string jpeg;
    int64_t received_ms = 0;
  };

  static std::string snapshot_url(const std::string& key, const Snapshot& s);
  void on_status(const std::string& node, const nlohmann::json& status, int64_t now_ms);
  void on_deploy(const std::string& node, const std::string& payload);
  void rebuild(const std::string& pipeline);
  void on_feed(const Feed& feed, const std::string& topic, const std::string& payload,
               int64_t now_ms);
  void add_feed(Feed feed, const std::string& filter);

  std::string trust_;
  std::map<std::string, Deployed> deployed_;  // node -> its part, as deployed
  std::map<std::string, PipelineView> pipelines_;
  // node -> "link/direction" -> the link's bytes/s between its last two statuses
  std::map<std::string, std::map<std::string, LinkRate>> rates_;
  // topic filter -> what comes on it, one entry per pipeline that publishes there
  std::multimap<std::string, Feed> feeds_;
  std::map<std::string, uint64_t> versions_;  // node -> the newest deployment it accepted
  std::vector<std::string> new_filters_;
  std::set<std::string> followed_;     // every filter handed out by take_new_filters (never
                                       // unsubscribed: the client has no unsubscribe)
  std::deque<nlohmann::json> motion_;  // newest first
  std::map<std::string, Snapshot> snapshots_;
  std::map<std::string, nlohmann::json> tasks_;  // task id -> what is known of it
  std::deque<std::string> task_order_;           // most recently changed last
  std::map<std::pair<std::string, std::string>, uint64_t> finished_;  // (pipeline, status)
  std::set<std::string> counted_;  // tasks whose result is counted (the latest 100,000)
  std::deque<std::string> counted_order_;
};

}  // namespace edgeflow
