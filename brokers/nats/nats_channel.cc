#include "brokers/nats/nats_channel.h"

#include <nats/nats.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "brokers/nats/nats_internal.h"
#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

using namespace nats_internal;

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kDuplicateWindowMs = 120'000;  // JetStream's default, stated
constexpr int kFetchBatch = 16;  // frames per pull (a holding receiver keeps more: max_ack_pending)

// The pipeline's stream and the consumers named in `o.consumers` (idempotent).
void ensure_stream_and_consumers(jsCtx* js, const NatsLinkOptions& o) {
  with_retries(o, "stream " + o.stream, [&](jsErrCode* code) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = o.stream.c_str();
    const char* subjects[] = {o.stream_subjects.c_str()};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = js_InterestPolicy;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = o.replicas;
    cfg.Duplicates = kDuplicateWindowMs * kNsPerMs;
    jsStreamInfo* si = nullptr;
    natsStatus s = js_AddStream(&si, js, &cfg, nullptr, code);
    if (si) jsStreamInfo_Destroy(si);
    if (s != NATS_OK && *code == JSStreamNameExistErr) {
      // Made by the other end or an earlier run: brought to this file's settings (replicas).
      s = js_UpdateStream(&si, js, &cfg, nullptr, code);
      if (si) jsStreamInfo_Destroy(si);
      if (s != NATS_OK) {
        logger().warn(
            "link {}: the stream {} exists with other settings and cannot take "
            "these ({}); delete it (nats stream rm) to change them",
            o.link, o.stream, status_text(s, *code));
        s = NATS_OK;
      }
    }
    return s;
  });
  for (size_t i = 0; i < o.consumers.size(); ++i) {
    const std::string& durable = o.consumers[i];
    const std::string& filter = i < o.consumer_subjects.size() ? o.consumer_subjects[i] : o.subject;
    with_retries(o, "consumer " + durable, [&](jsErrCode* code) {
      jsConsumerConfig cc;
      jsConsumerConfig_Init(&cc);
      cc.Durable = durable.c_str();
      cc.AckPolicy = js_AckExplicit;
      cc.AckWait = o.ack_wait_ms * kNsPerMs;
      cc.DeliverPolicy = js_DeliverAll;
      cc.FilterSubject = filter.c_str();
      cc.MaxAckPending = o.max_ack_pending;
      cc.Replicas = o.replicas;
      jsConsumerInfo* ci = nullptr;
      natsStatus s = js_AddConsumer(&ci, js, o.stream.c_str(), &cc, nullptr, code);
      if (ci) jsConsumerInfo_Destroy(ci);
      if (s != NATS_OK &&
          (*code == JSConsumerNameExistErr || *code == JSConsumerExistingActiveErr)) {
        // Kept from an earlier run with other settings (nats-server 2.9 cannot change a
        // consumer): it keeps what it has not acknowledged, and its old ack_wait.
        logger().warn(
            "link {}: consumer {} exists with other settings (ack_wait?); it keeps "
            "them until deleted",
            o.link, durable);
        s = NATS_OK;
      }
      return s;
    });
  }
}

uint64_t random_id() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// What the publish acknowledgements reach. libnats calls them on its reply subscription's
// thread, which closing the connection does not join: a late one may come after the sender
// is gone, so it goes through this gate (the sender clears `owner` under the lock on its way
// out), and the gate itself is never freed (a few bytes per link end for the process's life).
struct AckGate {
  std::mutex mu;
  class NatsSender* owner = nullptr;
};

class NatsSender final : public FrameSender {
 public:
  explicit NatsSender(const NatsLinkOptions& o) : o_(o), conn_(o), gate_(new AckGate) {
    gate_->owner = this;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    jo.PublishAsync.MaxPending = o.max_inflight * 2;  // our own window is the bound
    jo.PublishAsync.AckHandler = &NatsSender::on_ack;
    jo.PublishAsync.AckHandlerClosure = gate_;
    js_ = conn_.jetstream(&jo);
    ensure_stream_and_consumers(js_, o);
    id_prefix_ = o.node + "-" + std::to_string(random_id()) + "-";
  }
  ~NatsSender() override {
    closing_ = true;
    cv_.notify_all();
    {
      std::lock_guard<std::mutex> gate(gate_->mu);  // waits for a callback in progress
      gate_->owner = nullptr;
    }
    conn_.close();
    std::lock_guard<std::mutex> lock(mu_);
    for (natsMsg* m : retry_) natsMsg_Destroy(m);
  }

