#include "brokers/link/batch.h"

#include <msgpack.hpp>

#include "brokers/codec.h"
#include "runtime/blob_encoders.h"

namespace edgeflow {
namespace {

constexpr int kBatchFormat = 2;
// The smallest message encoding: an array of 8 one-byte elements.
constexpr size_t kMinMessageBytes = 9;

struct StringBuffer {
  std::string& out;
  void write(const char* data, size_t size) { out.append(data, size); }
};

}  // namespace

bool BatchWriter::add(const Message& message, std::string& why) {
  const size_t before = body_.size();
  if (!encode(message, why)) return false;
  if (body_.size() - before > kMaxLinkMessageBytes) {
    // Receivers would reject the frame; a spooled link would resend it for ever.
    why = "the message encodes to " + std::to_string(body_.size() - before) +
          " bytes; a link carries at most " + std::to_string(kMaxLinkMessageBytes) +
          " bytes per message (encode images smaller, e.g. image.encode with a lower quality)";
    body_.resize(before);
    return false;
  }
  ++count_;
  return true;
}

bool BatchWriter::encode(const Message& message, std::string& why) {
  if (!message.blob.empty() && !message.blob.bytes) {
    // In-memory only (a camera frame): encoded for the wire when an encoder is registered.
    const BlobEncoderEntry* encoder = find_blob_encoder(message.blob.type);
    if (!encoder) {
      why = "a '" + message.blob.type +
            "' blob has no encoded bytes and cannot cross a link; put image.encode before it";
      return false;
    }
    Message copy = message;  // fields are small next to the pixels; the message stays shared
    if (!encoder->encode(message.blob, copy.blob, why)) return false;
    encode_message(copy, body_);
    return true;
  }
  encode_message(message, body_);
  return true;
}

void BatchWriter::finish(BatchHeader header, std::string& frame) {
  header.count = count_;
  frame.clear();
  frame.reserve(body_.size() + 48 + header.sender.size());
  StringBuffer buf{frame};
  msgpack::packer<StringBuffer> pk(buf);
  pk.pack_array(header.floor ? 7 : 6);
  pk.pack_int(kBatchFormat);
  pk.pack_str(static_cast<uint32_t>(header.sender.size()));
  pk.pack_str_body(header.sender.data(), static_cast<uint32_t>(header.sender.size()));
  pk.pack_uint64(header.session);
  pk.pack_uint64(header.sequence);
  header.end ? pk.pack_true() : pk.pack_false();
  pk.pack_uint32(header.count);
  if (header.floor) pk.pack_uint64(header.floor);
  frame += body_;
  body_.clear();
  count_ = 0;
}

DecodedBatch decode_batch(const char* data, size_t size) {
  DecodedBatch out;
  if (size > kMaxFrameBytes) {
    out.error = "frame of " + std::to_string(size) + " bytes is over the limit of " +
                std::to_string(kMaxFrameBytes) + " bytes";
    return out;
  }
  size_t offset = 0;
  try {
    // The header is small: tight limits keep a hostile header from allocating.
    msgpack::object_handle h = msgpack::unpack(data, size, offset, nullptr, nullptr,
                                               msgpack::unpack_limit(8, 0, 1024, 0, 0, 2));
    const msgpack::object& o = h.get();
    if (o.type != msgpack::type::ARRAY || (o.via.array.size != 6 && o.via.array.size != 7)) {
      out.error = "not an edgeflow batch: expected a header array of 6 or 7";
      return out;
    }
    const msgpack::object* a = o.via.array.ptr;
    if (a[0].type != msgpack::type::POSITIVE_INTEGER || a[0].via.u64 != kBatchFormat ||
        a[1].type != msgpack::type::STR || a[2].type != msgpack::type::POSITIVE_INTEGER ||
        a[3].type != msgpack::type::POSITIVE_INTEGER || a[4].type != msgpack::type::BOOLEAN ||
        a[5].type != msgpack::type::POSITIVE_INTEGER) {
      out.error = "not an edgeflow batch: bad header fields (format 2 expected)";
      return out;
    }
    out.header.sender.assign(a[1].via.str.ptr, a[1].via.str.size);
    out.header.session = a[2].via.u64;
    out.header.sequence = a[3].via.u64;
    out.header.end = a[4].via.boolean;
    if (a[5].via.u64 > (size - offset) / kMinMessageBytes) {
      out.error = "batch announces " + std::to_string(a[5].via.u64) + " messages in " +
                  std::to_string(size - offset) + " bytes";
      return out;
    }
    out.header.count = static_cast<uint32_t>(a[5].via.u64);
    if (o.via.array.size == 7) {
      if (a[6].type != msgpack::type::POSITIVE_INTEGER) {
        out.error = "not an edgeflow batch: bad floor in the header";
        return out;
      }
      out.header.floor = a[6].via.u64;
    }
  } catch (const std::exception& e) {
    out.error = std::string("not an edgeflow batch: ") + e.what();
    return out;
  }
  out.messages.reserve(out.header.count);
  for (uint32_t i = 0; i < out.header.count; ++i) {
    DecodeResult r = decode_message(data + offset, size - offset);
    if (!r.message) {
      out.error = "message " + std::to_string(i + 1) + " of the batch: " + r.error;
      out.messages.clear();
      return out;
    }
    offset += r.consumed;
    out.messages.push_back(std::move(r.message));
  }
  if (offset != size) {
    out.error = std::to_string(size - offset) + " stray bytes after the batch";
    out.messages.clear();
  }
  return out;
}

std::string with_batch_floor(const std::string& frame, uint64_t floor) {
  size_t offset = 0;
  BatchHeader h;
  try {
    msgpack::object_handle oh =
        msgpack::unpack(frame.data(), frame.size(), offset, nullptr, nullptr,
                        msgpack::unpack_limit(8, 0, 1024, 0, 0, 2));
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size < 6) return frame;
    const msgpack::object* a = o.via.array.ptr;
    if (a[1].type != msgpack::type::STR) return frame;
    h.sender.assign(a[1].via.str.ptr, a[1].via.str.size);
    h.session = a[2].as<uint64_t>();
    h.sequence = a[3].as<uint64_t>();
    h.end = a[4].as<bool>();
    h.count = a[5].as<uint32_t>();
  } catch (const std::exception&) {
    return frame;
  }
  h.floor = floor;
  std::string out;
  StringBuffer buf{out};
  msgpack::packer<StringBuffer> pk(buf);
  pk.pack_array(7);
  pk.pack_int(kBatchFormat);
  pk.pack_str(static_cast<uint32_t>(h.sender.size()));
  pk.pack_str_body(h.sender.data(), static_cast<uint32_t>(h.sender.size()));
  pk.pack_uint64(h.session);
  pk.pack_uint64(h.sequence);
  h.end ? pk.pack_true() : pk.pack_false();
  pk.pack_uint32(h.count);
  pk.pack_uint64(h.floor);
  out.append(frame, offset, std::string::npos);
  return out;
}

}  // namespace edgeflow
