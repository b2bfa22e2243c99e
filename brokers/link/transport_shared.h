// Inside the link transport (transport.cc, link_receiver.cc): the state the link ends of one
// run share, and the helpers both ends use. Not for other folders.
#pragma once

#include <atomic>
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "brokers/link/link_counters.h"
#include "brokers/link/mqtt_channel.h"
#include "brokers/link/zmq_keys.h"
#include "brokers/link/zmq_links.h"
#include "brokers/mqtt/client.h"
#include "brokers/nats/nats_channel.h"
#include "brokers/spool/spool.h"
#include "runtime/link.h"
#include "runtime/operator.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow::link_internal {

// The pinned public key of `node` (links.zmq.curve.peers); throws naming the fix.
inline const std::string& curve_peer(const ZmqCurve& curve, const std::string& node) {
  auto it = curve.peers.find(node);
  if (it == curve.peers.end()) {
    throw OperatorError("links.zmq.curve.peers has no key for node '" + node +
                        "': run `edgeflow keys zmq " + node +
                        "` on it and add the public key it prints");
  }
  return it->second;
}

// This node's key pair, which must be the one its peers pin.
inline ZmqKeyPair own_keys(const ZmqCurve& curve, const std::string& node) {
  const std::string path = curve.keys_for(node);
  ZmqKeyPair keys = load_zmq_keys(path);
  if (keys.public_key != curve_peer(curve, node)) {
    throw OperatorError("ZeroMQ key file " + path + " holds public key " + keys.public_key +
                        ", but links.zmq.curve.peers pins " + curve_peer(curve, node) +
                        " for node '" + node + "': put the file's key in peers (or restore " +
                        "the key file it pins)");
  }
  return keys;
}

inline uint64_t random_session() {
  std::random_device rd;
  uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
               static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return s == 0 ? 1 : s;
}

// Client ids and ZeroMQ identities: letters, digits and dashes only.
inline std::string id_safe(const std::string& text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return out;
}

// The ZeroMQ identity of `node`'s sender on a link; with CURVE, pinned to its key.
inline std::string sender_identity(const std::string& pipeline, int link, const std::string& node) {
  return id_safe(pipeline + "-l" + std::to_string(link) + "-" + node);
}

using Counters = LinkCounters;

// Who confirms a link's frames, for messages.
inline std::string peer_word(const std::string& via) {
  return via == "mqtt" ? "broker" : via == "nats" ? "NATS servers" : "receiver";
}

struct Shared {
  const PipelineSpec* pipeline = nullptr;
  const Plan* plan = nullptr;
  Spool* spool = nullptr;
  int replica = -1;  // LinkTransport::set_replica: -1 runs a replicated stage whole

  // A replica's settlement ledger: per output link (from the stage's out port) and origin,
  // the event time before which every reading is in a window whose output the servers
  // confirmed. Written by the replica's senders, read by its receivers, which acknowledge a
  // frame once all its readings are before it on every output link.
  std::mutex ledger_mu;
  std::map<int, std::map<std::string, int64_t>> settled_before;
  uint64_t ledger_version = 0;     // moves when settled_before does: receivers look again
  std::set<int> owned_partitions;  // under mu: the partitions this replica reads
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::map<std::pair<int, std::string>, std::string> zmq_bound;  // (link, node) -> endpoint
  std::vector<std::shared_ptr<Counters>> counters;

  std::shared_ptr<Counters> add_counters(const LinkPlan& l, const std::string& node,
                                         const char* direction) {
    auto c = std::make_shared<Counters>();
    c->link = l.name;
    c->node = node;
    c->direction = direction;
    c->via = l.via;
    std::lock_guard<std::mutex> lock(mu);
    counters.push_back(c);
    return c;
  }

  std::string topic(const LinkPlan& l) const {
    return "edgeflow/" + pipeline->name + "/" + link_path(l);
  }
  std::string ready_prefix(const LinkPlan& l) const {
    return "edgeflow/" + pipeline->name + "/_ready/" + link_path(l) + "/";
  }
  // One end of a link over MQTT; `end` is "tx" or "rx" (part of the client id).
  MqttLinkOptions mqtt_options(Context& ctx, const LinkPlan& l, const std::string& node,
                               const char* end) const {
    const LinkDefaults& d = ctx.links();
    MqttLinkOptions o;
    o.broker = d.mqtt_broker;
    o.security = d.mqtt_security.for_node(base_node(node));
    o.client = d.mqtt_client;
    o.client_id =
        id_safe("ef-" + ctx.pipeline() + "-l" + std::to_string(l.id) + "-" + node + "-" + end);
    o.topic = topic(l);
    o.ready_prefix = ready_prefix(l);
    o.qos = d.mqtt_qos;
    o.retry = d.mqtt_retry;
    o.node = node;
    o.link = l.name;
    return o;
  }

