// ZeroMQ channels. See zmq_channel.h for the modes; the kAcked protocol is:
//
//   data  DEALER -> ROUTER  [header: session, seq, base][payload]
//   ack   ROUTER -> DEALER  [session, next]
//
// every number a big-endian uint64. `session` is random per sender object, so a sender that
// restarts is never mistaken for the old one. `seq` counts the frames of the session from 1.
// `base` is the oldest frame not yet acknowledged when this copy was sent: every frame below it
// was acknowledged, so was delivered by some receiver. The ack is cumulative: every frame below
// `next` is delivered.
//
// The receiver keeps `next` per sender identity: a frame with seq == next is delivered (the
// handler runs), seq < next is a duplicate, seq > next follows a gap (frames lost in a broken
// TCP connection) and is dropped. A session it does not know, or a base above `next`, moves
// `next` to base. Every frame is acknowledged with the current `next`, after the handler.
//
// The sender keeps the frames not yet acknowledged (at most `window`; send() blocks on a full
// window). They go out in order; when no ack has moved the window for resend_ms while frames
// are out, all of them go again (go-back-N, as the receiver delivers in order), and the wait
// doubles up to kMaxResendMs until an ack moves the window. A lost connection (monitor event) has
// them all sent again as soon as the next one is up. The DEALER sets ZMQ_IMMEDIATE, so nothing is
// queued towards a receiver that is not connected, and frames wait in the window instead.
//
// Guarantees: while a sender object lives, each frame it accepted reaches a receiver's handler
// at least once (drain() true means every frame did). One receiver object delivers the frames
// of one sender session exactly once and in order. A receiver that restarts may see again the
// frames its predecessor delivered but had not acknowledged yet (at most `window`). Frames held
// by a sender that is destroyed before drain() succeeds are lost (nothing is persisted).
#include "brokers/zmq/zmq_channel.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "brokers/zmq/zmq_curve.h"
#include "brokers/zmq/zmq_util.h"

namespace edgeflow::zmqlink {

namespace {

constexpr size_t kHeaderBytes = 24;  // session, seq, base
constexpr size_t kAckBytes = 16;     // session, next
constexpr int kMaxResendMs = 5000;
// Acks (16 bytes) queued towards one sender, and read by it: a ROUTER drops what is over its
// high-water mark without a word, and a dropped last ack leaves the sender waiting for a
// receiver that has already finished. A sender's window of frames in flight bounds them anyway.
constexpr int kAckHwm = 100'000;
constexpr int kCloseLingerMs = 500;  // receiver: the last acks' time to leave at close
// A peer's handshake failed: plaintext against CURVE, a wrong key, refused by the ZAP handler.
// Receivers watch it only with CURVE. A plaintext peer comes as NO_DETAIL in libzmq 4.3
// (tested), as does a TCP probe that closes mid-greeting: both count.
constexpr int kHandshakeFailed = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
constexpr int kIdlePollMs = 1000;   // wake-ups of idle threads (stop() signals at once)
constexpr int kMaxBatch = 256;      // messages read per poll before checking stop again
constexpr size_t kLocalQueue = 16;  // kPush, kPubSub: frames queued before send() blocks
constexpr size_t kMaxPeers = 4096;  // kAcked: sender identities tracked by a receiver
constexpr int64_t kMaxMessageBytes = int64_t{256} << 20;  // a larger part drops the peer
constexpr int kHeartbeatIvlMs = 5000;
constexpr int kHeartbeatTimeoutMs = 15000;
constexpr const char* kInUseFix =
    "pick another links.zmq.port, or stop the program that holds it (ss -ltnp shows which)";

void put_u64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t get_u64(const void* data) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

uint64_t random_u64() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return v;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::atomic<uint64_t> monitor_counter{0};

// A socket monitor: the watched socket reports connection events on an inproc PAIR socket.
// Owned and used by the thread that owns the watched socket.
class Monitor {
 public:
  Monitor(zmq::context_t& ctx, zmq::socket_t& watched, int events) : watched_(watched) {
    address_ = "inproc://edgeflow-zmq-monitor-" + std::to_string(monitor_counter.fetch_add(1));
    if (zmq_socket_monitor(watched.handle(), address_.c_str(), events) != 0) throw zmq::error_t();
    pair_ = zmq::socket_t(ctx, zmq::socket_type::pair);
    pair_.set(zmq::sockopt::linger, 0);
    pair_.connect(address_);
  }
  ~Monitor() { close(); }
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  void close() {
    if (!pair_) return;
    zmq_socket_monitor(watched_.handle(), nullptr, 0);
    pair_.close();
  }