  bool send(const std::string& frame, int timeout_ms) override {
    return send_to(0, frame, timeout_ms);
  }
  bool send_to(int partition, const std::string& frame, int timeout_ms) override {
    if (o_.partition_subjects.empty())
      return partition == 0 && send_on(o_.subject, frame, timeout_ms);
    return send_on(o_.partition_subjects.at(static_cast<size_t>(partition)), frame, timeout_ms);
  }

  bool send_on(const std::string& subject, const std::string& frame, int timeout_ms) {
    const int64_t deadline = timeout_ms < 0 ? INT64_MAX : steady_ms() + timeout_ms;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!closing_ && (inflight_ >= o_.max_inflight || !retry_.empty())) {
        resend_locked(lock);
        if (inflight_ < o_.max_inflight && retry_.empty()) break;
        if (steady_ms() >= deadline) return false;
        cv_.wait_for(lock, std::chrono::milliseconds(100));
      }
      if (closing_) return false;
      ++inflight_;
    }
    natsMsg* msg = nullptr;
    natsMsg_Create(&msg, subject.c_str(), nullptr, frame.data(), static_cast<int>(frame.size()));
    uint64_t number = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      number = ++sequence_;
      unconfirmed_.insert(number);
    }
    const std::string id = id_prefix_ + std::to_string(number);
    natsMsgHeader_Set(msg, "Nats-Msg-Id", id.c_str());
    publish(msg);
    return true;
  }

  bool drain(int timeout_ms) override {
    const int64_t deadline = steady_ms() + timeout_ms;
    std::unique_lock<std::mutex> lock(mu_);
    while (inflight_ > 0 && !closing_) {
      resend_locked(lock);
      if (inflight_ == 0) break;
      if (steady_ms() >= deadline) return false;
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
    return inflight_ == 0;
  }
  uint64_t unacknowledged() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<uint64_t>(inflight_);
  }
  uint64_t reconnects() const override { return conn_.reconnects(); }
  uint64_t wire_bytes(uint64_t payload) const override {
    return nats_wire_bytes(o_.subject, payload);
  }
  uint64_t confirmed_through() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return unconfirmed_.empty() ? sequence_ : *unconfirmed_.begin() - 1;
  }

 private:
  // Publishes `msg` (its id header set); a failure to even queue it goes to the retry list.
  void publish(natsMsg* msg) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;  // then the ack handler hears a timeout, and it is published again
    natsStatus s = js_PublishMsgAsync(js_, &msg, &po);
    if (s != NATS_OK && msg) {
      std::lock_guard<std::mutex> lock(mu_);
      retry_.push_back(msg);
      note_failure(status_text(s));
    }
  }

  // Publishes again what failed, at most every 200 ms (a cluster electing a leader answers
  // "no responders" at once). Called with the lock held; releases it while publishing.
  void resend_locked(std::unique_lock<std::mutex>& lock) {
    if (retry_.empty() || steady_ms() < next_retry_ms_) return;
    next_retry_ms_ = steady_ms() + 200;
    std::deque<natsMsg*> again;
    again.swap(retry_);
    lock.unlock();
    for (natsMsg* m : again) publish(m);
    lock.lock();
  }

  void note_failure(const std::string& why) {
    const int64_t now = steady_ms();
    if (now - last_warning_ms_ < 10'000) return;
    last_warning_ms_ = now;
    logger().warn("link {} on '{}': NATS did not take a frame ({}); publishing it again", o_.link,
                  o_.node, why);
  }

  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* gate = static_cast<AckGate*>(closure);
    std::lock_guard<std::mutex> gate_lock(gate->mu);
    NatsSender* self = gate->owner;
    if (!self) {  // the sender is gone
      natsMsg_Destroy(msg);
      return;
    }
    std::lock_guard<std::mutex> lock(self->mu_);
    if (pa || !pae || self->closing_) {
      // Stored (a duplicate within the window was stored before: as good).
      --self->inflight_;
      if (pa || !pae) self->unconfirmed_.erase(self->number_of(msg));
      natsMsg_Destroy(msg);
    } else {
      self->retry_.push_back(msg);  // kept: published again by the sender's thread
      self->note_failure(status_text(pae->Err, pae->ErrCode) +
                         (pae->ErrText ? std::string(": ") + pae->ErrText : std::string()));
    }
    self->cv_.notify_all();
  }

  // The number a published message carries at the end of its id.
  uint64_t number_of(natsMsg* msg) const {
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || !id) return 0;
    const std::string text = id;
    return std::strtoull(text.c_str() + std::min(text.size(), id_prefix_.size()), nullptr, 10);
  }

  const NatsLinkOptions o_;
  Connection conn_;
  AckGate* gate_;  // never freed, see AckGate
  jsCtx* js_ = nullptr;
  std::string id_prefix_;
  uint64_t sequence_ = 0;           // under mu_
  std::set<uint64_t> unconfirmed_;  // numbers published and not stored yet, under mu_
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t inflight_ = 0;        // published, not acknowledged (the retry list included)
  std::deque<natsMsg*> retry_;  // refused or timed out: to publish again
  int64_t next_retry_ms_ = 0;
  int64_t last_warning_ms_ = -1'000'000;
  std::atomic<bool> closing_{false};
};

