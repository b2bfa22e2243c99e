// Client on libmosquitto (the Mosquitto project's C client), MQTT 3.1.1.
//
// One network thread of our own runs mosquitto_loop() and reconnects with exponential
// back-off (reconnect_min_ms doubling up to reconnect_max_ms). mosquitto_loop_start() would
// do the same with mosquitto_reconnect_delay_set(), but that delay counts whole seconds (and
// grows quadratically), so ClientOptions' milliseconds could not be honoured.
//
// What libmosquitto 2.0.11 does while disconnected (measured on this machine, and visible in
// lib/actions.c): mosquitto_publish() at QoS 0 returns MOSQ_ERR_NO_CONN and drops the
// message; at QoS 1/2 it *also* returns MOSQ_ERR_NO_CONN, but the message is already in the
// client's outgoing queue and is sent after the next successful (re)connect, where the broker
// acknowledges it as usual. So NO_CONN at QoS > 0 counts as accepted here, and our in-flight
// window (messages not yet acknowledged) bounds that queue.
//
// A publish-only client (ClientOptions::publish_only) writes each publish on the caller's
// thread once connected, and its network thread polls the socket itself (poll(), not
// mosquitto_loop()) and reads acknowledgements in batches. Otherwise every publish wakes the
// network thread through libmosquitto's socket pair, and every acknowledgement wakes it again:
// measured, that thread cost a relay pipeline a third of its CPU at QoS 1. io_mu_ keeps the
// two threads out of libmosquitto's I/O at the same time (a TLS session is not thread-safe,
// and the reader may close the socket). libmosquitto still writes a byte to its socket pair
// for each packet; nobody reads it while connected, so once its buffer is full those writes
// fail (harmlessly), and after a reconnect mosquitto_loop() drains it a byte a turn.
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "brokers/mqtt/client_internal.h"
#include "runtime/log.h"