  // One end of a link over NATS JetStream; `end` is "tx" or "rx" (part of the client name).
  NatsLinkOptions nats_options(Context& ctx, const LinkPlan& l, const std::string& node,
                               const char* end) const {
    const LinkDefaults& d = ctx.links();
    if (d.nats_servers.empty())
      throw OperatorError("link " + l.name +
                          " goes via nats, but links.nats.servers names no server: add links: "
                          "{nats: {servers: [\"nats://127.0.0.1:4222\"]}}");
    NatsLinkOptions o;
    o.servers = d.nats_servers;
    const std::string pipeline_token = nats_token(ctx.pipeline());
    o.stream = "EDGEFLOW_" + pipeline_token;
    o.stream_subjects = "edgeflow." + pipeline_token + ".>";
    const size_t arrow = l.name.find("->");
    o.subject = "edgeflow." + pipeline_token + "." + nats_token(l.name.substr(0, arrow)) + "." +
                nats_token(l.name.substr(arrow + 2));
    o.replicas = d.nats_replicas;
    o.ack_wait_ms = d.nats_ack_wait_ms;
    // A replica holds the frames of windows still open: room for them (both ends create the
    // consumers, with the same settings).
    if (l.partitions > 1) o.max_ack_pending = 20'000;
    o.retry = d.nats_retry;
    o.tls = d.nats_tls;
    const MqttSecurity sec = d.nats_security.for_node(base_node(node));
    o.ca_file = sec.ca_file;
    o.cert_file = sec.cert_file;
    o.key_file = sec.key_file;
    o.verify_hostname = sec.verify_hostname;
    if (!sec.credentials_file.empty()) {
      mqtt::Credentials c = mqtt::load_credentials(sec.credentials_file, "NATS");
      o.username = std::move(c.username);
      o.password = std::move(c.password);
    }
    o.name = "ef-" + ctx.pipeline() + "-l" + std::to_string(l.id) + "-" + node + "-" + end;
    o.node = node;
    o.link = l.name;
    return o;
  }
  // The durable consumer of `receiver` on link `l`: named by the link's stages, not its
  // number, so it outlives edits elsewhere in the file.
  // A hash of the names ends it ("a-b" + "c" and "a" + "b-c" read alike): FNV-1a, the same
  // on every machine, since the sending edge and the receiving cloud both name it.
  static std::string nats_consumer(const LinkPlan& l, const std::string& receiver) {
    std::string path = link_path(l);
    path.replace(path.find('/'), 1, "-");
    uint32_t h = 2166136261u;
    for (unsigned char c : l.name + '\n' + receiver) h = (h ^ c) * 16777619u;
    char tag[16];
    std::snprintf(tag, sizeof tag, "-%08x", h);
    return nats_token(path + "-" + receiver) + tag;
  }

  // A link into a replicated stage: the subject and receiver name of partition `k`.
  static std::string partition_subject(const std::string& subject, int k) {
    return subject + ".p" + std::to_string(k);
  }
  static std::string partition_name(const std::string& name, int k) {
    return name + "/p" + std::to_string(k);
  }
  // The partitions this process reads of link `l`: all, or its replica's.
  std::vector<int> partitions_read(const LinkPlan& l) const {
    std::vector<int> out;
    for (int k = 0; k < l.partitions; ++k)
      if (l.partitions == 1 || replica < 0 || k == replica) out.push_back(k);
    return out;
  }
  // The names a receiver of `l` in this process waits for the end of input of: every sender
  // (each replica of a replicated one) in every partition it reads.
  std::vector<std::string> expected_senders(const LinkPlan& l) const {
    std::vector<std::string> out;
    for (const std::string& s : l.senders)
      for (int r = 0; r < l.sender_replicas; ++r) {
        const std::string name = l.sender_replicas > 1 ? replica_sender(s, r) : s;
        for (int k : partitions_read(l))
          out.push_back(l.partitions > 1 ? partition_name(name, k) : name);
      }
    return out;
  }

  static std::string link_path(const LinkPlan& l) {
    std::string p = l.name;
    p.replace(p.find("->"), 2, "/");
    return p;
  }

  // ZeroMQ endpoint of the receiver of link `l` on `node`: links.zmq.port plus the index of
  // the (link, receiver) pair in plan order, on the node's address. Port 0 (one process
  // only): a free port, bound first by the receiver and looked up by senders.
  std::string zmq_endpoint(const LinkPlan& l, const std::string& node, bool bind) {
    const NodeSpec* n = pipeline->node(node);
    std::string host = n && !n->address.empty() ? n->address : "127.0.0.1";
    if (pipeline->links.zmq_port == 0) {
      if (bind) return "tcp://" + host + ":*";
      std::lock_guard<std::mutex> lock(mu);
      auto it = zmq_bound.find({l.id, node});
      if (it == zmq_bound.end())
        throw OperatorError("link " + l.name + ": no ZeroMQ endpoint for node '" + node +
                            "': set links.zmq.port when nodes run as separate processes");
      return it->second;
    }
    int index = 0;
    for (const LinkPlan& other : plan->links)
      for (const std::string& r : other.receivers) {
        if (other.id == l.id && r == node)
          return "tcp://" + host + ":" + std::to_string(pipeline->links.zmq_port + index);
        ++index;
      }
    throw OperatorError("link " + l.name + ": node '" + node + "' is not a receiver");
  }
};

// The receiving end of `link` on `node` (brokers/link/link_receiver.cc).
std::unique_ptr<Operator> make_link_receiver(std::shared_ptr<Shared> shared, const LinkPlan& link,
                                             std::string node, bool peers_local);

}  // namespace edgeflow::link_internal
