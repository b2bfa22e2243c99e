// Sizes in configuration files: "64MiB", "512 kB", "1GiB", "4096"; a bare number is bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace edgeflow {

// B, kB/KB, KiB, MB, MiB, GB, GiB; nullopt for anything else or a size that is not positive.
std::optional<uint64_t> parse_byte_size(std::string_view text);

}  // namespace edgeflow