  zmq::socket_t& socket() { return pair_; }

  // Reads every pending event; calls on_event(event id) for each.
  template <class F>
  void drain(F&& on_event) {
    for (;;) {
      zmq::message_t first;
      if (!pair_.recv(first, zmq::recv_flags::dontwait)) return;
      uint16_t event = 0;
      if (first.size() >= sizeof(event)) std::memcpy(&event, first.data(), sizeof(event));
      while (first.more()) {  // the endpoint part
        zmq::message_t rest;
        if (!pair_.recv(rest, zmq::recv_flags::dontwait)) break;
        if (!rest.more()) break;
      }
      on_event(event);
    }
  }

 private:
  zmq::socket_t& watched_;
  zmq::socket_t pair_;
  std::string address_;
};

// Reads one multipart message without blocking, keeping at most parts.size() parts; `count`
// is the number of parts the message had. False when nothing was waiting.
template <size_t N>
bool recv_message(zmq::socket_t& socket, std::array<zmq::message_t, N>& parts, size_t& count) {
  count = 0;
  zmq::message_t part;
  if (!socket.recv(part, zmq::recv_flags::dontwait)) return false;
  for (;;) {
    bool more = part.more();
    if (count < N) parts[count] = std::move(part);
    ++count;
    if (!more) return true;
    part = zmq::message_t();
    // The rest of a multipart message is already there (ZeroMQ delivers whole messages).
    if (!socket.recv(part, zmq::recv_flags::none)) return true;
  }
}

// ---------------------------------------------------------------------------------------------

class ZmqSender final : public FrameSender {
 public:
  explicit ZmqSender(SenderOptions o) : o_(std::move(o)) {
    if (o_.window < 1) throw std::invalid_argument("zmq sender: window must be >= 1");
    if (o_.resend_ms < 1) throw std::invalid_argument("zmq sender: resend_ms must be >= 1");
    if (o_.identity.size() > 255 || (!o_.identity.empty() && o_.identity[0] == '\0')) {
      throw std::invalid_argument(
          "zmq sender: identity must be 1 to 255 bytes not starting with a zero byte");
    }
    if (o_.mode == Mode::kAcked && o_.identity.empty()) {
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(random_u64()));
      o_.identity = std::string("edgeflow-") + hex;
    }
    capacity_ = o_.mode == Mode::kAcked ? static_cast<size_t>(o_.window) : kLocalQueue;
    session_ = random_u64();
    rto_ms_ = o_.resend_ms;
    max_rto_ms_ = std::max(o_.resend_ms, kMaxResendMs);

    ctx_ = std::make_unique<zmq::context_t>(1);
    switch (o_.mode) {
      case Mode::kAcked:
        socket_ = zmq::socket_t(*ctx_, zmq::socket_type::dealer);
        socket_.set(zmq::sockopt::routing_id, o_.identity);
        socket_.set(zmq::sockopt::immediate, true);
        socket_.set(zmq::sockopt::sndhwm, std::max(o_.window, 1000));
        socket_.set(zmq::sockopt::rcvhwm, kAckHwm);
        socket_.set(zmq::sockopt::maxmsgsize, kMaxMessageBytes);
        break;
      case Mode::kPush:
        socket_ = zmq::socket_t(*ctx_, zmq::socket_type::push);
        socket_.set(zmq::sockopt::sndhwm, o_.send_hwm);
        break;
      case Mode::kPubSub:
        socket_ = zmq::socket_t(*ctx_, zmq::socket_type::pub);
        socket_.set(zmq::sockopt::sndhwm, o_.send_hwm);
        break;
    }
    socket_.set(zmq::sockopt::linger, 0);  // drain() is the way to wait for delivery
    socket_.set(zmq::sockopt::reconnect_ivl, 100);
    socket_.set(zmq::sockopt::reconnect_ivl_max, 2000);
    socket_.set(zmq::sockopt::heartbeat_ivl, kHeartbeatIvlMs);
    socket_.set(zmq::sockopt::heartbeat_timeout, kHeartbeatTimeoutMs);
    apply_curve_client(socket_, o_.curve);
    monitor_ = std::make_unique<Monitor>(
        *ctx_, socket_, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | kHandshakeFailed);
    connect_or_throw(socket_, o_.endpoint);
    thread_ = std::thread([this] { run(); });
  }

