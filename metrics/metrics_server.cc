#include "metrics/metrics_server.h"

#include <httplib.h>

#include <chrono>
#include <stdexcept>

namespace edgeflow::metrics {

MetricsServer::MetricsServer(const std::string& address, std::function<std::string()> render)
    : server_(std::make_unique<httplib::Server>()) {
  std::string host = "127.0.0.1", port_text = address;
  if (const size_t colon = address.rfind(':'); colon != std::string::npos) {
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
    if (host.empty()) host = "0.0.0.0";
  }
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(port_text, &used);
    if (used != port_text.size()) port = -1;
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535)
    throw std::runtime_error("--metrics '" + address +
                             "': give a port (9464), HOST:PORT (127.0.0.1:9464) or :PORT (every "
                             "interface)");
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second process
  // binds a port already served and the two split the scrapes between them, silently.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server_->Get("/metrics", [render](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  const int bound = port == 0                           ? server_->bind_to_any_port(host)
                    : server_->bind_to_port(host, port) ? port
                                                        : -1;
  if (bound < 0)
    throw std::runtime_error("--metrics " + host + ":" + std::to_string(port) +
                             ": cannot listen there (in use, or not an address of this machine); "
                             "pick another port or 0 for a free one");
  url_ = "http://" + host + ":" + std::to_string(bound) + "/metrics";
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() does nothing before the server runs: a destructor right after this would wait on
  // the thread for ever. So this returns once it runs (at most 5 s).
  for (int i = 0; i < 500 && !server_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

MetricsServer::~MetricsServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace edgeflow::metrics
