// The frame a link sends: a batch of messages from one sender, numbered for de-duplication.
//
// A frame is a msgpack array [2 (format), sender node, session, sequence, end, count] followed
// by `count` messages in the codec's encoding (brokers/codec.h). `session` is random per
// sender start, `sequence` counts that session's frames from 1, so a receiver drops a frame
// it has already delivered (a redelivery after a reconnect) and still accepts a restarted
// sender. `end` marks the sender's end of input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/message.h"

namespace edgeflow {

// Hard bounds of a link frame. A sender cuts a batch at links.batch.bytes (at most 16 MiB), so
// with one message of up to kMaxLinkMessageBytes past that its frames stay below
// kMaxFrameBytes; decode_batch rejects anything larger as a bad frame.
constexpr size_t kMaxLinkMessageBytes = size_t{8} << 20;
constexpr size_t kMaxFrameBytes = size_t{32} << 20;

struct BatchHeader {
  std::string sender;  // node
  uint64_t session = 0;
  uint64_t sequence = 0;
  bool end = false;
  uint32_t count = 0;
  // Spooled links: "every frame of this session before me is acknowledged or was dropped
  // from a full spool", so a receiver that missed them moves on (0: not said). A 7th header
  // element, present only when set.
  uint64_t floor = 0;
};

// Collects encoded messages, then writes the frame.
class BatchWriter {
 public:
  // A blob with no encoded bytes (a raw camera frame) is encoded by its registered blob
  // encoder (runtime/blob_encoders.h). False (and nothing added) when it has none or the
  // encoder fails, or when the message encodes to more than kMaxLinkMessageBytes; `why`
  // says what to do.
  bool add(const Message& message, std::string& why);
  size_t count() const { return count_; }
  size_t bytes() const { return body_.size(); }
  bool empty() const { return count_ == 0; }
  // Writes the frame of what was added (possibly nothing, for an end marker) and resets.
  void finish(BatchHeader header, std::string& frame);

 private:
  bool encode(const Message& message, std::string& why);  // appends to body_

  std::string body_;
  uint32_t count_ = 0;
};

struct DecodedBatch {
  BatchHeader header;
  std::vector<MessagePtr> messages;
  std::string error;  // not empty: the frame was rejected as a whole
};

// Never throws; a frame over kMaxFrameBytes, or one announcing more messages than its bytes
// can hold, is rejected before anything is decoded.
DecodedBatch decode_batch(const char* data, size_t size);

// The same frame with its header's floor set (a spooled frame is resent with one when it
// starts a round of sending). Returns the frame unchanged when its header does not decode.
std::string with_batch_floor(const std::string& frame, uint64_t floor);

}  // namespace edgeflow
