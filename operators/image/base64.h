// Base64 (RFC 4648, with padding) for JPEG snapshots carried inside JSON events.
#pragma once

#include <string>
#include <string_view>

namespace edgeflow {

std::string base64_encode(std::string_view bytes);

}  // namespace edgeflow
