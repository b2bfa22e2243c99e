// A channel carries opaque frames (encoded batches of messages) of one link from its sending
// nodes to its receiving nodes. MQTT topics and ZeroMQ sockets implement it; the link
// operators (batching, sequence numbers, end of input) sit on top and know no transport.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace edgeflow {

class FrameSender {
 public:
  virtual ~FrameSender() = default;
  // Thread-safe. Blocks while the transport's window is full (back-pressure). Returns false
  // when timeout_ms (< 0: none) passes first or the sender is closing; the frame was not taken.
  virtual bool send(const std::string& frame, int timeout_ms = -1) = 0;
  // The same to partition `partition` of a link into a replicated stage (NATS: a subject of
  // its own); partition 0 is what send() does.
  virtual bool send_to(int partition, const std::string& frame, int timeout_ms = -1) {
    return partition == 0 && send(frame, timeout_ms);
  }
  // The caller gives up on the frame its last send() did not finish; the next send() is a new
  // frame. (A sender to several receivers forgets which of them already took it.)
  virtual void abandon() {}
  // Waits until every frame sent is acknowledged where the transport acknowledges (always
  // true at once for best-effort transports); false on timeout.
  virtual bool drain(int timeout_ms) = 0;
  virtual uint64_t unacknowledged() const = 0;
  // Frames sent are numbered from 1 in the order send() took them: every frame up to this
  // number is confirmed by the transport. 0 where the transport does not say.
  virtual uint64_t confirmed_through() const { return 0; }
  virtual uint64_t reconnects() const = 0;
  // Bytes a frame of `payload` bytes costs on the network, headers and acknowledgement
  // included: an estimate for the link metrics and the energy model.
  virtual uint64_t wire_bytes(uint64_t payload) const = 0;
};

// Runs on the transport's thread: must only enqueue (it may block briefly on a full queue).
using FrameHandler = std::function<void(std::string&& frame)>;
// The same for a receiver that holds frames until told (FrameReceiver::ack): `token` names it.
using HeldFrameHandler = std::function<void(std::string&& frame, uint64_t token)>;

class FrameReceiver {
 public:
  virtual ~FrameReceiver() = default;  // stops
  // No handler call starts after stop() returns. Idempotent.
  virtual void stop() = 0;
  // End of input: no handler call starts after finish() returns (one in progress is waited
  // for), but the transport may go on answering its senders until stop() or destruction: a
  // ZeroMQ receiver still acknowledges frames it already delivered, so that a sender's last
  // acknowledgement is not lost with a connection closed the moment the end arrived.
  virtual void finish() { stop(); }
  virtual uint64_t reconnects() const = 0;
  // Senders kept out: ZeroMQ with CURVE counts handshakes it refused (a plaintext sender, an
  // unknown key) and frames under another sender's identity. Thread-safe, a counter's read:
  // the link metrics sample it, nothing per frame. 0 where the transport refuses nobody.
  virtual uint64_t refused() const { return 0; }
  // A holding receiver: the frame the handler got as `token` is done with; it is not
  // delivered again, here or to another reader. Thread-safe.
  virtual void ack(uint64_t token) { (void)token; }
};

// Estimated TCP/IP cost of `bytes` of stream data: 52 bytes of Ethernet-less IPv4 + TCP
// (with timestamps) headers per segment of at most 1448 bytes.
inline uint64_t tcp_wire_bytes(uint64_t bytes) {
  const uint64_t segments = bytes == 0 ? 1 : (bytes + 1447) / 1448;
  return bytes + 52 * segments;
}

}  // namespace edgeflow
