// What both clients share: the factory, URI parsing, topic filter matching, error texts.
#include "brokers/mqtt/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string_view>

#include "brokers/mqtt/client_internal.h"

namespace edgeflow::mqtt {
namespace detail {

BrokerAddress parse_uri(const std::string& uri) {
  // user:password@ in a URI: never repeated in a message, and not the place for them.
  const size_t scheme_end = uri.find("://");
  const size_t at = uri.find('@', scheme_end == std::string::npos ? 0 : scheme_end);
  if (at != std::string::npos) {
    const std::string shown =
        (scheme_end == std::string::npos ? "" : uri.substr(0, scheme_end + 3)) + "..." +
        uri.substr(at);
    throw MqttError("bad MQTT broker URI '" + shown +
                    "': a username or password does not go in the URI; put them in a "
                    "credentials file (credentials: FILE, mode 0600)");
  }
  auto bad = [&](const std::string& why) {
    return MqttError("bad MQTT broker URI '" + uri + "': " + why +
                     "; write it as tcp://HOST:PORT or mqtt://HOST:PORT (port 1883 when left "
                     "out), or mqtts://HOST:PORT or ssl://HOST:PORT for TLS (port 8883)");
  };
  std::string_view rest(uri);
  BrokerAddress address;
  if (rest.starts_with("tcp://")) {
    rest.remove_prefix(6);
  } else if (rest.starts_with("mqtt://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("mqtts://") || rest.starts_with("ssl://")) {
    rest.remove_prefix(rest.find("://") + 3);
    address.tls = true;
    address.port = 8883;
  } else {
    size_t colon = rest.find("://");
    if (colon != std::string_view::npos)
      throw bad("scheme '" + std::string(rest.substr(0, colon)) + "' is not supported");
    throw bad("no scheme");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);  // tcp://host:1883/
  std::string_view port_text;
  if (rest.starts_with("[")) {  // [::1]:1883
    size_t close = rest.find(']');
    if (close == std::string_view::npos) throw bad("unclosed '[' in the host");
    address.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') throw bad("expected ':' after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) throw bad("empty port");
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos) {
      address.host = std::string(rest.substr(0, colon));
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) throw bad("empty port");
    } else {
      address.host = std::string(rest);
    }
  }
  if (address.host.empty()) throw bad("no host");
  if (address.host.find_first_of("/@?# ") != std::string::npos)
    throw bad("unexpected character in host '" + address.host + "'");
  if (!port_text.empty()) {
    int port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) throw bad("port must be a number 1-65535");
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) throw bad("port must be a number 1-65535");
    address.port = port;
  }
  return address;
}

std::string unreachable_message(const std::string& uri, const std::string& reason) {
  if (reason.find("refused the connection") != std::string::npos)  // CONNACK: it answered
    return "MQTT broker " + uri + " " + reason.substr(reason.find("refused")) +
           " (check the username and password of the credentials file, and the broker's "
           "password file and ACL)";
  const bool tls = uri.starts_with("mqtts://") || uri.starts_with("ssl://");
  if (tls && (reason.find("certificate") != std::string::npos ||
              reason.find("TLS") != std::string::npos || reason.find("tls.") != std::string::npos))
    return "cannot connect to MQTT broker " + uri + " over TLS: " + reason;
  return "cannot reach MQTT broker " + uri + ": " + reason +
         " (is mosquitto running? set links.mqtt.broker, or leave it empty for the embedded "
         "broker)";
}

std::string generate_client_id() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          (static_cast<uint64_t>(getpid()) << 32));
  static const char kHex[] = "0123456789abcdef";
  std::string id = "edgeflow-";
  uint64_t bits = rng();
  for (int i = 0; i < 12; ++i, bits >>= 4) id += kHex[bits & 0xf];
  return id;
}

