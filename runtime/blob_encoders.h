// Blobs that live in memory only (a camera frame's pixels) can register an encoder that turns
// them into bytes when a link must carry them: with it, moving a frame reader to another node
// is a one-word `on:` edit, and the frames cross the link encoded (JPEG for camera frames,
// registered by operators/image). Without one, such a link is a load error.
#pragma once

#include <functional>
#include <string>

#include "runtime/message.h"

namespace edgeflow {

// Fills `out` with an encoded blob (bytes set); false with the reason in `why`.
using BlobEncoder = std::function<bool(const Blob& in, Blob& out, std::string& why)>;

struct BlobEncoderEntry {
  std::string port_type;  // body type of the ports that carry such blobs ("frame")
  std::string encoding;   // what a link sends, for messages ("JPEG, quality 80")
  BlobEncoder encode;
};

// For blobs of type `blob_type` ("frame/bgr8"). Call at static initialisation, like operator
// registration.
bool register_blob_encoder(const std::string& blob_type, BlobEncoderEntry entry);
const BlobEncoderEntry* find_blob_encoder(const std::string& blob_type);
// The first encoder for blobs on ports of `port_type`, or null.
const BlobEncoderEntry* find_blob_encoder_for_port(const std::string& port_type);

}  // namespace edgeflow
