// The task folder of Sandbox::run, read and written through fds, never through a link the
// app left behind: file helpers, the error result, and the outcome of an app that exited 0
// (computed.json, the output it names, its digest). Internal to the sandbox.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "iexec/app.h"

namespace edgeflow::iexec::sandbox {

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
};

std::string err_text(int err);
// A string the app chose, made safe for a one-line message.
std::string one_line(const std::string& s, size_t max = 200);
// Reads a regular file whole from `fd` (which it closes); nullopt with *err set when fd < 0
// (from errno), the file is not regular, larger than `max`, or unreadable.
std::optional<std::string> read_fd(int fd, int64_t max, int* err);
// Opens `name` in the folder `dirfd` read-only, without following a symlink as its last
// component and without blocking on a FIFO the app left behind.
int open_in(int dirfd, const std::string& name, int extra = 0);
int write_all(int fd, const std::string& bytes);
void write_file(const std::string& path, const std::string& bytes, mode_t mode);
// An fd that is none of 0, 1, 2, so the child's dup2 onto them cannot clobber another.
int high_fd(int fd);
// Removal of what the app wrote, relative to folder fds and never through a symlink.
void remove_at(int dirfd, const std::string& name);
void remove_contents(int fd);
void remove_tree(const std::filesystem::path& path);
std::string last_stderr_line(const std::string& path);

// `result` as an app error: `line` (and `detail`, and the app's last stderr line) as its
// cause, error.txt holding `line` in the task folder `dir`'s iexec_out, and its digest.
RunResult error_result(RunResult result, const std::string& dir, const std::string& line,
                       const std::string& detail = "");
// The outcome of an app (`who`, for messages) that exited 0 in the task folder `dir`:
// computed.json, the output it names, and their digest; an error result when any is wrong.
RunResult read_output(RunResult result, const std::string& who, const std::string& dir,
                      int64_t max_upload_bytes);

}  // namespace edgeflow::iexec::sandbox
