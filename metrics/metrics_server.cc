#include "metrics/metrics_server.h"

#include <civetweb.h>

#include <cstring>
#include <optional>
#include <stdexcept>

namespace edgeflow::metrics {
namespace {

int serve_route(mg_connection* conn, void* cbdata) {
  const auto& route = *static_cast<const MetricsServer::Route*>(cbdata);
  // civetweb also hands over longer paths and other cases ("/metricsfoo", "/API/NODES"):
  // only the path itself is served, and only to GET and HEAD (it is read-only).
  const mg_request_info* request = mg_get_request_info(conn);
  const char* uri = request->local_uri ? request->local_uri : "";
  if (route.path != uri) {
    mg_send_http_error(conn, 404, "no %s here", uri);
    return 404;
  }
  const std::string method = request->request_method ? request->request_method : "";
  if (method != "GET" && method != "HEAD") {
    mg_send_http_error(conn, 405, "%s is read-only: GET it", route.path.c_str());
    return 405;
  }
  std::optional<std::string> body;
  try {
    body = route.render();
  } catch (const std::exception& e) {
    mg_send_http_error(conn, 500, "cannot render %s: %s", route.path.c_str(), e.what());
    return 500;
  }
  if (!body) {
    // Prometheus marks the target down for this scrape rather than storing old figures.
    mg_send_http_error(conn, 503, "%s", "the service is busy (a deployment?); try again");
    return 503;
  }
  mg_send_http_ok(conn, route.content_type.c_str(), static_cast<long long>(body->size()));
  if (method == "GET") mg_write(conn, body->data(), body->size());
  return 200;
}

}  // namespace

MetricsServer::MetricsServer(const std::string& address, Render render) {
  routes_.push_back({"/metrics", "text/plain; version=0.0.4; charset=utf-8", std::move(render)});
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
    throw std::runtime_error("'" + address +
                             "': give a port (9464), HOST:PORT (127.0.0.1:9464) or :PORT (every "
                             "interface)");
  // civetweb (Debian's libcivetweb, which needs nothing but libc): two threads are plenty for
  // a scrape every few seconds. It sets SO_REUSEADDR only, so a port another process serves
  // is refused, not shared.
  const std::string listen = host + ":" + std::to_string(port);
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "2", nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof callbacks);
  mg_init_library(0);
  ctx_ = mg_start(&callbacks, nullptr, options);
  if (!ctx_) {
    mg_exit_library();
    throw std::runtime_error(listen +
                             ": cannot listen there (in use, or not an address of this machine); "
                             "pick another port or 0 for a free one");
  }
  mg_set_request_handler(ctx_, "/metrics", serve_route, &routes_.front());
  mg_server_port ports[1];
  const int bound = mg_get_server_ports(ctx_, 1, ports) > 0 ? ports[0].port : port;
  base_url_ = "http://" + host + ":" + std::to_string(bound);
  url_ = base_url_ + "/metrics";
}

void MetricsServer::serve(const std::string& path, const std::string& content_type, Render render) {
  routes_.push_back({path, content_type, std::move(render)});
  mg_set_request_handler(ctx_, path.c_str(), serve_route, &routes_.back());
}

MetricsServer::~MetricsServer() {
  mg_stop(ctx_);  // joins its threads
  mg_exit_library();
}

}  // namespace edgeflow::metrics
