// Runs a command for a test, with a deadline: output captured, the process group killed if
// it overruns. Used to drive the edgeflow binary (and, later, mosquitto) as a user would.
#pragma once

#include <sys/types.h>

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

// A process running beside the test (an edge node, the cloud, mosquitto_sub), in its own
// process group, output captured to files. The destructor kills the group if still running.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // True once exited (then exit_code() is set); kills the group with SIGKILL and returns
  // false when timeout_seconds pass first.
  bool wait(double timeout_seconds);
  void signal(int sig);  // to the whole group
  bool running();
  int exit_code() const { return exit_code_; }  // 128+N when killed by signal N
  pid_t pid() const { return pid_; }
  std::string out() const;
  std::string err() const;
  // Waits (bounded) until `text` appears in stderr; false on timeout or exit.
  bool wait_for_err(const std::string& text, double timeout_seconds);
  bool wait_for_out(const std::string& text, double timeout_seconds);  // the same, stdout

 private:
  // Waits until the file of `stream` ("out" or "err") holds `text`, or the process ends.
  bool wait_for_text(const std::string& stream, const std::string& text, double timeout_seconds);
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string dir_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int free_tcp_port();

// Paths from the environment set by CTest (EDGEFLOW_SOURCE_DIR, EDGEFLOW_BINARY).
std::string source_dir();
std::string edgeflow_binary();
// pipelines/data/NAME: sample data that ships in the repository (see its README.md).
std::string pipeline_data(const std::string& name);
std::string make_temp_dir();
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

}  // namespace edgeflow::testing