  ~ZmqSender() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    wake_.signal();
    if (thread_.joinable()) thread_.join();
    // The I/O thread closed the sockets; terminating the context returns at once (linger 0).
  }

  bool send(const std::string& frame, int timeout_ms) override {
    std::unique_lock<std::mutex> lock(mu_);
    auto room = [&] { return closing_ || pending_ < capacity_; };
    if (timeout_ms < 0) {
      cv_.wait(lock, room);
    } else if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), room)) {
      return false;
    }
    if (closing_) return false;
    bool was_empty = incoming_.empty();
    incoming_.push_back(Frame{next_seq_++, frame});
    ++pending_;
    lock.unlock();
    if (was_empty) wake_.signal();
    return true;
  }

  bool drain(int timeout_ms) override {
    std::unique_lock<std::mutex> lock(mu_);
    auto done = [&] { return pending_ == 0 || closing_; };
    if (timeout_ms < 0) {
      cv_.wait(lock, done);
    } else {
      cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done);
    }
    return pending_ == 0;
  }

  uint64_t unacknowledged() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_;
  }

  uint64_t reconnects() const override { return reconnects_.load(); }

  uint64_t wire_bytes(uint64_t payload) const override {
    switch (o_.mode) {
      case Mode::kAcked:
        return tcp_wire_bytes(zmtp_part_bytes(kHeaderBytes) + zmtp_part_bytes(payload)) +
               tcp_wire_bytes(zmtp_part_bytes(kAckBytes));
      case Mode::kPush:
        return tcp_wire_bytes(zmtp_part_bytes(payload));
      case Mode::kPubSub:
        return tcp_wire_bytes(zmtp_part_bytes(o_.topic.size()) + zmtp_part_bytes(payload));
    }
    return tcp_wire_bytes(payload);
  }

 private:
  struct Frame {
    uint64_t seq;
    std::string payload;
  };

  void run() {
    try {
      loop();
    } catch (const std::exception& e) {
      spdlog::error("zmq sender to {}: {}; the sender stops", o_.endpoint, e.what());
    }
    monitor_->close();
    socket_.close();
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;  // send() and drain() return false from now on
    }
    cv_.notify_all();
  }

  void loop() {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (closing_) return;
        for (Frame& f : incoming_) inflight_.push_back(std::move(f));
        incoming_.clear();
      }
      bool blocked = o_.mode == Mode::kAcked ? send_acked() : send_plain();

      std::array<zmq::pollitem_t, 3> items{};
      items[0] = {socket_.handle(), 0, 0, 0};
      if (o_.mode == Mode::kAcked) items[0].events |= ZMQ_POLLIN;
      if (blocked) items[0].events |= ZMQ_POLLOUT;
      items[1] = wake_.pollitem();
      items[2] = {monitor_->socket().handle(), 0, ZMQ_POLLIN, 0};
      long timeout = kIdlePollMs;
      if (o_.mode == Mode::kAcked && sent_ > 0) {
        int64_t due = progress_ms_ + rto_ms_ - now_ms();
        timeout = std::clamp<long>(static_cast<long>(due), 1, kIdlePollMs);
      }
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout));

      if (items[1].revents & ZMQ_POLLIN) wake_.clear();
      monitor_->drain([&](uint16_t event) {
        if (event == ZMQ_EVENT_CONNECTED) {
          if (connected_once_) reconnects_.fetch_add(1);
          connected_once_ = true;
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
          // What went out on the lost connection may be lost with it: the next connection
          // gets every frame not yet acknowledged as soon as it is up (ZMQ_IMMEDIATE holds
          // them until then), without waiting for the timer.
          sent_ = 0;
        } else if ((event & kHandshakeFailed) && !refused_warned_) {
          refused_warned_ = true;  // it retries every reconnect interval: said once
          spdlog::warn(
              "zmq sender to {}: the receiver refused the handshake ({}); nothing is "
              "delivered until the keys agree: check links.zmq.curve on both nodes",
              o_.endpoint,
              o_.curve.server_key.empty() ? "this sender has no CURVE keys"
                                          : "a wrong receiver key, or this sender's key unknown");
        }
      });
      if (o_.mode == Mode::kAcked) read_acks();
    }
  }

  // Sends the frames not sent yet, and all of them again once the oldest waited too long.
  // True when the socket would block with frames still to send.
  bool send_acked() {
    int64_t now = now_ms();
    if (sent_ > 0 && now - progress_ms_ >= rto_ms_) {
      sent_ = 0;  // go back: send every frame again, in order
      rto_ms_ = std::min(rto_ms_ * 2, max_rto_ms_);
    }
    if (inflight_.empty()) return false;
    const uint64_t base = inflight_.front().seq;  // the oldest frame not acknowledged
    while (sent_ < inflight_.size()) {
      Frame& f = inflight_[sent_];
      if (sent_ == 0) progress_ms_ = now;  // the timer starts with the first frame in flight
      zmq::message_t header(kHeaderBytes);
      auto* h = static_cast<char*>(header.data());
      put_u64(h, session_);
      put_u64(h + 8, f.seq);
      put_u64(h + 16, base);
      // Both parts are accepted together or not at all: ZeroMQ queues a message only once its
      // last part is sent, and a DEALER with room for the first part has room for the message.
      if (!socket_.send(header, zmq::send_flags::dontwait | zmq::send_flags::sndmore)) {
        return true;
      }
      zmq::message_t payload(f.payload.data(), f.payload.size());
      if (!socket_.send(payload, zmq::send_flags::dontwait)) {
        // Not expected (see above); the half-sent message is dropped by ZeroMQ and resent.
        return true;
      }
      ++sent_;
    }
    return false;
  }

  bool send_plain() {
    size_t done = 0;
    bool blocked = false;
    while (!inflight_.empty()) {
      Frame& f = inflight_.front();
      if (o_.mode == Mode::kPubSub) {
        zmq::message_t topic(o_.topic.data(), o_.topic.size());
        if (!socket_.send(topic, zmq::send_flags::dontwait | zmq::send_flags::sndmore)) {
          blocked = true;
          break;
        }
      }
      zmq::message_t payload(f.payload.data(), f.payload.size());
      if (!socket_.send(payload, zmq::send_flags::dontwait)) {
        blocked = true;
        break;
      }
      inflight_.pop_front();
      ++done;
    }
    if (done > 0) release(done);
    return blocked;
  }

  void read_acks() {
    std::array<zmq::message_t, 1> parts;
    size_t count = 0;
    size_t acked = 0;
    while (recv_message(socket_, parts, count)) {
      if (count != 1 || parts[0].size() != kAckBytes) {
        bad_acks_.fetch_add(1);
        continue;
      }
      const auto* data = static_cast<const char*>(parts[0].data());
      if (get_u64(data) != session_) continue;  // meant for an earlier sender of this identity
      uint64_t next = get_u64(data + 8);
      size_t n = 0;
      while (!inflight_.empty() && inflight_.front().seq < next) {
        inflight_.pop_front();
        ++n;
      }
      sent_ = sent_ > n ? sent_ - n : 0;
      acked += n;
    }
    if (acked > 0) {
      rto_ms_ = o_.resend_ms;
      progress_ms_ = now_ms();
      release(acked);
    }
  }

  void release(size_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ -= n;
    }
    cv_.notify_all();
  }

  SenderOptions o_;
  size_t capacity_ = 0;
  uint64_t session_ = 0;
  std::unique_ptr<zmq::context_t> ctx_;
  zmq::socket_t socket_;
  std::unique_ptr<Monitor> monitor_;
  WakeFd wake_;  // send() and the destructor wake the I/O thread

  mutable std::mutex mu_;
  std::condition_variable cv_;  // room in the window; everything acknowledged; closing
  std::deque<Frame> incoming_;  // accepted by send(), not yet taken by the I/O thread
  size_t pending_ = 0;          // incoming_ + inflight_
  uint64_t next_seq_ = 1;
  bool closing_ = false;

  // I/O thread only.
  std::deque<Frame> inflight_;  // kAcked: not acknowledged; others: not yet sent
  size_t sent_ = 0;             // kAcked: inflight_[0, sent_) went out since the last go-back
  // Retransmission timer: it runs from the last progress (an ack that moved the window, a
  // go-back, the first frame put in flight), so a slow receiver that keeps acknowledging is
  // never flooded with copies; only one that stops for rto_ms_ is.
  int64_t progress_ms_ = 0;
  int rto_ms_ = 0, max_rto_ms_ = 0;
  bool connected_once_ = false;
  bool refused_warned_ = false;

  std::atomic<uint64_t> reconnects_{0}, bad_acks_{0};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------

