// Which partitions of a replicated stage's input this replica reads, agreed through a
// JetStream key-value bucket: a lease per partition, renewed every 2 s, gone 12 s after its
// holder last renewed it (the bucket's TTL, longer than a cluster's election after a server
// dies). A replica leases its own partition; a partition whose lease lapsed while its holder
// had not finished it (a replica that died), or that nobody leased in the first 15 s (a
// replica never started), is taken by the first survivor that asks. A finished partition is
// marked done, with the holder's instance id, in a second bucket that keeps its keys; marks
// older than this process are an earlier run's and do not count.
//
// Fencing: a holder that could not renew a lease for 9 s (3 s before it can lapse) calls
// `lost` and must stop reading at once (the replica exits): by then another replica may
// take the partition, and two readers would split an origin's windows. Renewals run on a
// thread of their own, apart from the look at the others' leases.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "brokers/nats/nats_channel.h"

namespace edgeflow {

class PartitionLeases {
 public:
  static constexpr int64_t kLeaseMs = 12'000;      // a lease outlives its last renewal this long
  static constexpr int64_t kRenewMs = 2'000;       // how often a holder renews
  static constexpr int64_t kMarginMs = 3'000;      // a holder gives up this long before lapsing
  static constexpr int64_t kUnclaimedMs = 15'000;  // a partition nobody took: taken after this
  // Another replica's lease counts as alive while its last renewal is this recent (by the
  // servers' stamp against this machine's clock).
  static constexpr int64_t kStaleMs = 4'000;

  // Runs on the leases' thread, or on the caller of check().
  using Lost = std::function<void(int partition, const std::string& why)>;

  // `o`: the servers and security (as a link's); `name`: the stage's, for the buckets.
  // Throws std::runtime_error when the buckets cannot be made.
  PartitionLeases(const NatsLinkOptions& o, const std::string& name, int partitions, int own,
                  Lost lost);
  ~PartitionLeases();  // stops renewing; the leases lapse
  PartitionLeases(const PartitionLeases&) = delete;
  PartitionLeases& operator=(const PartitionLeases&) = delete;

  // Partitions leased since the last call (the own one first).
  std::vector<int> newly_owned();
  std::set<int> owned() const;
  // The servers to reach for a partition taken over: the given ones, then those the cluster
  // told of (the given ones may be the servers that died).
  std::vector<std::string> servers() const;
  // Calls `lost` for a partition whose lease was not renewed in time (the thread renewing
  // may be blocked on a server that is gone: the reader checks too).
  void check();
  // Every partition not owned here is finished in this run or leased by a replica that
  // renews it (renewed within kStaleMs), and every one taken here was handed over by
  // newly_owned().
  bool others_settled() const;
  // The reader is about to end: no more partitions are taken (one taken anyway is given up
  // at once). False, and taking goes on, when one came in since newly_owned(): read it.
  bool stop_taking();
  // Marks the partitions in `done` (read to their end) finished in this run, then gives every
  // lease held here up, so that another replica takes the unfinished ones at once.
  void finished(const std::set<int>& done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeflow
