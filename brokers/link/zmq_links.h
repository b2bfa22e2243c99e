// ZeroMQ link channels, reached through a table. The channel code (brokers/zmq) lives in the
// zmq plugin (edgeflow-zmq.so) with the zmq.* operators, so only a process that has ZeroMQ
// links or operators maps libzmq and its dependencies (Kerberos, PGM, NORM, libsodium). The
// plugin fills the table when it is loaded; in a build with every operator linked in, at
// start-up.
#pragma once

#include <memory>
#include <string>

#include "brokers/zmq/zmq_channel.h"

namespace edgeflow {

struct ZmqChannelApi {
  std::unique_ptr<FrameSender> (*make_sender)(zmqlink::SenderOptions) = nullptr;
  std::unique_ptr<FrameReceiver> (*make_receiver)(zmqlink::ReceiverOptions, FrameHandler) = nullptr;
  std::string (*bound_endpoint)(const FrameReceiver&) = nullptr;
};

// Called by the zmq plugin's registrar (operators/zmq/zmq_channel_registrar.cc).
bool register_zmq_channel(const ZmqChannelApi& api);
// The table, loading the zmq plugin the first time; throws OperatorError naming the plugin
// and the cause when it cannot.
const ZmqChannelApi& zmq_channel();

}  // namespace edgeflow