class NatsReceiver final : public FrameReceiver {
 public:
  NatsReceiver(const NatsLinkOptions& o, HeldFrameHandler handler)
      : o_(o), handler_(std::move(handler)), conn_(o) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    js_ = conn_.jetstream(&jo);
    ensure_stream_and_consumers(js_, o);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = o_.stream.c_str();
    so.Consumer = o_.consumers.at(0).c_str();  // bound: never deleted by the library
    with_retries(o_, "a pull subscription to " + o_.consumers[0], [&](jsErrCode* code) {
      return js_PullSubscribe(&sub_, js_, o_.subject.c_str(), o_.consumers[0].c_str(), &jo, &so,
                              code);
    });
    thread_ = std::thread([this] { run(); });
  }
  ~NatsReceiver() override { stop(); }

  void stop() override {
    finish();
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (sub_) natsSubscription_Destroy(sub_);  // the durable consumer stays on the server
    sub_ = nullptr;
    {
      std::lock_guard<std::mutex> held(held_mu_);
      for (auto& [seq, h] : held_) natsMsg_Destroy(h.msg);  // not acknowledged: read again
      held_.clear();
    }
    // Acknowledgements are queued, not sent: a close alone could drop the last ones, and their
    // frames would come again in the next run.
    conn_.flush(2000);
    conn_.close();
  }
  // No more fetching; a holding receiver can still acknowledge what it holds.
  void finish() override {
    stopping_ = true;
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (thread_.joinable()) thread_.join();
  }
  void ack(uint64_t token) override {
    std::lock_guard<std::mutex> lock(held_mu_);
    auto it = held_.find(token);
    if (it == held_.end()) return;
    natsMsg_Ack(it->second.msg, nullptr);
    natsMsg_Destroy(it->second.msg);
    held_.erase(it);
  }
  uint64_t reconnects() const override { return conn_.reconnects(); }

 private:
  void run() {
    int64_t last_warning_ms = -1'000'000;
    while (!stopping_) {
      natsMsgList list{};
      jsErrCode code = static_cast<jsErrCode>(0);
      natsStatus s = natsSubscription_Fetch(&list, sub_, kFetchBatch, 500, &code);
      if (o_.hold) note_in_progress();
      if (s == NATS_OK) {
        for (int i = 0; i < list.Count; ++i) {
          natsMsg* m = list.Msgs[i];
          if (stopping_) continue;  // not taken: delivered again next run
          std::string frame(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
          if (!o_.hold) {
            handler_(std::move(frame), 0);
            natsMsg_Ack(m, nullptr);
            continue;
          }
          // Held until ack(): keyed by its place in the stream, so a redelivery of a frame
          // still held replaces the handle instead of being handed over twice.
          jsMsgMetaData* meta = nullptr;
          if (natsMsg_GetMetaData(&meta, m) != NATS_OK || !meta) continue;
          const uint64_t seq = meta->Sequence.Stream;
          jsMsgMetaData_Destroy(meta);
          list.Msgs[i] = nullptr;  // ours now, not the list's
          bool again = false;
          {
            std::lock_guard<std::mutex> lock(held_mu_);
            auto [it, fresh] = held_.try_emplace(seq, Held{m, steady_ms()});
            if (!fresh) {
              natsMsg_Destroy(it->second.msg);
              it->second = Held{m, steady_ms()};
              again = true;
            }
          }
          if (!again) handler_(std::move(frame), seq);
        }
        natsMsgList_Destroy(&list);
        continue;
      }
      natsMsgList_Destroy(&list);
      if (s == NATS_TIMEOUT) continue;
      const int64_t now = steady_ms();
      if (now - last_warning_ms >= 10'000) {
        last_warning_ms = now;
        logger().warn("link {} on '{}': fetching from NATS failed ({}); trying again", o_.link,
                      o_.node, status_text(s, code));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  // Held frames the server would deliver again after ack_wait: told they are in progress
  // every third of it.
  void note_in_progress() {
    const int64_t now = steady_ms();
    std::lock_guard<std::mutex> lock(held_mu_);
    for (auto& [seq, h] : held_)
      if (now - h.noted_ms >= o_.ack_wait_ms / 3) {
        natsMsg_InProgress(h.msg, nullptr);
        h.noted_ms = now;
      }
  }

  struct Held {
    natsMsg* msg;
    int64_t noted_ms;  // delivered or last said in progress
  };
  const NatsLinkOptions o_;
  HeldFrameHandler handler_;
  Connection conn_;
  jsCtx* js_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::mutex held_mu_;
  std::map<uint64_t, Held> held_;  // stream sequence -> frame, in hold mode
  std::thread thread_;
};

}  // namespace

std::unique_ptr<FrameSender> make_nats_sender(const NatsLinkOptions& options) {
  return std::make_unique<NatsSender>(options);
}

namespace {

std::unique_ptr<FrameReceiver> make_receiver(const NatsLinkOptions& options, bool hold,
                                             HeldFrameHandler handler) {
  if (options.consumers.size() != 1)
    throw std::invalid_argument("a NATS receiver has exactly one consumer");
  NatsLinkOptions o = options;
  o.hold = hold;
  return std::make_unique<NatsReceiver>(o, std::move(handler));
}

}  // namespace

std::unique_ptr<FrameReceiver> make_nats_receiver(const NatsLinkOptions& options,
                                                  FrameHandler handler) {
  return make_receiver(options, false, [h = std::move(handler)](std::string&& frame, uint64_t) {
    h(std::move(frame));
  });
}

std::unique_ptr<FrameReceiver> make_nats_holding_receiver(const NatsLinkOptions& options,
                                                          HeldFrameHandler handler) {
  return make_receiver(options, true, std::move(handler));
}

uint64_t nats_wire_bytes(const std::string& subject, uint64_t payload) {
  // HPUB <subject> <reply inbox ~30> <hdr> <total>\r\n + "NATS/1.0\r\nNats-Msg-Id: ~40\r\n\r\n"
  const uint64_t publish = subject.size() + 110 + payload;
  const uint64_t stored_ack = 90;  // {"stream":...,"seq":N} to the reply inbox
  // HMSG <subject> <sid> $JS.ACK.<stream>.<consumer>.<9 numbers> <hdr> <total>\r\n + headers
  const uint64_t delivery = subject.size() + 140 + payload;
  const uint64_t consumer_ack = 110;  // PUB $JS.ACK... 0\r\n\r\n
  return tcp_wire_bytes(publish) + tcp_wire_bytes(stored_ack) + tcp_wire_bytes(delivery) +
         tcp_wire_bytes(consumer_ack);
}

std::string nats_token(const std::string& text) {
  std::string out;
  for (char c : text)
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
  return out.empty() ? "_" : out;
}

}  // namespace edgeflow
