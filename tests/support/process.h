// Runs a command for a test, with a deadline: output captured, the process group killed if
// it overruns. Used to drive the edgeflow binary (and, later, mosquitto) as a user would.
#pragma once

#include <string>
#include <vector>

namespace edgeflow::testing {

struct ProcessResult {
  int exit_code = -1;  // 128+N when killed by signal N
  bool timed_out = false;
  std::string out;
  std::string err;
};

ProcessResult run_process(const std::vector<std::string>& argv, double timeout_seconds = 60,
                          const std::string& stdin_text = "");

// Paths from the environment set by CTest (EDGEFLOW_SOURCE_DIR, EDGEFLOW_BINARY).
std::string source_dir();
std::string edgeflow_binary();
std::string shared_data(const std::string& name);  // ../shared/data/NAME beside the repo
std::string make_temp_dir();
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

}  // namespace edgeflow::testing
