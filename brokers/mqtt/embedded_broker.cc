// A real mosquitto child process on a loopback port, configured for edgeflow's links.
//
// Process hygiene: the child gets its own process group (Ctrl-C at a terminal reaches only
// edgeflow, which stops the broker after the links have drained), an empty signal mask and
// default dispositions (edgeflow blocks SIGINT/SIGTERM in main, and exec would inherit that),
// no inherited file descriptors besides stdio (a leaked client socket would keep a TCP
// connection alive after its owner closed it), and PR_SET_PDEATHSIG(SIGTERM). The death
// signal fires when the *thread* that forked exits, so every fork happens on one spawner
// thread that lives as long as the process: a broker outlives a worker thread that started it
// and still never outlives the process.
#include "brokers/mqtt/embedded_broker.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/security.h"
#include "runtime/log.h"

namespace edgeflow::mqtt {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// Runs jobs (forks) on one detached thread that lives until the process exits.
class Spawner {
 public:
  static Spawner& instance() {
    static Spawner* s = new Spawner;  // never destroyed: its thread must outlive every child
    return *s;
  }

  pid_t run(std::function<pid_t()> job) {
    std::packaged_task<pid_t()> task(std::move(job));
    std::future<pid_t> result = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(task));
    }
    cv_.notify_one();
    return result.get();
  }

 private:
  Spawner() {
    std::thread([this] {
      while (true) {
        std::packaged_task<pid_t()> job;
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return !jobs_.empty(); });
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    }).detach();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<pid_t()>> jobs_;
};

