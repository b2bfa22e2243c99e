// Shared by the ZeroMQ channel and operator tests: a free loopback endpoint, and a handler that
// keeps the frames it was handed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "brokers/channel.h"

namespace edgeflow::zmqlink::testing {

// A loopback endpoint nobody listens on: bound, then released (terminating the context closes
// the listening socket before it returns).
inline std::string free_endpoint() {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::pull);
  s.set(zmq::sockopt::linger, 0);
  s.bind("tcp://127.0.0.1:*");
  std::string endpoint = s.get(zmq::sockopt::last_endpoint);
  s.close();
  ctx.close();
  return endpoint;
}

constexpr int kWaitMs = 20000;  // bound on every wait; tests normally finish far sooner

// Frames a receiver handed over, in order.
class Collector {
 public:
  FrameHandler handler() {
    return [this](std::string&& frame) {
      std::lock_guard<std::mutex> lock(mu_);
      frames_.push_back(std::move(frame));
      cv_.notify_all();
    };
  }
  bool wait_for(size_t n, int timeout_ms = kWaitMs) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return frames_.size() >= n; });
  }
  std::vector<std::string> frames() {
    std::lock_guard<std::mutex> lock(mu_);
    return frames_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> frames_;
};

}  // namespace edgeflow::zmqlink::testing
