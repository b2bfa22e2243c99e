#include "brokers/nats/nats_leases.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "brokers/nats/nats_internal.h"

namespace edgeflow {

using namespace nats_internal;

namespace {

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct PartitionLeases::Impl {
  Impl(const NatsLinkOptions& o, const std::string& name, int partitions, int own, Lost lost)
      : o(o), partitions(partitions), own(own), lost(std::move(lost)), conn(o) {
    std::random_device rd;
    instance = std::to_string(own + 1) + "-" + std::to_string((uint64_t{rd()} << 32) ^ rd());
    jsOptions jo;
    jsOptions_Init(&jo);
    // A renewal blocked on a server that is gone must come back well before the lease's
    // margin runs out.
    jo.Wait = 3000;
    js = conn.jetstream(&jo);
    const std::string base = "EF_" + nats_token(name);
    leases = bucket(base + "_LEASES", PartitionLeases::kLeaseMs);
    done = bucket(base + "_DONE", 0);
    started_ms = steady_ms();
    // A done mark from before this process is an earlier run's. The servers stamp it: a
    // second of slack for their clocks against ours (on other machines, keep them in sync).
    started_wall_ns = wall_ns() - 1'000'000'000;
    // Renewing apart from watching: a look at the others' leases may block on a server that
    // is gone, and must not delay a renewal past the margin.
    renewer = std::thread([this] { every_turn([this] { renew(); }); });
    watcher = std::thread([this] { every_turn([this] { watch(); }); });
  }
  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
      finishing = true;  // a shutdown is no lost lease
    }
    cv.notify_all();
    if (renewer.joinable()) renewer.join();
    if (watcher.joinable()) watcher.join();
    if (leases) kvStore_Destroy(leases);
    if (done) kvStore_Destroy(done);
  }

  kvStore* bucket(const std::string& bucket_name, int64_t ttl_ms) {
    kvStore* kv = nullptr;
    with_retries(o, "the key-value bucket " + bucket_name, [&](jsErrCode* code) {
      *code = static_cast<jsErrCode>(0);
      kvConfig cfg;
      kvConfig_Init(&cfg);
      cfg.Bucket = bucket_name.c_str();
      cfg.History = 1;
      cfg.TTL = ttl_ms * 1'000'000;
      cfg.Replicas = o.replicas;
      cfg.StorageType = js_FileStorage;
      return js_CreateKeyValue(&kv, js, &cfg);
    });
    return kv;
  }

  static std::string key(int p) { return "p" + std::to_string(p); }

  // The value of `key` in `kv` and when the servers stored it; "" when there is none, and
  // nothing when the servers could not say (unreachable, electing).
  static std::optional<std::string> read(kvStore* kv, const std::string& k,
                                         int64_t* created_ns = nullptr) {
    kvEntry* e = nullptr;
    const natsStatus st = kvStore_Get(&e, kv, k.c_str());
    if (st == NATS_NOT_FOUND) return std::string();
    if (st != NATS_OK || !e) return std::nullopt;
    std::string v = kvEntry_ValueString(e) ? kvEntry_ValueString(e) : "";
    if (created_ns) *created_ns = kvEntry_Created(e);
    kvEntry_Destroy(e);
    return v;
  }

  // Partition p was finished in this run (by anyone); nothing when the servers could not say.
  std::optional<bool> done_now(int p) const {
    int64_t created = 0;
    const std::optional<std::string> v = read(done, key(p), &created);
    if (!v) return std::nullopt;
    return !v->empty() && created >= started_wall_ns;
  }

  // Partition p is leased by a replica that renews it (the servers stamp each renewal): a
  // lease a dead holder left stays until it lapses, but grows old.
  bool renewed_lately(int p) const {
    int64_t renewed_ns = 0;
    const std::optional<std::string> v = read(leases, key(p), &renewed_ns);
    return v && !v->empty() && wall_ns() - renewed_ns <= kStaleMs * 1'000'000;
  }

  bool try_take(int p) {
    const int64_t asked = steady_ms();
    uint64_t rev = 0;
    if (kvStore_CreateString(&rev, leases, key(p).c_str(), instance.c_str()) != NATS_OK)
      return false;
    // Finished between the look and the take (its holder marks it done, then gives it up):
    // its ends were acknowledged, and a reader would wait for them for ever.
    const std::optional<bool> done_mark = done_now(p);
    std::unique_lock<std::mutex> lock(mu);
    if (finishing || !taking || done_mark.value_or(true)) {
      lock.unlock();
      kvStore_Delete(leases, key(p).c_str());
      return false;
    }
    held[p] = {rev, asked + kLeaseMs - kMarginMs};
    fresh.push_back(p);
    if (p != own)
      logger().warn("replica {}: took partition {} of the stage (its lease had lapsed)", own + 1,
                    p);
    return true;
  }

