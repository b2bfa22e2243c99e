#include "tests/support/headless_chromium.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "tests/support/process.h"

namespace edgeflow::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string base64_decode(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // '=' and line breaks
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace

HeadlessChromium::HeadlessChromium(int width, int height) : width_(width), height_(height) {
  signal(SIGPIPE, SIG_IGN);  // a browser that died is an error here, not the test's end
  const char* env = std::getenv("EDGEFLOW_CHROMIUM");
  const std::string binary = env && *env ? env : "/usr/bin/chromium";
  if (access(binary.c_str(), X_OK) != 0) {
    error_ = binary + " not found: apt-get install chromium (scripts/test.sh installs it)";
    return;
  }
  profile_dir_ = make_temp_dir();
  int to[2], from[2];
  if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0) {
    error_ = "pipe failed";
    return;
  }
  const std::string window =
      "--window-size=" + std::to_string(width) + "," + std::to_string(height);
  // The flags Debian's Chromium needs here: no sandbox as root, no GPU, and none of its calls
  // home (this machine's network is closed: they would fail, many at a time).
  std::vector<std::string> args = {binary,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-dev-shm-usage",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--disable-quic",
                                   "--hide-scrollbars",
                                   "--remote-debugging-pipe",
                                   "--user-data-dir=" + profile_dir_,
                                   window,
                                   "about:blank"};
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    // fd 3: what the browser reads; fd 4: what it writes. Copied out of the way first: a
    // pipe end may already be fd 3 or 4, and dup2 onto itself would keep it close-on-exec.
    const int in = fcntl(to[0], F_DUPFD, 10), out = fcntl(from[1], F_DUPFD, 10);
    dup2(in, 3);
    dup2(out, 4);
    const int null = open("/dev/null", O_RDWR);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  to_browser_ = to[1];
  from_browser_ = from[0];
  if (pid_ < 0) {
    error_ = "fork failed";
    return;
  }
  nlohmann::json target = call("Target.createTarget", {{"url", "about:blank"}}, 30, false);
  if (!target.contains("targetId")) {
    error_ = "chromium did not open a tab: " + error_;
    return;
  }
  nlohmann::json attached = call("Target.attachToTarget",
                                 {{"targetId", target["targetId"]}, {"flatten", true}}, 10, false);
  if (!attached.contains("sessionId")) {
    error_ = "cannot attach to the tab: " + error_;
    return;
  }
  session_ = attached["sessionId"].get<std::string>();
  call("Page.enable", nlohmann::json::object(), 10);
  call("Runtime.enable", nlohmann::json::object(), 10);
}

HeadlessChromium::~HeadlessChromium() {
  if (to_browser_ >= 0) close(to_browser_);
  if (from_browser_ >= 0) close(from_browser_);
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  if (!profile_dir_.empty()) std::filesystem::remove_all(profile_dir_, ec);
}

