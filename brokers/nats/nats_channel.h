// A link over NATS JetStream (links: {via: nats}): at-least-once frames on a subject per link,
// kept by the server (or a cluster of them) until every receiving node has acknowledged them.
//
// One stream per pipeline, "EDGEFLOW_<pipeline>", holds the subjects "edgeflow.<pipeline>.>"
// with interest retention: a frame is deleted once every receiver's consumer acknowledged
// it. Each receiving node has a durable pull consumer, "<link>-<node>", filtered to its link's
// subject; both ends create the stream and the consumers before the first frame (idempotent),
// so a frame published before a receiver runs is kept for it. A sender publishes
// asynchronously with a message id (the stream drops a duplicate within 2 minutes), at most
// max_inflight frames unacknowledged, and publishes again what the server refused or did not
// acknowledge in time (a server that died, a leader being elected). A receiver acknowledges a
// frame once its handler took it; a frame not acknowledged within ack_wait is delivered again,
// possibly after newer ones: the link's FrameDedup delivers it once, in whatever order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "brokers/channel.h"

namespace edgeflow {

struct NatsLinkOptions {
  std::vector<std::string> servers;  // nats://host:port, any of a cluster's
  std::string stream;                // EDGEFLOW_<pipeline>
  std::string stream_subjects;       // edgeflow.<pipeline>.>
  std::string subject;               // this link's
  // Durable consumer names: a sender creates those of every receiver; a receiver its own.
  std::vector<std::string> consumers;
  // The subject each consumer reads, beside `consumers`; empty: all read `subject`.
  std::vector<std::string> consumer_subjects;
  // A link into a replicated stage: the subject of each partition (send_to); empty: none.
  std::vector<std::string> partition_subjects;
  int replicas = 1;              // of the stream and its consumers (3 on a 3-server cluster)
  int64_t ack_wait_ms = 10'000;  // until an unacknowledged frame is delivered again
  int max_inflight = 64;         // frames published and not yet acknowledged
  bool retry = false;            // keep trying unreachable servers instead of failing
  // TLS (links.nats.tls, or tls:// servers): the CA to trust ("" = libnats' default), a client
  // certificate and key for servers that verify clients, and whether the certificate must
  // name the host of the first server (every server's certificate must then name it).
  bool tls = false;
  std::string ca_file, cert_file, key_file;
  bool verify_hostname = true;
  std::string username, password;  // links.nats.credentials; "" = none
  std::string name;                // client connection name, for the server's monitoring
  std::string node, link;          // for log lines
  // A receiver that holds each frame until ack(token) (a replica: until the windows it fed
  // are emitted and confirmed), telling the server it is in progress meanwhile.
  bool hold = false;
  int max_ack_pending = 1024;  // frames delivered and not acknowledged, per consumer
};

// Both throw std::runtime_error naming the servers and the fix when none can be reached (and
// retry is off) or JetStream refuses the stream or a consumer.
std::unique_ptr<FrameSender> make_nats_sender(const NatsLinkOptions& options);
std::unique_ptr<FrameReceiver> make_nats_receiver(const NatsLinkOptions& options,
                                                  FrameHandler handler);
// options.hold: the handler gets a token per frame, for FrameReceiver::ack.
std::unique_ptr<FrameReceiver> make_nats_holding_receiver(const NatsLinkOptions& options,
                                                          HeldFrameHandler handler);

// Bytes a frame of `payload` bytes costs on the wire: the publish with its message id header,
// the stream's acknowledgement, the delivery to one consumer and its acknowledgement, with
// TCP/IP headers (an estimate).
uint64_t nats_wire_bytes(const std::string& subject, uint64_t payload);

// A name NATS takes as a subject token, a stream or a consumer name: letters, digits, '-'
// and '_' kept, anything else '_'.
std::string nats_token(const std::string& text);

}  // namespace edgeflow