  template <typename Turn>
  void every_turn(Turn turn) {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      lock.unlock();
      turn();
      lock.lock();
      cv.wait_for(lock, std::chrono::milliseconds(PartitionLeases::kRenewMs),
                  [&] { return stopping; });
    }
  }

  void renew() {
    std::map<int, Lease> mine;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (finishing) return;
      mine = held;
    }
    for (auto& [p, lease] : mine) {
      const int64_t asked = steady_ms();
      uint64_t next = 0;
      natsStatus st =
          kvStore_UpdateString(&next, leases, key(p).c_str(), instance.c_str(), lease.revision);
      if (st != NATS_OK) {
        // A renewal stored whose answer was lost leaves a newer revision that is still ours.
        kvEntry* e = nullptr;
        if (kvStore_Get(&e, leases, key(p).c_str()) == NATS_OK && e) {
          if (kvEntry_ValueString(e) && instance == kvEntry_ValueString(e)) {
            next = kvEntry_Revision(e);
            st = NATS_OK;
          }
          kvEntry_Destroy(e);
        }
      }
      if (st == NATS_OK) {
        std::lock_guard<std::mutex> lock(mu);
        if (held.count(p)) held[p] = {next, asked + kLeaseMs - kMarginMs};
        continue;
      }
      const int64_t now = steady_ms();
      if (now - last_warning_ms >= 5'000) {
        last_warning_ms = now;
        logger().warn("replica {}: could not renew the lease of partition {} ({}); trying again",
                      own + 1, p, status_text(st));
      }
    }
    check();
  }

  void watch() {
    std::set<int> mine;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (finishing || !taking) return;
      for (const auto& [p, lease] : held) mine.insert(p);
    }
    const bool unclaimed_time = steady_ms() - started_ms >= PartitionLeases::kUnclaimedMs;
    for (int p = 0; p < partitions; ++p) {
      if (mine.count(p)) continue;
      const std::optional<std::string> holder = read(leases, key(p));
      if (!holder) continue;  // the servers could not say: look again next turn
      if (!holder->empty()) {
        std::lock_guard<std::mutex> lock(mu);
        holders[p] = *holder;
        continue;
      }
      const std::optional<bool> done_mark = done_now(p);
      if (!done_mark || *done_mark) continue;
      // Its own replica takes it at once; another when its holder lapsed, or nobody came.
      if (p == own || !last_holder(p).empty() || unclaimed_time) try_take(p);
    }
  }

  void check() {
    std::vector<int> expired;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (finishing) return;
      const int64_t now = steady_ms();
      for (const auto& [p, lease] : held)
        if (now >= lease.valid_until_ms) expired.push_back(p);
    }
    for (int p : expired)
      lost(p, "its lease was not renewed for " + std::to_string((kLeaseMs - kMarginMs) / 1000) +
                  " s and may lapse");
  }

  std::string last_holder(int p) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = holders.find(p);
    return it == holders.end() ? "" : it->second;
  }

  struct Lease {
    uint64_t revision = 0;
    int64_t valid_until_ms = 0;  // after this another replica may hold it: stop before
  };

  const NatsLinkOptions o;
  const int partitions, own;
  const Lost lost;
  Connection conn;
  jsCtx* js = nullptr;
  kvStore* leases = nullptr;
  kvStore* done = nullptr;
  std::string instance;
  int64_t started_ms = 0;
  int64_t started_wall_ns = 0;
  int64_t last_warning_ms = -1'000'000;  // the renewer's
  std::thread renewer, watcher;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false, finishing = false;
  bool taking = true;                  // cleared by stop_taking(): the reader is about to end
  std::map<int, Lease> held;           // partitions owned here
  std::vector<int> fresh;              // owned since newly_owned() last ran
  std::map<int, std::string> holders;  // others' partitions -> their last holder seen
};

PartitionLeases::PartitionLeases(const NatsLinkOptions& o, const std::string& name, int partitions,
                                 int own, Lost lost)
    : impl_(std::make_unique<Impl>(o, name, partitions, own, std::move(lost))) {}

PartitionLeases::~PartitionLeases() = default;

std::vector<int> PartitionLeases::newly_owned() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<int> out;
  out.swap(impl_->fresh);
  return out;
}

std::set<int> PartitionLeases::owned() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::set<int> out;
  for (const auto& [p, lease] : impl_->held) out.insert(p);
  return out;
}

void PartitionLeases::check() { impl_->check(); }

std::vector<std::string> PartitionLeases::servers() const { return impl_->conn.known_servers(); }

bool PartitionLeases::others_settled() const {
  std::set<int> others;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->fresh.empty()) return false;  // taken, not read yet
    for (int p = 0; p < impl_->partitions; ++p)
      if (!impl_->held.count(p)) others.insert(p);
  }
  // Looked at now, not at the watcher's last turn: a holder may have died since.
  for (int p : others)
    if (!impl_->renewed_lately(p) && !impl_->done_now(p).value_or(false)) return false;
  return true;
}

bool PartitionLeases::stop_taking() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->fresh.empty()) return false;  // one came in meanwhile: read it first
  impl_->taking = false;
  return true;
}

void PartitionLeases::finished(const std::set<int>& done) {
  std::map<int, Impl::Lease> mine;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->finishing = true;
    mine = impl_->held;
  }
  const int64_t now = steady_ms();
  for (const auto& [p, lease] : mine) {
    // One that may have lapsed may be another's by now: left alone.
    if (now >= lease.valid_until_ms) continue;
    uint64_t r = 0;
    if (done.count(p))
      kvStore_PutString(&r, impl_->done, Impl::key(p).c_str(), impl_->instance.c_str());
    kvStore_Delete(impl_->leases, Impl::key(p).c_str());  // the others need not wait it out
  }
}

}  // namespace edgeflow
