// Hands the ZeroMQ link channel to the link transport when this plugin is loaded
// (brokers/link/zmq_links.h): the edgeflow binary itself does not link libzmq.
#include <spdlog/spdlog.h>

#include <memory>

#include "brokers/link/zmq_links.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

bool register_channel() {
  // The channel logs with spdlog's default logger, which writes to stdout in another format:
  // make it the runtime's (registered as "edgeflow", on stderr), shared, not borrowed.
  logger();
  if (std::shared_ptr<spdlog::logger> runtime = spdlog::get("edgeflow"))
    spdlog::set_default_logger(std::move(runtime));
  return register_zmq_channel(
      {&zmqlink::make_sender, &zmqlink::make_receiver, &zmqlink::bound_endpoint});
}

const bool registered = register_channel();

}  // namespace
}  // namespace edgeflow
