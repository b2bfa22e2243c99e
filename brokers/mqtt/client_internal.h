// Pieces shared by the two client implementations (not part of the public interface).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "brokers/mqtt/client.h"

namespace edgeflow::mqtt::detail {

struct BrokerAddress {
  std::string host;  // without brackets for IPv6
  int port = 1883;
  bool tls = false;  // mqtts:// or ssl://
};

// tcp://host[:port] or mqtt://host[:port] (port 1883 when absent), mqtts:// or ssl:// for TLS
// (port 8883 when absent); IPv6 hosts in brackets.
// Throws MqttError naming the URI and the accepted forms.
BrokerAddress parse_uri(const std::string& uri);

// "cannot reach MQTT broker URI: REASON (is mosquitto running? ...)": one text for both clients.
std::string unreachable_message(const std::string& uri, const std::string& reason);

// A client id for an empty ClientOptions::client_id: "edgeflow-" and 12 random hex digits.
std::string generate_client_id();

// A plain TCP connect to the broker's address, to explain why an MQTT connect failed: "" when
// it succeeds, otherwise "connection refused", "host not found", "timed out"...
std::string tcp_probe(const BrokerAddress& address, int timeout_ms);

// Throws MqttError naming the setting and the broker when a file of `tls` cannot be read.
void check_tls_files(const TlsOptions& tls, const std::string& uri);

// Why a TLS connection to the broker fails, found with a handshake of our own (OpenSSL, the
// same files and checks as the client): "certificate verify failed: certificate has expired",
// "...: hostname mismatch", "the broker refused our certificate"... "" when the handshake
// succeeds (the failure lies elsewhere).
std::string tls_probe(const BrokerAddress& address, const TlsOptions& tls, int timeout_ms);

// Whether `filter` is a valid subscription filter ('+' and '#' alone in their level, '#' last).
bool valid_filter(const std::string& filter);

// Atomic counters behind ClientStats.
struct AtomicStats {
  std::atomic<uint64_t> published{0}, published_bytes{0}, acknowledged{0}, received{0},
      received_bytes{0}, connects{0}, reconnects{0}, unacknowledged{0};
  ClientStats snapshot() const;
};

std::unique_ptr<Client> make_mosquitto_client(ClientOptions options, MessageHandler handler);
std::unique_ptr<Client> make_paho_client(ClientOptions options, MessageHandler handler);

}  // namespace edgeflow::mqtt::detail
