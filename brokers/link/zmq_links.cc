#include "brokers/link/zmq_links.h"

#include <mutex>

#include "runtime/operator.h"
#include "runtime/plugins.h"

namespace edgeflow {
namespace {

std::mutex table_mu;
ZmqChannelApi table;

}  // namespace

bool register_zmq_channel(const ZmqChannelApi& api) {
  std::lock_guard<std::mutex> lock(table_mu);
  table = api;
  return true;
}

const ZmqChannelApi& zmq_channel() {
  {
    std::lock_guard<std::mutex> lock(table_mu);
    if (table.make_sender) return table;
  }
  // The channel comes with the zmq operators: the plugin that has zmq.publish has it.
  std::string why;
  PluginCatalog::global().load_for("zmq.publish", &why);
  std::lock_guard<std::mutex> lock(table_mu);
  if (!table.make_sender)
    throw OperatorError("ZeroMQ links need the zmq plugin (edgeflow-zmq.so), which " +
                        (why.empty() ? std::string("was not found") : why));
  return table;
}

}  // namespace edgeflow
