// GET /metrics over HTTP (civetweb), for Prometheus to scrape: `run --metrics ADDR`. The body
// is rendered on each scrape by the caller's function, on one of the server's threads.
#pragma once

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>

struct mg_context;

namespace edgeflow::metrics {

class MetricsServer {
 public:
  // The body of a scrape; nullopt answers 503 (no figures now), an exception 500.
  using Render = std::function<std::optional<std::string>()>;

  // `address`: PORT (on 127.0.0.1), HOST:PORT, or :PORT (every interface); port 0 picks a
  // free one. Throws std::runtime_error naming the address and the fix when it cannot listen
  // (the caller says which option gave it).
  MetricsServer(const std::string& address, Render render);
  ~MetricsServer();  // stops
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Serves GET `path` too, with `content_type`: a JSON API beside /metrics (`cloud --http`).
  void serve(const std::string& path, const std::string& content_type, Render render);

  // http://HOST:PORT/metrics, with the port actually bound.
  const std::string& url() const { return url_; }
  // http://HOST:PORT, the same without the path.
  const std::string& base_url() const { return base_url_; }

  struct Route {
    std::string path;  // served exactly, to GET and HEAD
    std::string content_type;
    Render render;
  };

 private:
  std::list<Route> routes_;  // stable addresses: civetweb keeps a pointer to each
  mg_context* ctx_ = nullptr;
  std::string base_url_, url_;
};

}  // namespace edgeflow::metrics
