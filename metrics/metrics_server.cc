#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>

#include "runtime/lazy_library.h"

namespace edgeflow::metrics {
namespace {

// civetweb is loaded by the first server: a process without --metrics or a service's HTTP
// endpoint does not map it.
constinit LazyLibrary civetweb("libcivetweb.so.1", "libcivetweb1", "the HTTP endpoint");
EF_LAZY_FUNCTION(civetweb, mg_check_digest_access_authentication);
EF_LAZY_FUNCTION(civetweb, mg_exit_library);
EF_LAZY_FUNCTION(civetweb, mg_get_header);
EF_LAZY_FUNCTION(civetweb, mg_get_request_info);
EF_LAZY_FUNCTION(civetweb, mg_get_server_ports);
EF_LAZY_FUNCTION(civetweb, mg_init_library);
EF_LAZY_FUNCTION(civetweb, mg_modify_passwords_file);
EF_LAZY_FUNCTION(civetweb, mg_printf);
EF_LAZY_FUNCTION(civetweb, mg_send_digest_access_authentication_request);
EF_LAZY_FUNCTION(civetweb, mg_send_http_error);
EF_LAZY_FUNCTION(civetweb, mg_set_request_handler);
EF_LAZY_FUNCTION(civetweb, mg_start);
EF_LAZY_FUNCTION(civetweb, mg_stop);
EF_LAZY_FUNCTION(civetweb, mg_write);

int send_error(mg_connection* conn, int status, const std::string& text) {
  mg_send_http_error(conn, status, "%s", text.c_str());
  return status;
}

// Not framed by another site's page (the forget button), never sniffed as another type, and
// the page runs only this server's own script.
const char* kSafetyHeaders =
    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
    "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n";

int send_ok(mg_connection* conn, const Response& response, bool with_body) {
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
            response.content_type.c_str(), response.body.size(), kSafetyHeaders);
  if (with_body) mg_write(conn, response.body.data(), response.body.size());
  return 200;
}

// The parameters of a digest Authorization header (`Digest username="a", uri="/x", nc=1`);
// nullopt when one is given twice or the header has a shape civetweb might read otherwise
// (escaped quotes, tabs): then what civetweb checked need not be what is checked here.
std::optional<std::map<std::string, std::string>> digest_params(const std::string& header) {
  const std::string scheme = "Digest ";
  if (header.compare(0, scheme.size(), scheme) != 0 ||
      header.find_first_of("\\\t") != std::string::npos)
    return std::nullopt;
  std::map<std::string, std::string> out;
  size_t at = scheme.size();
  while (at < header.size()) {
    while (at < header.size() && (header[at] == ' ' || header[at] == ',')) ++at;
    if (at >= header.size()) break;
    const size_t eq = header.find('=', at);
    if (eq == std::string::npos) return std::nullopt;
    const std::string name = header.substr(at, eq - at);
    std::string value;
    at = eq + 1;
    if (at < header.size() && header[at] == '"') {
      const size_t close = header.find('"', at + 1);
      if (close == std::string::npos) return std::nullopt;
      value = header.substr(at + 1, close - at - 1);
      at = close + 1;
    } else {
      const size_t end = std::min(header.find(',', at), header.size());
      value = header.substr(at, end - at);
      while (!value.empty() && value.back() == ' ') value.pop_back();
      at = end;
    }
    if (name.empty() || !out.emplace(name, value).second) return std::nullopt;
  }
  return out;
}

// A Host header a page rebinding its own name to 127.0.0.1 could not send: an address, or
// localhost.
bool loopback_host(const std::string& host_header) {
  std::string host = host_header;
  if (!host.empty() && host[0] == '[') return true;  // an IPv6 literal
  if (const size_t colon = host.rfind(':'); colon != std::string::npos) host.resize(colon);
  if (host == "localhost") return true;
  unsigned char addr[4];
  return inet_pton(AF_INET, host.c_str(), addr) == 1;
}

}  // namespace

