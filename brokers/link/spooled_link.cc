#include "brokers/link/spooled_link.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "brokers/link/batch.h"
#include "brokers/link/frame_inbox.h"
#include "brokers/mqtt/client.h"
#include "brokers/mqtt/security.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

// The client that carries acknowledgements: its own connection, so an acknowledgement never
// waits behind frames. Clean session: the retained acknowledgement is what matters.
std::unique_ptr<mqtt::Client> ack_client(const MqttLinkOptions& o, const std::string& suffix,
                                         mqtt::MessageHandler handler) {
  mqtt::ClientOptions co;
  co.uri = o.broker;
  mqtt::apply_security(o.security, co);
  co.client_id = o.client_id + "-" + suffix;
  co.clean_session = true;
  co.retry_first_connect = true;
  co.connect_timeout_ms = 1000;
  return mqtt::make_client(o.client, co, std::move(handler));
}

class SpooledSender final : public Operator {
 public:
  explicit SpooledSender(SpooledLinkConfig c) : c_(std::move(c)) {}
  ~SpooledSender() override { stop_thread(); }

  void open(Context& ctx) override {
    Spool::Outgoing out = c_.spool->outgoing(c_.key);
    session_ = out.session;
    seq_ = out.last_seq;
    acked_ = out.acked;
    MqttLinkOptions o = c_.mqtt_options(ctx, "tx");
    o.retry = true;       // a device at boot: the broker may come later; the spool holds
    o.receivers.clear();  // no waiting for announcements: unacknowledged frames are resent
    o.max_inflight = c_.window;
    topic_ = o.topic;
    energy_ = &ctx.energy();
    try {
      tx_ = make_mqtt_sender(o);
      acks_ = ack_client(o, "ack", [this](mqtt::Received&& r) { on_ack(r); });
      acks_->subscribe(c_.ack_prefix + c_.node + "/+", 1);
      acks_->connect();
    } catch (const std::exception& e) {
      throw OperatorError(e.what());
    }
    if (seq_ > acked_) {
      logger().info("link {} on '{}': {} frames in the spool from before; sending them first",
                    c_.link->name, c_.node, seq_ - acked_);
    }
    thread_ = std::thread([this] { publish_loop(); });
  }

  void process(int, MessagePtr message, Context& ctx) override {
    std::string why;
    if (!writer_.add(*message, why)) {
      ctx.error(message.get(), why);
      return;
    }
    uint64_t& mark = marks_[message->stream];
    mark = std::max(mark, message->seq);
    if (writer_.count() >= static_cast<size_t>(ctx.links().batch_messages) ||
        writer_.bytes() >= static_cast<size_t>(ctx.links().batch_bytes))
      spool_frame(ctx);
  }

  void turn_end(Context& ctx) override {
    if (!writer_.empty()) spool_frame(ctx);
  }

