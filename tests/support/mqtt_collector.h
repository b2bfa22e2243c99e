// Every message of a topic filter, as an independent subscriber saw it: the ground truth a
// test compares a pipeline's output with. Header-only (a client of ef_mqtt).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "brokers/mqtt/client.h"

namespace edgeflow::testing {

class MqttCollector {
 public:
  MqttCollector(const std::string& uri, const std::string& filter) {
    mqtt::ClientOptions o;
    o.uri = uri;
    o.client_id = "test-collector";
    client_ = mqtt::make_client("mosquitto", o, [this](mqtt::Received&& r) {
      std::lock_guard<std::mutex> lock(mu_);
      got_.push_back(std::move(r));
      cv_.notify_all();
    });
    client_->connect();
    client_->subscribe(filter, 1);
  }
  // Waits (at most 30 s) until `n` messages arrived; returns them.
  std::vector<mqtt::Received> wait_for(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return got_.size() >= n; });
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<mqtt::Received> got_;
  std::unique_ptr<mqtt::Client> client_;
};

}  // namespace edgeflow::testing
