// The figures of one end of a link, updated by its stage and read by LinkTransport::metrics().
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "brokers/channel.h"

namespace edgeflow {

struct LinkCounters {
  std::string link, node, direction, via;
  std::atomic<uint64_t> messages{0}, payload_bytes{0}, wire_bytes{0}, batches{0}, reconnects{0},
      duplicates{0}, errors{0}, unacknowledged{0};
  std::atomic<bool> connected{false};

  // Receive side: the channel's own count of refused senders, read when the metrics are
  // sampled (not per frame). watch() once the channel is made; release() before it goes.
  void watch(const FrameReceiver* channel) {
    std::lock_guard<std::mutex> lock(channel_mu_);
    channel_ = channel;
  }
  void release() {
    std::lock_guard<std::mutex> lock(channel_mu_);
    if (channel_) refused_ = channel_->refused();
    channel_ = nullptr;
  }
  uint64_t refused() {
    std::lock_guard<std::mutex> lock(channel_mu_);
    if (channel_) refused_ = channel_->refused();
    return refused_;
  }

 private:
  std::mutex channel_mu_;
  const FrameReceiver* channel_ = nullptr;  // guarded by channel_mu_
  uint64_t refused_ = 0;                    // the last figure read; guarded by channel_mu_
};

}  // namespace edgeflow