MetricsServer::MetricsServer(const std::string& address, Render render, int event_streams)
    : max_streams_(event_streams) {
  serve("/metrics", "text/plain; version=0.0.4; charset=utf-8", std::move(render));
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
  // a scrape every few seconds, and each event stream holds one more. It sets SO_REUSEADDR
  // only, so a port another process serves is refused, not shared.
  const std::string listen = host + ":" + std::to_string(port);
  const std::string threads = std::to_string(2 + event_streams);
  // No CORS: civetweb would otherwise answer every preflight itself with "yes, any origin".
  const char* options[] = {"listening_ports",
                           listen.c_str(),
                           "num_threads",
                           threads.c_str(),
                           "access_control_allow_origin",
                           "",
                           "access_control_allow_methods",
                           "",
                           "access_control_allow_headers",
                           "",
                           nullptr};
  loopback_ = host.rfind("127.", 0) == 0 || host == "localhost";
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
  // One handler for every path: civetweb matches by prefix, the routes here exactly.
  mg_set_request_handler(ctx_, "/", dispatch, this);
  mg_server_port ports[1];
  const int bound = mg_get_server_ports(ctx_, 1, ports) > 0 ? ports[0].port : port;
  base_url_ = "http://" + host + ":" + std::to_string(bound);
  url_ = base_url_ + "/metrics";
}

void MetricsServer::add(std::unique_ptr<Route> route) {
  std::lock_guard<std::mutex> lock(routes_mu_);
  routes_.push_back(std::move(route));
}

void MetricsServer::serve(const std::string& path, const std::string& content_type, Render render) {
  auto route = std::make_unique<Route>();
  route->path = path;
  route->handler = [content_type, render = std::move(render)](const std::string&) {
    std::optional<std::string> body = render();
    if (!body) return std::optional<Response>();
    return std::optional<Response>(Response{200, content_type, std::move(*body)});
  };
  add(std::move(route));
}

void MetricsServer::serve_tree(const std::string& prefix, Handler handler) {
  auto route = std::make_unique<Route>();
  route->path = prefix;
  route->kind = Route::kTree;
  route->handler = std::move(handler);
  add(std::move(route));
}

void MetricsServer::serve_events(const std::string& path, Render render, int period_ms) {
  auto route = std::make_unique<Route>();
  route->path = path;
  route->kind = Route::kEvents;
  route->events = std::move(render);
  route->period_ms = period_ms;
  add(std::move(route));
}

void MetricsServer::serve_actions(const std::string& path, const std::string& operators_file,
                                  Action action) {
  auto route = std::make_unique<Route>();
  route->path = path;
  route->kind = Route::kAction;
  route->action = std::move(action);
  route->operators_file = operators_file;
  add(std::move(route));
}

void MetricsServer::set_operator(const std::string& file, const std::string& user,
                                 const char* password) {
  if (user.empty() || user.find_first_of(":\n\r") != std::string::npos)
    throw std::runtime_error("'" + user + "': an operator's name is not empty and has no ':'");
  // Created 0600 before a digest is written into it.
  const mode_t old_mask = umask(077);
  const int ok = mg_modify_passwords_file(file.c_str(), kRealm, user.c_str(), password);
  umask(old_mask);
  if (!ok || chmod(file.c_str(), 0600) != 0)
    throw std::runtime_error(file + ": cannot write the operators file (is its folder writable?)");
}

// The route of `path` for an action (POST) or for reading (GET): the exact one, else the
// tree (or the action folder, a path ending in '/') with the longest prefix holding it.
const MetricsServer::Route* MetricsServer::find(const std::string& path, bool action) const {
  std::lock_guard<std::mutex> lock(routes_mu_);
  const Route* best = nullptr;
  for (const auto& r : routes_) {
    if ((r->kind == Route::kAction) != action) continue;
    if (r->path == path) return r.get();
    const bool folder =
        r->kind == Route::kTree || (r->kind == Route::kAction && r->path.back() == '/');
    if (!folder) continue;
    const std::string below = r->path.back() == '/' ? r->path : r->path + "/";
    if (path.compare(0, below.size(), below) == 0 && (!best || r->path.size() > best->path.size()))
      best = r.get();
  }
  return best;
}

int MetricsServer::dispatch(mg_connection* conn, void* self_ptr) {
  auto& self = *static_cast<MetricsServer*>(self_ptr);
  const mg_request_info* request = mg_get_request_info(conn);
  const std::string uri = request->local_uri ? request->local_uri : "";
  const std::string method = request->request_method ? request->request_method : "";
  if (self.loopback_) {
    const char* host = mg_get_header(conn, "Host");
    if (host && !loopback_host(host))
      return send_error(conn, 403,
                        std::string("Host '") + host +
                            "' is not an address of this server: use http://127.0.0.1:PORT/ "
                            "(a page of another site may have pointed its name here)");
  }
  if (method == "POST") {
    if (const Route* action = self.find(uri, true)) return self.act(conn, *action, uri);
  }
  const Route* route = self.find(uri, false);
  if (!route) return send_error(conn, 404, "no " + uri + " here");
  // Everything else is read-only.
  if (method != "GET" && method != "HEAD")
    return send_error(conn, 405, uri + " is read-only: GET it");
  if (route->kind == Route::kEvents) {
    if (method == "HEAD") {
      mg_printf(conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n%sConnection: close\r\n\r\n",
                kSafetyHeaders);
      return 200;
    }
    self.stream_events(conn, *route);
    return 200;
  }
  std::optional<Response> response;
  try {
    response = route->handler(uri);
  } catch (const std::exception& e) {
    return send_error(conn, 500, "cannot render " + uri + ": " + e.what());
  }
  // Prometheus marks the target down for this scrape rather than storing old figures.
  if (!response) return send_error(conn, 503, "the service is busy (a deployment?); try again");
  if (response->status != 200) return send_error(conn, response->status, response->body);
  return send_ok(conn, *response, method == "GET");
}