namespace edgeflow::mqtt::detail {
namespace {

using Clock = std::chrono::steady_clock;

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

std::string errno_text(int err) {
  switch (err) {
    case ECONNREFUSED:
      return "connection refused";
    case ETIMEDOUT:
      return "timed out";
    case EHOSTUNREACH:
      return "host unreachable";
    case ENETUNREACH:
      return "network unreachable";
    case ECONNRESET:
      return "connection reset by the broker";
    default: {
      std::string text = std::strerror(err);
      if (!text.empty()) text[0] = static_cast<char>(std::tolower(text[0]));
      return text;
    }
  }
}

std::string mosq_error_text(int rc, int err) {
  if (rc == MOSQ_ERR_ERRNO) return errno_text(err);
  if (rc == MOSQ_ERR_EAI) return "host not found";
  if (rc == MOSQ_ERR_CONN_LOST) return "connection lost";
  std::string text = mosquitto_strerror(rc);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(text[0]));
  while (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

class MosquittoClient : public Client {
 public:
  MosquittoClient(ClientOptions options, MessageHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        address_(parse_uri(options_.uri)),
        delay_ms_(options_.reconnect_min_ms) {
    init_library();
    mosq_ = mosquitto_new(options_.client_id.c_str(), options_.clean_session, this);
    if (!mosq_)
      throw MqttError("cannot create an MQTT client for " + options_.uri + ": " +
                      errno_text(errno));
    mosquitto_threaded_set(mosq_, true);  // our thread runs the loop; publishers only queue
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(mosq_, MOSQ_OPT_SEND_MAXIMUM, options_.max_inflight);
    mosquitto_max_inflight_messages_set(mosq_, static_cast<unsigned>(options_.max_inflight));
    mosquitto_int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
    if (!options_.username.empty())
      mosquitto_username_pw_set(mosq_, options_.username.c_str(),
                                options_.password.empty() ? nullptr : options_.password.c_str());
    if (address_.tls) {
      const TlsOptions& t = options_.tls;
      auto path = [](const std::string& p) { return p.empty() ? nullptr : p.c_str(); };
      int rc =
          mosquitto_tls_set(mosq_, path(t.ca_file), t.ca_file.empty() ? "/etc/ssl/certs" : nullptr,
                            path(t.cert_file), path(t.key_file), nullptr);
      if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_opts_set(mosq_, 1 /* SSL_VERIFY_PEER */, nullptr, nullptr);
      if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_insecure_set(mosq_, !t.verify_hostname);
      if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy(mosq_);
        throw MqttError("TLS settings for MQTT broker " + options_.uri + ": " +
                        mosq_error_text(rc, errno) + " (check tls.ca_file, cert_file, key_file)");
      }
    }
    if (!options_.will_topic.empty()) {
      int rc = mosquitto_will_set(
          mosq_, options_.will_topic.c_str(), static_cast<int>(options_.will_payload.size()),
          options_.will_payload.data(), options_.will_qos, options_.will_retain);
      if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy(mosq_);
        throw MqttError("bad last-will topic '" + options_.will_topic +
                        "': " + mosq_error_text(rc, 0));
      }
    }
    mosquitto_connect_with_flags_callback_set(mosq_, &MosquittoClient::on_connect_cb);
    mosquitto_disconnect_callback_set(mosq_, &MosquittoClient::on_disconnect_cb);
    mosquitto_publish_callback_set(mosq_, &MosquittoClient::on_publish_cb);
    mosquitto_message_callback_set(mosq_, &MosquittoClient::on_message_cb);
    mosquitto_subscribe_callback_set(mosq_, &MosquittoClient::on_subscribe_cb);
    if (options_.publish_only) {
      wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (wake_fd_ < 0) {
        mosquitto_destroy(mosq_);
        throw MqttError("cannot create an MQTT client for " + options_.uri + ": " +
                        errno_text(errno));
      }
    }
  }

  ~MosquittoClient() override {
    disconnect();
    mosquitto_destroy(mosq_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  void connect() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (started_) return;
      if (stopping_) throw MqttError("MQTT client for " + options_.uri + " was disconnected");
      started_ = true;
    }
    // Resolves the host and starts a non-blocking TCP connect; the loop thread completes it.
    int rc =
        mosquitto_connect_async(mosq_, address_.host.c_str(), address_.port, options_.keepalive_s);
    int err = errno;
    bool need_connect = false;
    if (rc != MOSQ_ERR_SUCCESS) {
      attempt_failed(mosq_error_text(rc, err));  // the network thread is not running yet
      need_connect = true;
    }
    thread_ = std::thread([this, need_connect] { run(need_connect); });
    if (options_.retry_first_connect) return;

    std::unique_lock<std::mutex> lock(mu_);
    auto deadline = Clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms);
    bool done = cv_.wait_until(
        lock, deadline, [&] { return connected_.load() || failed_attempts_ > 0 || stopping_; });
    if (connected_.load()) return;
    std::string reason =
        !done ? "no answer within " + std::to_string(options_.connect_timeout_ms) + " ms"
        : last_error_.empty() ? "connection failed"
                              : last_error_;
    lock.unlock();
    disconnect();  // no retrying in the background: the caller gets the error
    throw MqttError(unreachable_message(options_.uri, reason));
  }

