// Hands the ZeroMQ link channel to the link transport when this plugin is loaded
// (brokers/link/zmq_links.h): the edgeflow binary itself does not link libzmq.
#include <spdlog/spdlog.h>

#include <memory>

#include "brokers/link/zmq_links.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

bool register_channel() {
  // The channel logs with spdlog's default logger, which in a plugin is a copy of its own
  // (stdout, another format): point it at the runtime's, on stderr like every other line.
  spdlog::set_default_logger(std::shared_ptr<spdlog::logger>(&logger(), [](spdlog::logger*) {}));
  return register_zmq_channel(
      {&zmqlink::make_sender, &zmqlink::make_receiver, &zmqlink::bound_endpoint});
}

const bool registered = register_channel();

}  // namespace
}  // namespace edgeflow