class ZmqReceiver final : public FrameReceiver {
 public:
  ZmqReceiver(ReceiverOptions o, FrameHandler handler)
      : o_(std::move(o)), handler_(std::move(handler)) {
    if (!handler_) throw std::invalid_argument("zmq receiver: no handler");
    // A context of its own: terminating it in stop() closes the listening socket before stop()
    // returns, so a new receiver can bind the same endpoint at once.
    ctx_ = std::make_unique<zmq::context_t>(1);
    switch (o_.mode) {
      case Mode::kAcked:
        socket_ = zmq::socket_t(*ctx_, zmq::socket_type::router);
        // A sender that restarts with the same identity takes over at once, rather than being
        // refused until its old connection times out.
        socket_.set(zmq::sockopt::router_handover, true);
        socket_.set(zmq::sockopt::sndhwm, kAckHwm);
        break;
      case Mode::kPush:
        socket_ = zmq::socket_t(*ctx_, zmq::socket_type::pull);
        break;
      case Mode::kPubSub:
        socket_ = zmq::socket_t(*ctx_, zmq::socket_type::sub);
        socket_.set(zmq::sockopt::subscribe, o_.topic);
        break;
    }
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvhwm, o_.recv_hwm);
    socket_.set(zmq::sockopt::maxmsgsize, kMaxMessageBytes);
    socket_.set(zmq::sockopt::heartbeat_ivl, kHeartbeatIvlMs);
    socket_.set(zmq::sockopt::heartbeat_timeout, kHeartbeatTimeoutMs);
    monitor_ = std::make_unique<Monitor>(
        *ctx_, socket_,
        ZMQ_EVENT_DISCONNECTED | (o_.curve.secret_key.empty() ? 0 : kHandshakeFailed));
    try {
      if (!o_.curve.secret_key.empty())
        zap_ = std::make_unique<ZapHandler>(*ctx_, socket_, o_.curve,
                                            "zmq receiver on " + o_.endpoint);
      bind_or_throw(socket_, o_.endpoint, kInUseFix);
    } catch (...) {
      monitor_.reset();
      zap_.reset();
      socket_.close();
      throw;
    }
    endpoint_ = last_endpoint(socket_);
    if (zap_) zap_->set_where("zmq receiver on " + endpoint_);
    thread_ = std::thread([this] { run(); });
  }

  ~ZmqReceiver() override {
    stop();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  void stop() override {
    stop_.store(true);
    wake_.signal();
    std::lock_guard<std::mutex> lock(stop_mu_);
    // From the handler itself: no further call starts (the loop checks stop_), and the
    // destructor joins.
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  void finish() override {
    if (thread_.get_id() == std::this_thread::get_id()) {
      finished_ = true;  // from the handler itself, which holds deliver_mu_
      return;
    }
    std::lock_guard<std::mutex> lock(deliver_mu_);
    finished_ = true;
  }

  uint64_t reconnects() const override { return reconnects_.load(); }
  uint64_t refused() const override { return refused_.load(); }

  const std::string& endpoint() const { return endpoint_; }

  ReceiverStats stats() const {
    ReceiverStats s;
    s.delivered = delivered_.load();
    s.duplicates = duplicates_.load();
    s.out_of_order = out_of_order_.load();
    s.malformed = malformed_.load();
    s.refused = refused_.load();
    return s;
  }

 private:
  struct Peer {
    uint64_t session = 0;
    uint64_t next = 0;
    uint64_t last_seen = 0;
  };

  void run() {
    try {
      loop();
    } catch (const std::exception& e) {
      spdlog::error("zmq receiver on {}: {}; the receiver stops", endpoint_, e.what());
    }
    monitor_.reset();
    // The acks of the last frames may still be queued: give them a moment to go out, or the
    // sender waits for them in vain (and warns that its last frames may be lost).
    try {
      socket_.set(zmq::sockopt::linger, kCloseLingerMs);
    } catch (const zmq::error_t&) {
    }
    socket_.close();  // no new connection from here
    zap_.reset();     // only now: without a handler libzmq would admit any CURVE client
    ctx_->close();    // returns once the listening socket is closed and the acks are out
  }

  void loop() {
    std::array<zmq::message_t, 3> parts;
    while (!stop_.load()) {
      std::array<zmq::pollitem_t, 4> items{};
      items[0] = {socket_.handle(), 0, ZMQ_POLLIN, 0};
      items[1] = {monitor_->socket().handle(), 0, ZMQ_POLLIN, 0};
      items[2] = wake_.pollitem();
      if (zap_) items[3] = {zap_->socket().handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(items.data(), zap_ ? 4 : 3, std::chrono::milliseconds(kIdlePollMs));
      if (items[2].revents & ZMQ_POLLIN) wake_.clear();
      if (zap_) zap_->answer();
      monitor_->drain([&](uint16_t event) {
        if (event == ZMQ_EVENT_DISCONNECTED) reconnects_.fetch_add(1);
        if ((event & kHandshakeFailed) && refused_.fetch_add(1) == 0) {
          spdlog::warn(
              "zmq receiver on {}: refused a sender's handshake (a plaintext sender, "
              "one that pins another receiver key, or an unknown key); nothing it "
              "sends is delivered",
              endpoint_);
        }
      });
      size_t count = 0;
      for (int i = 0; i < kMaxBatch && !stop_.load(); ++i) {
        if (!recv_message(socket_, parts, count)) break;
        switch (o_.mode) {
          case Mode::kAcked:
            on_acked(parts, count);
            break;
          case Mode::kPush:
            if (count != 1) {
              malformed_.fetch_add(1);
            } else {
              deliver(parts[0]);
            }
            break;
          case Mode::kPubSub:
            if (count != 2) {
              malformed_.fetch_add(1);
            } else {
              deliver(parts[1]);
            }
            break;
        }
      }
    }
  }

  bool deliver(const zmq::message_t& payload) {
    std::lock_guard<std::mutex> lock(deliver_mu_);
    if (stop_.load() || finished_) return false;
    try {
      handler_(std::string(static_cast<const char*>(payload.data()), payload.size()));
    } catch (const std::exception& e) {
      spdlog::error("zmq receiver on {}: handler failed: {}", endpoint_, e.what());
      return false;
    }
    delivered_.fetch_add(1);
    return true;
  }

  void on_acked(std::array<zmq::message_t, 3>& parts, size_t count) {
    if (count != 3 || parts[1].size() != kHeaderBytes) {
      malformed_.fetch_add(1);
      return;
    }
    const auto* h = static_cast<const char*>(parts[1].data());
    uint64_t session = get_u64(h), seq = get_u64(h + 8), base = get_u64(h + 16);
    std::string identity(static_cast<const char*>(parts[0].data()), parts[0].size());
    if (zap_ && !zap_->may_use(identity, zmq_msg_gets(parts[2].handle(), "User-Id"))) {
      // A known key speaking for another sender: dropped, no ack.
      if (refused_.fetch_add(1) == 0 || !impostor_warned_) {
        impostor_warned_ = true;
        spdlog::warn(
            "zmq receiver on {}: dropped frames from a sender whose CURVE key is not "
            "the one pinned for its identity '{}'",
            endpoint_, identity);
      }
      return;
    }
    auto it = peers_.find(identity);
    if (it == peers_.end()) {
      if (peers_.size() >= kMaxPeers) forget_oldest_peer();
      it = peers_.emplace(identity, Peer{session, base, 0}).first;
    }
    Peer& peer = it->second;
    peer.last_seen = ++clock_;
    if (peer.session != session) peer = Peer{session, base, clock_};
    // Every frame below base was acknowledged, so delivered by some receiver: none to wait for.
    if (base > peer.next) peer.next = base;
    if (seq == peer.next) {
      if (!deliver(parts[2])) return;  // stopping, or the handler failed: no ack, sent again
      ++peer.next;
    } else if (seq < peer.next) {
      duplicates_.fetch_add(1);
    } else {
      out_of_order_.fetch_add(1);
    }
    // ROUTER: [identity][ack]. Never blocks: a full or vanished peer drops the ack (the
    // sender then sends again, and the next ack covers it).
    zmq::message_t ack(kAckBytes);
    put_u64(static_cast<char*>(ack.data()), session);
    put_u64(static_cast<char*>(ack.data()) + 8, peer.next);
    try {
      if (socket_.send(parts[0], zmq::send_flags::dontwait | zmq::send_flags::sndmore)) {
        socket_.send(ack, zmq::send_flags::dontwait);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EHOSTUNREACH) throw;
    }
  }

  void forget_oldest_peer() {
    auto oldest = std::min_element(peers_.begin(), peers_.end(), [](const auto& a, const auto& b) {
      return a.second.last_seen < b.second.last_seen;
    });
    if (oldest != peers_.end()) peers_.erase(oldest);
  }

  ReceiverOptions o_;
  FrameHandler handler_;
  std::unique_ptr<zmq::context_t> ctx_;
  zmq::socket_t socket_;
  std::unique_ptr<Monitor> monitor_;
  std::unique_ptr<ZapHandler> zap_;  // CURVE: admits the senders of curve.allowed
  bool impostor_warned_ = false;     // receiver thread only
  WakeFd wake_;                      // stop() wakes the thread
  std::string endpoint_;
  std::unordered_map<std::string, Peer> peers_;  // receiver thread only
  uint64_t clock_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex deliver_mu_;  // held for each handler call: finish() waits for the one running
  bool finished_ = false;  // guarded by deliver_mu_: finish() was called
  std::mutex stop_mu_;
  std::atomic<uint64_t> reconnects_{0}, delivered_{0}, duplicates_{0}, out_of_order_{0},
      malformed_{0}, refused_{0};
  std::thread thread_;
};

const ZmqReceiver& as_zmq(const FrameReceiver& receiver) {
  const auto* r = dynamic_cast<const ZmqReceiver*>(&receiver);
  if (!r) throw std::invalid_argument("not a ZeroMQ receiver (made by zmqlink::make_receiver)");
  return *r;
}

}  // namespace

std::unique_ptr<FrameSender> make_sender(SenderOptions options) {
  return std::make_unique<ZmqSender>(std::move(options));
}

std::unique_ptr<FrameReceiver> make_receiver(ReceiverOptions options, FrameHandler handler) {
  return std::make_unique<ZmqReceiver>(std::move(options), std::move(handler));
}

std::string bound_endpoint(const FrameReceiver& receiver) { return as_zmq(receiver).endpoint(); }

ReceiverStats receiver_stats(const FrameReceiver& receiver) { return as_zmq(receiver).stats(); }

}  // namespace edgeflow::zmqlink