  void subscribe(const std::string& filter, int qos) override {
    if (options_.publish_only)
      throw MqttError("MQTT client for " + options_.uri + " is publish-only: it cannot subscribe");
    if (!valid_filter(filter))
      throw MqttError("bad MQTT topic filter '" + filter +
                      "': '+' and '#' must fill a whole level, and '#' must come last");
    if (qos < 0 || qos > 2) throw MqttError("MQTT QoS must be 0, 1 or 2");
    std::unique_lock<std::mutex> lock(mu_);
    subscriptions_[filter] = qos;
    if (!connected_.load()) return;  // the connect callback subscribes
    int mid = 0;
    int rc = mosquitto_subscribe(mosq_, &mid, filter.c_str(), qos);
    if (rc == MOSQ_ERR_NO_CONN) return;
    if (rc != MOSQ_ERR_SUCCESS)
      throw MqttError("cannot subscribe to '" + filter + "' on " + options_.uri + ": " +
                      mosq_error_text(rc, errno));
    // Wait for SUBACK so that messages published after subscribe() returns are delivered.
    suback_pending_.insert(mid);
    cv_.wait_for(lock, std::chrono::milliseconds(options_.connect_timeout_ms),
                 [&] { return !suback_pending_.count(mid) || stopping_ || !connected_.load(); });
    suback_pending_.erase(mid);
  }