std::string tcp_probe(const BrokerAddress& address, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port = std::to_string(address.port);
  if (int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return "host '" + address.host + "' not found (" + gai_strerror(rc) + ")";
  std::string reason = "no address";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      reason = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int ready = poll(&p, 1, timeout_ms);
      if (ready <= 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
    ::close(fd);
    if (err == 0) {
      freeaddrinfo(found);
      return "";
    }
    reason = err == ECONNREFUSED ? "connection refused"
             : err == ETIMEDOUT  ? "timed out"
                                 : std::strerror(err);
  }
  freeaddrinfo(found);
  return reason;
}

bool valid_filter(const std::string& filter) {
  if (filter.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t end = filter.find('/', start);
    std::string_view level(filter.data() + start,
                           (end == std::string::npos ? filter.size() : end) - start);
    if (level.find_first_of("+#") != std::string_view::npos && level.size() != 1) return false;
    if (level == "#" && end != std::string::npos) return false;
    if (end == std::string::npos) return true;
    start = end + 1;
  }
}

ClientStats AtomicStats::snapshot() const {
  ClientStats s;
  s.published = published.load(std::memory_order_relaxed);
  s.published_bytes = published_bytes.load(std::memory_order_relaxed);
  s.acknowledged = acknowledged.load(std::memory_order_relaxed);
  s.received = received.load(std::memory_order_relaxed);
  s.received_bytes = received_bytes.load(std::memory_order_relaxed);
  s.connects = connects.load(std::memory_order_relaxed);
  s.reconnects = reconnects.load(std::memory_order_relaxed);
  s.unacknowledged = unacknowledged.load(std::memory_order_relaxed);
  return s;
}

}  // namespace detail

std::unique_ptr<Client> make_client(const std::string& kind, ClientOptions options,
                                    MessageHandler handler) {
  const detail::BrokerAddress address = detail::parse_uri(options.uri);  // before anything starts
  if (!address.tls && options.tls.requested())
    throw MqttError("MQTT broker " + options.uri +
                    " is plain TCP, but TLS settings are given: write the broker as mqtts://" +
                    address.host + ":8883 (or drop tls:)");
  if (address.tls) detail::check_tls_files(options.tls, options.uri);
  if (options.client_id.empty()) options.client_id = detail::generate_client_id();
  if (options.max_inflight < 1) options.max_inflight = 1;
  if (options.max_inflight > 65535) options.max_inflight = 65535;  // MQTT packet ids
  if (options.reconnect_min_ms < 1) options.reconnect_min_ms = 1;
  if (options.reconnect_max_ms < options.reconnect_min_ms)
    options.reconnect_max_ms = options.reconnect_min_ms;
  if (kind == "mosquitto")
    return detail::make_mosquitto_client(std::move(options), std::move(handler));
  if (kind == "paho") return detail::make_paho_client(std::move(options), std::move(handler));
  throw MqttError("unknown MQTT client '" + kind + "': use mosquitto or paho");
}

std::vector<std::string> client_kinds() { return {"mosquitto", "paho"}; }

// MQTT 3.1.1 section 4.7: '+' is exactly one level (possibly empty), '#' is the rest including
// the parent level itself ("a/#" matches "a"), and a wildcard in the first level does not
// match a topic starting with '$' ($SYS/...). A malformed filter matches nothing.
bool topic_matches(const std::string& filter, const std::string& topic) {
  if (!detail::valid_filter(filter) || topic.empty()) return false;
  if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
  size_t f = 0, t = 0;
  while (true) {
    size_t f_end = filter.find('/', f);
    size_t t_end = topic.find('/', t);
    std::string_view flevel(filter.data() + f,
                            (f_end == std::string::npos ? filter.size() : f_end) - f);
    if (flevel == "#") return true;
    std::string_view tlevel(topic.data() + t,
                            (t_end == std::string::npos ? topic.size() : t_end) - t);
    if (flevel != "+" && flevel != tlevel) return false;
    bool f_last = f_end == std::string::npos, t_last = t_end == std::string::npos;
    if (f_last && t_last) return true;
    if (f_last) return false;  // filter shorter than topic
    if (t_last) {
      // Topic ends here: only a trailing "/#" in the filter still matches.
      return filter.compare(f_end, std::string::npos, "/#") == 0;
    }
    f = f_end + 1;
    t = t_end + 1;
  }
}

}  // namespace edgeflow::mqtt
