#include "brokers/zmq/zmq_util.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace edgeflow::zmqlink {

namespace {

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string endpoint_problem(const std::string& endpoint, bool bind) {
  const char* how = bind ? "write it like tcp://0.0.0.0:5555, tcp://127.0.0.1:* or ipc:///tmp/x"
                         : "write it like tcp://192.168.1.10:5555 or ipc:///tmp/x";
  if (endpoint.empty()) return std::string("the endpoint is empty: ") + how;
  size_t sep = endpoint.find("://");
  if (sep == std::string::npos) return std::string("not a ZeroMQ endpoint: ") + how;
  std::string transport = endpoint.substr(0, sep);
  std::string rest = endpoint.substr(sep + 3);
  if (transport == "ipc" || transport == "inproc") {
    if (rest.empty()) return "no " + transport + " name after '" + transport + "://': " + how;
    return "";
  }
  if (transport != "tcp") {
    return "unknown transport '" + transport + "' (use tcp, ipc or inproc): " + how;
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 == rest.size()) {
    return std::string("no port: ") + how;
  }
  std::string host = rest.substr(0, colon);
  std::string port = rest.substr(colon + 1);
  if (host.empty()) return std::string("no host before the port: ") + how;
  if (port == "*") {
    if (!bind) return std::string("port `*` only works when binding; name the port: ") + how;
    return "";
  }
  if (!all_digits(port) || port.size() > 5 || std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return "port '" + port + "' is not a number from 1 to 65535" +
           (bind ? std::string(" or `*`") : std::string()) + ": " + how;
  }
  return "";
}

void bind_or_throw(zmq::socket_t& socket, const std::string& endpoint,
                   const std::string& in_use_fix) {
  if (std::string problem = endpoint_problem(endpoint, true); !problem.empty()) {
    throw std::runtime_error("cannot bind '" + endpoint + "': " + problem);
  }
  try {
    socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    std::string what = "cannot bind '" + endpoint + "': ";
    switch (e.num()) {
      case EADDRINUSE:
        what += "address already in use: " + in_use_fix;
        break;
      case EADDRNOTAVAIL:
        what +=
            "the address is not one of this machine's: bind to 0.0.0.0 (every interface) or to "
            "an address of this host";
        break;
      case EACCES:
        what += "permission denied: ports below 1024 need root, pick a port above 1024";
        break;
      case ENODEV:
        what += "no such network interface: use an IP address or 0.0.0.0";
        break;
      case EINVAL:
      case EPROTONOSUPPORT:
      case ENOCOMPATPROTO:
        what += std::string("malformed endpoint (") + e.what() +
                "): write it like tcp://0.0.0.0:5555 or tcp://127.0.0.1:*";
        break;
      default:
        what += e.what();
    }
    throw std::runtime_error(what);
  }
}

void connect_or_throw(zmq::socket_t& socket, const std::string& endpoint) {
  if (std::string problem = endpoint_problem(endpoint, false); !problem.empty()) {
    throw std::runtime_error("cannot connect to '" + endpoint + "': " + problem);
  }
  try {
    socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    std::string what = "cannot connect to '" + endpoint + "': ";
    if (e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENOCOMPATPROTO) {
      what += std::string("malformed endpoint (") + e.what() +
              "): write it like tcp://192.168.1.10:5555 (a host name or an IP address)";
    } else {
      what += e.what();
    }
    throw std::runtime_error(what);
  }
}

WakeFd::WakeFd() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

WakeFd::~WakeFd() { ::close(fd_); }

void WakeFd::signal() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
}

void WakeFd::clear() {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(fd_, &count, sizeof count);
}

std::string last_endpoint(const zmq::socket_t& socket) {
  return socket.get(zmq::sockopt::last_endpoint);
}

std::string attach_user_socket(zmq::socket_t& socket, const std::string& endpoint, bool bind) {
  if (!bind) {
    connect_or_throw(socket, endpoint);
    return "";
  }
  bind_or_throw(socket, endpoint,
                "pick another port in 'endpoint', or stop the program that holds it (ss -ltnp "
                "shows which)");
  return endpoint.find(":*") != std::string::npos ? last_endpoint(socket) : "";
}

}  // namespace edgeflow::zmqlink
