// Helpers shared by the ZeroMQ link channels and the zmq.* operators: endpoint checks, and
// bind/connect that fail with a message naming the endpoint and the fix.
#pragma once

#include <cstdint>
#include <string>
#include <zmq.hpp>

namespace edgeflow::zmqlink {

// "" when `endpoint` is well formed, otherwise what is wrong and how to write it. Accepted:
// tcp://HOST:PORT (PORT may be `*` when binding), ipc://PATH, inproc://NAME.
std::string endpoint_problem(const std::string& endpoint, bool bind);

// Bind / connect, throwing std::runtime_error naming the endpoint and the fix.
// `in_use_fix` completes "address already in use: ..." (which setting to change).
void bind_or_throw(zmq::socket_t& socket, const std::string& endpoint,
                   const std::string& in_use_fix);
void connect_or_throw(zmq::socket_t& socket, const std::string& endpoint);

// ZMQ_LAST_ENDPOINT: what a socket bound, with `*` resolved to the port picked.
std::string last_endpoint(const zmq::socket_t& socket);

// A user-facing socket of the zmq.* operators: binds (the fix for a port in use names the
// `endpoint` option) or connects. Returns the endpoint bound when the port was `*`, else "".
std::string attach_user_socket(zmq::socket_t& socket, const std::string& endpoint, bool bind);

// An eventfd that other threads signal to wake a thread blocked in zmq::poll (stop, new work),
// so idle threads need not poll on a short timeout.
class WakeFd {
 public:
  WakeFd();  // throws std::runtime_error
  ~WakeFd();
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;

  zmq::pollitem_t pollitem() const { return {nullptr, fd_, ZMQ_POLLIN, 0}; }
  void signal();  // thread-safe, never blocks
  void clear();   // after poll reported it

 private:
  int fd_;
};

// Bytes a message part of `size` bytes takes in ZMTP 3: a flags byte and a 1- or 8-byte size.
inline uint64_t zmtp_part_bytes(uint64_t size) { return size + (size <= 255 ? 2 : 9); }

}  // namespace edgeflow::zmqlink
