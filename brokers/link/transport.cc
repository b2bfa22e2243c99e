#include "brokers/link/transport.h"

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>

#include "brokers/link/batch.h"
#include "brokers/link/dedup.h"
#include "brokers/link/fan.h"
#include "brokers/link/frame_inbox.h"
#include "brokers/link/link_counters.h"
#include "brokers/link/mqtt_channel.h"
#include "brokers/link/spooled_link.h"
#include "brokers/link/zmq_keys.h"
#include "brokers/link/zmq_links.h"
#include "brokers/mqtt/client.h"
#include "brokers/nats/nats_channel.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

// The pinned public key of `node` (links.zmq.curve.peers); throws naming the fix.
const std::string& curve_peer(const ZmqCurve& curve, const std::string& node) {
  auto it = curve.peers.find(node);
  if (it == curve.peers.end()) {
    throw OperatorError("links.zmq.curve.peers has no key for node '" + node +
                        "': run `edgeflow keys zmq " + node +
                        "` on it and add the public key it prints");
  }
  return it->second;
}

// This node's key pair, which must be the one its peers pin.
ZmqKeyPair own_keys(const ZmqCurve& curve, const std::string& node) {
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

uint64_t random_session() {
  std::random_device rd;
  uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
               static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return s == 0 ? 1 : s;
}

// Client ids and ZeroMQ identities: letters, digits and dashes only.
std::string id_safe(const std::string& text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return out;
}

// The ZeroMQ identity of `node`'s sender on a link; with CURVE, pinned to its key.
std::string sender_identity(const std::string& pipeline, int link, const std::string& node) {
  return id_safe(pipeline + "-l" + std::to_string(link) + "-" + node);
}

using Counters = LinkCounters;

// Who confirms a link's frames, for messages.
std::string peer_word(const std::string& via) {
  return via == "mqtt" ? "broker" : via == "nats" ? "NATS servers" : "receiver";
}

struct Shared {
  const PipelineSpec* pipeline = nullptr;
  const Plan* plan = nullptr;
  Spool* spool = nullptr;
  int replica = -1;  // LinkTransport::set_replica: -1 runs a replicated stage whole
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

class LinkSender final : public Operator {
 public:
  LinkSender(std::shared_ptr<Shared> shared, const LinkPlan& link, std::string node)
      : shared_(std::move(shared)),
        link_(link),
        node_(std::move(node)),
        counters_(shared_->add_counters(link, node_, "send")),
        session_(random_session()),
        parts_(static_cast<size_t>(link.partitions)) {}

  void open(Context& ctx) override {
    const LinkDefaults& d = ctx.links();
    try {
      if (link_.via == "mqtt") {
        MqttLinkOptions o = shared_->mqtt_options(ctx, link_, node_, "tx");
        o.receivers = link_.receivers;
        tx_ = make_mqtt_sender(o);
      } else if (link_.via == "nats") {
        NatsLinkOptions o = shared_->nats_options(ctx, link_, node_, "tx");
        for (const std::string& r : link_.receivers) {
          if (link_.partitions == 1) {
            o.consumers.push_back(Shared::nats_consumer(link_, r));
            continue;
          }
          if (o.consumer_subjects.empty())
            o.consumer_subjects.assign(o.consumers.size(), o.subject);
          for (int k = 0; k < link_.partitions; ++k) {
            o.consumers.push_back(Shared::nats_consumer(link_, Shared::partition_name(r, k)));
            o.consumer_subjects.push_back(Shared::partition_subject(o.subject, k));
          }
        }
        for (int k = 0; k < link_.partitions && link_.partitions > 1; ++k)
          o.partition_subjects.push_back(Shared::partition_subject(o.subject, k));
        tx_ = make_nats_sender(o);
      } else {
        std::vector<std::unique_ptr<FrameSender>> each;
        std::optional<ZmqKeyPair> keys;
        if (d.zmq_curve.enabled()) keys = own_keys(d.zmq_curve, node_);
        for (const std::string& r : link_.receivers) {
          zmqlink::SenderOptions o;
          o.endpoint = shared_->zmq_endpoint(link_, r, false);
          o.mode = zmqlink::parse_mode(d.zmq_mode);
          o.identity = sender_identity(ctx.pipeline(), link_.id, node_);
          o.topic = shared_->topic(link_);
          if (keys) o.curve = {curve_peer(d.zmq_curve, r), keys->public_key, keys->secret_key};
          try {
            each.push_back(zmq_channel().make_sender(o));
          } catch (const std::invalid_argument& e) {  // the key pair
            if (!keys) throw;
            throw OperatorError("ZeroMQ key file " + d.zmq_curve.keys_for(node_) + ": " + e.what());
          }
        }
        tx_ = each.size() == 1 ? std::move(each[0]) : std::make_unique<FanOut>(std::move(each));
      }
    } catch (const OperatorError&) {
      throw;
    } catch (const std::exception& e) {
      throw OperatorError(e.what());
    }
  }

  void process(int, MessagePtr message, Context& ctx) override {
    const int k = parts_.size() > 1 ? origin_partition(message->origin, link_.partitions) : 0;
    Part& part = parts_[static_cast<size_t>(k)];
    std::string why;
    if (!part.writer.add(*message, why)) {
      ctx.error(message.get(), why);
      return;
    }
    if (part.writer.count() >= static_cast<size_t>(ctx.links().batch_messages) ||
        part.writer.bytes() >= static_cast<size_t>(ctx.links().batch_bytes))
      flush(k, ctx, false);
  }

  void turn_end(Context& ctx) override { flush_all(ctx); }

  void close(Context& ctx) override {
    if (!tx_) return;
    // One drain_timeout for the whole close, however many drains it takes.
    const int64_t deadline =
        give_up_at_ < 0 ? steady_ms() + ctx.links().drain_timeout_ms : give_up_at_;
    auto remaining = [&] { return static_cast<int>(std::max<int64_t>(0, deadline - steady_ms())); };
    if (link_.via == "nats") {
      // NATS senders publish again, on their own, what a server did not acknowledge: such a
      // frame must be stored before the end of input is, or it would arrive after it. So what
      // precedes the end is confirmed first.
      flush_all(ctx);
      tx_->drain(remaining());
    }
    // One end per partition. A replicated stage run whole here also ends for the replicas
    // that did not run, which its receivers wait for.
    const int names = link_.sender_replicas > 1 && shared_->replica < 0 ? link_.sender_replicas : 1;
    for (int r = 0; r < names; ++r)
      for (size_t k = 0; k < parts_.size(); ++k) flush(static_cast<int>(k), ctx, true, r);
    const int timeout = remaining();
    if (!tx_->drain(timeout)) {
      ctx.error(nullptr, "link " + link_.name + ": " + std::to_string(tx_->unacknowledged()) +
                             " batches not confirmed by the " + peer_word(link_.via) + " within " +
                             std::to_string(timeout) + " ms; they may be lost");
    }
    counters_->unacknowledged = tx_->unacknowledged();
    counters_->reconnects = tx_->reconnects();
  }

 private:
  void flush_all(Context& ctx) {
    for (size_t k = 0; k < parts_.size(); ++k)
      if (!parts_[k].writer.empty()) flush(static_cast<int>(k), ctx, false);
  }

  // The name this process sends partition `k` as: the node, or the replica of a replicated
  // stage (`as_replica` of them when it runs them all), with the partition of a partitioned
  // link.
  std::string sender_name(int k, int as_replica) const {
    std::string name = node_;
    if (link_.sender_replicas > 1)
      name = replica_sender(node_, shared_->replica >= 0 ? shared_->replica : as_replica);
    return link_.partitions > 1 ? Shared::partition_name(name, k) : name;
  }

  void flush(int k, Context& ctx, bool end, int as_replica = 0) {
    Part& part = parts_[static_cast<size_t>(k)];
    BatchWriter& writer_ = part.writer;
    const uint32_t n = static_cast<uint32_t>(writer_.count());
    BatchHeader h;
    h.sender = sender_name(k, as_replica);
    h.session = session_;
    h.sequence = ++part.sequence;
    h.end = end;
    writer_.finish(h, frame_);
    // Blocks while the broker or receiver is away (back-pressure). After a stop request it
    // gives up after the drain timeout, so a shutdown never hangs on a dead broker.
    int64_t next_note = steady_ms() + 10000;
    auto slice = [&] { return give_up_at_ >= 0 && steady_ms() >= give_up_at_ ? 0 : 500; };
    while (!tx_->send_to(k, frame_, slice())) {
      if (shared_->stopping.load()) {
        // One drain_timeout for the whole shutdown, not one per batch.
        if (give_up_at_ < 0) give_up_at_ = steady_ms() + ctx.links().drain_timeout_ms;
        if (steady_ms() >= give_up_at_) {
          tx_->abandon();
          ctx.error(nullptr, "link " + link_.name + ": " + std::to_string(n) +
                                 " messages not sent before shutdown: the " +
                                 (link_.via == "mqtt" ? "broker " + ctx.links().mqtt_broker
                                                      : peer_word(link_.via)) +
                                 " did not take them");
          return;
        }
      } else if (steady_ms() >= next_note) {
        next_note = steady_ms() + 10000;
        logger().warn("link {} on '{}': waiting to send {} messages (is the {} up?)", link_.name,
                      node_, n, peer_word(link_.via));
      }
    }
    counters_->messages += n;
    counters_->payload_bytes += frame_.size();
    counters_->wire_bytes += tx_->wire_bytes(frame_.size());
    counters_->batches += 1;
    counters_->reconnects = tx_->reconnects();
    counters_->unacknowledged = tx_->unacknowledged();
  }

  std::shared_ptr<Shared> shared_;
  const LinkPlan& link_;
  std::string node_;
  std::shared_ptr<Counters> counters_;
  std::unique_ptr<FrameSender> tx_;
  std::string frame_;
  uint64_t session_;
  // One batch and numbering per partition of the link (one part unless it leads into a
  // replicated stage): a receiver reads its partition's numbers without gaps.
  struct Part {
    BatchWriter writer;
    uint64_t sequence = 0;
  };
  std::vector<Part> parts_;
  int64_t give_up_at_ = -1;  // after a stop: when waiting for the broker or receiver ends
};

class LinkReceiver final : public Operator {
 public:
  LinkReceiver(std::shared_ptr<Shared> shared, const LinkPlan& link, std::string node,
               bool peers_local)
      : shared_(std::move(shared)),
        link_(link),
        node_(std::move(node)),
        peers_local_(peers_local),
        counters_(shared_->add_counters(link, node_, "receive")),
        inbox_(std::make_shared<FrameInbox>()),
        expected_(shared_->expected_senders(link)) {}
  ~LinkReceiver() override { stop_channel(); }

  void open(Context& ctx) override {
    // The network thread (MQTT client, ZeroMQ receiver) runs the turn itself when this
    // source is idle: no hand-over between threads per frame.
    inbox_->waker = ctx.make_driver();
    std::weak_ptr<FrameInbox> weak = inbox_;
    FrameHandler handler = [weak](std::string&& frame) {
      if (auto in = weak.lock()) in->push(std::move(frame));
    };
    const LinkDefaults& d = ctx.links();
    try {
      if (link_.via == "mqtt") {
        MqttLinkOptions o = shared_->mqtt_options(ctx, link_, node_, "rx");
        rx_ = make_mqtt_receiver(o, std::move(handler));
      } else if (link_.via == "nats" && link_.partitions > 1) {
        // A replica reads its partition; the stage run whole reads them all.
        std::vector<std::unique_ptr<FrameReceiver>> each;
        for (int k : shared_->partitions_read(link_)) {
          NatsLinkOptions o = shared_->nats_options(ctx, link_, node_, "rx");
          o.subject = Shared::partition_subject(o.subject, k);
          o.consumers = {Shared::nats_consumer(link_, Shared::partition_name(node_, k))};
          o.name += "-p" + std::to_string(k);
          each.push_back(make_nats_receiver(o, handler));
        }
        rx_ = each.size() == 1 ? std::move(each[0]) : std::make_unique<FanIn>(std::move(each));
      } else if (link_.via == "nats") {
        NatsLinkOptions o = shared_->nats_options(ctx, link_, node_, "rx");
        o.consumers = {Shared::nats_consumer(link_, node_)};
        rx_ = make_nats_receiver(o, std::move(handler));
      } else {
        zmqlink::ReceiverOptions o;
        o.endpoint = shared_->zmq_endpoint(link_, node_, true);
        o.mode = zmqlink::parse_mode(d.zmq_mode);
        o.topic = shared_->topic(link_);
        if (d.zmq_curve.enabled()) {
          ZmqKeyPair keys = own_keys(d.zmq_curve, node_);
          o.curve.public_key = keys.public_key;
          o.curve.secret_key = keys.secret_key;
          // Only this link's senders, each bound to its own sender identity. A sender missing
          // from peers would be refused without end: an error here, not a warning per try.
          for (const std::string& s : link_.senders)
            o.curve.allowed[curve_peer(d.zmq_curve, s)] =
                sender_identity(ctx.pipeline(), link_.id, s);
        }
        try {
          rx_ = zmq_channel().make_receiver(o, std::move(handler));
        } catch (const std::invalid_argument& e) {  // the key pair
          if (!d.zmq_curve.enabled()) throw;
          throw OperatorError("ZeroMQ key file " + d.zmq_curve.keys_for(node_) + ": " + e.what());
        }
        std::lock_guard<std::mutex> lock(shared_->mu);
        shared_->zmq_bound[{link_.id, node_}] = zmq_channel().bound_endpoint(*rx_);
      }
      counters_->watch(rx_.get());  // its refusals, read when the metrics are sampled
    } catch (const OperatorError&) {
      throw;
    } catch (const std::exception& e) {
      throw OperatorError(e.what());
    }
  }

  SourceStep generate(Context& ctx) override {
    // About one executor turn per call (a frame holds up to batch.messages), so the soft
    // queue bound of the README holds for receivers too.
    std::string frame;
    size_t emitted = 0, frames = 0;
    while (emitted < 256 && inbox_->pop(frame)) {
      ++frames;
      emitted += deliver(frame, ctx);
    }
    if (frames > 0) {
      if (stop_requested_ && peers_local_)
        stop_deadline_ = steady_ms() + ctx.links().drain_timeout_ms + 5000;  // progress
      if (!inbox_->empty()) return SourceStep::emitted();
    }
    for (auto p = pending_end_.begin(); p != pending_end_.end();) {
      if (steady_ms() < p->second.deadline_ms) {
        ++p;
        continue;
      }
      ctx.error(nullptr, "link " + link_.name + ": '" + p->first + "' ended with " +
                             std::to_string(dedup_.awaiting(p->first, p->second.session)) +
                             " batches that never came");
      ended_.insert(p->first);
      p = pending_end_.erase(p);
    }
    if (senders_ended() >= expected_.size()) return SourceStep::done();
    if (stop_requested_) {
      if (!peers_local_) return SourceStep::done();  // channel stopped, inbox drained
      if (steady_ms() >= stop_deadline_) {
        std::string missing;
        for (const std::string& s : expected_)
          if (!ended_.count(s)) missing += (missing.empty() ? "'" : ", '") + s + "'";
        ctx.error(nullptr, "link " + link_.name + ": stopped without the end of input of " +
                               missing + "; what they still send is not read");
        return SourceStep::done();
      }
    }
    return SourceStep::wait_until(ctx.now_us() + 1'000'000);
  }

  bool on_stop(Context& ctx) override {
    stop_requested_ = true;
    if (peers_local_) {
      // The senders in this process are draining towards us: wait for their end of input.
      stop_deadline_ = steady_ms() + ctx.links().drain_timeout_ms + 5000;
    } else {
      // Remote senders keep running: stop taking frames (a persistent session keeps the rest
      // at the broker), then deliver what was already taken.
      stop_channel();
    }
    return false;
  }

  // End of input: no more frames, but a ZeroMQ receiver goes on acknowledging until this
  // operator is destroyed, so a sender in this process gets its last acknowledgement.
  void close(Context&) override {
    inbox_->close();
    if (rx_) {
      rx_->finish();
      counters_->reconnects = rx_->reconnects();
    }
  }

 private:
  void stop_channel() {
    inbox_->close();  // first: a handler blocked on a full inbox must return for stop() to join
    if (rx_) {
      rx_->stop();
      counters_->reconnects = rx_->reconnects();
      counters_->release();  // keeps its last count of refusals
    }
  }

  // Emits the frame's messages unless it was delivered before; returns how many.
  size_t deliver(const std::string& frame, Context& ctx) {
    DecodedBatch b = decode_batch(frame.data(), frame.size());
    counters_->payload_bytes += frame.size();
    if (!b.error.empty()) {
      counters_->errors += 1;
      ctx.error(nullptr, "link " + link_.name + ": a frame was dropped: " + b.error);
      return 0;
    }
    switch (dedup_.accept(b.header.sender, b.header.session, b.header.sequence)) {
      case FrameDedup::kDuplicate:
        counters_->duplicates += 1;
        return 0;
      case FrameDedup::kNewSession:
        ended_.erase(b.header.sender);  // a restarted sender is live again
        pending_end_.erase(b.header.sender);
        break;
      case FrameDedup::kGap:
        logger().warn(
            "link {} on '{}': batches from '{}' before {} have not come (lost, or a redelivery "
            "still to come)",
            link_.name, node_, b.header.sender, b.header.sequence);
        break;
      case FrameDedup::kLate:
        logger().info("link {} on '{}': batch {} from '{}' came after newer ones", link_.name,
                      node_, b.header.sequence, b.header.sender);
        break;
      case FrameDedup::kNext:
        break;
    }
    counters_->batches += 1;
    counters_->messages += b.messages.size();
    const size_t n = b.messages.size();
    for (MessagePtr& m : b.messages) ctx.emit(std::move(m));
    if (b.header.end) {
      // Over NATS a frame may still come after the end (delivered again after ack_wait): the
      // sender counts as ended once none of its numbers is awaited, or ack_wait + 2 s later.
      if (link_.via == "nats" && dedup_.awaiting(b.header.sender, b.header.session) > 0) {
        pending_end_[b.header.sender] = {b.header.session,
                                         steady_ms() + ctx.links().nats_ack_wait_ms + 2'000};
      } else {
        ended_.insert(b.header.sender);
      }
    }
    if (auto p = pending_end_.find(b.header.sender);
        p != pending_end_.end() && dedup_.awaiting(b.header.sender, p->second.session) == 0) {
      ended_.insert(b.header.sender);
      pending_end_.erase(p);
    }
    return n;
  }

  size_t senders_ended() const {
    size_t n = 0;
    for (const std::string& s : expected_) n += ended_.count(s);
    return n;
  }

  std::shared_ptr<Shared> shared_;
  const LinkPlan& link_;
  std::string node_;
  bool peers_local_;
  std::shared_ptr<Counters> counters_;
  std::shared_ptr<FrameInbox> inbox_;
  std::vector<std::string> expected_;  // the senders whose end of input ends this source
  std::unique_ptr<FrameReceiver> rx_;
  FrameDedup dedup_;
  std::set<std::string> ended_;
  struct PendingEnd {
    uint64_t session;
    int64_t deadline_ms;
  };
  std::map<std::string, PendingEnd> pending_end_;  // ended, but frames still awaited
  bool stop_requested_ = false;
  int64_t stop_deadline_ = 0;
};

class Transport final : public LinkTransport {
 public:
  Transport(const PipelineSpec& pipeline, const Plan& plan, Spool* spool)
      : shared_(std::make_shared<Shared>()) {
    shared_->pipeline = &pipeline;
    shared_->plan = &plan;
    shared_->spool = spool;
  }
  std::unique_ptr<Operator> make_sender(const LinkPlan& link, const std::string& node,
                                        bool) override {
    if (spooled(link)) return make_spooled_sender(spooled_config(link, node, "send"));
    return std::make_unique<LinkSender>(shared_, link, node);
  }
  std::unique_ptr<Operator> make_receiver(const LinkPlan& link, const std::string& node,
                                          bool peers_local) override {
    if (spooled(link)) return make_durable_receiver(spooled_config(link, node, "receive"));
    return std::make_unique<LinkReceiver>(shared_, link, node, peers_local);
  }
  std::vector<LinkMetrics> metrics() const override {
    std::vector<LinkMetrics> out;
    std::lock_guard<std::mutex> lock(shared_->mu);
    for (const auto& c : shared_->counters) {
      LinkMetrics m;
      m.link = c->link;
      m.node = c->node;
      m.direction = c->direction;
      m.via = c->via;
      m.messages = c->messages;
      m.payload_bytes = c->payload_bytes;
      m.wire_bytes = c->wire_bytes;
      m.batches = c->batches;
      m.reconnects = c->reconnects;
      m.duplicates = c->duplicates;
      m.errors = c->errors;
      m.unacknowledged = c->unacknowledged;
      m.refused = c->refused();
      out.push_back(std::move(m));
    }
    return out;
  }
  void stop_requested() override { shared_->stopping.store(true); }
  void set_replica(int index) override { shared_->replica = index; }

 private:
  bool spooled(const LinkPlan& link) const {
    return shared_->spool && link.via == "mqtt" && link_spools(*shared_->pipeline, link);
  }
  SpooledLinkConfig spooled_config(const LinkPlan& link, const std::string& node,
                                   const char* direction) {
    SpooledLinkConfig c;
    c.link = &link;
    c.node = node;
    c.spool = shared_->spool;
    c.key = spool_key(shared_->pipeline->name, link.name);
    c.counters = shared_->add_counters(link, node, direction);
    std::shared_ptr<Shared> shared = shared_;
    c.mqtt_options = [shared, &link, node](Context& ctx, const char* end) {
      return shared->mqtt_options(ctx, link, node, end);
    };
    c.ack_prefix = "edgeflow/" + shared_->pipeline->name + "/_ack/" + Shared::link_path(link) + "/";
    c.stopping = &shared_->stopping;
    c.from_stage = shared_->pipeline->stages[link.from_stage].id;
    return c;
  }

  std::shared_ptr<Shared> shared_;
};

}  // namespace

std::string refused_note(const LinkMetrics& m) {
  if (m.refused == 0) return "";
  return "link " + m.link + " on '" + m.node + "': refused " + std::to_string(m.refused) +
         (m.refused == 1 ? " handshake or frame" : " handshakes or frames") +
         " of ZeroMQ senders it does not admit (plaintext, or a CURVE key not pinned for one of "
         "the link's senders); nothing they sent was delivered. If such a sender is one of your "
         "nodes, give it links.zmq.curve with its key file and pin its public key (`edgeflow "
         "keys zmq NODE` prints it) in links.zmq.curve.peers of this node's pipeline file";
}

bool link_spools(const PipelineSpec& pipeline, const LinkPlan& link) {
  const StageSpec& to = pipeline.stages[link.to_stage];
  if (to.overflow == Overflow::kSpool) return true;
  // The default for what is not a camera frame: readers of frames default to drop-oldest.
  return !to.overflow_given && to.overflow == Overflow::kBlock;
}

std::unique_ptr<LinkTransport> make_link_transport(const PipelineSpec& pipeline, const Plan& plan,
                                                   Spool* spool) {
  return std::make_unique<Transport>(pipeline, plan, spool);
}

uint64_t link_wire_bytes(const PipelineSpec& pipeline, const LinkPlan& link, uint64_t payload) {
  if (link.via == "nats") {
    std::string path = link.name;
    path.replace(path.find("->"), 2, ".");
    return nats_wire_bytes("edgeflow." + pipeline.name + "." + path, payload);
  }
  if (link.via == "mqtt") {
    std::string path = link.name;
    path.replace(path.find("->"), 2, "/");
    return mqtt_wire_bytes("edgeflow/" + pipeline.name + "/" + path, payload,
                           pipeline.links.mqtt_qos);
  }
  // ZeroMQ (brokers/zmq/zmq_channel.cc): ZMTP frames of 2 bytes of header (9 over 255); the
  // acked mode adds a 24-byte part and a 16-byte acknowledgement, pubsub the topic part.
  // CURVE boxes each part in a MESSAGE command: 8 bytes of name, 8 of nonce, 16 of MAC, flags.
  const uint64_t box = pipeline.links.zmq_curve.enabled() ? 33 : 0;
  auto part = [box](uint64_t n) {
    n += box;
    return n + (n <= 255 ? 2 : 9);
  };
  const std::string& mode = pipeline.links.zmq_mode;
  if (mode == "push") return tcp_wire_bytes(part(payload));
  if (mode == "pubsub") return tcp_wire_bytes(part(link.name.size()) + part(payload));
  return tcp_wire_bytes(part(24) + part(payload)) + tcp_wire_bytes(part(16));
}

}  // namespace edgeflow
