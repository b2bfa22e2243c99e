// The unit that flows between stages. Inside one process a message moves by shared pointer
// and is never copied by the runtime; it is encoded only when it crosses a link.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/value.h"

namespace edgeflow {

// A binary body with a type tag: "image/jpeg", "image/png", or an in-process-only type such
// as "frame/bgr8" whose pixels live in `native` and which never goes on the wire.
struct Blob {
  std::string type;
  std::shared_ptr<const std::string> bytes;  // encoded form, what a link may carry
  std::shared_ptr<const void> native;        // in-process object (e.g. a cv::Mat)
  size_t native_bytes = 0;                   // what `native` holds, for queue byte limits
  bool empty() const { return type.empty(); }
};

struct Message {
  std::string stream;         // the stage that made it
  int64_t event_time_us = 0;  // from the source; rises on a stream
  uint64_t seq = 0;           // per producing stage, for de-duplication after redelivery
  std::string origin;         // node the data came from; travels across links
  Fields fields;              // a reading, an aggregate, an event...
  Blob blob;                  // optional binary body
};

using MessagePtr = std::shared_ptr<const Message>;

// The memory a message holds, roughly: its strings, fields and blob. What queue byte limits
// count; a blob shared by several messages counts in each.
size_t approx_bytes(const Message& message);

// Copy-on-write: returns the same object when the caller holds the only reference (no copy),
// otherwise a copy. Lets a `map` stage edit in place on a straight chain.
std::shared_ptr<Message> make_mutable(MessagePtr&& message);

// The record a stage sends on its "error" output: what went wrong, where, and what it was
// about (stream, origin, event time of the offending message when there is one).
std::shared_ptr<Message> make_error_record(const std::string& stage, const std::string& node,
                                           const Message* about, const std::string& what,
                                           int64_t now_us);

}  // namespace edgeflow
