// Client on Eclipse Paho C++ 1.2 (async_client over Paho C 1.3.12), MQTT 3.1.1.
//
// Pitfalls handled (see ../shared/MQTT-NOTES.md):
//  - publish() fails with -12 (MQTTASYNC_MAX_BUFFERED_MESSAGES) when too many commands are
//    queued, even while connected: we raise max_buffered_messages and treat -12 as
//    back-pressure (wait a little, try again), never as fatal.
//  - Never call into the client from Paho's callback threads: callbacks only update state and
//    wake our worker thread, which does the connecting, subscribing and publishing again.
//
// Reconnects do not use Paho's automatic_reconnect. Measured here with a broker stopped and
// started under QoS 1 load (clean_session false): in about one restart in four, Paho's own
// resend after reconnecting sent a packet the broker rejected as malformed, on every
// reconnect after that, so 50 messages never got through; and Paho sometimes failed a
// publish that was being written (error -1) and dropped it. So after a connection loss the
// worker builds a fresh async_client (a new "generation"), connects it with our own back-off
// (reconnect_min_ms doubling up to reconnect_max_ms), renews the subscriptions and publishes
// again every QoS 1/2 message not yet acknowledged, from our own copies (at-least-once; the
// broker keeps the persistent session across the new connection). Callbacks of an old
// generation are ignored. Caveat: resent messages get new packet ids, so a QoS 2 message
// that was half-way through its handshake may be delivered twice.
//
// Received messages: Paho C runs one receive thread for *all* clients of the process, so a
// handler blocking there (a full queue: back-pressure) would stall every other Paho client,
// including the acknowledgements a publisher in the same pipeline waits for, a deadlock
// (seen in a test). Paho's callback therefore only appends to our inbox, and a dispatcher
// thread of this client calls the handler, which may block. Paho has already acknowledged a
// QoS 1 message when its callback runs, so the inbox is not back-pressure to the broker; it
// is bounded at kInboxLimit messages, beyond which the callback waits after all. With
// libmosquitto (one network thread per client) the handler's back-pressure reaches the
// broker; prefer it for subscribers that may fall behind.
//
// Paho C 1.3.12 takes 1-2 s to connect a second client in the same process (its receive
// thread polls with a 1 s timeout; fixed upstream after 1.3.12), so Paho connects are slow.
#include <mqtt/async_client.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "brokers/mqtt/client_internal.h"
#include "runtime/log.h"

namespace edgeflow::mqtt::detail {
namespace {

using Clock = std::chrono::steady_clock;

int ceil_seconds(int ms) { return std::max(1, (ms + 999) / 1000); }

std::string paho_uri(const BrokerAddress& a) {
  bool v6 = a.host.find(':') != std::string::npos;
  return std::string(a.tls ? "ssl://" : "tcp://") + (v6 ? "[" + a.host + "]" : a.host) + ":" +
         std::to_string(a.port);
}

constexpr size_t kInboxLimit = 65536;

bool is_busy(int rc) {
  return rc == MQTTASYNC_MAX_BUFFERED_MESSAGES || rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT ||
         rc == MQTTASYNC_MAX_BUFFERED;
}

void* context_of(uint64_t seq) { return reinterpret_cast<void*>(static_cast<uintptr_t>(seq)); }
uint64_t seq_of(const ::mqtt::token& tok) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(tok.get_user_context()));
}

