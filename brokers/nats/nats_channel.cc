#include "brokers/nats/nats_channel.h"

#include <nats/nats.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kDuplicateWindowMs = 120'000;  // JetStream's default, stated
constexpr int kFetchBatch = 16;                  // frames per pull: at most 16 x 256 KiB held

std::string servers_text(const NatsLinkOptions& o) {
  std::string s;
  for (const std::string& server : o.servers) s += (s.empty() ? "" : ", ") + server;
  return s;
}

std::string status_text(natsStatus s, jsErrCode code = static_cast<jsErrCode>(0)) {
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
  void close() {
    closing_ = true;  // our own close is no lost server
    if (nc_) natsConnection_Close(nc_);
  }
  uint64_t reconnects() const { return reconnects_.load(); }

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
      cc.MaxAckPending = 1024;
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
    const std::string id = id_prefix_ + std::to_string(++sequence_);
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
      natsMsg_Destroy(msg);
    } else {
      self->retry_.push_back(msg);  // kept: published again by the sender's thread
      self->note_failure(status_text(pae->Err, pae->ErrCode) +
                         (pae->ErrText ? std::string(": ") + pae->ErrText : std::string()));
    }
    self->cv_.notify_all();
  }

  const NatsLinkOptions o_;
  Connection conn_;
  AckGate* gate_;  // never freed, see AckGate
  jsCtx* js_ = nullptr;
  std::string id_prefix_;
  uint64_t sequence_ = 0;  // the sender's thread only
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
  NatsReceiver(const NatsLinkOptions& o, FrameHandler handler)
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
    if (stopping_.exchange(true)) {
      if (thread_.joinable()) thread_.join();
      return;
    }
    if (thread_.joinable()) thread_.join();
    if (sub_) natsSubscription_Destroy(sub_);  // the durable consumer stays on the server
    sub_ = nullptr;
    conn_.close();
  }
  uint64_t reconnects() const override { return conn_.reconnects(); }

 private:
  void run() {
    int64_t last_warning_ms = -1'000'000;
    while (!stopping_) {
      natsMsgList list{};
      jsErrCode code = static_cast<jsErrCode>(0);
      natsStatus s = natsSubscription_Fetch(&list, sub_, kFetchBatch, 500, &code);
      if (s == NATS_OK) {
        for (int i = 0; i < list.Count; ++i) {
          natsMsg* m = list.Msgs[i];
          if (!stopping_) {
            handler_(
                std::string(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m))));
            natsMsg_Ack(m, nullptr);  // not taken when stopping: delivered again next run
          }
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

  const NatsLinkOptions o_;
  FrameHandler handler_;
  Connection conn_;
  jsCtx* js_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace

std::unique_ptr<FrameSender> make_nats_sender(const NatsLinkOptions& options) {
  return std::make_unique<NatsSender>(options);
}

std::unique_ptr<FrameReceiver> make_nats_receiver(const NatsLinkOptions& options,
                                                  FrameHandler handler) {
  if (options.consumers.size() != 1)
    throw std::invalid_argument("a NATS receiver has exactly one consumer");
  return std::make_unique<NatsReceiver>(options, std::move(handler));
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
