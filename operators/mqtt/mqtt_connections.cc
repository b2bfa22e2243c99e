#include "operators/mqtt/mqtt_connections.h"

#include <map>
#include <mutex>
#include <utility>

namespace edgeflow::mqttop {

namespace {

std::mutex g_mu;
std::map<std::string, std::weak_ptr<SharedConnection>> g_connections;

}  // namespace

class SharedConnection {
 public:
  ~SharedConnection() {
    client.reset();  // joins the network thread: no dispatch after this
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_connections.find(key);
    if (it != g_connections.end() && it->second.expired()) g_connections.erase(it);
  }

  // The network thread: the subscriber's handler, if one is attached.
  void dispatch(mqtt::Received&& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (handler) handler(std::move(r));
  }

  std::string key;
  // Held while the handler runs, which may wait for room in its stage's queue: detach() waits
  // for a call in progress. A connection takes a subscriber only when it never had one, so
  // nobody else ever waits here for a handler that waits.
  std::mutex mu;
  mqtt::MessageHandler handler;
  bool had_subscriber = false;
  std::unique_ptr<mqtt::Client> client;  // last: destroyed (and its thread joined) first
};

namespace {

// Everything a connection is made with but its client id (and session, always clean here),
// and the scope of the stages that may share it: one pipeline's node (so another pipeline in
// the same process never waits on this one's handler, or publishes under its client id).
std::string key_of(const std::string& scope, const std::string& kind,
                   const mqtt::ClientOptions& o) {
  const char sep = '\x1f';
  std::string k = scope + sep + kind;
  for (const std::string* s :
       {&o.uri, &o.username, &o.password, &o.tls.ca_file, &o.tls.cert_file, &o.tls.key_file})
    k += sep + *s;
  for (int v :
       {o.keepalive_s, o.max_inflight, o.reconnect_min_ms, o.reconnect_max_ms, o.connect_timeout_ms,
        static_cast<int>(o.retry_first_connect), static_cast<int>(o.tls.verify_hostname)})
    k += sep + std::to_string(v);
  return k;
}

bool shareable(const std::string& kind, const mqtt::ClientOptions& o) {
  return kind == "mosquitto" && o.clean_session && o.will_topic.empty();
}

std::shared_ptr<SharedConnection> open_shared(const std::string& key, const std::string& kind,
                                              const mqtt::ClientOptions& o,
                                              mqtt::MessageHandler handler) {
  // Not make_shared: a weak_ptr in the registry must not keep the whole block allocated.
  std::shared_ptr<SharedConnection> conn(new SharedConnection);
  conn->key = key;
  conn->handler = std::move(handler);
  conn->had_subscriber = static_cast<bool>(conn->handler);
  SharedConnection* raw = conn.get();
  conn->client =
      mqtt::make_client(kind, o, [raw](mqtt::Received&& r) { raw->dispatch(std::move(r)); });
  conn->client->connect();  // not under g_mu: it may take connect_timeout_ms
  std::lock_guard<std::mutex> lock(g_mu);
  g_connections[key] = conn;
  return conn;
}

}  // namespace

ConnectionLease::ConnectionLease(ConnectionLease&&) noexcept = default;
ConnectionLease& ConnectionLease::operator=(ConnectionLease&& other) noexcept {
  if (this != &other) {
    release();
    conn_ = std::move(other.conn_);
    own_ = std::move(other.own_);
    subscriber_ = std::exchange(other.subscriber_, false);
  }
  return *this;
}
ConnectionLease::~ConnectionLease() { release(); }

mqtt::Client* ConnectionLease::client() const {
  return own_ ? own_.get() : conn_ ? conn_->client.get() : nullptr;
}

bool ConnectionLease::shared() const { return conn_ != nullptr; }

void ConnectionLease::detach() {
  if (own_) {
    own_->disconnect();  // joins the network thread: no handler call after this
    return;
  }
  if (!conn_ || !subscriber_) return;
  std::lock_guard<std::mutex> lock(conn_->mu);
  conn_->handler = nullptr;
  subscriber_ = false;
}

void ConnectionLease::release() {
  detach();
  own_.reset();
  conn_.reset();  // the last hold destroys the connection, which disconnects
}

ConnectionLease connect_publisher(const std::string& scope, const std::string& kind,
                                  mqtt::ClientOptions options, bool may_share) {
  ConnectionLease lease;
  options.clean_session = true;  // nothing to keep broker-side for a publisher
  if (!may_share || !shareable(kind, options)) {
    options.publish_only = true;  // writes on the stage's thread: see mqtt::ClientOptions
    lease.own_ = mqtt::make_client(kind, options, [](mqtt::Received&&) {});
    lease.own_->connect();
    return lease;
  }
  const std::string key = key_of(scope, kind, options);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_connections.find(key);
    if (it != g_connections.end()) lease.conn_ = it->second.lock();
  }
  if (!lease.conn_) lease.conn_ = open_shared(key, kind, options, nullptr);
  return lease;
}

ConnectionLease connect_subscriber(const std::string& scope, const std::string& kind,
                                   mqtt::ClientOptions options, bool may_share,
                                   mqtt::MessageHandler handler) {
  ConnectionLease lease;
  if (!may_share || !shareable(kind, options)) {
    lease.own_ = mqtt::make_client(kind, options, std::move(handler));
    lease.own_->connect();
    return lease;
  }
  const std::string key = key_of(scope, kind, options);
  std::shared_ptr<SharedConnection> conn;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_connections.find(key);
    if (it != g_connections.end()) conn = it->second.lock();
  }
  if (conn) {
    // Only a connection that never had a subscriber: one that had keeps its filters (renewed
    // on every reconnect), whose messages the next subscriber must not get. Its mutex is then
    // never held by a handler that waits for room.
    std::lock_guard<std::mutex> lock(conn->mu);
    if (!conn->had_subscriber) {
      conn->handler = std::move(handler);
      conn->had_subscriber = true;
      lease.conn_ = std::move(conn);
      lease.subscriber_ = true;
      return lease;
    }
  }
  lease.conn_ = open_shared(key, kind, options, std::move(handler));
  lease.subscriber_ = true;
  return lease;
}

}  // namespace edgeflow::mqttop
