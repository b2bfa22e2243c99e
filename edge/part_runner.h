// One node's part of a deployed pipeline, running: the loaded file, its placement, the link
// transport with the service's spool, and the executor limited to this node. Built from a
// verified deployment; destroyed after a drain.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "brokers/spool/spool.h"
#include "fleet/protocol.h"
#include "runtime/executor.h"
#include "runtime/link.h"
#include "runtime/link_settings.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

namespace edgeflow {

struct PartSettings {
  std::string node;
  std::string broker;
  MqttSecurity security;  // the service's tls: and credentials:, for the part's links too
  std::string data_dir;
  std::string files_dir;  // relative paths; empty: the deployment's base_dir
  Spool* spool = nullptr;
  // The node's energy mode, which the service changes while the part runs; null: normal.
  std::shared_ptr<const EnergyMode> energy;
  // Called with the loaded file before any operator opens: the service sets the energy mode
  // for the part's rules, so its stages start in the right one.
  std::function<void(const PipelineSpec&)> before_start;
};

class PartRunner {
 public:
  // Loads, places and starts the part. Throws OperatorError (cannot start: a missing file, a
  // device absent) or std::runtime_error (the file is invalid, or names no such node) with a
  // message that says what to fix.
  PartRunner(const fleet::Deployment& d, const PartSettings& s);
  ~PartRunner();  // drains if still running

  const fleet::Deployment& deployment() const { return d_; }
  // Stops the sources and waits (at most timeout_ms) for every accepted message to be
  // processed and spooled. True when everything finished.
  bool drain(int64_t timeout_ms);
  bool finished() const { return executor_->finished(); }
  std::vector<StageMetrics> stage_metrics() const { return executor_->metrics(); }
  std::vector<LinkMetrics> link_metrics() const { return transport_->metrics(); }
  // The part's links in the spool, with this node's end (for the status).
  const Plan& plan() const { return plan_; }
  const PipelineSpec& pipeline() const { return *pipeline_; }

 private:
  fleet::Deployment d_;
  PartSettings s_;
  std::unique_ptr<PipelineSpec> pipeline_;
  Plan plan_;
  std::unique_ptr<LinkTransport> transport_;
  std::unique_ptr<Executor> executor_;
  bool drained_ = false;
};

}  // namespace edgeflow
