// GET /metrics over HTTP (cpp-httplib), for Prometheus to scrape: `run --metrics ADDR`. The
// body is rendered on each scrape by the caller's function, on the server's thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace edgeflow::metrics {

class MetricsServer {
 public:
  // `address`: PORT (on 127.0.0.1), HOST:PORT, or :PORT (every interface); port 0 picks a
  // free one. Throws std::runtime_error naming the address and the fix when it cannot listen.
  MetricsServer(const std::string& address, std::function<std::string()> render);
  ~MetricsServer();  // stops
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // http://HOST:PORT/metrics, with the port actually bound.
  const std::string& url() const { return url_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string url_;
};

}  // namespace edgeflow::metrics
