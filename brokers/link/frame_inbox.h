// Frames handed over from a client's network thread to the receiving stage's source thread,
// bounded in frames and bytes: full is back-pressure on the network thread (and so on the
// broker or the ZeroMQ peer). Shared by the plain link receiver (transport.cc) and the
// spooled one (spooled_link.cc).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "brokers/link/batch.h"

namespace edgeflow {

struct FrameInbox {
  std::mutex mu;
  std::condition_variable room;
  std::deque<std::string> frames;
  std::deque<uint64_t> tokens;  // beside frames: a holding receiver's token of each
  size_t capacity = 64;
  // Frames may be large (up to kMaxFrameBytes): bound the bytes held too, letting one frame
  // in whatever its size so that a large one cannot stall the link.
  size_t bytes = 0, max_bytes = 2 * kMaxFrameBytes;
  bool closed = false;
  // Wakes the source (or runs its turn: Context::make_driver) when the inbox stops being empty.
  std::function<void()> waker;

  // After close() it appends without waiting: the network thread must be able to finish (its
  // owner joins it), and a frame it already took must not be dropped.
  void push(std::string&& frame, uint64_t token = 0) {
    std::unique_lock<std::mutex> lock(mu);
    room.wait(lock, [&] {
      return closed || frames.empty() ||
             (frames.size() < capacity && bytes + frame.size() <= max_bytes);
    });
    bool was_empty = frames.empty();
    bytes += frame.size();
    frames.push_back(std::move(frame));
    tokens.push_back(token);
    lock.unlock();
    if (was_empty) waker();
  }
  bool pop(std::string& frame, uint64_t* token = nullptr) {
    std::lock_guard<std::mutex> lock(mu);
    if (frames.empty()) return false;
    frame = std::move(frames.front());
    frames.pop_front();
    if (token) *token = tokens.front();
    tokens.pop_front();
    bytes -= frame.size();
    room.notify_one();
    return true;
  }
  bool empty() {
    std::lock_guard<std::mutex> lock(mu);
    return frames.empty();
  }
  void close() {
    {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
    }
    room.notify_all();
  }
};

}  // namespace edgeflow
