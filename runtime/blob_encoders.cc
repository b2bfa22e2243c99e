#include "runtime/blob_encoders.h"

#include <map>

namespace edgeflow {
namespace {

std::map<std::string, BlobEncoderEntry>& encoders() {
  static std::map<std::string, BlobEncoderEntry> map;  // function-local: init order safe
  return map;
}

}  // namespace

bool register_blob_encoder(const std::string& blob_type, BlobEncoderEntry entry) {
  encoders()[blob_type] = std::move(entry);
  return true;
}

const BlobEncoderEntry* find_blob_encoder(const std::string& blob_type) {
  auto it = encoders().find(blob_type);
  return it == encoders().end() ? nullptr : &it->second;
}

const BlobEncoderEntry* find_blob_encoder_for_port(const std::string& port_type) {
  for (const auto& [type, entry] : encoders())
    if (entry.port_type == port_type) return &entry;
  return nullptr;
}

}  // namespace edgeflow
