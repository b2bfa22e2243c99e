// The transport of `edgeflow run`: turns each end of a link into a sender or receiver stage
// over MQTT or ZeroMQ (the link's `via`), with batching, per-sender sequence numbers for
// de-duplication, end of input carried across, and the link metrics.
#pragma once

#include <memory>

#include "runtime/link.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {

// `pipeline.links.mqtt_broker` must be set (the CLI puts the embedded broker's URI there when
// the file names none). The pipeline and plan must outlive the transport.
std::unique_ptr<LinkTransport> make_link_transport(const PipelineSpec& pipeline, const Plan& plan);

}  // namespace edgeflow
