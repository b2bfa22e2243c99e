// Hands the ZeroMQ link channel to the link transport when this plugin is loaded
// (brokers/link/zmq_links.h): the edgeflow binary itself does not link libzmq.
#include "brokers/link/zmq_links.h"

namespace edgeflow {
namespace {

const bool registered = register_zmq_channel(
    {&zmqlink::make_sender, &zmqlink::make_receiver, &zmqlink::bound_endpoint});

}  // namespace
}  // namespace edgeflow