bool HeadlessChromium::read_message(nlohmann::json& out, double timeout_s) {
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
  while (true) {
    if (size_t end = buffer_.find('\0'); end != std::string::npos) {
      out = nlohmann::json::parse(buffer_.substr(0, end), nullptr, false);
      buffer_.erase(0, end + 1);
      return true;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{from_browser_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char chunk[65536];
    const ssize_t n = read(from_browser_, chunk, sizeof chunk);
    if (n <= 0) {
      error_ = "the browser exited";
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

nlohmann::json HeadlessChromium::call(const std::string& method, const nlohmann::json& params,
                                      double timeout_s, bool in_session) {
  const int id = next_id_++;
  nlohmann::json message = {{"id", id}, {"method", method}, {"params", params}};
  if (in_session) message["sessionId"] = session_;
  send(message);
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
  while (true) {
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    nlohmann::json reply;
    if (left <= 0 || !read_message(reply, left)) {
      error_ = method + ": " + (error_.empty() ? "no answer in time" : error_);
      return nullptr;
    }
    if (!reply.contains("id")) {
      on_event(reply);
      continue;
    }
    if (reply["id"] != id) continue;  // an answer to a message sent without waiting
    if (reply.contains("error")) {
      error_ = method + ": " + reply["error"].dump();
      return nullptr;
    }
    return reply.value("result", nlohmann::json::object());
  }
}

bool HeadlessChromium::open(const std::string& url, double timeout_s) {
  loaded_ = false;
  if (call("Page.navigate", {{"url", url}}, timeout_s).is_null()) return false;
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
  while (!loaded_) {
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    nlohmann::json event;
    if (left <= 0 || !read_message(event, left)) {
      error_ = "the page did not load in " + std::to_string(timeout_s) + " s: " + url;
      return false;
    }
    on_event(event);
  }
  return true;
}

void HeadlessChromium::send(const nlohmann::json& message) {
  const std::string text = message.dump() + '\0';
  for (size_t sent = 0; sent < text.size();) {
    pollfd p{to_browser_, POLLOUT, 0};
    if (poll(&p, 1, 10000) <= 0) {  // a browser that reads nothing for 10 s
      error_ = "the browser takes no more commands";
      return;
    }
    const ssize_t n = write(to_browser_, text.data() + sent, text.size() - sent);
    if (n <= 0) {
      error_ = "the browser is gone";
      return;
    }
    sent += static_cast<size_t>(n);
  }
}

void HeadlessChromium::on_event(const nlohmann::json& event) {
  const std::string method = event.value("method", "");
  if (method == "Page.loadEventFired") loaded_ = true;
  if (!event.contains("params")) return;
  const nlohmann::json& p = event["params"];
  // With Fetch enabled, every request waits for a word from here.
  if (method == "Fetch.requestPaused") {
    send({{"id", next_id_++},
          {"sessionId", session_},
          {"method", "Fetch.continueRequest"},
          {"params", {{"requestId", p.value("requestId", "")}}}});
  } else if (method == "Fetch.authRequired") {
    send(
        {{"id", next_id_++},
         {"sessionId", session_},
         {"method", "Fetch.continueWithAuth"},
         {"params",
          {{"requestId", p.value("requestId", "")},
           {"authChallengeResponse",
            {{"response", "ProvideCredentials"}, {"username", user_}, {"password", password_}}}}}});
  }
}

bool HeadlessChromium::set_credentials(const std::string& user, const std::string& password) {
  user_ = user;
  password_ = password;
  return !call("Fetch.enable",
               {{"handleAuthRequests", true}, {"patterns", {{{"urlPattern", "*"}}}}}, 10)
              .is_null();
}

nlohmann::json HeadlessChromium::eval(const std::string& expression, double timeout_s) {
  nlohmann::json r = call(
      "Runtime.evaluate",
      {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}}, timeout_s);
  if (r.is_null()) return nullptr;
  if (r.contains("exceptionDetails")) {
    error_ = expression + ": " + r["exceptionDetails"].dump();
    return nullptr;
  }
  return r["result"].value("value", nlohmann::json());
}

bool HeadlessChromium::wait_until(const std::string& expression, double timeout_s) {
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int>(timeout_s * 1000));
  while (Clock::now() < deadline) {
    if (eval("Boolean(" + expression + ")", 5) == true) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

std::string HeadlessChromium::screenshot_png() {
  nlohmann::json h = eval("document.documentElement.scrollHeight");
  const int height = h.is_number() ? std::max(height_, h.get<int>()) : height_;
  call("Emulation.setDeviceMetricsOverride",
       {{"width", width_}, {"height", height}, {"deviceScaleFactor", 1}, {"mobile", false}}, 10);
  nlohmann::json shot = call("Page.captureScreenshot", {{"format", "png"}}, 30);
  if (!shot.contains("data")) return "";
  return base64_decode(shot["data"].get<std::string>());
}

}  // namespace edgeflow::testing
