// Operator profiles: what each stage costs per message, measured by running the pipeline on
// this machine (`edgeflow profile FILE`), saved as JSON beside the pipeline and read by
// `edgeflow plan`. The figures are per message, so they hold for any placement and any rate:
// CPU per input message, output messages per input, encoded bytes per output message, and
// for sources the rate in event time (a simulation running 60x still says one reading a
// second).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/pipeline.h"

namespace edgeflow {

struct PortProfile {
  std::string port;
  uint64_t messages = 0;       // over the whole run, every copy
  uint64_t payload_bytes = 0;  // of each message encoded for a link (brokers/codec)
  uint64_t flushes = 0;        // turns that handed messages on: a link sends one frame each
};

struct StageProfile {
  std::string stage, op;
  int copies = 0;
  bool source = false;
  uint64_t in = 0, out = 0;
  double cpu_seconds = 0;  // every copy
  // Sources: messages per event-time second, per copy; 0 for other stages.
  double rate_per_copy = 0;
  std::vector<PortProfile> ports;
  uint64_t errors = 0;  // messages on its error port: a profile of a stage that fails

  // CPU seconds per message in (per message out for a source).
  double cpu_per_message() const;
  const PortProfile* port(const std::string& name) const;
  // Messages out of `port` per message in; for a source, per message out of "out".
  double out_per_in(const std::string& port) const;
  double bytes_per_message(const std::string& port) const;
  // Frames per message on a link from `port`: flushes / messages (1 when unknown).
  double frames_per_message(const std::string& port) const;
};

// Hidden link stages: CPU per frame of a sender and of a receiver, averaged over the links
// the profiled placement had; `measured` false when it had none (the plan then counts none).
struct LinkCost {
  bool measured = false;
  double send_cpu_per_frame = 0;
  double receive_cpu_per_frame = 0;
  uint64_t frames = 0;
};

struct PipelineProfile {
  std::string pipeline;
  std::string file;
  std::string machine;  // CPU model of the machine that measured it
  std::string created;  // ISO 8601
  double seconds = 0;   // wall time of the run
  std::vector<StageProfile> stages;
  LinkCost links;

  const StageProfile* stage(const std::string& id) const;
};

struct ProfileOptions {
  double seconds = 10;  // run the pipeline's own sources this long (they may end sooner)
  int threads = 2;
  std::string broker;  // MQTT links: a broker to use; "" = an embedded one on loopback
};

// Runs `pipeline` as placed in its file, with real links, and measures it. Throws
// std::runtime_error naming the stage when an operator cannot open.
PipelineProfile profile_pipeline(const PipelineSpec& pipeline, const ProfileOptions& options);

std::string profile_to_json(const PipelineProfile& profile);
// nullopt with `error` (naming the file and the key) when the text is not a profile.
std::optional<PipelineProfile> profile_from_json(const std::string& text, const std::string& file,
                                                 std::string* error);
// FILE.yaml -> FILE.profile.json, beside the pipeline.
std::string default_profile_path(const std::string& pipeline_file);

}  // namespace edgeflow