int MetricsServer::act(mg_connection* conn, const Route& route, const std::string& uri) {
  if (route.operators_file.empty())
    return send_error(conn, 403,
                      "read-only: this service has no operators (add `operators: FILE` to its "
                      "config, made with `edgeflow operator add FILE NAME`)");
  if (!mg_get_header(conn, "X-Edgeflow-Action"))
    return send_error(conn, 403, "an action needs the header X-Edgeflow-Action: 1");
  const int checked =
      mg_check_digest_access_authentication(conn, kRealm, route.operators_file.c_str());
  if (checked < 0) return send_error(conn, 500, "cannot read the operators file");
  if (checked == 0) {
    mg_send_digest_access_authentication_request(conn, kRealm);
    return 401;
  }
  // civetweb checks the response against the password, not that it was made for this
  // request, nor that it is new: a captured header is refused here for another path or a
  // second time.
  const mg_request_info* request = mg_get_request_info(conn);
  const char* auth = mg_get_header(conn, "Authorization");
  const std::optional<std::map<std::string, std::string>> params = digest_params(auth ? auth : "");
  std::string asked = request->request_uri ? request->request_uri : "";
  if (request->query_string) asked += std::string("?") + request->query_string;
  auto param = [&](const char* name) {
    auto it = params->find(name);
    return it == params->end() ? std::string() : it->second;
  };
  if (!params || param("uri") != asked) {
    mg_send_digest_access_authentication_request(conn, kRealm);
    return 401;
  }
  {
    const std::string use = param("nonce") + "/" + param("nc");
    std::lock_guard<std::mutex> lock(used_mu_);
    if (!used_digests_.insert(use).second) {
      mg_send_digest_access_authentication_request(conn, kRealm);
      return 401;
    }
    used_order_.push_back(use);
    if (used_order_.size() > 100000) {
      used_digests_.erase(used_order_.front());
      used_order_.pop_front();
    }
  }
  const std::string user = request->remote_user ? request->remote_user : "";
  std::optional<Response> response;
  try {
    response = route.action(uri, user);
  } catch (const std::exception& e) {
    return send_error(conn, 500, uri + ": " + e.what());
  }
  if (!response) return send_error(conn, 503, "the service is busy (a deployment?); try again");
  if (response->status != 200) return send_error(conn, response->status, response->body);
  return send_ok(conn, *response, true);
}

void MetricsServer::stream_events(mg_connection* conn, const Route& route) {
  if (streams_.fetch_add(1) >= max_streams_) {
    streams_.fetch_sub(1);
    send_error(conn, 503, "too many event streams open; try again later");
    return;
  }
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
            "Connection: close\r\nX-Accel-Buffering: no\r\n\r\n");
  // The browser reconnects after this many milliseconds when the stream breaks.
  bool open = mg_printf(conn, "retry: 2000\n\n") > 0;
  std::string last;
  auto next_ping = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (open && !stopping_) {
    std::optional<std::string> text;
    try {
      text = route.events();
    } catch (const std::exception& e) {
      text.reset();  // the service logged it; the page keeps what it has
    }
    if (text && *text != last) {
      const std::string event = "data: " + *text + "\n\n";
      open = mg_write(conn, event.data(), event.size()) > 0;
      last = std::move(*text);
    } else if (std::chrono::steady_clock::now() >= next_ping) {
      open = mg_printf(conn, ": ping\n\n") > 0;
      next_ping = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
    for (int waited = 0; open && !stopping_ && waited < route.period_ms; waited += 50)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  streams_.fetch_sub(1);
}

MetricsServer::~MetricsServer() {
  stopping_ = true;  // event streams end within 50 ms
  mg_stop(ctx_);     // joins its threads
  mg_exit_library();
}

}  // namespace edgeflow::metrics
