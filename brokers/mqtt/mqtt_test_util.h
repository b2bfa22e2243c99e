// Helpers for the MQTT integration tests (brokers/mqtt and operators/mqtt): a free port, a
// bounded wait, an inbox for received messages, and running mosquitto_pub/mosquitto_sub with a
// deadline. Header-only so both test binaries use it without another library.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "brokers/mqtt/client.h"

namespace edgeflow::mqtt::testing {

// A loopback port nothing listens on (bound to :0, then closed).
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Polls `condition` every few ms for at most timeout_ms; true once it holds.
inline bool wait_until(const std::function<bool()>& condition, int timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Collects what a client's handler receives.
class Inbox {
 public:
  MessageHandler handler() {
    return [this](Received&& r) {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(std::move(r));
    };
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_.size();
  }
  std::vector<Received> messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  bool wait_for(size_t count, int timeout_ms = 10000) {
    return wait_until([&] { return size() >= count; }, timeout_ms);
  }

 private:
  std::mutex mu_;
  std::vector<Received> messages_;
};

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N
  bool timed_out = false;
  std::string out;  // stdout and stderr together
};

// Runs argv (argv[0] looked up on PATH, then in the sbin folders) for at most timeout_ms.
inline CommandResult run_command(const std::vector<std::string>& argv, int timeout_ms = 10000) {
  CommandResult result;
  std::string binary = argv.at(0);
  if (binary.find('/') == std::string::npos) {
    std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    std::stringstream dirs(path + ":/usr/sbin:/usr/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (!dir.empty() && access((dir + "/" + binary).c_str(), X_OK) == 0) {
        binary = dir + "/" + binary;
        break;
      }
    }
  }
  std::vector<std::string> args = argv;
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return result;
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    execv(binary.c_str(), cargs.data());
    _exit(127);
  }
  close(fds[1]);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (true) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, left) <= 0) continue;
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    result.out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// Forwards one TCP connection at a time from a free loopback port to `target_port`; cut()
// drops the current connection abruptly (no MQTT DISCONNECT), as a vanished device would.
class TcpProxy {
 public:
  explicit TcpProxy(int target_port) : target_port_(target_port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(listen_fd_, 4);
    thread_ = std::thread([this] { run(); });
  }
  ~TcpProxy() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  void cut() { cut_ = true; }
  bool connected() const { return connected_; }

 private:
  void run() {
    int client = -1, upstream = -1;
    char buf[16384];
    while (!stop_) {
      if (cut_ && client >= 0) {
        // RST rather than FIN for the broker side: SO_LINGER 0.
        linger lg{1, 0};
        setsockopt(upstream, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(client);
        close(upstream);
        client = upstream = -1;
        connected_ = false;
      }
      if (client < 0) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0 || cut_) continue;  // after a cut, accept nobody
        client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(target_port_));
        if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
          close(client);
          close(upstream);
          client = upstream = -1;
          continue;
        }
        connected_ = true;
      }
      pollfd p[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
      if (poll(p, 2, 20) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = read(p[i].fd, buf, sizeof buf);
        if (n <= 0 || write(p[1 - i].fd, buf, static_cast<size_t>(n)) != n) {
          close(client);
          close(upstream);
          client = upstream = -1;
          connected_ = false;
          break;
        }
      }
    }
    if (client >= 0) close(client);
    if (upstream >= 0) close(upstream);
  }

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false}, cut_{false}, connected_{false};
  std::thread thread_;
};

}  // namespace edgeflow::mqtt::testing
