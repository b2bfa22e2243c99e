#include "brokers/link/transport.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "brokers/link/batch.h"
#include "brokers/link/fan.h"
#include "brokers/link/link_counters.h"
#include "brokers/link/mqtt_channel.h"
#include "brokers/link/spooled_link.h"
#include "brokers/link/transport_shared.h"
#include "brokers/link/zmq_keys.h"
#include "brokers/link/zmq_links.h"
#include "brokers/mqtt/client.h"
#include "brokers/nats/nats_channel.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

using namespace link_internal;

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
    if (settles()) {  // receivers wait for this link's confirmations too
      std::lock_guard<std::mutex> lock(shared_->ledger_mu);
      shared_->settled_before[link_.id];
    }
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
    if (settles()) {
      int64_t& t = part.maxima[message->origin];
      t = std::max(t, message->event_time_us);
    }
    if (part.writer.count() >= static_cast<size_t>(ctx.links().batch_messages) ||
        part.writer.bytes() >= static_cast<size_t>(ctx.links().batch_bytes))
      flush(k, ctx, false);
  }

  void turn_end(Context& ctx) override {
    flush_all(ctx);
    if (settles()) confirm();
  }

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
    if (settles()) confirm();
    // A replica also ends for the replicas whose partitions it took over.
    // (Any output of a replica, its error port's too: their readers wait for every name.)
    std::set<int> names = {0};
    if (link_.sender_replicas > 1 && shared_->replica < 0) {
      for (int r = 1; r < link_.sender_replicas; ++r) names.insert(r);
    } else if (link_.sender_replicas > 1) {
      std::lock_guard<std::mutex> lock(shared_->mu);
      names = shared_->owned_partitions;
      names.insert(shared_->replica);
    }
    for (int r : names)
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
    if (link_.sender_replicas > 1) name = replica_sender(node_, as_replica);
    return link_.partitions > 1 ? Shared::partition_name(name, k) : name;
  }

  // The output of a replica (windows, not its error port): what the servers confirmed
  // settles the readings before it.
  bool settles() const {
    return link_.sender_replicas > 1 && shared_->replica >= 0 && link_.from_port == 0;
  }

  // Moves the maxima of the frames the servers confirmed, in order, into the ledger.
  void confirm() {
    const uint64_t through = tx_->confirmed_through();
    std::lock_guard<std::mutex> lock(shared_->ledger_mu);
    if (!pending_.empty() && pending_.front().first <= through) ++shared_->ledger_version;
    while (!pending_.empty() && pending_.front().first <= through) {
      for (const auto& [origin, t] : pending_.front().second) {
        int64_t& before = shared_->settled_before[link_.id][origin];
        before = std::max(before, t);
      }
      pending_.pop_front();
    }
  }

  void flush(int k, Context& ctx, bool end, int as_replica = -1) {
    const int own = shared_->replica >= 0 ? shared_->replica : 0;
    if (as_replica < 0) as_replica = own;
    Part& part = parts_[static_cast<size_t>(k)];
    BatchWriter& writer_ = part.writer;
    const uint32_t n = static_cast<uint32_t>(writer_.count());
    BatchHeader h;
    h.sender = sender_name(k, as_replica);
    h.session = session_;
    // The end sent for another replica is numbered apart: each name's numbers run unbroken.
    h.sequence = as_replica == own ? ++part.sequence : ++part.others_sequence[as_replica];
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
    ++sent_frames_;
    if (settles() && !part.maxima.empty()) {
      pending_.emplace_back(sent_frames_, std::move(part.maxima));
      part.maxima.clear();
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
    std::map<std::string, int64_t> maxima;    // a replica's output: latest event time per origin
    std::map<int, uint64_t> others_sequence;  // ends sent for other replicas, by replica
  };
  std::vector<Part> parts_;
  uint64_t sent_frames_ = 0;  // as the transport numbers them (confirmed_through)
  // A replica's output: frames sent and not confirmed yet, with their maxima.
  std::deque<std::pair<uint64_t, std::map<std::string, int64_t>>> pending_;
  int64_t give_up_at_ = -1;  // after a stop: when waiting for the broker or receiver ends
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
    return make_link_receiver(shared_, link, node, peers_local);
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