class PahoClient : public Client {
 public:
  PahoClient(ClientOptions options, MessageHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        address_(parse_uri(options_.uri)) {
    ::mqtt::connect_options_builder b;
    b.mqtt_version(MQTTVERSION_3_1_1)
        .clean_session(options_.clean_session)
        .keep_alive_interval(std::chrono::seconds(options_.keepalive_s))
        .connect_timeout(std::chrono::seconds(ceil_seconds(options_.connect_timeout_ms)))
        .automatic_reconnect(false)
        .max_inflight(options_.max_inflight);
    if (!options_.username.empty()) b.user_name(options_.username);
    if (!options_.password.empty()) b.password(options_.password);
    if (address_.tls) {
      const TlsOptions& t = options_.tls;
      ::mqtt::ssl_options_builder ssl;
      ssl.enable_server_cert_auth(true).verify(t.verify_hostname);
      if (t.ca_file.empty()) {
        ssl.ca_path("/etc/ssl/certs");
      } else {
        ssl.trust_store(t.ca_file);
      }
      if (!t.cert_file.empty()) ssl.key_store(t.cert_file).private_key(t.key_file);
      b.ssl(ssl.finalize());
    }
    if (!options_.will_topic.empty())
      b.will(::mqtt::will_options(options_.will_topic, options_.will_payload, options_.will_qos,
                                  options_.will_retain));
    connect_options_ = b.finalize();
    std::lock_guard<std::mutex> lock(mu_);
    conn_ = make_connection(1);
  }

  ~PahoClient() override {
    disconnect();
    std::shared_ptr<Connection> conn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      conn = std::move(conn_);
    }
    conn.reset();  // destroys the async_client while the state its callbacks use still lives
  }

