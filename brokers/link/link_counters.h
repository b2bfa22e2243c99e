// The figures of one end of a link, updated by its stage and read by LinkTransport::metrics().
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace edgeflow {

struct LinkCounters {
  std::string link, node, direction, via;
  std::atomic<uint64_t> messages{0}, payload_bytes{0}, wire_bytes{0}, batches{0}, reconnects{0},
      duplicates{0}, errors{0}, unacknowledged{0};
  std::atomic<bool> connected{false};
};

}  // namespace edgeflow