  void close(Context& ctx) override {
    if (!tx_) return;
    if (!writer_.empty()) spool_frame(ctx);
    // Give the receivers drain_timeout to confirm; what they did not stays in the spool.
    const int64_t deadline = steady_ms() + ctx.links().drain_timeout_ms;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (acked_ < seq_ && steady_ms() < deadline && !held())
        cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (acked_ < seq_) {
        logger().info(
            "link {} on '{}': {} frames stay in the spool {}; they are sent when the "
            "service starts again",
            c_.link->name, c_.node, seq_ - acked_, c_.spool->path());
      }
    }
    stop_thread();
    c_.counters->unacknowledged = seq_ - acked_;
    c_.counters->reconnects = tx_->reconnects();
  }

 private:
  // Appends the batch to the spool; while the disk refuses, waits (back-pressure to the
  // sources) and says why, so nothing accepted is dropped. After a stop it gives up after
  // the drain timeout and reports the loss.
  void spool_frame(Context& ctx) {
    const uint32_t n = static_cast<uint32_t>(writer_.count());
    BatchHeader h;
    h.sender = c_.node;
    h.session = session_;
    h.sequence = seq_ + 1;
    writer_.finish(h, frame_);
    int64_t give_up = -1, next_note = 0;
    while (true) {
      try {
        c_.spool->append(c_.key, h.sequence, frame_, n, marks_, wall_us());
        break;
      } catch (const SpoolError& e) {
        c_.counters->errors += 1;
        if (steady_ms() >= next_note) {
          next_note = steady_ms() + 10000;
          ctx.error(nullptr, std::string(e.what()) + "; holding " + std::to_string(n) +
                                 " messages and retrying");
        }
        if (ctx.stopping()) {
          if (give_up < 0) give_up = steady_ms() + ctx.links().drain_timeout_ms;
          if (steady_ms() >= give_up) {
            ctx.error(nullptr, "link " + c_.link->name + ": " + std::to_string(n) +
                                   " messages lost: the spool could not take them before "
                                   "shutdown");
            return;
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      seq_ = h.sequence;
    }
    c_.counters->messages += n;
    c_.counters->unacknowledged = seq_ - acked_;
    cv_.notify_all();
  }

  void on_ack(const mqtt::Received& r) {
    const std::string receiver = r.topic.substr(r.topic.rfind('/') + 1);
    unsigned long long session = 0, seq = 0;
    if (std::sscanf(r.payload.c_str(), "%llu %llu", &session, &seq) != 2) return;
    if (session != session_) return;  // an acknowledgement of an earlier spool
    {
      std::lock_guard<std::mutex> lock(mu_);
      uint64_t& a = receiver_acks_[receiver];
      a = std::max<uint64_t>(a, seq);
    }
    cv_.notify_all();
  }

  // Every receiver of the link has confirmed up to here (those not heard of: the spool's).
  uint64_t confirmed_locked() const {
    uint64_t low = UINT64_MAX;
    for (const std::string& r : c_.link->receivers) {
      auto it = receiver_acks_.find(r);
      low = std::min(low, it == receiver_acks_.end() ? acked_ : std::max(acked_, it->second));
    }
    return low == UINT64_MAX ? acked_ : low;
  }

  void publish_loop() {
    uint64_t next = acked_;  // last frame published in this round
    bool round_start = true;
    int64_t last_progress = steady_ms();
    uint64_t reconnects = tx_->reconnects();
    std::unique_lock<std::mutex> lock(mu_);
    while (!quit_) {
      const uint64_t confirmed = std::min(confirmed_locked(), seq_);
      if (confirmed > acked_) {
        lock.unlock();
        try {
          c_.spool->acknowledge(c_.key, confirmed);
        } catch (const SpoolError& e) {
          logger().warn("{}", e.what());  // the frames are sent again: no loss
        }
        lock.lock();
        acked_ = confirmed;
        last_progress = steady_ms();
        c_.counters->unacknowledged = seq_ - acked_;
        cv_.notify_all();
      }
      if (next < acked_) next = acked_;
      if (note_hold(held())) {
        // Held by the energy mode: frames stay in the spool; acknowledgements of those already
        // out are still taken (above).
        cv_.wait_for(lock, std::chrono::milliseconds(200));
        continue;
      }
      // Go back to the first unconfirmed frame after a silence or a reconnect.
      const uint64_t now_reconnects = tx_->reconnects();
      if (next > acked_ &&
          (steady_ms() - last_progress > c_.resend_ms || now_reconnects != reconnects)) {
        next = acked_;
        round_start = true;
        last_progress = steady_ms();
        reconnects = now_reconnects;
        c_.counters->reconnects = now_reconnects;
      }
      const uint64_t in_flight = next - acked_;
      if (next < seq_ && in_flight < static_cast<uint64_t>(c_.window)) {
        const uint64_t from = next;
        lock.unlock();
        std::vector<Spool::Frame> frames;
        try {
          frames = c_.spool->read(c_.key, from, c_.window - in_flight);
        } catch (const SpoolError& e) {
          logger().warn("{}", e.what());
        }
        uint64_t sent_to = from;
        bool first = round_start;
        for (const Spool::Frame& f : frames) {
          const std::string bytes = first ? with_batch_floor(f.bytes, f.seq) : f.bytes;
          if (!tx_->send(bytes, 500)) break;
          first = false;
          sent_to = f.seq;
          c_.counters->batches += 1;
          c_.counters->payload_bytes += bytes.size();
          c_.counters->wire_bytes += tx_->wire_bytes(bytes.size());
          if (quit_) break;
        }
        lock.lock();
        if (sent_to > from) {
          next = sent_to;
          round_start = false;
        }
        if (!frames.empty() && sent_to > from) continue;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(200));
    }
  }

  bool held() const { return energy_ && energy_->holds_links_from(c_.from_stage); }

  // Logs the changes of the hold; returns `now`. Called with mu_ held.
  bool note_hold(bool now) {
    if (now == holding_) return now;
    holding_ = now;
    if (now) {
      logger().info("link {} on '{}': held by energy mode '{}'; frames stay in the spool",
                    c_.link->name, c_.node, energy_->mode());
    } else {
      logger().info("link {} on '{}': hold lifted; sending {} spooled frames", c_.link->name,
                    c_.node, seq_ - acked_);
    }
    return now;
  }

  void stop_thread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (acks_) acks_->disconnect();
  }

  SpooledLinkConfig c_;
  std::string topic_;
  std::unique_ptr<FrameSender> tx_;
  std::unique_ptr<mqtt::Client> acks_;
  BatchWriter writer_;
  std::string frame_;
  std::map<std::string, uint64_t> marks_;  // per stream, the highest message seq spooled
  uint64_t session_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t seq_ = 0;    // last frame in the spool
  uint64_t acked_ = 0;  // every frame up to here confirmed by every receiver
  std::map<std::string, uint64_t> receiver_acks_;
  bool quit_ = false;
  bool holding_ = false;
  const EnergyMode* energy_ = nullptr;  // the node's, via Context::energy(); outlives this
  std::thread thread_;
};

class DurableReceiver final : public Operator {
 public:
  explicit DurableReceiver(SpooledLinkConfig c)
      : c_(std::move(c)), queue_(std::make_shared<FrameInbox>()) {}
  ~DurableReceiver() override { stop_channel(); }

  void open(Context& ctx) override {
    for (std::string& f : c_.spool->inbox(c_.key)) replay_.push_back(std::move(f));
    if (!replay_.empty()) {
      logger().info("link {} on '{}': replaying {} frames kept before a restart", c_.link->name,
                    c_.node, replay_.size());
    }
    queue_->waker = ctx.make_waker();
    MqttLinkOptions o = c_.mqtt_options(ctx, "rx");
    o.retry = true;
    std::weak_ptr<FrameInbox> weak = queue_;
    try {
      acks_ = ack_client(o, "ack", [](mqtt::Received&&) {});
      acks_->connect();
      rx_ = make_mqtt_receiver(o, [weak](std::string&& frame) {
        if (auto q = weak.lock()) q->push(std::move(frame));
      });
    } catch (const std::exception& e) {
      throw OperatorError(e.what());
    }
  }

  SourceStep generate(Context& ctx) override {
    size_t emitted = 0;
    while (emitted < 256 && !replay_.empty()) {
      DecodedBatch b = decode_batch(replay_.front().data(), replay_.front().size());
      replay_.pop_front();
      for (MessagePtr& m : b.messages) ctx.emit(std::move(m));
      emitted += b.messages.size();
    }
    std::string frame;
    size_t frames = 0;
    while (emitted < 256 && queue_->pop(frame)) {
      ++frames;
      emitted += deliver(frame, ctx);
    }
    if (steady_ms() >= next_prune_) {
      next_prune_ = steady_ms() + 10000;
      try {
        c_.spool->prune_inbox(c_.key, wall_us());
      } catch (const SpoolError&) {
      }
    }
    if (emitted > 0 || frames > 0) return SourceStep::emitted();
    // Remote senders come and go (restarts, redeployments): a service's receiver ends only
    // when the service stops it.
    if (stopped_) return SourceStep::done();
    return SourceStep::wait_until(ctx.now_us() + 1'000'000);
  }

  bool on_stop(Context&) override {
    // Stop taking frames (the senders keep them until acknowledged), deliver what was taken.
    stop_channel();
    stopped_ = true;
    return false;
  }

  void close(Context&) override { stop_channel(); }

 private:
  void stop_channel() {
    queue_->close();
    if (rx_) {
      rx_->stop();
      c_.counters->reconnects = rx_->reconnects();
    }
    if (acks_) acks_->disconnect();
  }

  size_t deliver(const std::string& frame, Context& ctx) {
    DecodedBatch b = decode_batch(frame.data(), frame.size());
    c_.counters->payload_bytes += frame.size();
    if (!b.error.empty()) {
      c_.counters->errors += 1;
      ctx.error(nullptr, "link " + c_.link->name + ": a frame was dropped: " + b.error);
      return 0;
    }
    const BatchHeader& h = b.header;
    Spool::Verdict v;
    try {
      v = c_.spool->receive(c_.key, h.sender, h.session, h.sequence, h.floor, frame, wall_us());
    } catch (const SpoolError& e) {
      // Not acknowledged: the sender keeps it and sends it again.
      c_.counters->errors += 1;
      if (steady_ms() >= next_error_note_) {
        next_error_note_ = steady_ms() + 10000;
        ctx.error(nullptr, std::string(e.what()) + "; frames are left with their senders");
      }
      return 0;
    }
    if (v == Spool::Verdict::kOutOfOrder) return 0;  // the sender goes back and resends
    acknowledge(h.sender, h.session, v == Spool::Verdict::kAccepted ? h.sequence : 0);
    if (v == Spool::Verdict::kDuplicate) {
      c_.counters->duplicates += 1;
      return 0;
    }
    c_.counters->batches += 1;
    c_.counters->messages += b.messages.size();
    const size_t n = b.messages.size();
    for (MessagePtr& m : b.messages) ctx.emit(std::move(m));
    return n;
  }

  // Retained, so a sender that restarts (or reconnects after the broker lost its queue)
  // learns where to resume. A duplicate repeats the last acknowledgement.
  void acknowledge(const std::string& sender, uint64_t session, uint64_t seq) {
    if (seq == 0) seq = c_.spool->received(c_.key, sender, session);
    const std::string payload = std::to_string(session) + " " + std::to_string(seq);
    acks_->publish(c_.ack_prefix + sender + "/" + c_.node, payload.data(), payload.size(), 1, true,
                   0);
  }

  SpooledLinkConfig c_;
  std::shared_ptr<FrameInbox> queue_;
  std::deque<std::string> replay_;
  std::unique_ptr<FrameReceiver> rx_;
  std::unique_ptr<mqtt::Client> acks_;
  bool stopped_ = false;
  int64_t next_prune_ = 0, next_error_note_ = 0;
};

}  // namespace

std::unique_ptr<Operator> make_spooled_sender(SpooledLinkConfig config) {
  return std::make_unique<SpooledSender>(std::move(config));
}

std::unique_ptr<Operator> make_durable_receiver(SpooledLinkConfig config) {
  return std::make_unique<DurableReceiver>(std::move(config));
}

}  // namespace edgeflow