  void connect() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (started_) return;
      if (stopping_) throw MqttError("MQTT client for " + options_.uri + " was disconnected");
      started_ = true;
      need_connect_ = options_.retry_first_connect;
    }
    worker_ = std::thread([this] { run_worker(); });
    dispatcher_ = std::thread([this] { run_dispatcher(); });
    if (options_.retry_first_connect) {
      cv_.notify_all();
      return;
    }
    std::shared_ptr<Connection> conn = current();
    std::string reason = attempt_connect(*conn, options_.connect_timeout_ms);
    if (reason.empty()) {
      connected_now(conn->generation);
      return;
    }
    disconnect();
    throw MqttError(unreachable_message(options_.uri, reason));
  }

  void subscribe(const std::string& filter, int qos) override {
    if (!valid_filter(filter))
      throw MqttError("bad MQTT topic filter '" + filter +
                      "': '+' and '#' must fill a whole level, and '#' must come last");
    if (qos < 0 || qos > 2) throw MqttError("MQTT QoS must be 0, 1 or 2");
    {
      std::lock_guard<std::mutex> lock(mu_);
      subscriptions_[filter] = qos;
    }
    if (!connected_.load()) return;  // the worker subscribes after connecting
    try {
      // Wait for SUBACK so that messages published after subscribe() returns are delivered.
      current()
          ->cli->subscribe(filter, qos)
          ->wait_for(std::chrono::milliseconds(options_.connect_timeout_ms));
    } catch (const ::mqtt::exception& e) {
      if (connected_.load())
        throw MqttError("cannot subscribe to '" + filter + "' on " + options_.uri + ": " +
                        e.what());
    }
  }

  bool publish(const std::string& topic, const void* data, size_t size, int qos, bool retain,
               int timeout_ms) override {
    if (qos < 0 || qos > 2) throw MqttError("MQTT QoS must be 0, 1 or 2");
    auto deadline = timeout_ms < 0 ? Clock::time_point::max()
                                   : Clock::now() + std::chrono::milliseconds(timeout_ms);
    auto msg = ::mqtt::make_message(topic, data, size, qos, retain);
    uint64_t seq = 0;
    std::shared_ptr<Connection> conn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return false;
      if (qos == 0) {
        if (!connected_.load()) return false;
      } else {
        // Not while a reconnect publishes the unacknowledged messages again: a new message
        // sent on the fresh connection before them would overtake them, and a receiver that
        // drops what comes below the highest sequence it has seen would lose them.
        auto room = [&] {
          return stopping_ ||
                 (!resending_ && inflight_.size() < static_cast<size_t>(options_.max_inflight));
        };
        if (!cv_.wait_until(lock, deadline, room) || stopping_) return false;
        // Registered before publishing: the acknowledgement may come before publish returns,
        // and a reconnect in between publishes it again from here.
        seq = ++next_seq_;
        inflight_.emplace(seq, msg);
        stats_.unacknowledged.store(inflight_.size(), std::memory_order_relaxed);
      }
      conn = conn_;
    }
    while (true) {
      int rc = send(*conn, msg, seq);
      if (rc == 0) break;
      bool retry = is_busy(rc) || (qos > 0 && rc == MQTTASYNC_DISCONNECTED);
      std::unique_lock<std::mutex> lock(mu_);
      if (retry && Clock::now() < deadline && !stopping_) {
        // Back-pressure: Paho's command queue is full. Wait a little and try again, on the
        // connection current by then.
        cv_.wait_for(lock, std::chrono::milliseconds(2), [&] { return stopping_; });
        // A reconnect since: it publishes this message again from inflight_, in order.
        if (qos > 0 && conn_ != conn) break;
        conn = conn_;
        continue;
      }
      if (qos > 0) {
        inflight_.erase(seq);
        stats_.unacknowledged.store(inflight_.size(), std::memory_order_relaxed);
      }
      if (retry || rc == MQTTASYNC_DISCONNECTED || stopping_) return false;
      lock.unlock();
      throw MqttError("cannot publish to MQTT topic '" + topic + "' on " + options_.uri + ": " +
                      ::mqtt::exception::printable_error(rc));
    }
    stats_.published.fetch_add(1, std::memory_order_relaxed);
    stats_.published_bytes.fetch_add(size, std::memory_order_relaxed);
    return true;
  }

  bool flush(int timeout_ms) override {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(std::max(timeout_ms, 0)),
                        [&] { return inflight_.empty(); });
  }

  void disconnect() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    std::lock_guard<std::mutex> join_lock(join_mu_);
    if (worker_.joinable()) worker_.join();
    if (disconnected_) return;
    disconnected_ = true;
    std::shared_ptr<Connection> conn = current();
    if (conn) close_connection(*conn);
    connected_.store(false);
    // Nothing arrives any more: the dispatcher hands over what is in the inbox, then ends.
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      inbox_closed_ = true;
    }
    inbox_cv_.notify_all();
    if (dispatcher_.joinable()) dispatcher_.join();
  }

  bool connected() const override { return connected_.load(); }
  ClientStats stats() const override { return stats_.snapshot(); }
  const ClientOptions& options() const override { return options_; }

 private:
  // Completion of QoS 1/2 publishes of one generation; runs on a Paho thread.
  class Listener : public ::mqtt::iaction_listener {
   public:
    Listener(PahoClient& client, uint64_t generation) : client_(client), generation_(generation) {}
    void on_success(const ::mqtt::token& tok) override { client_.acknowledged(seq_of(tok)); }
    void on_failure(const ::mqtt::token& tok) override {
      client_.publish_failed(generation_, seq_of(tok), tok.get_return_code());
    }

   private:
    PahoClient& client_;
    uint64_t generation_;
  };

  struct Connection {
    uint64_t generation = 0;
    std::unique_ptr<Listener> listener;
    std::unique_ptr<::mqtt::async_client> cli;
  };

  std::shared_ptr<Connection> make_connection(uint64_t generation) {
    auto conn = std::make_shared<Connection>();
    conn->generation = generation;
    conn->listener = std::make_unique<Listener>(*this, generation);
    ::mqtt::create_options create(MQTTVERSION_3_1_1);
    // Sized so that -12 stays rare: the window bounds QoS 1/2, the rest is QoS 0 headroom.
    create.set_max_buffered_messages(options_.max_inflight + 10000);
    // Publishes made before the (re)connect are buffered and sent once connected.
    create.set_send_while_disconnected(true, /*anyTime=*/true);
    try {
      conn->cli = std::make_unique<::mqtt::async_client>(paho_uri(address_), options_.client_id,
                                                         create, nullptr);
    } catch (const ::mqtt::exception& e) {
      throw MqttError("cannot create an MQTT client for " + options_.uri + ": " + e.what());
    }
    conn->cli->set_connection_lost_handler(
        [this, generation](const std::string& cause) { connection_lost(generation, cause); });
    conn->cli->set_message_callback([this](::mqtt::const_message_ptr m) { on_message(m); });
    return conn;
  }

  std::shared_ptr<Connection> current() {
    std::lock_guard<std::mutex> lock(mu_);
    return conn_;
  }

  // 0 or the Paho error code.
  int send(Connection& conn, const ::mqtt::const_message_ptr& msg, uint64_t seq) {
    try {
      if (seq == 0) {
        conn.cli->publish(msg);
      } else {
        conn.cli->publish(msg, context_of(seq), *conn.listener);
      }
      return 0;
    } catch (const ::mqtt::exception& e) {
      return e.get_return_code() != 0 ? e.get_return_code() : MQTTASYNC_FAILURE;
    }
  }

  void acknowledged(uint64_t seq) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Absent when already acknowledged: a message published twice around a reconnect.
      if (inflight_.erase(seq) == 0) return;
      stats_.unacknowledged.store(inflight_.size(), std::memory_order_relaxed);
    }
    stats_.acknowledged.fetch_add(1, std::memory_order_relaxed);
    cv_.notify_all();
  }

  void publish_failed(uint64_t generation, uint64_t seq, int rc) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!inflight_.count(seq)) return;
      if (stopping_ || !conn_) {
        logger().warn("MQTT publish to {} not confirmed (Paho error {})", options_.uri, rc);
        return;  // stays counted as unacknowledged
      }
      // An old generation's failures are covered by the resend after the reconnect.
      if (generation != conn_->generation) return;
      retry_.push_back(seq);
      logger().debug("MQTT publish to {} failed (Paho error {}); publishing it again", options_.uri,
                     rc);
    }
    cv_.notify_all();
  }

  void connection_lost(uint64_t generation, const std::string& cause) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || !conn_ || generation != conn_->generation) return;
      connected_.store(false);
      need_connect_ = true;
      need_fresh_ = true;
    }
    cv_.notify_all();
    logger().warn("MQTT connection to {} lost{}{}; reconnecting", options_.uri,
                  cause.empty() ? "" : ": ", cause);
  }

  void connected_now(uint64_t generation) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Lost again before we got here: the worker is reconnecting already.
      if (!conn_ || generation != conn_->generation || need_connect_) return;
      if (ever_connected_) stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
      ever_connected_ = true;
      stats_.connects.fetch_add(1, std::memory_order_relaxed);
      resubscribe_ = true;
      connected_.store(true);
    }
    cv_.notify_all();
  }

  // One connect attempt, waited for in slices so disconnect() is not held up. "" on success,
  // otherwise the reason.
  std::string attempt_connect(Connection& conn, int timeout_ms) {
    try {
      ::mqtt::token_ptr tok = conn.cli->connect(connect_options_);
      auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
      while (!tok->wait_for(std::chrono::milliseconds(50))) {
        if (stopping()) return "client stopped";
        if (Clock::now() > deadline)
          return "no answer within " + std::to_string(timeout_ms) + " ms";
      }
      return "";
    } catch (const ::mqtt::exception& e) {
      // Paho's texts are terse ("MQTT error [-1]: TCP/TLS connect failure"): a plain TCP
      // connect tells refused from unreachable from unknown host.
      std::string why = tcp_probe(address_, 1000);
      if (why.empty() && address_.tls) why = tls_probe(address_, options_.tls, 2000);
      if (why.empty() && e.get_return_code() == 5)
        why = "the broker refused the connection: not authorised";
      if (why.empty() && e.get_return_code() == 4)
        why = "the broker refused the connection: bad user name or password";
      return why.empty() ? std::string(e.what()) : why;
    }
  }

  void close_connection(Connection& conn) {
    try {
      if (conn.cli->is_connected()) conn.cli->disconnect(200)->wait_for(std::chrono::seconds(2));
    } catch (const ::mqtt::exception&) {
      // Not connected or already disconnecting: nothing more to do.
    }
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  void on_message(const ::mqtt::const_message_ptr& m) {
    Received r;
    r.topic = m->get_topic();
    r.payload = m->get_payload_str();
    r.qos = m->get_qos();
    r.retained = m->is_retained();
    stats_.received.fetch_add(1, std::memory_order_relaxed);
    stats_.received_bytes.fetch_add(r.payload.size(), std::memory_order_relaxed);
    {
      std::unique_lock<std::mutex> lock(inbox_mu_);
      inbox_cv_.wait(lock, [&] { return inbox_.size() < kInboxLimit || inbox_closed_; });
      inbox_.push_back(std::move(r));
    }
    inbox_cv_.notify_all();
  }

  // Calls the handler for each received message, on a thread of this client.
  void run_dispatcher() {
    std::unique_lock<std::mutex> lock(inbox_mu_);
    while (true) {
      inbox_cv_.wait(lock, [&] { return !inbox_.empty() || inbox_closed_; });
      if (inbox_.empty()) return;  // closed and drained
      Received r = std::move(inbox_.front());
      inbox_.pop_front();
      lock.unlock();
      inbox_cv_.notify_all();  // room for a waiting callback
      try {
        handler_(std::move(r));
      } catch (const std::exception& e) {
        logger().error("MQTT message handler failed on {}: {}", options_.uri, e.what());
      }
      lock.lock();
    }
  }

  // Reconnect: a fresh async_client; everything unacknowledged is published on it again
  // (buffered by Paho until the connect succeeds). Called with mu_ held.
  std::shared_ptr<Connection> replace_connection(std::unique_lock<std::mutex>& lock) {
    std::shared_ptr<Connection> old = conn_;
    lock.unlock();
    std::shared_ptr<Connection> fresh;
    try {
      fresh = make_connection(old->generation + 1);
    } catch (const MqttError& e) {
      logger().error("{}", e.what());
      lock.lock();
      return nullptr;
    }
    close_connection(*old);
    lock.lock();
    conn_ = fresh;
    resending_ = true;  // new publishes wait until the old ones are queued on `fresh`
    retry_.clear();
    std::vector<std::pair<uint64_t, ::mqtt::const_message_ptr>> resend(inflight_.begin(),
                                                                       inflight_.end());
    lock.unlock();
    for (auto& [seq, msg] : resend) {
      int rc = send(*fresh, msg, seq);
      if (rc != 0) {
        std::lock_guard<std::mutex> guard(mu_);
        retry_.push_back(seq);
      }
    }
    old.reset();  // destroyed here unless a publish() still holds it
    lock.lock();
    resending_ = false;
    cv_.notify_all();
    return fresh;
  }

  void run_worker() {
    int delay_ms = options_.reconnect_min_ms;
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      if (need_connect_) {
        if (need_fresh_) {  // a lost connection: replaced once, then retried until it connects
          if (!replace_connection(lock)) {
            cv_.wait_for(lock, std::chrono::milliseconds(delay_ms), [&] { return stopping_; });
            delay_ms = std::min(delay_ms * 2, options_.reconnect_max_ms);
            continue;
          }
          need_fresh_ = false;
          if (stopping_) break;
        }
        std::shared_ptr<Connection> conn = conn_;
        lock.unlock();
        std::string reason = attempt_connect(*conn, options_.connect_timeout_ms);
        lock.lock();
        if (reason.empty()) {
          need_connect_ = false;
          delay_ms = options_.reconnect_min_ms;
          lock.unlock();
          connected_now(conn->generation);
          lock.lock();
          continue;
        }
        // The same client is used for the next attempt: what was buffered on it is sent
        // once it connects.
        logger().debug("MQTT broker {} not reachable ({}); retrying in {} ms", options_.uri, reason,
                       delay_ms);
        cv_.wait_for(lock, std::chrono::milliseconds(delay_ms), [&] { return stopping_; });
        delay_ms = std::min(delay_ms * 2, options_.reconnect_max_ms);
        continue;
      }
      if (resubscribe_) {
        resubscribe_ = false;
        auto subscriptions = subscriptions_;
        std::shared_ptr<Connection> conn = conn_;
        lock.unlock();
        // Renewed on every (re)connect, also when the broker kept the session: harmless, and
        // it covers a broker that lost its state.
        for (const auto& [filter, qos] : subscriptions) {
          try {
            conn->cli->subscribe(filter, qos)
                ->wait_for(std::chrono::milliseconds(options_.connect_timeout_ms));
          } catch (const ::mqtt::exception& e) {
            logger().warn("MQTT: cannot renew subscription '{}' on {}: {}", filter, options_.uri,
                          e.what());
          }
        }
        lock.lock();
        continue;
      }
      if (!retry_.empty()) {
        uint64_t seq = retry_.front();
        retry_.pop_front();
        auto it = inflight_.find(seq);
        if (it == inflight_.end()) continue;  // acknowledged meanwhile
        ::mqtt::const_message_ptr msg = it->second;
        std::shared_ptr<Connection> conn = conn_;
        lock.unlock();
        int rc = send(*conn, msg, seq);
        lock.lock();
        if (is_busy(rc) || rc == MQTTASYNC_DISCONNECTED) {
          retry_.push_front(seq);  // busy or away: again a little later
          cv_.wait_for(lock, std::chrono::milliseconds(10), [&] { return stopping_; });
        } else if (rc != 0) {
          logger().warn("MQTT publish to {} not confirmed (Paho error {})", options_.uri, rc);
          inflight_.erase(seq);
          stats_.unacknowledged.store(inflight_.size(), std::memory_order_relaxed);
          cv_.notify_all();
        }
        continue;
      }
      cv_.wait(lock, [&] { return stopping_ || need_connect_ || resubscribe_ || !retry_.empty(); });
    }
  }

  ClientOptions options_;
  MessageHandler handler_;
  BrokerAddress address_;
  ::mqtt::connect_options connect_options_;
  std::thread worker_, dispatcher_;
  std::mutex join_mu_;
  bool disconnected_ = false;  // under join_mu_

  std::mutex mu_;
  std::condition_variable cv_;  // window room, acknowledgements, work for the worker
  bool started_ = false, stopping_ = false, ever_connected_ = false;
  bool need_connect_ = false, need_fresh_ = false, resubscribe_ = false;
  bool resending_ = false;  // replace_connection() is publishing inflight_ again
  std::atomic<bool> connected_{false};
  uint64_t next_seq_ = 0;
  // QoS 1/2 messages accepted and not yet acknowledged, by sequence number (our own copies,
  // published again after a reconnect); their count is the in-flight window.
  std::map<uint64_t, ::mqtt::const_message_ptr> inflight_;
  std::deque<uint64_t> retry_;  // failed publishes of the current generation to send again
  std::map<std::string, int> subscriptions_;
  AtomicStats stats_;

  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::deque<Received> inbox_;  // received, waiting for the dispatcher
  bool inbox_closed_ = false;

  std::shared_ptr<Connection> conn_;  // last: destroyed before the state above
};

}  // namespace

std::unique_ptr<Client> make_paho_client(ClientOptions options, MessageHandler handler) {
  return std::make_unique<PahoClient>(std::move(options), std::move(handler));
}

}  // namespace edgeflow::mqtt::detail
