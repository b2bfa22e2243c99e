// GET /metrics over HTTP (civetweb), for Prometheus to scrape: `run --metrics ADDR`; and the
// routes of `cloud --http ADDR` beside it (the JSON API, the dashboard's files, its event
// stream). Bodies are rendered on each request by the caller's functions, on one of the
// server's threads.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

struct mg_context;
struct mg_connection;

namespace edgeflow::metrics {

struct Response {
  int status = 200;
  std::string content_type;
  std::string body;
};

class MetricsServer {
 public:
  // The body of a scrape; nullopt answers 503 (no figures now), an exception 500.
  using Render = std::function<std::optional<std::string>()>;
  // A route below a folder: `path` is the whole request path. nullopt answers 503, an
  // exception 500.
  using Handler = std::function<std::optional<Response>(const std::string& path)>;

  // `address`: PORT (on 127.0.0.1), HOST:PORT, or :PORT (every interface); port 0 picks a
  // free one. Throws std::runtime_error naming the address and the fix when it cannot listen
  // (the caller says which option gave it). `event_streams`: how many server-sent event
  // streams may be open at once, each holding one of the server's threads.
  MetricsServer(const std::string& address, Render render, int event_streams = 0);
  ~MetricsServer();  // ends the event streams, then stops
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Serves GET `path` too, with `content_type`: a JSON API beside /metrics (`cloud --http`).
  void serve(const std::string& path, const std::string& content_type, Render render);
  // Serves GET `prefix` and every path under `prefix` + "/" (when `prefix` is "/": every path
  // no other route serves), answered by `handler`.
  void serve_tree(const std::string& prefix, Handler handler);
  // GET `path` is a server-sent event stream (text/event-stream): `render` is called every
  // `period_ms`, and each text that differs from the last one sent goes out as one event
  // (`data: TEXT`; TEXT must hold no newline). A comment line every 5 s tells a closed
  // connection from a quiet one. Beyond `event_streams` streams at once: 503.
  void serve_events(const std::string& path, Render render, int period_ms = 1000);

  // POST `path` (or, when it ends in '/', every path below it): an operator's action. The
  // request must carry the header X-Edgeflow-Action (a page of another site cannot send it
  // without this server's consent, which it never gives: no CORS) and pass HTTP digest
  // authentication against `operators_file` (realm "edgeflow", written by set_operator), made
  // for this path and not used before; `action` gets the path and the operator's name.
  // Without a file, every action is refused (403: read-only).
  using Action =
      std::function<std::optional<Response>(const std::string& path, const std::string& user)>;
  void serve_actions(const std::string& path, const std::string& operators_file, Action action);
  // Adds or changes an operator in `file` (digest of user:edgeflow:password, as htdigest
  // writes), or removes them when `password` is null; the file is kept mode 0600. Throws
  // std::runtime_error naming the file when it cannot be written.
  static void set_operator(const std::string& file, const std::string& user, const char* password);
  static constexpr const char* kRealm = "edgeflow";

  // http://HOST:PORT/metrics, with the port actually bound.
  const std::string& url() const { return url_; }
  // http://HOST:PORT, the same without the path.
  const std::string& base_url() const { return base_url_; }

  struct Route {
    std::string path;
    enum Kind { kExact, kTree, kEvents, kAction } kind = kExact;
    Handler handler;
    Action action;
    std::string operators_file;
    Render events;
    int period_ms = 1000;
  };

 private:
  static int dispatch(mg_connection* conn, void* self);
  void stream_events(mg_connection* conn, const Route& route);
  void add(std::unique_ptr<Route> route);
  const Route* find(const std::string& path, bool action) const;
  int act(mg_connection* conn, const Route& route, const std::string& uri);
  mutable std::mutex routes_mu_;
  std::vector<std::unique_ptr<Route>> routes_;  // never removed: found routes stay valid
  mg_context* ctx_ = nullptr;
  std::string base_url_, url_;
  int max_streams_ = 0;
  std::atomic<int> streams_{0};
  std::atomic<bool> stopping_{false};
  bool loopback_ = false;  // bound to 127.x: requests must name it by address (DNS rebinding)
  std::mutex used_mu_;     // digest (nonce, nc) pairs already used: no replay
  std::set<std::string> used_digests_;
  std::deque<std::string> used_order_;
};

}  // namespace edgeflow::metrics
