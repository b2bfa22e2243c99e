// Scraping /metrics in tests, as Prometheus does: an HTTP GET with cpp-httplib's client (link
// PkgConfig::HTTPLIB), and the value of one sample in the text.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <regex>
#include <sstream>
#include <string>

namespace edgeflow::testing {

// The value of the first sample of `name` whose labels include `labels` (-1 when none).
inline double sample(const std::string& text, const std::string& name, const std::string& labels) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) != 0 || line.find(labels) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

// GET http://HOST:PORT/metrics; "" when it fails. Checks the exposition format's content type.
inline std::string scrape(const std::string& url) {
  std::smatch m;
  if (!std::regex_search(url, m, std::regex(R"(http://([0-9.]+):(\d+)/metrics)"))) return "";
  httplib::Client client(m[1].str(), std::stoi(m[2].str()));
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto res = client.Get("/metrics");
  if (!res || res->status != 200) return "";
  EXPECT_NE(res->get_header_value("Content-Type").find("text/plain; version=0.0.4"),
            std::string::npos);
  return res->body;
}

// The /metrics URL a process logged ("metrics for Prometheus on URL"); "" when none.
inline std::string logged_metrics_url(const std::string& log) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex(R"(metrics for Prometheus on (http://\S+/metrics))")))
    return "";
  return m[1].str();
}

}  // namespace edgeflow::testing
