// ZeroMQ channels for links and the zmq.* operators.
//
//  - kAcked: at-least-once. The sender is a DEALER that connects to the receiver's ROUTER;
//    the receiver acknowledges every frame, the sender keeps a window of unacknowledged
//    frames and sends them again after resend_ms (the receiver de-duplicates by sequence).
//    PUSH/PULL has no return path for acknowledgements, hence DEALER/ROUTER.
//  - kPush: PUSH/PULL, reliable while connected, no acknowledgement (frames queued in a
//    PUSH socket whose peer vanished are lost).
//  - kPubSub: PUB/SUB, best effort: a slow or absent subscriber loses frames.
// The receiving side binds, the sending side connects; many senders may fan in to one
// receiver.
//
// kAcked guarantee (protocol in zmq_channel.cc): every frame a live sender accepted reaches a
// handler at least once, and drain() == true means all did; one receiver object delivers each
// sender session's frames exactly once and in send order; a restarted receiver may see again
// up to `window` frames its predecessor delivered without acknowledging. Nothing is persisted:
// frames still held by a sender destroyed before drain() succeeds are lost.
// Threads: each sender has one I/O thread owning its socket (send() hands frames over); each
// receiver one thread owning its socket, on which the handler runs. Sockets linger 0.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "brokers/channel.h"

namespace edgeflow::zmqlink {

enum class Mode { kAcked, kPush, kPubSub };
// "acked" | "push" | "pubsub"; throws otherwise. Inline: the link transport parses modes
// without linking the channel (brokers/link/zmq_links.h).
inline Mode parse_mode(const std::string& text) {
  if (text == "acked") return Mode::kAcked;
  if (text == "push") return Mode::kPush;
  if (text == "pubsub") return Mode::kPubSub;
  throw std::invalid_argument("unknown ZeroMQ link mode '" + text + "': use acked, push or pubsub");
}
inline const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kAcked:
      return "acked";
    case Mode::kPush:
      return "push";
    case Mode::kPubSub:
      return "pubsub";
  }
  return "?";
}

// CURVE (ZeroMQ's encryption and authentication, RFC 26). Keys are Z85 text, 40 characters,
// as `edgeflow keys zmq NODE` writes them. Empty keys: plaintext.
struct CurveClient {
  std::string server_key;  // the receiver's public key, pinned
  std::string public_key;  // this sender's key pair
  std::string secret_key;
};
struct CurveServer {
  std::string public_key;  // this receiver's key pair (checked to be one)
  std::string secret_key;
  // Public keys of the senders it accepts, each with the sender identity (kAcked) it must
  // use, so a known key cannot speak for another sender ("" = any); other keys are refused.
  std::map<std::string, std::string> allowed;
};

struct SenderOptions {
  std::string endpoint;  // tcp://host:port to connect to
  Mode mode = Mode::kAcked;
  std::string identity;  // unique per sender (node + link); used by kAcked
  int window = 1000;     // kAcked: unacknowledged frames before send() blocks
  int resend_ms = 1000;  // kAcked: send again when not acknowledged by then
  int send_hwm = 1000;   // ZMQ_SNDHWM for kPush and kPubSub
  std::string topic;     // kPubSub: prefix frame (subscribers filter on it)
  CurveClient curve;
};

struct ReceiverOptions {
  std::string endpoint;  // tcp://host:port to bind; port `*` picks a free one
  Mode mode = Mode::kAcked;
  std::string topic;  // kPubSub: subscription prefix ("" = everything)
  int recv_hwm = 1000;
  CurveServer curve;
};

// Throw std::runtime_error with the endpoint and the fix (e.g. "address in use") on failure.
std::unique_ptr<FrameSender> make_sender(SenderOptions options);
std::unique_ptr<FrameReceiver> make_receiver(ReceiverOptions options, FrameHandler handler);
// The endpoint a receiver actually bound (with the port resolved when it was `*`).
std::string bound_endpoint(const FrameReceiver& receiver);

// Counters of a receiver made by make_receiver (std::invalid_argument for any other):
struct ReceiverStats {
  uint64_t delivered = 0;     // handler calls
  uint64_t duplicates = 0;    // kAcked: frames already delivered (resent), dropped and acked
  uint64_t out_of_order = 0;  // kAcked: frames after a gap (lost on a broken connection),
                              // dropped; the sender sends them again after the missing one
  uint64_t malformed = 0;     // wrong number of parts or short header: dropped
  uint64_t refused = 0;       // CURVE: handshakes refused (a plaintext peer, an unknown key),
                              // and acked frames under an identity not their key's
};
ReceiverStats receiver_stats(const FrameReceiver& receiver);

}  // namespace edgeflow::zmqlink
