#include "cloud/fleet_view.h"

#include <algorithm>
#include <cmath>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/client_internal.h"
#include "cloud/json_fields.h"
#include "fleet/protocol.h"
#include "runtime/duration.h"
#include "runtime/log.h"
#include "runtime/placement.h"

namespace edgeflow {
namespace {

using json = nlohmann::json;

std::vector<std::string> split_levels(const std::string& topic) {
  std::vector<std::string> out;
  size_t at = 0;
  while (true) {
    const size_t slash = topic.find('/', at);
    out.push_back(topic.substr(at, slash == std::string::npos ? std::string::npos : slash - at));
    if (slash == std::string::npos) return out;
    at = slash + 1;
  }
}

// The value a topic gives to a level of its template that is exactly `placeholder`.
std::string level_value(const std::vector<std::string>& templ, const std::string& topic,
                        const std::string& placeholder) {
  const std::vector<std::string> levels = split_levels(topic);
  for (size_t i = 0; i < templ.size() && i < levels.size(); ++i)
    if (templ[i] == placeholder) return levels[i];
  return "";
}

// "edgeflow/nodes/<node>/<what>" -> node, when `topic` has that shape.
std::string node_of(const std::string& topic, const std::string& what) {
  const std::string head = "edgeflow/nodes/", tail = "/" + what;
  if (topic.size() <= head.size() + tail.size() || topic.compare(0, head.size(), head) != 0 ||
      topic.compare(topic.size() - tail.size(), tail.size(), tail) != 0)
    return "";
  const std::string node = topic.substr(head.size(), topic.size() - head.size() - tail.size());
  return node.find('/') == std::string::npos ? node : "";
}

}  // namespace

// The snapshot's address, new for each picture (the query is not read): a camera restarted
// reuses event ids, and a page must not keep showing the picture it has.
std::string FleetView::snapshot_url(const std::string& key, const Snapshot& s) {
  return "/api/motion/" + key + ".jpg?at=" + std::to_string(s.received_ms);
}

FleetView::FleetView(std::string trust) : trust_(std::move(trust)) {}

void FleetView::on_message(const std::string& topic, const std::string& payload, int64_t now_ms) {
  if (std::string node = node_of(topic, "status"); !node.empty()) {
    json status = json::parse(payload, nullptr, false);
    if (status.is_object()) on_status(node, status, now_ms);
    return;
  }
  if (std::string node = node_of(topic, "deploy"); !node.empty()) {
    on_deploy(node, payload);
    return;
  }
  for (const auto& [filter, feed] : feeds_) {
    if (mqtt::topic_matches(filter, topic)) on_feed(feed, topic, payload, now_ms);
  }
}

std::vector<std::string> FleetView::take_new_filters() {
  std::vector<std::string> out;
  out.swap(new_filters_);
  return out;
}

// Bytes/s of each link end between two statuses of its node, timed by the node's own clock
// (a retained status comes late, a busy cloud reads late) and at least a second apart (a
// status that follows a change of state closely would make a noisy figure). Only the link
// ends of the latest status are kept.
void FleetView::on_status(const std::string& node, const json& status, int64_t now_ms) {
  if (text_of(status, "state") == "offline") {  // it sends nothing now
    rates_.erase(node);
    return;
  }
  const std::optional<int64_t> at_us = parse_iso8601_us(text_of(status, "time"));
  const int64_t at_ms = at_us ? *at_us / 1000 : now_ms;
  auto links = status.find("links");
  std::map<std::string, LinkRate> fresh;
  std::map<std::string, LinkRate>& rates = rates_[node];
  if (links != status.end() && links->is_array()) {
    for (const json& l : *links) {
      if (!l.is_object() || fresh.size() >= kLinksPerNode) continue;
      const std::optional<double> bytes = number_of(l, "payload_bytes");
      if (!bytes) continue;
      const std::string key = text_of(l, "link") + "/" + text_of(l, "direction");
      auto before = rates.find(key);
      LinkRate r = before != rates.end() ? before->second : LinkRate{};
      if (r.at_ms > 0 && at_ms - r.at_ms < 1000 && at_ms >= r.at_ms) {
        fresh[key] = r;  // too soon for a new figure
        continue;
      }
      if (r.at_ms > 0 && at_ms > r.at_ms && *bytes >= r.bytes)
        r.bytes_per_s = (*bytes - r.bytes) * 1000.0 / static_cast<double>(at_ms - r.at_ms);
      else
        r.bytes_per_s.reset();  // the first status, a new part counting from 0, a clock step
      r.bytes = *bytes;
      r.at_ms = at_ms;
      fresh[key] = r;
    }
  }
  rates = std::move(fresh);
}

// As its node does: a deployment not signed by the trusted key, addressed to another node,
// or older than the one the node holds, and a cleared retained message, change nothing; a
// signed one replaces the node's part, an undeploy removes it.
void FleetView::on_deploy(const std::string& node, const std::string& payload) {
  if (payload.empty()) return;
  fleet::Opened o = fleet::open(payload, trust_.empty() ? fleet::kAnySigner : trust_);
  if (!o.deployment) {
    logger().warn("dashboard: the deployment on {} is not shown: {}", fleet::deploy_topic(node),
                  o.error);
    return;
  }
  const fleet::Deployment& d = *o.deployment;
  // The node keeps the newest version it took, undeploys included.
  if (d.node != node || d.version <= versions_[node]) return;
  versions_[node] = d.version;
  auto held = deployed_.find(node);
  std::string before;
  if (held != deployed_.end()) before = held->second.pipeline;
  if (d.kind == "deploy") {
    deployed_[node] = {d.pipeline, d.file_name, d.part_hash, o.signer,
                       d.version,  d.file_text, d.base_dir,  d.sets};
    rebuild(d.pipeline);
  } else {
    deployed_.erase(node);
  }
  if (!before.empty()) rebuild(before);
}

// A pipeline's graph, from the newest deployment of it, placed as its nodes run it.
void FleetView::rebuild(const std::string& pipeline) {
  const Deployed* newest = nullptr;
  for (const auto& [node, d] : deployed_)
    if (d.pipeline == pipeline && (!newest || d.version > newest->version)) newest = &d;
  // Its feeds are those of its newest deployment only (or none).
  for (auto it = feeds_.begin(); it != feeds_.end();)
    it = it->second.pipeline == pipeline ? feeds_.erase(it) : std::next(it);
  if (!newest) {
    pipelines_.erase(pipeline);
    return;
  }
  PipelineView& view = pipelines_[pipeline];
  view.version = newest->version;
  json g = {{"pipeline", pipeline},
            {"version", newest->version},
            {"file", newest->file_name},
            {"signer", newest->signer}};
  std::vector<OptionOverride> sets;
  for (const std::string& s : newest->sets)
    if (auto o = parse_override(s)) sets.push_back(*o);
  // Shown, not run here: the file's own plugins are not loaded into the cloud.
  LoadResult loaded = load_pipeline_text(newest->file_text, newest->file_name, newest->base_dir,
                                         sets, /*user_plugins=*/false);
  if (!loaded.pipeline) {
    g["error"] = loaded.diags.str();
    view.graph = std::move(g);
    return;
  }
  const PipelineSpec& p = *loaded.pipeline;
  const Plan plan = place(p);
  json nodes = json::array(), stages = json::array(), copies = json::array(), edges = json::array(),
       links = json::array();
  for (const NodeSpec& n : p.nodes) {
    json node = {{"name", n.name}, {"tier", n.tier}, {"device", n.device}};
    for (const auto& [key, value] : n.solar) node["solar"][key] = value;
    nodes.push_back(std::move(node));
  }
  for (const StageSpec& s : p.stages) stages.push_back({{"id", s.id}, {"op", s.op}, {"on", s.on}});
  for (const StageInstance& i : plan.instances)
    copies.push_back({{"stage", p.stages[static_cast<size_t>(i.stage)].id}, {"node", i.node}});
  for (const PlanEdge& e : plan.edges) {
    json edge = {{"from", e.from}, {"to", e.to}};
    if (e.crosses_nodes && e.link >= 0) edge["link"] = plan.links[static_cast<size_t>(e.link)].name;
    edges.push_back(std::move(edge));
  }
  for (const LinkPlan& l : plan.links)
    links.push_back(
        {{"name", l.name}, {"via", l.via}, {"senders", l.senders}, {"receivers", l.receivers}});
  g["nodes"] = std::move(nodes);
  g["stages"] = std::move(stages);
  g["copies"] = std::move(copies);
  g["edges"] = std::move(edges);
  g["links"] = std::move(links);
  view.graph = std::move(g);

  // Its feeds for the dashboard, on the fleet's broker (a stage with a broker of its own
  // publishes elsewhere).
  for (const StageSpec& s : p.stages) {
    if (s.options.has("broker")) continue;
    if (s.op == "mqtt.publish" && !s.inputs.empty()) {
      const StageSpec* from = p.stage(s.inputs[0].stage);
      if (!from || from->op != "vision.motion") continue;
      const std::string& port = s.inputs[0].port;
      if (port != "out" && port != "snapshots") continue;
      const std::string templ = s.options.get_string("topic");
      add_feed({port == "out" ? Feed::kMotion : Feed::kSnapshot, pipeline, split_levels(templ)},
               fleet::topic_filter_of(templ));
    } else if (s.op == "iexec.scheduler") {
      const std::string base = "edgeflow/" + p.name + "/iexec/" + s.options.get_string("pool");
      add_feed({Feed::kTaskEvents, pipeline, {}}, base + "/events");
      add_feed({Feed::kTaskResult, pipeline, {}}, base + "/results/+");
    }
  }
}

void FleetView::add_feed(Feed feed, const std::string& filter) {
  // Any text may stand in a topic option or a pool's name: a filter the broker would refuse
  // is not followed.
  if (!mqtt::detail::valid_filter(filter) || feeds_.size() >= kFeeds) {
    logger().warn("dashboard: not following '{}' for pipeline '{}' ({})", filter, feed.pipeline,
                  feeds_.size() >= kFeeds ? "too many feeds" : "not a valid topic filter");
    return;
  }
  // Subscribed once: the client renews it after reconnects, and MQTT 3.1.1 has it sent once
  // however many pipelines publish there.
  if (followed_.insert(filter).second) new_filters_.push_back(filter);
  feeds_.emplace(filter, std::move(feed));
}

void FleetView::on_feed(const Feed& feed, const std::string& topic, const std::string& payload,
                        int64_t now_ms) {
  if (feed.kind == Feed::kSnapshot) {
    const std::string origin = level_value(feed.levels, topic, "{origin}");
    const std::string id = level_value(feed.levels, topic, "{field.event_id}");
    if (origin.empty() || id.empty() || payload.size() > kSnapshotBytes) return;
    const std::string key = origin + "/" + id;
    snapshots_[key] = {payload, now_ms};
    for (json& e : motion_)
      if (text_of(e, "key") == key) e["snapshot"] = snapshot_url(key, snapshots_[key]);
    // Keep the snapshots of the events kept, and a few that came before their event.
    if (snapshots_.size() > 2 * kMotionEvents) {
      std::set<std::string> kept{key};
      for (const json& e : motion_) kept.insert(text_of(e, "key"));
      for (auto it = snapshots_.begin(); it != snapshots_.end();)
        it = kept.count(it->first) ? std::next(it) : snapshots_.erase(it);
    }
    return;
  }
  const json j = json::parse(payload, nullptr, false);
  if (!j.is_object()) return;
  if (feed.kind == Feed::kMotion) {
    auto id_field = j.find("event_id");
    if (id_field == j.end() || !id_field->is_number_integer()) return;
    const int64_t id = id_field->get<int64_t>();
    std::string origin = text_of(j, "origin");
    if (origin.empty()) origin = level_value(feed.levels, topic, "{origin}");
    const std::string key = origin + "/" + std::to_string(id);
    // When the event began here: ids start again at 1 when a part restarts, so an older
    // snapshot under the same key is another event's.
    int64_t first_ms = now_ms;
    for (const json& m : motion_)
      if (text_of(m, "key") == key && text_of(m, "start") == text_of(j, "start"))
        first_ms = m.value("first_ms", now_ms);
    json e = {{"key", key},
              {"pipeline", feed.pipeline},
              {"origin", origin},
              {"event_id", id},
              {"event", text_of(j, "event")},
              {"camera", text_of(j, "camera")},
              {"start", text_of(j, "start")},
              {"end", text_of(j, "end")},
              {"received_ms", now_ms},
              {"first_ms", first_ms}};
    for (const char* k : {"duration_s", "peak_area", "area", "frames"})
      if (auto v = number_of(j, k)) e[k] = *v;
    if (auto snap = snapshots_.find(key); snap != snapshots_.end()) {
      if (snap->second.received_ms >= first_ms - 10'000)
        e["snapshot"] = snapshot_url(key, snap->second);
      else
        snapshots_.erase(snap);  // another event's, from before a restart
    }
    // An event's end replaces its start.
    motion_.erase(std::remove_if(motion_.begin(), motion_.end(),
                                 [&](const json& m) { return text_of(m, "key") == key; }),
                  motion_.end());
    motion_.push_front(std::move(e));
    if (motion_.size() > kMotionEvents) motion_.pop_back();
    return;
  }
  const std::string task = text_of(j, "task");
  if (task.empty()) return;
  json& t = tasks_[task];
  t["task"] = task;
  t["pipeline"] = feed.pipeline;
  t["updated_ms"] = now_ms;
  if (feed.kind == Feed::kTaskEvents) {
    // A task's ledger events as they happen: its status and who works on it.
    if (std::string s = text_of(j, "status"); !s.empty() && !t.contains("result")) t["status"] = s;
    t["last_event"] = text_of(j, "kind");
    if (std::string w = text_of(j, "worker"); !w.empty()) {
      json& workers = t["workers"];
      if (!workers.is_array()) workers = json::array();
      if (workers.size() < kWorkersPerTask &&
          std::find(workers.begin(), workers.end(), w) == workers.end())
        workers.push_back(w);
    }
  } else {  // the final result: its status and the consensus behind it
    const std::string final_status = text_of(j, "status");
    if (!final_status.empty() && counted_.insert(task).second) {
      ++finished_[{feed.pipeline, final_status}];
      counted_order_.push_back(task);
      if (counted_order_.size() > 100'000) {
        counted_.erase(counted_order_.front());
        counted_order_.pop_front();
      }
    }
    t["result"] = text_of(j, "status");
    t["status"] = text_of(j, "status");
    t["app"] = text_of(j, "app");
    if (auto trust = number_of(j, "trust")) t["trust"] = *trust;
    size_t winners = 0, contributors = 0;
    if (auto w = j.find("winners"); w != j.end() && w->is_array()) winners = w->size();
    if (auto c = j.find("contributors"); c != j.end() && c->is_array()) contributors = c->size();
    t["winners"] = winners;
    t["contributors"] = contributors;
    if (std::string d = text_of(j, "result_digest"); !d.empty()) t["result_digest"] = d;
    if (std::string c = text_of(j, "cause"); !c.empty()) t["cause"] = c;
  }
  task_order_.erase(std::remove(task_order_.begin(), task_order_.end(), task), task_order_.end());
  task_order_.push_back(task);
  while (task_order_.size() > kTasks) {
    tasks_.erase(task_order_.front());
    task_order_.pop_front();
  }
}

json FleetView::nodes_json(const NodeRegistry& registry) const {
  json nodes = json::array();
  for (const auto& [node, status] : registry.nodes()) {
    json n = status;
    n["node"] = node;
    nodes.push_back(std::move(n));
  }
  return nodes;
}

json FleetView::pipelines_json(const NodeRegistry& registry) const {
  json out = json::array();
  for (const auto& [name, view] : pipelines_) {
    json g = view.graph;
    if (g.contains("error")) {
      out.push_back(std::move(g));
      continue;
    }
    // Each node: the part deployed to it, and whether its status says it runs that part.
    for (json& n : g["nodes"]) {
      const std::string node = text_of(n, "name");
      auto d = deployed_.find(node);
      const bool deployed = d != deployed_.end() && d->second.pipeline == name;
      n["part_hash"] = deployed ? json(d->second.part_hash) : json(nullptr);
      auto s = registry.nodes().find(node);
      const json status = s != registry.nodes().end() ? s->second : json::object();
      n["state"] = text_of(status, "state");
      auto running = status.find("part_running");
      n["running"] = deployed && n["state"] != "offline" &&
                     text_of(status, "part_hash") == d->second.part_hash &&
                     running != status.end() && *running == true;
    }
    // Live bytes/s: each edge between nodes at what its sender's end of the link sends.
    std::map<std::string, double> link_total;
    for (json& e : g["edges"]) {
      if (!e.contains("link")) continue;
      const std::string link = e["link"].get<std::string>();
      const std::string sender = g["copies"][e["from"].get<size_t>()]["node"].get<std::string>();
      auto node = rates_.find(sender);
      if (node == rates_.end()) continue;
      auto r = node->second.find(link + "/send");
      if (r == node->second.end() || !r->second.bytes_per_s) continue;
      e["bytes_per_s"] = std::round(*r->second.bytes_per_s);
    }
    for (json& l : g["links"]) {
      double total = 0;
      bool known = false;
      for (const json& s : l["senders"]) {
        auto node = rates_.find(s.get<std::string>());
        if (node == rates_.end()) continue;
        auto r = node->second.find(l["name"].get<std::string>() + "/send");
        if (r == node->second.end() || !r->second.bytes_per_s) continue;
        total += *r->second.bytes_per_s;
        known = true;
      }
      l["bytes_per_s"] = known ? json(std::round(total)) : json(nullptr);
    }
    out.push_back(std::move(g));
  }
  return out;
}

json FleetView::motion_json() const {
  return json(std::vector<json>(motion_.begin(), motion_.end()));
}

json FleetView::tasks_json() const {
  json out = json::array();
  for (auto it = task_order_.rbegin(); it != task_order_.rend(); ++it)
    out.push_back(tasks_.at(*it));
  return out;
}

json FleetView::state_json(const NodeRegistry& registry, int64_t now_ms) const {
  return {{"now_ms", now_ms},
          {"nodes", nodes_json(registry)},
          {"pipelines", pipelines_json(registry)},
          {"motion", motion_json()},
          {"tasks", tasks_json()}};
}

std::vector<metrics::IexecTaskCount> FleetView::task_counts() const {
  std::vector<metrics::IexecTaskCount> out;
  for (const auto& [key, count] : finished_) out.push_back({key.first, key.second, count});
  return out;
}

const std::string* FleetView::snapshot(const std::string& key) const {
  auto it = snapshots_.find(key);
  return it == snapshots_.end() ? nullptr : &it->second.jpeg;
}

}  // namespace edgeflow
