// Debian's Chromium, headless, driven through the DevTools protocol over a pipe
// (--remote-debugging-pipe: JSON messages ended by NUL on fds 3 and 4), so a test loads a page
// served by edgeflow, reads what it shows, and takes a screenshot, with no WebDriver or Node.
// Every call has a deadline; the destructor kills the browser's process group.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>

namespace edgeflow::testing {

class HeadlessChromium {
 public:
  // Starts /usr/bin/chromium (EDGEFLOW_CHROMIUM overrides) with a fresh profile, a window of
  // width x height, and opens a tab; ok() says whether it did, error() why not.
  HeadlessChromium(int width = 1400, int height = 1000);
  ~HeadlessChromium();
  HeadlessChromium(const HeadlessChromium&) = delete;
  HeadlessChromium& operator=(const HeadlessChromium&) = delete;

  bool ok() const { return !session_.empty(); }
  const std::string& error() const { return error_; }

  // Navigates the tab; true once the page's load event fired.
  bool open(const std::string& url, double timeout_s = 20);
  // The value of a JavaScript expression in the page (returned by value; a promise is
  // awaited), or null when it throws or the browser does not answer in time (error() says
  // which).
  nlohmann::json eval(const std::string& expression, double timeout_s = 10);
  // From now on, answers HTTP authentication challenges of the page with these (as a person
  // typing them into the browser's login dialog would).
  bool set_credentials(const std::string& user, const std::string& password);
  // Evaluates `expression` every 200 ms until it is true; false when timeout_s pass first.
  bool wait_until(const std::string& expression, double timeout_s);
  // PNG of the whole page (the window's width, the document's height); "" on failure.
  std::string screenshot_png();

 private:
  nlohmann::json call(const std::string& method, const nlohmann::json& params, double timeout_s,
                      bool in_session = true);
  bool read_message(nlohmann::json& out, double timeout_s);
  void on_event(const nlohmann::json& event);  // one the browser sent unasked
  void send(const nlohmann::json& message);
  std::string user_, password_;
  pid_t pid_ = -1;
  int to_browser_ = -1, from_browser_ = -1;
  int width_, height_;
  std::string buffer_, session_, error_, profile_dir_;
  int next_id_ = 1;
  bool loaded_ = false;  // a Page.loadEventFired came since the last open()
};

}  // namespace edgeflow::testing
