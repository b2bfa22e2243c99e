// What the NATS link (nats_channel.cc) and the partition leases (nats_leases.cc) share: a
// connection to any of the servers that reconnects for ever, and JetStream calls retried
// while a cluster elects a leader.
#pragma once

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "brokers/nats/nats_channel.h"
#include "runtime/clock.h"
#include "runtime/lazy_library.h"
#include "runtime/log.h"

namespace edgeflow::nats_internal {

// libnats (and its libprotobuf-c) is loaded by the first NATS link: a process without one does
// not map them. Calls below and in the files using this namespace go through these.
inline constinit LazyLibrary libnats("libnats.so.3.4", "libnats3.4", "links over NATS");
inline EF_LAZY_FUNCTION(libnats, jsConsumerConfig_Init);
inline EF_LAZY_FUNCTION(libnats, jsConsumerInfo_Destroy);
inline EF_LAZY_FUNCTION(libnats, jsCtx_Destroy);
inline EF_LAZY_FUNCTION(libnats, jsMsgMetaData_Destroy);
inline EF_LAZY_FUNCTION(libnats, jsOptions_Init);
inline EF_LAZY_FUNCTION(libnats, jsPubOptions_Init);
inline EF_LAZY_FUNCTION(libnats, jsStreamConfig_Init);
inline EF_LAZY_FUNCTION(libnats, jsStreamInfo_Destroy);
inline EF_LAZY_FUNCTION(libnats, jsSubOptions_Init);
inline EF_LAZY_FUNCTION(libnats, js_AddConsumer);
inline EF_LAZY_FUNCTION(libnats, js_AddStream);
inline EF_LAZY_FUNCTION(libnats, js_CreateKeyValue);
inline EF_LAZY_FUNCTION(libnats, js_PublishMsgAsync);
inline EF_LAZY_FUNCTION(libnats, js_PullSubscribe);
inline EF_LAZY_FUNCTION(libnats, js_UpdateStream);
inline EF_LAZY_FUNCTION(libnats, kvConfig_Init);
inline EF_LAZY_FUNCTION(libnats, kvEntry_Created);
inline EF_LAZY_FUNCTION(libnats, kvEntry_Destroy);
inline EF_LAZY_FUNCTION(libnats, kvEntry_Revision);
inline EF_LAZY_FUNCTION(libnats, kvEntry_ValueString);
inline EF_LAZY_FUNCTION(libnats, kvStore_CreateString);
inline EF_LAZY_FUNCTION(libnats, kvStore_Delete);
inline EF_LAZY_FUNCTION(libnats, kvStore_Destroy);
inline EF_LAZY_FUNCTION(libnats, kvStore_Get);
inline EF_LAZY_FUNCTION(libnats, kvStore_PutString);
inline EF_LAZY_FUNCTION(libnats, kvStore_UpdateString);
inline EF_LAZY_FUNCTION(libnats, natsConnection_Close);
inline EF_LAZY_FUNCTION(libnats, natsConnection_Connect);
inline EF_LAZY_FUNCTION(libnats, natsConnection_Destroy);
inline EF_LAZY_FUNCTION(libnats, natsConnection_FlushTimeout);
inline EF_LAZY_FUNCTION(libnats, natsConnection_GetServers);
inline EF_LAZY_FUNCTION(libnats, natsConnection_JetStream);
inline EF_LAZY_FUNCTION(libnats, natsMsgHeader_Get);
inline EF_LAZY_FUNCTION(libnats, natsMsgHeader_Set);
inline EF_LAZY_FUNCTION(libnats, natsMsgList_Destroy);
inline EF_LAZY_FUNCTION(libnats, natsMsg_Ack);
inline EF_LAZY_FUNCTION(libnats, natsMsg_Create);
inline EF_LAZY_FUNCTION(libnats, natsMsg_Destroy);
inline EF_LAZY_FUNCTION(libnats, natsMsg_GetData);
inline EF_LAZY_FUNCTION(libnats, natsMsg_GetDataLength);
inline EF_LAZY_FUNCTION(libnats, natsMsg_GetMetaData);
inline EF_LAZY_FUNCTION(libnats, natsMsg_InProgress);
inline EF_LAZY_FUNCTION(libnats, natsOptions_Create);
inline EF_LAZY_FUNCTION(libnats, natsOptions_Destroy);
inline EF_LAZY_FUNCTION(libnats, natsOptions_LoadCATrustedCertificates);
inline EF_LAZY_FUNCTION(libnats, natsOptions_LoadCertificatesChain);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetClosedCB);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetDisconnectedCB);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetExpectedHostname);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetMaxReconnect);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetName);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetReconnectWait);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetReconnectedCB);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetRetryOnFailedConnect);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetSecure);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetServers);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetTimeout);
inline EF_LAZY_FUNCTION(libnats, natsOptions_SetUserInfo);
inline EF_LAZY_FUNCTION(libnats, natsStatus_GetText);
inline EF_LAZY_FUNCTION(libnats, natsSubscription_Destroy);
inline EF_LAZY_FUNCTION(libnats, natsSubscription_Fetch);
inline EF_LAZY_FUNCTION(libnats, nats_GetLastError);

