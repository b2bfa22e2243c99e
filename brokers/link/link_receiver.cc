#include <algorithm>
#include <chrono>
#include <list>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "brokers/link/batch.h"
#include "brokers/link/dedup.h"
#include "brokers/link/fan.h"
#include "brokers/link/frame_inbox.h"
#include "brokers/link/transport.h"
#include "brokers/link/transport_shared.h"
#include "brokers/nats/nats_leases.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow::link_internal {
namespace {

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
  ~LinkReceiver() override {
    if (leases_) finish_partitions();
    stop_channel();
  }

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
      } else if (link_.via == "nats" && link_.partitions > 1 && shared_->replica >= 0) {
        // A replica: its partition, and any whose replica died, as leases say (add_partitions).
        hold_options_ = shared_->nats_options(ctx, link_, node_, "rx");
        leases_ = std::make_unique<PartitionLeases>(
            hold_options_, ctx.pipeline() + "_" + shared_->pipeline->stages[link_.to_stage].id,
            link_.partitions, shared_->replica, [name = link_.name](int k, const std::string& why) {
              // Fencing: another replica may take the partition now, and two readers would
              // split its origins' windows. What this one did not settle is read again there.
              logger().critical(
                  "link {}: this replica lost partition {} ({}); it exits with code {} and its "
                  "unsettled frames go to the replica that takes the partition",
                  name, k, why, kExitLeaseLost);
              logger().flush();
              std::_Exit(kExitLeaseLost);
            });
        expected_.clear();
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
      if (rx_) counters_->watch(rx_.get());  // its refusals, read when the metrics are sampled
    } catch (const OperatorError&) {
      throw;
    } catch (const std::exception& e) {
      throw OperatorError(e.what());
    }
  }

  SourceStep generate(Context& ctx) override {
    // About one executor turn per call (a frame holds up to batch.messages), so the soft
    // queue bound of the README holds for receivers too.
    if (leases_) {
      leases_->check();
      add_partitions();
      settle();
    }
    std::string frame;
    uint64_t token = 0;
    size_t emitted = 0, frames = 0;
    while (emitted < 256 && frames < 1024 && inbox_->pop(frame, &token)) {
      ++frames;
      if (!warming_.empty() && hold_back(frame, token)) continue;
      emitted += deliver(frame, token, ctx);
    }
    // Partitions taken over whose hold is up: their frames in stream order, as many a turn
    // as any (newer frames of theirs keep joining the order until it is drained).
    bool more_held = false;
    for (auto w = warming_.begin(); w != warming_.end();) {
      if (steady_ms() < w->second.until_ms) {
        ++w;
        continue;
      }
      auto& held = w->second.frames;
      while (!held.empty() && emitted < 256) {
        emitted += deliver(held.begin()->second, held.begin()->first, ctx);
        held.erase(held.begin());
      }
      if (held.empty()) {
        w = warming_.erase(w);
      } else {
        more_held = true;
        ++w;
      }
    }
    if (more_held) return SourceStep::emitted();
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
    if (senders_ended() >= expected_.size() &&
        (!leases_ || (unread_.empty() && leases_->others_settled() && leases_->stop_taking())))
      return SourceStep::done();
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
    } else if (leases_) {
      // A replica: no more fetching, but its receivers stay to acknowledge what the windows
      // settle as they close (finish_partitions).
      inbox_->close();
      for (auto& [k, rx] : partitions_) rx->finish();
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
    for (auto& [k, rx] : partitions_) rx->finish();  // they still acknowledge
  }

 private:
  void stop_channel() {
    inbox_->close();  // first: a handler blocked on a full inbox must return for stop() to join
    for (auto& [k, rx] : partitions_) rx->stop();
    if (rx_) {
      rx_->stop();
      counters_->reconnects = rx_->reconnects();
      counters_->release();  // keeps its last count of refusals
    }
  }

  // ---- a replica's partitions (leases_ set) ----

  // Reads the partitions this replica leased since the last turn, and waits for the end of
  // input of every sender in them.
  void add_partitions() {
    for (int k : leases_->newly_owned()) unread_.insert(k);
    for (auto k_it = unread_.begin(); k_it != unread_.end();) {
      const int k = *k_it;
      NatsLinkOptions o = hold_options_;
      o.servers = leases_->servers();
      o.subject = Shared::partition_subject(o.subject, k);
      o.consumers = {Shared::nats_consumer(link_, Shared::partition_name(node_, k))};
      o.name += "-p" + std::to_string(k);
      std::weak_ptr<FrameInbox> weak = inbox_;
      try {
        partitions_[k] = make_nats_holding_receiver(o, [weak, k](std::string&& f, uint64_t seq) {
          if (auto in = weak.lock()) in->push(std::move(f), (uint64_t(k) << 48) | seq);
        });
      } catch (const std::exception& e) {
        // Leased, so nobody else reads it: tried again next turn.
        logger().warn("link {} on '{}': cannot read partition {} yet ({}); trying again",
                      link_.name, node_, k, e.what());
        ++k_it;
        continue;
      }
      k_it = unread_.erase(k_it);
      if (k != shared_->replica)
        warming_[k].until_ms = steady_ms() + hold_options_.ack_wait_ms + 2'000;
      for (const std::string& s : link_.senders) expected_.push_back(Shared::partition_name(s, k));
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->owned_partitions.insert(k);
    }
  }

  // A partition taken over: its predecessor's unacknowledged frames come again mixed with
  // newer ones, and a window fed the newer first would drop the older as late. They are
  // held for ack_wait + 2 s (by then every one of them was due again) and delivered in the
  // stream's order (each sender's). Returns whether `frame` was held.
  bool hold_back(std::string& frame, uint64_t token) {
    auto w = warming_.find(static_cast<int>(token >> 48));
    if (w == warming_.end()) return false;
    w->second.frames.emplace(token, std::move(frame));  // by place in the stream
    return true;
  }

  void ack(uint64_t token) {
    auto it = partitions_.find(static_cast<int>(token >> 48));
    if (it != partitions_.end()) it->second->ack(token & ((uint64_t{1} << 48) - 1));
  }

  // Acknowledges the frames whose every reading is settled (runtime: Shared::settled_before),
  // when the ledger moved since the last look (`always`: at the end).
  void settle(bool always = false) {
    std::lock_guard<std::mutex> lock(shared_->ledger_mu);
    if (!always && shared_->ledger_version == settled_version_) return;
    settled_version_ = shared_->ledger_version;
    if (shared_->settled_before.empty()) return;  // no output link (yet): nothing settles
    for (auto it = held_.begin(); it != held_.end();) {
      bool settled = true;
      for (const auto& [origin, t] : it->second) {
        // Settled once the windows are confirmed on every output link.
        for (const auto& [link, before] : shared_->settled_before) {
          auto s = before.find(origin);
          settled = s != before.end() && t < s->second;
          if (!settled) break;
        }
        if (!settled) break;
      }
      if (!settled) {
        ++it;
        continue;
      }
      ack(it->first);
      it = held_.erase(it);
    }
  }

  // At the end, once the stage's output is confirmed: acknowledges what is settled, and
  // marks the partitions done when nothing is left (else their next reader reads it again).
  void finish_partitions() {
    settle(true);
    const bool complete = held_.empty() && unread_.empty() && senders_ended() >= expected_.size();
    if (!held_.empty())
      logger().error(
          "link {} on '{}': {} frames were not settled by confirmed output; their partitions "
          "stay open and the next replica to read them reads them again",
          link_.name, node_, held_.size());
    if (complete)
      for (uint64_t t : end_tokens_) ack(t);
    // The receivers go first (their acknowledgements flushed, what they held let go), then
    // the leases: a replica taking an unfinished partition over must not meet this one.
    stop_channel();
    std::set<int> done;
    if (complete)
      for (const auto& [k, rx] : partitions_) done.insert(k);
    leases_->finished(done);
    leases_.reset();
  }

  // Emits the frame's messages unless it was delivered before; returns how many.
  size_t deliver(const std::string& frame, uint64_t token, Context& ctx) {
    DecodedBatch b = decode_batch(frame.data(), frame.size());
    counters_->payload_bytes += frame.size();
    if (!b.error.empty()) {
      counters_->errors += 1;
      ctx.error(nullptr, "link " + link_.name + ": a frame was dropped: " + b.error);
      if (leases_) ack(token);
      return 0;
    }
    switch (dedup_.accept(b.header.sender, b.header.session, b.header.sequence)) {
      case FrameDedup::kDuplicate:
        counters_->duplicates += 1;
        if (leases_) ack(token);
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
    if (leases_) {
      // Held until every reading's window is out and confirmed; an end until the partition
      // is done.
      std::map<std::string, int64_t> maxima;
      for (const MessagePtr& m : b.messages) {
        auto [it, fresh] = maxima.try_emplace(m->origin, m->event_time_us);
        if (!fresh) it->second = std::max(it->second, m->event_time_us);
      }
      if (b.header.end)
        end_tokens_.push_back(token);
      else if (maxima.empty())
        ack(token);
      else
        held_.emplace_back(token, std::move(maxima));
      // The servers deliver no more than max_ack_pending unacknowledged frames: windows that
      // wait for more would wait for ever.
      const size_t limit = static_cast<size_t>(hold_options_.max_ack_pending);
      if (held_.size() >= limit * 9 / 10 && !warned_full_) {
        warned_full_ = true;
        logger().warn(
            "link {} on '{}': {} frames held for windows still open, near the consumer's limit "
            "of {} (the servers then stop delivering): shorten the stage's allowed_lateness or "
            "window, or send bigger batches (links.batch)",
            link_.name, node_, held_.size(), limit);
      }
    }
    if (link_.sender_replicas > 1) {
      // From replicas: a window an origin already has (made again by the replica that took
      // over a partition, from frames it read again) is dropped.
      auto kept = std::remove_if(b.messages.begin(), b.messages.end(),
                                 [&](const MessagePtr& m) { return !first_window(*m); });
      counters_->duplicates += static_cast<uint64_t>(b.messages.end() - kept);
      b.messages.erase(kept, b.messages.end());
    }
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

  // A window from replicas that this origin has not had. Windows (by their end) are kept
  // back to window + allowed_lateness + window before the origin's latest: a replica taking
  // over re-reads frames from its predecessor's oldest open window, so what it makes again
  // ends after that; an older one is new (an output frame delivered again late).
  bool first_window(const Message& m) {
    if (repeat_horizon_us_ == 0) {
      const StageSpec& s = shared_->pipeline->stages[link_.from_stage];
      const int64_t window = s.options.has("window") ? s.options.get_duration_us("window") : 0;
      const int64_t late =
          s.options.has("allowed_lateness") ? s.options.get_duration_us("allowed_lateness") : 0;
      repeat_horizon_us_ = std::max<int64_t>(1, 2 * window + late);
    }
    std::set<int64_t>& seen = windows_seen_[m.origin];
    if (!seen.insert(m.event_time_us).second) return false;
    const int64_t floor = *seen.rbegin() - repeat_horizon_us_;
    seen.erase(seen.begin(), seen.lower_bound(floor));
    return true;
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
  // A replica: the partitions it reads (by lease), the frames it holds with the latest event
  // time of each origin in them, and the ends it holds until its partitions are done.
  std::unique_ptr<PartitionLeases> leases_;
  NatsLinkOptions hold_options_;
  std::map<int, std::unique_ptr<FrameReceiver>> partitions_;
  std::set<int> unread_;  // leased, no receiver yet (the servers could not be reached)
  struct Warming {
    int64_t until_ms = 0;
    std::map<uint64_t, std::string> frames;  // token (partition, stream sequence) -> frame
  };
  std::map<int, Warming> warming_;  // partitions taken over, held back (hold_back)
  std::list<std::pair<uint64_t, std::map<std::string, int64_t>>> held_;
  std::vector<uint64_t> end_tokens_;
  uint64_t settled_version_ = 0;  // Shared::ledger_version at the last settle()
  bool warned_full_ = false;
  std::map<std::string, std::set<int64_t>> windows_seen_;  // from replicas (first_window)
  int64_t repeat_horizon_us_ = 0;
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

}  // namespace

std::unique_ptr<Operator> make_link_receiver(std::shared_ptr<Shared> shared, const LinkPlan& link,
                                             std::string node, bool peers_local) {
  return std::make_unique<LinkReceiver>(std::move(shared), link, std::move(node), peers_local);
}

}  // namespace edgeflow::link_internal
