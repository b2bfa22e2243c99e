// Durable state of a stage copy run by a service (`edgeflow edge`, `edgeflow cloud`), which
// keeps a disk spool in its data_dir. Under plain `edgeflow run` there is none and
// Context::durability() is null: stages behave as they always did.
#pragma once

#include <cstdint>
#include <string>

namespace edgeflow {

class StageDurability {
 public:
  virtual ~StageDurability() = default;
  // Replayable sources: messages of this stage up to this seq are stored downstream (the
  // spool of every link they reach holds them), so a restart resumes after it. 0: from the
  // start.
  virtual uint64_t resume_after() = 0;
  // Replayable sources: the seq of the last message emitted. Kept as the resume point for
  // data that reaches no spool directly (it passes a window first).
  virtual void emitted(uint64_t seq) = 0;
  // Sinks: a folder of this stage copy's own for the state it commits with its output.
  virtual const std::string& state_dir() = 0;
};

}  // namespace edgeflow