// The binary as given when it holds a '/', otherwise looked up on PATH and then in the sbin
// folders, where Debian installs mosquitto but which a normal user's PATH lacks.
std::string find_binary(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/usr/local/sbin:/sbin";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw MqttError(std::string("cannot create a socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw MqttError(std::string("cannot find a free loopback port: ") + std::strerror(err));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool tcp_connects(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string read_from(const std::string& path, std::streamoff offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(offset);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string last_lines(const std::string& text, size_t lines) {
  size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  size_t begin = end;
  for (size_t n = 0; n < lines && begin > 0; ++n) {
    size_t nl = text.rfind('\n', begin - 1);
    begin = nl == std::string::npos ? 0 : nl;
    if (n + 1 == lines && nl != std::string::npos) ++begin;  // not the newline itself
  }
  if (begin < end && text[begin] == '\n') ++begin;
  return text.substr(begin, end - begin);
}

// Reaps `pid` if it has exited; true when it has.
bool reap(pid_t pid, int* status = nullptr) {
  int st = 0;
  pid_t r = waitpid(pid, &st, WNOHANG);
  if (r == pid) {
    if (status) *status = st;
    return true;
  }
  return r < 0 && errno == ECHILD;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

}  // namespace

EmbeddedBroker::EmbeddedBroker(EmbeddedBrokerOptions options) : options_(std::move(options)) {
  port_ = options_.port;
  if (options_.work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/edgeflow-mosquitto-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data()))
      throw MqttError("cannot create a folder for the embedded MQTT broker (" + pattern +
                      "): " + std::strerror(errno));
    work_dir_ = buf.data();
    owns_work_dir_ = true;
  } else {
    work_dir_ = options_.work_dir;
    std::error_code ec;
    fs::create_directories(work_dir_, ec);
    if (ec)
      throw MqttError("cannot create the embedded MQTT broker's folder '" + work_dir_ +
                      "': " + ec.message());
  }
}

EmbeddedBroker::~EmbeddedBroker() {
  try {
    stop();
  } catch (...) {
  }
  if (owns_work_dir_) {
    std::error_code ec;
    fs::remove_all(work_dir_, ec);
  }
}

std::string EmbeddedBroker::uri() const {
  return (options_.tls_cert_file.empty() ? "tcp://127.0.0.1:" : "mqtts://127.0.0.1:") +
         std::to_string(port_);
}

std::string EmbeddedBroker::log_tail(size_t lines) const {
  return last_lines(read_from(work_dir_ + "/mosquitto.log", 0), lines);
}

bool EmbeddedBroker::running() const {
  if (pid_ <= 0) return false;
  siginfo_t info{};
  // WNOWAIT: look without reaping, so running() can stay const.
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
  return info.si_pid == 0;
}

void EmbeddedBroker::start() {
  if (running()) return;
  if (pid_ > 0) {  // exited by itself since: reap it
    reap(pid_);
    pid_ = -1;
  }
  std::string binary = find_binary(options_.mosquitto);
  if (binary.empty()) throw MqttError(options_.mosquitto + " not found: apt-get install mosquitto");

  const std::string conf_path = work_dir_ + "/mosquitto.conf";
  const std::string log_path = work_dir_ + "/mosquitto.log";
  const bool choose_port = port_ == 0;
  // A port picked by binding to :0 may be taken by someone else before mosquitto binds it:
  // then try another. A fixed port (given, or kept for a restart) gets a few tries as well.
  std::string password_file = options_.password_file;
  if (password_file.empty() && !options_.password_text.empty()) {
    password_file = work_dir_ + "/passwd";
    write_private_file(password_file, options_.password_text);  // security.h
  }
  const int attempts = 5;
  std::string failure;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (choose_port) port_ = free_loopback_port();
    {
      std::ofstream conf(conf_path, std::ios::trunc);
      conf << "# Written by edgeflow for its embedded broker; rewritten on every start.\n"
           << "listener " << port_ << " 127.0.0.1\n";
      if (!options_.tls_cert_file.empty()) {
        conf << "cafile " << options_.tls_ca_file << "\n"
             << "certfile " << options_.tls_cert_file << "\n"
             << "keyfile " << options_.tls_key_file << "\n"
             << "require_certificate " << (options_.require_certificate ? "true" : "false") << "\n";
      }
      if (!password_file.empty()) {
        conf << "allow_anonymous false\n"
             << "password_file " << password_file << "\n";
      } else {
        conf << "allow_anonymous true\n";
      }
      if (!options_.acl_file.empty()) conf << "acl_file " << options_.acl_file << "\n";
      conf << "# Never drop QoS 1/2 messages for a subscriber that is slow or away (persistent\n"
           << "# session): Mosquitto's default max_queued_messages 1000 silently drops the\n"
           << "# rest. 0 = no limit in count; max_queued_bytes stays 0 = no limit in bytes.\n"
           << "# The broker's memory then grows with how far a subscriber falls behind:\n"
           << "# the price of losing nothing.\n"
           << "max_queued_messages 0\n"
           << "max_queued_bytes 0\n"
           << "# QoS 1/2 messages sent to one subscriber before its PUBACKs (default 20):\n"
           << "# large enough for throughput on a link, bounded so a reconnecting subscriber\n"
           << "# gets at most this many duplicates. Like ClientOptions::max_inflight.\n"
           << "max_inflight_messages 1000\n"
           << "# Persistent sessions are kept until their client returns (no expiry).\n"
           << "# Small link messages go out at once, not held back by Nagle's algorithm.\n"
           << "set_tcp_nodelay true\n";
      if (options_.persistence) {
        conf << "# Sessions, queued QoS 1/2 and retained messages survive a stop()/start():\n"
             << "# saved on a clean stop (SIGTERM) only, not periodically.\n"
             << "persistence true\n"
             << "persistence_location " << work_dir_ << "/\n"
             << "persistence_file mosquitto.db\n"
             << "autosave_interval 0\n";
      } else {
        conf << "persistence false\n";
      }
      // As root, mosquitto switches to the user 'mosquitto', which could not write here.
      if (geteuid() == 0) conf << "user root\n";
      conf << "log_dest stderr\n"
           << "log_timestamp_format %Y-%m-%dT%H:%M:%S\n";
      if (!conf)
        throw MqttError("cannot write the embedded MQTT broker's config '" + conf_path + "'");
    }

    std::streamoff log_start = 0;
    {
      std::error_code ec;
      auto size = fs::file_size(log_path, ec);
      if (!ec) log_start = static_cast<std::streamoff>(size);
    }
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0)
      throw MqttError("cannot open the embedded MQTT broker's log '" + log_path +
                      "': " + std::strerror(errno));
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    // Everything the child needs is prepared here: after fork only async-signal-safe calls.
    std::vector<std::string> args = {binary, "-c", conf_path};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t parent = getpid();

    pid_t pid = Spawner::instance().run([&]() -> pid_t {
      pid_t child = fork();
      if (child != 0) return child;
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);  // the parent died before prctl
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGCHLD})
        signal(sig, SIG_DFL);
      if (null_fd >= 0) dup2(null_fd, 0);
      dup2(log_fd, 1);
      dup2(log_fd, 2);
      close_range(3, ~0U, 0);
      execv(argv[0], argv.data());
      _exit(127);
    });
    int fork_errno = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    if (pid < 0)
      throw MqttError("cannot start " + binary + ": fork failed: " + std::strerror(fork_errno));
    pid_ = pid;

    // Up when it says so in its log and a TCP connect succeeds (the log line alone could be
    // another broker's on a reused log; the connect alone could reach another process).
    auto deadline = Clock::now() + std::chrono::milliseconds(options_.start_timeout_ms);
    bool up = false, exited = false;
    int status = 0;
    std::string log;
    while (Clock::now() < deadline) {
      if (reap(pid_, &status)) {
        exited = true;
        break;
      }
      log = read_from(log_path, log_start);
      if (log.find(" running") != std::string::npos && tcp_connects(port_)) {
        up = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (up && !reap(pid_, &status)) return;  // still alive after answering: ours
    if (up) exited = true;
    log = read_from(log_path, log_start);
    std::string tail = last_lines(log, 20);
    if (!exited) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      throw MqttError("mosquitto (" + binary +
                      ") did not accept connections on 127.0.0.1:" + std::to_string(port_) +
                      " within " + std::to_string(options_.start_timeout_ms) + " ms; its log " +
                      log_path + " ends:\n" + tail);
    }
    pid_ = -1;
    failure = "mosquitto (" + binary + ") " + describe_exit(status) + " on port " +
              std::to_string(port_) + "; its log " + log_path + " ends:\n" + tail;
    bool port_taken = log.find("Address already in use") != std::string::npos;
    if (!port_taken) break;  // a bad config or binary: another try will not help
    if (!choose_port) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw MqttError(failure);
}

void EmbeddedBroker::stop() {
  if (pid_ <= 0) return;
  int status = 0;
  if (!reap(pid_, &status)) {
    ::kill(pid_, SIGTERM);  // mosquitto saves its persistence file, then exits
    auto deadline = Clock::now() + std::chrono::seconds(10);
    bool gone = false;
    while (Clock::now() < deadline) {
      if (reap(pid_, &status)) {
        gone = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!gone) {
      logger().warn("embedded MQTT broker (pid {}) did not stop within 10 s; killing it", pid_);
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  pid_ = -1;
}

void EmbeddedBroker::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

}  // namespace edgeflow::mqtt
