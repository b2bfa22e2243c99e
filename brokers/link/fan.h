// Several channels behind one: a sender to many receivers (ZeroMQ links fanning out to many
// nodes), and a receiver of many partitions (a replicated stage run whole in one process).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "brokers/channel.h"
#include "runtime/clock.h"

namespace edgeflow {

// Sends to several receivers at once: ZeroMQ links fanning out to many nodes.
class FanOut final : public FrameSender {
 public:
  explicit FanOut(std::vector<std::unique_ptr<FrameSender>> s) : senders_(std::move(s)) {}
  bool send(const std::string& frame, int timeout_ms) override {
    // A frame already taken by a receiver is not sent to it again after a timeout.
    for (; next_ < senders_.size(); ++next_)
      if (!senders_[next_]->send(frame, timeout_ms)) return false;
    next_ = 0;
    return true;
  }
  void abandon() override { next_ = 0; }
  bool drain(int timeout_ms) override {
    int64_t deadline = steady_ms() + timeout_ms;
    for (auto& s : senders_)
      if (!s->drain(static_cast<int>(std::max<int64_t>(0, deadline - steady_ms())))) return false;
    return true;
  }
  uint64_t unacknowledged() const override {
    uint64_t n = 0;
    for (const auto& s : senders_) n += s->unacknowledged();
    return n;
  }
  uint64_t reconnects() const override {
    uint64_t n = 0;
    for (const auto& s : senders_) n += s->reconnects();
    return n;
  }
  uint64_t wire_bytes(uint64_t payload) const override {
    uint64_t n = 0;
    for (const auto& s : senders_) n += s->wire_bytes(payload);
    return n;
  }

 private:
  std::vector<std::unique_ptr<FrameSender>> senders_;
  size_t next_ = 0;
};

// Receives from several channels at once: the partitions of a replicated stage's input
// when one process runs it whole.
class FanIn final : public FrameReceiver {
 public:
  explicit FanIn(std::vector<std::unique_ptr<FrameReceiver>> r) : receivers_(std::move(r)) {}
  void stop() override {
    for (auto& r : receivers_) r->stop();
  }
  void finish() override {
    for (auto& r : receivers_) r->finish();
  }
  uint64_t reconnects() const override {
    uint64_t n = 0;
    for (const auto& r : receivers_) n += r->reconnects();
    return n;
  }

 private:
  std::vector<std::unique_ptr<FrameReceiver>> receivers_;
};

}  // namespace edgeflow
