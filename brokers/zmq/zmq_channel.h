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
#pragma once

#include <memory>
#include <string>

#include "brokers/channel.h"

namespace edgeflow::zmqlink {

enum class Mode { kAcked, kPush, kPubSub };
Mode parse_mode(const std::string& text);  // "acked" | "push" | "pubsub"; throws otherwise
const char* mode_name(Mode mode);

struct SenderOptions {
  std::string endpoint;  // tcp://host:port to connect to
  Mode mode = Mode::kAcked;
  std::string identity;  // unique per sender (node + link); used by kAcked
  int window = 1000;     // kAcked: unacknowledged frames before send() blocks
  int resend_ms = 1000;  // kAcked: send again when not acknowledged by then
  int send_hwm = 1000;   // ZMQ_SNDHWM for kPush and kPubSub
  std::string topic;     // kPubSub: prefix frame (subscribers filter on it)
};

struct ReceiverOptions {
  std::string endpoint;  // tcp://host:port to bind; port `*` picks a free one
  Mode mode = Mode::kAcked;
  std::string topic;  // kPubSub: subscription prefix ("" = everything)
  int recv_hwm = 1000;
};

// Throw std::runtime_error with the endpoint and the fix (e.g. "address in use") on failure.
std::unique_ptr<FrameSender> make_sender(SenderOptions options);
std::unique_ptr<FrameReceiver> make_receiver(ReceiverOptions options, FrameHandler handler);
// The endpoint a receiver actually bound (with the port resolved when it was `*`).
std::string bound_endpoint(const FrameReceiver& receiver);

}  // namespace edgeflow::zmqlink
