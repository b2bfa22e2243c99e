// The transport of `edgeflow run`: turns each end of a link into a sender or receiver stage
// over MQTT or ZeroMQ (the link's `via`), with batching, per-sender sequence numbers for
// de-duplication, end of input carried across, and the link metrics.
#pragma once

#include <memory>
#include <string>

#include "brokers/spool/spool.h"
#include "runtime/link.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {

// The exit code of a replica that could not renew the lease of a partition it reads
// (brokers/nats/nats_leases.h): it stops at once so that the replica taking the partition
// over is its only reader. Like EX_TEMPFAIL: start it again and it takes a free partition.
constexpr int kExitLeaseLost = 75;

// `pipeline.links.mqtt_broker` must be set (the CLI puts the embedded broker's URI there when
// the file names none). The pipeline and plan must outlive the transport.
// `spool` (a service's, or `run --data-dir`): MQTT links whose receiving stage has
// `overflow: spool`, or no overflow given and no camera frames, keep their frames on disk
// until the receivers confirm them (brokers/link/spooled_link.h). Both ends of such a link
// must run with a spool.
std::unique_ptr<LinkTransport> make_link_transport(const PipelineSpec& pipeline, const Plan& plan,
                                                   Spool* spool = nullptr);
// What a frame of `payload` bytes on `link` costs on the network, headers and acknowledgement
// included: the figure its sender adds to wire_bytes_estimate, for the planner's prediction.
uint64_t link_wire_bytes(const PipelineSpec& pipeline, const LinkPlan& link, uint64_t payload);
// For the run's summary: one line naming a link end that refused senders (LinkMetrics::
// refused) and the fix (links.zmq.curve, links.zmq.curve.peers); "" when it refused none.
std::string refused_note(const LinkMetrics& m);
// Whether `link` keeps its frames in the spool when there is one.
bool link_spools(const PipelineSpec& pipeline, const LinkPlan& link);

}  // namespace edgeflow
