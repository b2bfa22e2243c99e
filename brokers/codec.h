// msgpack encoding of messages, the format of every link between edgeflow nodes.
//
// A message is a msgpack array: [1 (format), stream, event_time_us, seq, origin, fields (map),
// blob_type (str|nil), blob_bytes (bin|nil)]. Decoding checks every size against the bytes
// actually present before anything is reserved, so malformed input yields an error, never a
// crash or an allocation out of proportion: at worst (an array of one-byte elements) about 60
// bytes of memory per input byte, a msgpack-c object and a Value per element.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/message.h"

namespace edgeflow {

// Appends the encoding of `message` to `out`. Blobs whose bytes are not set (in-process
// frames) are refused: a raw frame never goes on the wire.
void encode_message(const Message& message, std::string& out);

struct DecodeResult {
  std::shared_ptr<Message> message;  // null on error
  std::string error;                 // what was wrong, for the error output
  size_t consumed = 0;               // bytes used by this message
};

// Decodes one message from the front of [data, data+size).
DecodeResult decode_message(const char* data, size_t size);

// Fields alone (a msgpack map), as used by user-facing `format: msgpack` topics.
void encode_fields(const Fields& fields, std::string& out);
bool decode_fields(const char* data, size_t size, Fields& out, std::string& error);

}  // namespace edgeflow
