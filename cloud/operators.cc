#include "cloud/operators.h"

#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <stdexcept>

#include "metrics/metrics_server.h"

namespace edgeflow {
namespace {

// One line of standard input; on a terminal, asked for without echo.
std::string read_password(const std::string& prompt) {
  const bool tty = isatty(STDIN_FILENO);
  termios before{};
  if (tty) {
    std::cerr << prompt << std::flush;
    tcgetattr(STDIN_FILENO, &before);
    termios quiet = before;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &before);
    std::cerr << "\n";
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

int cmd_operator(const std::string& action, const std::string& file, const std::string& name) {
  try {
    if (action == "remove") {
      std::ifstream in(file);
      std::string line, prefix = name + ":" + metrics::MetricsServer::kRealm + ":";
      bool listed = false;
      while (std::getline(in, line)) listed = listed || line.rfind(prefix, 0) == 0;
      if (!listed) {
        std::cerr << "edgeflow operator remove: '" << name << "' is not in " << file << "\n";
        return 1;
      }
      metrics::MetricsServer::set_operator(file, name, nullptr);
      std::cout << "operator '" << name << "' removed from " << file << "\n";
      return 0;
    }
    const std::string password = read_password("password for " + name + ": ");
    if (password.size() < 8) {
      std::cerr << "edgeflow operator add: the password (from standard input) must have at "
                   "least 8 characters\n";
      return 2;
    }
    if (isatty(STDIN_FILENO) && read_password("again: ") != password) {
      std::cerr << "edgeflow operator add: the two passwords differ; nothing written\n";
      return 2;
    }
    metrics::MetricsServer::set_operator(file, name, password.c_str());
    std::cout << "operator '" << name << "' may act on the dashboard of a cloud whose config "
              << "says operators: " << file << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "edgeflow operator " << action << ": " << e.what() << "\n";
    return name.empty() || name.find(':') != std::string::npos ? 2 : 1;
  }
}

}  // namespace edgeflow