inline std::string servers_text(const NatsLinkOptions& o) {
  std::string s;
  for (const std::string& server : o.servers) s += (s.empty() ? "" : ", ") + server;
  return s;
}

inline std::string status_text(natsStatus s, jsErrCode code = static_cast<jsErrCode>(0)) {
  std::string text = natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last && *last && text.find(last) == std::string::npos) text += std::string(": ") + last;
  if (code != 0) text += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
  return text;
}

// A connection to any of the servers, reconnecting for ever; counts its reconnections.
class Connection {
 public:
  explicit Connection(const NatsLinkOptions& o) : o_(o) {
    natsOptions* opts = nullptr;
    natsOptions_Create(&opts);
    std::vector<const char*> servers;
    for (const std::string& s : o.servers) servers.push_back(s.c_str());
    natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
    natsOptions_SetName(opts, o.name.c_str());
    natsOptions_SetTimeout(opts, 2000);
    natsOptions_SetMaxReconnect(opts, -1);
    natsOptions_SetReconnectWait(opts, 250);
    if (!o.username.empty()) natsOptions_SetUserInfo(opts, o.username.c_str(), o.password.c_str());
    try {
      if (o.tls) secure(opts);
    } catch (...) {
      natsOptions_Destroy(opts);
      throw;
    }
    natsOptions_SetDisconnectedCB(opts, &Connection::on_disconnected, this);
    natsOptions_SetReconnectedCB(opts, &Connection::on_reconnected, this);
    natsOptions_SetClosedCB(opts, &Connection::on_closed, this);
    // With a connected callback, connect returns at once (NATS_NOT_YET_CONNECTED) and goes on
    // trying in the background; without one it would block, with Ctrl-C not yet heard.
    if (o.retry) natsOptions_SetRetryOnFailedConnect(opts, true, &Connection::on_connected, this);
    natsStatus s = natsConnection_Connect(&nc_, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK && !(o.retry && s == NATS_NOT_YET_CONNECTED)) {
      natsConnection_Destroy(nc_);
      throw std::runtime_error("link " + o.link + ": cannot reach the NATS servers " +
                               servers_text(o) + ": " + status_text(s) + "; " + fix_for(s));
    }
  }
  ~Connection() {
    close();
    // libnats runs the connection's callbacks on a thread of its own, in order, after close
    // returns: `this` must live until the last of them (closed) has run.
    {
      std::unique_lock<std::mutex> lock(mu_);
      closed_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_; });
    }
    if (js_) jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // What to do about a failed first connection, by its cause.
  std::string fix_for(natsStatus s) const {
    const std::string last = nats_GetLastError(nullptr) ? nats_GetLastError(nullptr) : "";
    if (s == NATS_NOT_PERMITTED || last.find("uthorization") != std::string::npos)
      return o_.username.empty()
                 ? "the servers ask for a user: name a credentials file (username, password) "
                   "in links.nats.credentials"
                 : "the servers refused the user '" + o_.username +
                       "': check links.nats.credentials against their authorization block";
    const bool tls_failed = s == NATS_SSL_ERROR || last.find("SSL") != std::string::npos ||
                            last.find("certificate") != std::string::npos;
    if ((tls_failed && !o_.tls) || s == NATS_SECURE_CONNECTION_REQUIRED)
      return "the servers require TLS: give links.nats.tls {ca_file: ...} with the CA that "
             "signed their certificates";
    if (tls_failed)
      return "check links.nats.tls: ca_file must hold the CA that signed the servers' "
             "certificates" +
             std::string(o_.verify_hostname
                             ? ", and they must name the first server's host (or set "
                               "verify_hostname: false)"
                             : "");
    if (s == NATS_SECURE_CONNECTION_WANTED || last.find("secure") != std::string::npos)
      return "the servers do not speak TLS: remove links.nats.tls or use nats:// URLs";
    return "start them (scripts/nats-cluster.sh starts a local cluster) or fix "
           "links.nats.servers";
  }

  jsCtx* jetstream(jsOptions* jo) {
    natsStatus s = natsConnection_JetStream(&js_, nc_, jo);
    if (s != NATS_OK) throw std::runtime_error("link " + o_.link + ": " + status_text(s));
    return js_;
  }
  // Sends what is buffered (acknowledgements) and waits for the server's answer; bounded.
  void flush(int timeout_ms) {
    if (nc_) natsConnection_FlushTimeout(nc_, timeout_ms);
  }
  void close() {
    closing_ = true;  // our own close is no lost server
    if (nc_) natsConnection_Close(nc_);
  }
  uint64_t reconnects() const { return reconnects_.load(); }
  // The servers this connection knows: those given, then those the cluster told of (a
  // connection made later may need them when a given one is gone).
  std::vector<std::string> known_servers() const {
    std::vector<std::string> out = o_.servers;
    char** urls = nullptr;
    int count = 0;
    if (nc_ && natsConnection_GetServers(nc_, &urls, &count) == NATS_OK) {
      for (int i = 0; i < count; ++i) {
        if (std::find(out.begin(), out.end(), urls[i]) == out.end()) out.push_back(urls[i]);
        free(urls[i]);
      }
      free(urls);
    }
    return out;
  }

 private:
  // TLS settings from o_; throws naming the file that could not be used.
  void secure(natsOptions* opts) {
    natsOptions_SetSecure(opts, true);
    auto check = [&](natsStatus st, const std::string& what) {
      if (st != NATS_OK)
        throw std::runtime_error("link " + o_.link + ": links.nats.tls " + what + ": " +
                                 status_text(st));
    };
    if (!o_.ca_file.empty())
      check(natsOptions_LoadCATrustedCertificates(opts, o_.ca_file.c_str()),
            "ca_file " + o_.ca_file);
    if (!o_.cert_file.empty())
      check(natsOptions_LoadCertificatesChain(opts, o_.cert_file.c_str(), o_.key_file.c_str()),
            "cert_file " + o_.cert_file + " with key_file " + o_.key_file);
    if (o_.verify_hostname) {
      // libnats checks a name only when told which: the first server's host.
      const std::string& url = o_.servers.at(0);
      size_t at = url.find("://");
      std::string host = url.substr(at == std::string::npos ? 0 : at + 3);
      if (size_t userinfo = host.rfind('@'); userinfo != std::string::npos)
        host = host.substr(userinfo + 1);
      if (!host.empty() && host[0] == '[')
        host = host.substr(1, host.find(']') - 1);
      else
        host = host.substr(0, host.find(':'));
      // OpenSSL's host check matches names, never an address in a certificate.
      if (host.find_first_not_of("0123456789.") == std::string::npos ||
          host.find(':') != std::string::npos)
        throw std::runtime_error(
            "link " + o_.link + ": links.nats.tls checks the servers' host name, and " + url +
            " names an address: name the first server by a host name its certificate holds "
            "(tls://localhost:4222), or set verify_hostname: false to check only the CA");
      check(natsOptions_SetExpectedHostname(opts, host.c_str()), "host name " + host);
    }
  }

  static void on_disconnected(natsConnection*, void* closure) {
    auto* c = static_cast<Connection*>(closure);
    if (!c->closing_ && !c->warned_.exchange(true))
      logger().warn("link {} on '{}': lost its NATS server; reconnecting to {}", c->o_.link,
                    c->o_.node, servers_text(c->o_));
  }
  static void on_connected(natsConnection*, void* closure) {
    auto* c = static_cast<Connection*>(closure);
    logger().info("link {} on '{}': reached the NATS servers", c->o_.link, c->o_.node);
  }
  static void on_closed(natsConnection*, void* closure) {
    auto* c = static_cast<Connection*>(closure);
    std::lock_guard<std::mutex> lock(c->mu_);
    c->closed_ = true;
    c->closed_cv_.notify_all();
  }
  static void on_reconnected(natsConnection*, void* closure) {
    auto* c = static_cast<Connection*>(closure);
    c->reconnects_.fetch_add(1);
    c->warned_ = false;
  }

  const NatsLinkOptions o_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<bool> warned_{false};
  std::atomic<bool> closing_{false};
  std::mutex mu_;
  std::condition_variable closed_cv_;
  bool closed_ = false;
};

// JetStream administration may meet a cluster electing a leader: a few tries, a second apart.
template <typename Call>
void with_retries(const NatsLinkOptions& o, const std::string& what, Call call) {
  std::string last;
  // With retry, servers down at start get ten minutes; without, an election gets 10 s.
  const int64_t give_up = steady_ms() + (o.retry ? 600'000 : 10'000);
  for (bool first = true; first || steady_ms() < give_up; first = false) {
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = call(&code);
    if (s == NATS_OK) return;
    last = status_text(s, code);
    const bool electing = code == 0 || code == JSClusterNotAvailErr || code == JSStreamOfflineErr ||
                          code == JSClusterNoPeersErr;
    if (!electing) break;  // a refusal: trying again would not change it
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  }
  throw std::runtime_error("link " + o.link + ": JetStream refused " + what + " on " +
                           servers_text(o) + ": " + last +
                           "; the servers need JetStream enabled (jetstream: enabled) and, "
                           "for links.nats.replicas above 1, that many servers in the cluster");
}

}  // namespace edgeflow::nats_internal
