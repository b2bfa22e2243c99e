// One small MQTT client interface with two implementations: libmosquitto (Mosquitto's own C
// client) and Eclipse Paho C++. Links and the mqtt.* operators use only this header, so the
// client is a configuration choice (`links: { mqtt: { client: mosquitto | paho } }`).
//
// Threading: publish() is thread-safe and may block (back-pressure); the message handler runs
// on the client's network thread and must only enqueue, or publish at QoS 0 on a libmosquitto
// client (which only queues it). Never publish at QoS 1/2 from the handler: it may wait for
// acknowledgements that only the handler's thread reads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgeflow::mqtt {

// Every failure the caller can act on; the text names the broker URI and the fix.
class MqttError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// TLS for mqtts:// and ssl:// brokers. The broker's certificate is always verified (against
// ca_file, or the system's CAs), and its host name too unless verify_hostname is false.
struct TlsOptions {
  std::string ca_file;    // PEM; "" = the system's trusted CAs (/etc/ssl/certs)
  std::string cert_file;  // this client's certificate (PEM), when the broker asks for one
  std::string key_file;   // its private key (PEM), unencrypted
  bool verify_hostname = true;
  bool requested() const {
    return !ca_file.empty() || !cert_file.empty() || !key_file.empty() || !verify_hostname;
  }
};

struct ClientOptions {
  std::string uri = "tcp://127.0.0.1:1883";  // tcp://host:port; mqtt://host:port accepted
  std::string client_id;                     // must be unique per broker
  int keepalive_s = 30;
  bool clean_session = true;  // false: persistent session, the broker keeps QoS 1/2 messages
                              // and subscriptions while this client is away
  // QoS 1/2 publishes not yet acknowledged (including those queued while disconnected) before
  // publish() blocks: the in-flight window, and the bound on memory used for them.
  int max_inflight = 1000;
  int reconnect_min_ms = 100;  // automatic reconnect, doubling up to max
  int reconnect_max_ms = 5000;
  // connect(): how long to wait for the first connection. When retry_first_connect is false,
  // connect() throws MqttError after this; when true, it returns and keeps trying.
  int connect_timeout_ms = 5000;
  bool retry_first_connect = false;
  // Last will, published by the broker if this client vanishes (empty topic: none).
  std::string will_topic;
  std::string will_payload;
  int will_qos = 1;
  bool will_retain = true;
  // A client that never subscribes (libmosquitto only): publish() writes the packet on the
  // caller's thread, and the network thread reads acknowledgements in batches, every 2 ms
  // when max_inflight is 64 or more. Each message then wakes no other thread (see
  // mosquitto_client.cc and docs/benchmarks.md).
  bool publish_only = false;
  std::string username;
  std::string password;  // never logged: no message of this client includes it
  TlsOptions tls;        // used when uri is mqtts:// or ssl://
};

struct Credentials {
  std::string username;
  std::string password;
};
// Reads a credentials file (YAML: username, password). Refuses a file that its group or
// others may read (chmod 600), naming it; throws MqttError.
Credentials load_credentials(const std::string& path, const char* kind = "MQTT");

struct Received {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retained = false;
};
// Runs on a thread of the client. May block briefly (a bounded queue that is full is
// back-pressure towards the broker), must never call a QoS 1/2 publish() (see the top).
//  - mosquitto: the network thread; while the handler blocks, this client reads nothing and
//    sends no acknowledgements or keep-alives (a block longer than 1.5 x keepalive_s makes the
//    broker drop the connection; the client reconnects).
//  - paho: a dispatcher thread of this client, fed from Paho's receive thread (shared by all
//    Paho clients of the process) through a buffer of up to 65536 messages; only beyond that
//    does blocking reach the broker (see paho_client.cc).
using MessageHandler = std::function<void(Received&&)>;

struct ClientStats {
  uint64_t published = 0;        // publish() calls accepted
  uint64_t published_bytes = 0;  // their payload bytes
  uint64_t acknowledged = 0;     // QoS 1/2 publishes the broker confirmed
  uint64_t received = 0;
  uint64_t received_bytes = 0;
  uint64_t connects = 0;  // successful connections, the first included
  uint64_t reconnects = 0;
  uint64_t unacknowledged = 0;  // QoS 1/2 publishes in flight now
};

class Client {
 public:
  virtual ~Client() = default;  // disconnects; pending QoS 0 publishes may be lost

  // Connects (see ClientOptions::connect_timeout_ms and retry_first_connect). Subscriptions
  // made before or after connect() are renewed after every reconnect.
  virtual void connect() = 0;
  virtual void subscribe(const std::string& filter, int qos) = 0;
  // Thread-safe. Blocks while max_inflight QoS 1/2 messages are unacknowledged; returns false
  // when timeout_ms (< 0: no timeout) passes first or the client is shutting down. QoS 0 while
  // disconnected is dropped and counted as not accepted (returns false).
  virtual bool publish(const std::string& topic, const void* data, size_t size, int qos,
                       bool retain, int timeout_ms = -1) = 0;
  // Waits until every QoS 1/2 publish is acknowledged; false on timeout.
  virtual bool flush(int timeout_ms) = 0;
  // Clean disconnect (no last will); idempotent.
  virtual void disconnect() = 0;
  virtual bool connected() const = 0;
  virtual ClientStats stats() const = 0;
  virtual const ClientOptions& options() const = 0;
};

// kind: "mosquitto" or "paho". Throws MqttError for another kind or a malformed URI.
std::unique_ptr<Client> make_client(const std::string& kind, ClientOptions options,
                                    MessageHandler handler);
std::vector<std::string> client_kinds();  // {"mosquitto", "paho"}

// Topic filter matching with `+` and `#` (MQTT 3.1.1 section 4.7).
bool topic_matches(const std::string& filter, const std::string& topic);

}  // namespace edgeflow::mqtt
