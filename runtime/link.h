// Links: where placement cut the graph. Every group of edges from one stage's output to one
// downstream stage whose ends sit on different nodes is one link; a transport (MQTT, ZeroMQ;
// brokers/link) turns each end of it into a hidden stage: a sender (a sink) on every node
// with a copy of the upstream stage, a receiver (a source) on every node reading it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/operator.h"

namespace edgeflow {

struct LinkPlan {
  int id = 0;
  std::string name;  // "minute->out"; "cam.error->alerts" for a port other than out
  int from_stage = -1;
  int from_port = 0;
  int to_stage = -1;
  std::string via;                     // "mqtt" | "zmq"
  std::vector<std::string> senders;    // nodes with a copy of from_stage on this link
  std::vector<std::string> receivers;  // nodes with a copy of to_stage on this link
  // Into a stage with `replicas: N`: N partitions of the origins, one per replica.
  int partitions = 1;
  // Out of a stage with `replicas: N`: each of its N replicas sends as a sender of its own,
  // "<node>#<i>" (replica_sender).
  int sender_replicas = 1;
};

// The sender name of replica `index` (0-based) of a replicated stage's node.
inline std::string replica_sender(const std::string& node, int index) {
  return node + "#" + std::to_string(index);
}

// Which partition of a link into a replicated stage a message of `origin` belongs to: FNV-1a
// of the origin, the same on every machine (senders and replicas agree without talking).
inline int origin_partition(const std::string& origin, int partitions) {
  uint32_t h = 2166136261u;
  for (unsigned char c : origin) h = (h ^ c) * 16777619u;
  return static_cast<int>(h % static_cast<uint32_t>(partitions));
}

struct LinkMetrics {
  std::string link;
  std::string node;
  std::string direction;  // "send" | "receive"
  std::string via;
  uint64_t messages = 0;
  uint64_t payload_bytes = 0;  // encoded batches, as handed to the transport
  uint64_t wire_bytes = 0;     // estimated bytes on the network, headers and acks included
  uint64_t batches = 0;
  uint64_t reconnects = 0;
  uint64_t duplicates = 0;      // receive: batches delivered twice by the transport, dropped
  uint64_t errors = 0;          // receive: frames that did not decode
  uint64_t unacknowledged = 0;  // send: batches the transport has not confirmed yet
  uint64_t refused = 0;  // receive, ZeroMQ with CURVE: senders' handshakes refused (plaintext,
                         // a key not in links.zmq.curve.peers) and frames under another
                         // sender's identity; nothing of theirs was delivered
};

class LinkTransport {
 public:
  virtual ~LinkTransport() = default;
  // A sink with one input that carries what it gets to the link's receivers. `peers_local`:
  // the receivers run in this process (one-process mode).
  virtual std::unique_ptr<Operator> make_sender(const LinkPlan& link, const std::string& node,
                                                bool peers_local) = 0;
  // A source that emits what the link's senders send and ends once every sender has ended.
  // `peers_local`: the senders run in this process, so a stop waits for their end of input.
  virtual std::unique_ptr<Operator> make_receiver(const LinkPlan& link, const std::string& node,
                                                  bool peers_local) = 0;
  virtual std::vector<LinkMetrics> metrics() const = 0;
  // SIGINT/SIGTERM: senders stop waiting without bound for a broker or receiver that is
  // away; each gives up after the drain timeout and reports what it could not send.
  virtual void stop_requested() {}
  // `run --replica I/N`: this process runs replica `index` (0-based) of the node's replicated
  // stage: it reads that partition of the links into it and sends as that replica. -1 (the
  // default): the process runs the replicated stage whole, every partition.
  virtual void set_replica(int index) { (void)index; }
};

}  // namespace edgeflow