  bool publish(const std::string& topic, const void* data, size_t size, int qos, bool retain,
               int timeout_ms) override {
    if (qos < 0 || qos > 2) throw MqttError("MQTT QoS must be 0, 1 or 2");
    if (size > static_cast<size_t>(MQTT_MAX_PAYLOAD))
      throw MqttError("MQTT payload of " + std::to_string(size) + " bytes is too large");
    int len = static_cast<int>(size);
    if (qos == 0) {
      if (!connected_.load()) return false;
      int rc = mosquitto_publish(mosq_, nullptr, topic.c_str(), len, data, 0, retain);
      if (rc == MOSQ_ERR_NO_CONN) return false;
      check_publish(rc, topic);
      stats_.published.fetch_add(1, std::memory_order_relaxed);
      stats_.published_bytes.fetch_add(size, std::memory_order_relaxed);
      write_now();
      return true;
    }
    std::unique_lock<std::mutex> lock(mu_);
    auto room = [&] {
      return stopping_ || pending_.size() < static_cast<size_t>(options_.max_inflight);
    };
    if (!room()) {
      // Once full, wait until a quarter of the window is free: acknowledgements come in
      // batches, and waking for each would cost a thread switch per message.
      const Waiting waiting(*this);
      auto quarter_free = [&] { return stopping_ || pending_.size() <= low_mark(); };
      if (timeout_ms < 0) {
        cv_.wait(lock, quarter_free);
      } else if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), quarter_free) &&
                 !room()) {
        return false;
      }
    }
    if (stopping_) return false;
    // mu_ stays held across mosquitto_publish so that the acknowledgement (on the network
    // thread, which takes mu_) cannot be handled before the mid is registered. libmosquitto
    // only queues here (threaded mode) and holds none of its locks while calling back.
    int mid = 0;
    int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), len, data, qos, retain);
    if (rc != MOSQ_ERR_NO_CONN) check_publish(rc, topic);  // NO_CONN: queued, see the top
    pending_.insert(mid);
    stats_.unacknowledged.store(pending_.size(), std::memory_order_relaxed);
    stats_.published.fetch_add(1, std::memory_order_relaxed);
    stats_.published_bytes.fetch_add(size, std::memory_order_relaxed);
    lock.unlock();
    write_now();
    return true;
  }

  bool flush(int timeout_ms) override {
    std::unique_lock<std::mutex> lock(mu_);
    const Waiting waiting(*this);
    return cv_.wait_for(lock, std::chrono::milliseconds(std::max(timeout_ms, 0)),
                        [&] { return pending_.empty(); });
  }

  void disconnect() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    std::lock_guard<std::mutex> join_lock(join_mu_);
    if (!thread_.joinable()) return;
    // Queues DISCONNECT (so the broker drops the will); the loop thread writes it, sees the
    // socket close and ends. NO_CONN when not connected: the loop ends by itself.
    mosquitto_disconnect(mosq_);
    wake();
    thread_.join();
    connected_.store(false);
  }

  bool connected() const override { return connected_.load(); }
  ClientStats stats() const override { return stats_.snapshot(); }
  const ClientOptions& options() const override { return options_; }

 private:
  void check_publish(int rc, const std::string& topic) {
    if (rc == MOSQ_ERR_SUCCESS) return;
    throw MqttError("cannot publish to MQTT topic '" + topic + "' on " + options_.uri + ": " +
                    mosq_error_text(rc, errno));
  }

  // Publish-only: writes what mosquitto_publish() queued, on this thread, while connected
  // (before that the network thread's mosquitto_loop() writes). What the socket does not take
  // now, the network thread writes when it can.
  void write_now() {
    if (!options_.publish_only || !connected_.load(std::memory_order_relaxed)) return;
    std::lock_guard<std::mutex> io(io_mu_);
    if (!connected_.load(std::memory_order_relaxed)) return;
    if (mosquitto_loop_write(mosq_, 1) != MOSQ_ERR_SUCCESS || mosquitto_want_write(mosq_)) wake();
  }

  // Marks a thread waiting on cv_ for acknowledgements, under mu_.
  struct Waiting {
    explicit Waiting(MosquittoClient& c) : c_(c) { ++c_.waiting_; }
    ~Waiting() { --c_.waiting_; }
    MosquittoClient& c_;
  };

  void wake() {
    if (wake_fd_ < 0) return;
    const uint64_t one = 1;
    if (::write(wake_fd_, &one, sizeof one) < 0) {
      // EAGAIN: the counter is already set, the network thread will look.
    }
  }

  // One turn of the network thread. A publish-only client that is connected polls its socket
  // and a wake-up of its own; everything else goes through mosquitto_loop().
  int loop_once() {
    std::unique_lock<std::mutex> io(io_mu_, std::defer_lock);
    if (!options_.publish_only) return mosquitto_loop(mosq_, 100, 1);
    if (!connected_.load()) {
      io.lock();  // publishers do not write until connected: this turn is short
      return mosquitto_loop(mosq_, 100, 1);
    }
    io.lock();
    const int fd = mosquitto_socket(mosq_);
    if (fd < 0) return MOSQ_ERR_NO_CONN;
    pollfd fds[2] = {
        {fd, static_cast<short>(POLLIN | (mosquitto_want_write(mosq_) ? POLLOUT : 0)), 0},
        {wake_fd_, POLLIN, 0}};
    io.unlock();
    if (::poll(fds, 2, 100) < 0 && errno != EINTR) return MOSQ_ERR_ERRNO;
    if (fds[1].revents & POLLIN) {
      uint64_t n;
      if (::read(wake_fd_, &n, sizeof n) < 0) {
        // EAGAIN: another reader took it
      }
    }
    io.lock();
    int rc = MOSQ_ERR_SUCCESS;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) rc = mosquitto_loop_read(mosq_, 1);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_loop_misc(mosq_);
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(mosq_)) rc = mosquitto_loop_write(mosq_, 1);
    io.unlock();
    if (rc != MOSQ_ERR_SUCCESS || !(fds[0].revents & POLLIN)) return rc;
    // Acknowledgements come one per publish: let them gather for a while, rather than waking
    // for each. 2 ms measured best in bench/mqtt_relay_bench (1 ms and 5 ms cost more CPU per
    // message). It caps the rate at a window per 2 ms: 50,000 messages a second for the
    // default 100, so a smaller window reads acknowledgements as they come.
    if (options_.max_inflight < kGatherFromWindow) return MOSQ_ERR_SUCCESS;
    std::unique_lock<std::mutex> lock(mu_);
    if (!stopping_ && !pending_.empty())
      cv_.wait_for(lock, kAckGathering, [&] { return stopping_; });
    return MOSQ_ERR_SUCCESS;
  }

  // The network thread: runs the loop, reconnects with back-off until disconnect().
  void run(bool need_connect) {
    Clock::time_point stop_deadline{};
    while (true) {
      bool stopping;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stopping = stopping_;
      }
      if (stopping) {
        // Let the loop write DISCONNECT, but not for long.
        if (stop_deadline == Clock::time_point{})
          stop_deadline = Clock::now() + std::chrono::milliseconds(1000);
        if (need_connect || Clock::now() > stop_deadline) break;
      }
      if (need_connect) {
        if (!sleep_backoff()) break;
        int rc;
        {
          // libmosquitto resets its messages, then resolves and connects: a publish in
          // between would be marked as sent and never sent. Publishers hold mu_ while they
          // queue, and io_mu_ while they write.
          std::lock_guard<std::mutex> io(io_mu_);
          std::lock_guard<std::mutex> lock(mu_);
          rc = mosquitto_reconnect_async(mosq_);
        }
        if (rc != MOSQ_ERR_SUCCESS) {
          attempt_failed(mosq_error_text(rc, errno));
          continue;
        }
        need_connect = false;
      }
      int rc = loop_once();
      if (rc == MOSQ_ERR_SUCCESS) continue;
      int err = errno;
      bool was_connected = connected_.exchange(false);
      if (was_connected) {
        std::lock_guard<std::mutex> lock(mu_);
        last_error_ = mosq_error_text(rc, err);
      } else if (rc == MOSQ_ERR_CONN_REFUSED) {
        // The CONNACK's refusal: on_connect() has recorded its reason, which says more.
      } else if (rc != MOSQ_ERR_NO_CONN || !stopping) {
        attempt_failed(mosq_error_text(rc, err));
      }
      cv_.notify_all();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
      }
      if (was_connected)
        logger().warn("MQTT connection to {} lost ({}); reconnecting", options_.uri,
                      mosq_error_text(rc, err));
      need_connect = true;
    }
    connected_.store(false);
    cv_.notify_all();
  }

  void attempt_failed(std::string reason) {
    // libmosquitto says only "a TLS error occurred": a handshake of our own says which (an
    // untrusted or expired certificate, a host name it is not made out to). Once per client.
    // Only for a failure libmosquitto calls a TLS error (or a connection that ended during
    // the handshake); the diagnosis is kept until the next successful connection.
    const bool tls_failure = reason.find("TLS") != std::string::npos ||
                             reason.find("connection lost") != std::string::npos;
    if (address_.tls && tls_failure && !tls_probed_) {
      tls_probed_ = true;
      tls_reason_ = tls_probe(address_, options_.tls, 2000);
    }
    if (tls_failure && !tls_reason_.empty()) reason = tls_reason_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = reason;
      ++failed_attempts_;
    }
    cv_.notify_all();
  }

  // Waits the current back-off delay, then doubles it. False when disconnect() came first.
  bool sleep_backoff() {
    std::unique_lock<std::mutex> lock(mu_);
    bool stopped =
        cv_.wait_for(lock, std::chrono::milliseconds(delay_ms_), [&] { return stopping_; });
    delay_ms_ = std::min(delay_ms_ * 2, options_.reconnect_max_ms);
    return !stopped;
  }

  static void on_connect_cb(mosquitto*, void* obj, int rc, int /*flags*/) {
    static_cast<MosquittoClient*>(obj)->on_connect(rc);
  }
  static void on_disconnect_cb(mosquitto*, void* obj, int /*rc*/) {
    auto* self = static_cast<MosquittoClient*>(obj);
    self->connected_.store(false);
    self->cv_.notify_all();
  }
  static void on_publish_cb(mosquitto*, void* obj, int mid) {
    static_cast<MosquittoClient*>(obj)->on_publish(mid);
  }
  static void on_message_cb(mosquitto*, void* obj, const mosquitto_message* m) {
    static_cast<MosquittoClient*>(obj)->on_message(m);
  }
  static void on_subscribe_cb(mosquitto*, void* obj, int mid, int, const int*) {
    auto* self = static_cast<MosquittoClient*>(obj);
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->suback_pending_.erase(mid);
    }
    self->cv_.notify_all();
  }

  void on_connect(int rc) {
    if (rc != 0) {
      attempt_failed(std::string("the broker refused the connection: ") +
                     mosquitto_connack_string(rc));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      delay_ms_ = options_.reconnect_min_ms;
      tls_probed_ = false;  // a later failure gets a diagnosis of its own
      tls_reason_.clear();
      // Renew every subscription, also when the broker kept the session: harmless, and it
      // covers a broker that lost its state.
      for (const auto& [filter, qos] : subscriptions_) {
        int mid = 0;
        if (mosquitto_subscribe(mosq_, &mid, filter.c_str(), qos) != MOSQ_ERR_SUCCESS)
          logger().warn("MQTT: cannot renew subscription '{}' on {}", filter, options_.uri);
      }
      if (ever_connected_) stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
      ever_connected_ = true;
      stats_.connects.fetch_add(1, std::memory_order_relaxed);
      connected_.store(true);
    }
    cv_.notify_all();
  }

  void on_publish(int mid) {
    bool acked = false, wake = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      acked = pending_.erase(mid) > 0;  // QoS 0 mids were never registered
      if (acked) stats_.unacknowledged.store(pending_.size(), std::memory_order_relaxed);
      // Only once someone can go on: a full window's quarter is free (flush() waits for the
      // last, which is below that too).
      wake = acked && waiting_ > 0 && pending_.size() <= low_mark();
    }
    if (acked) stats_.acknowledged.fetch_add(1, std::memory_order_relaxed);
    if (wake) cv_.notify_all();
  }

  size_t low_mark() const { return static_cast<size_t>(options_.max_inflight) * 3 / 4; }

  void on_message(const mosquitto_message* m) {
    Received r;
    r.topic = m->topic ? m->topic : "";
    if (m->payloadlen > 0)
      r.payload.assign(static_cast<const char*>(m->payload), static_cast<size_t>(m->payloadlen));
    r.qos = m->qos;
    r.retained = m->retain;
    stats_.received.fetch_add(1, std::memory_order_relaxed);
    stats_.received_bytes.fetch_add(r.payload.size(), std::memory_order_relaxed);
    try {
      handler_(std::move(r));
    } catch (const std::exception& e) {
      logger().error("MQTT message handler failed on topic '{}': {}", m->topic, e.what());
    }
  }

  ClientOptions options_;
  MessageHandler handler_;
  BrokerAddress address_;
  mosquitto* mosq_ = nullptr;
  std::thread thread_;
  std::mutex io_mu_;  // publish-only: libmosquitto's reads and writes, one thread at a time
  int wake_fd_ = -1;  // publish-only: wakes the network thread's poll()
  int waiting_ = 0;   // threads waiting for acknowledgements (under mu_)
  static constexpr std::chrono::microseconds kAckGathering{2000};
  static constexpr int kGatherFromWindow = 64;
  std::mutex join_mu_;  // disconnect() from two threads joins once

  std::mutex mu_;
  std::condition_variable cv_;  // window room, acks, SUBACKs, connection changes
  bool started_ = false, stopping_ = false, ever_connected_ = false;
  std::atomic<bool> connected_{false};
  int failed_attempts_ = 0;
  std::string last_error_;
  std::unordered_set<int> pending_;         // mids of QoS 1/2 publishes not acknowledged
  std::unordered_set<int> suback_pending_;  // mids of subscribes waiting for SUBACK
  std::map<std::string, int> subscriptions_;
  int delay_ms_;             // next reconnect delay; network thread (and callbacks on it) only
  bool tls_probed_ = false;  // network thread only, as is tls_reason_
  std::string tls_reason_;
  AtomicStats stats_;
};

}  // namespace

std::unique_ptr<Client> make_mosquitto_client(ClientOptions options, MessageHandler handler) {
  return std::make_unique<MosquittoClient>(std::move(options), std::move(handler));
}

}  // namespace edgeflow::mqtt::detail
