// The task folder, read and written through fds (see sandbox_files.h).
#include "iexec/sandbox_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "iexec/app.h"

namespace edgeflow::iexec::sandbox {

namespace fs = std::filesystem;

namespace {
constexpr int64_t kMaxComputedJson = 16 << 20;
}  // namespace

std::string err_text(int err) {
  const char* d = strerrordesc_np(err);  // thread-safe, unlike strerror
  return d ? d : "error " + std::to_string(err);
}

// A string the app chose, made safe for a one-line message.
std::string one_line(const std::string& s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  return out;
}

// Reads a regular file whole from `fd` (which it closes); nullopt with *err set when fd < 0
// (from errno), the file is not regular, larger than `max`, or unreadable.
std::optional<std::string> read_fd(int fd, int64_t max, int* err) {
  if (fd < 0) {
    *err = errno;
    return std::nullopt;
  }
  Fd owner(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    *err = errno;
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    *err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    return std::nullopt;
  }
  if (st.st_size > max) {
    *err = EFBIG;
    return std::nullopt;
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno;
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > max) {
      *err = EFBIG;
      return std::nullopt;
    }
  }
  return out;
}

// Opens `name` in the folder `dirfd` read-only, without following a symlink as its last
// component and without blocking on a FIFO the app left behind.
int open_in(int dirfd, const std::string& name, int extra) {
  return ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | extra);
}

int write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    done += static_cast<size_t>(n);
  }
  return 0;
}

void write_file(const std::string& path, const std::string& bytes, mode_t mode) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.fd < 0) throw AppError("cannot create " + path + ": " + err_text(errno));
  if (int e = write_all(fd.fd, bytes)) throw AppError("cannot write " + path + ": " + err_text(e));
  if (::close(std::exchange(fd.fd, -1)) != 0) {
    throw AppError("cannot write " + path + ": " + err_text(errno));
  }
}

// An fd that is none of 0, 1, 2, so the child's dup2 onto them cannot clobber another.
int high_fd(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

// Removal of what the app wrote, relative to folder fds and never through a symlink: an app
// that swaps a folder for a link to /etc only gets its link removed.
void remove_contents(int fd) {
  struct stat st;
  if (::fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700) ::fchmod(fd, st.st_mode | 0700);
  int listing = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  DIR* d = listing < 0 ? nullptr : ::fdopendir(listing);
  if (!d) {
    if (listing >= 0) ::close(listing);
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  for (const std::string& name : names) remove_at(fd, name);
}

void remove_at(int dirfd, const std::string& name) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return;
  Fd fd(open_in(dirfd, name, O_DIRECTORY));
  if (fd.fd < 0) {
    // A folder the app made unreadable (chmod 000); only stops a worker that is not root.
    struct stat st;
    if (errno != EACCES || ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode) || ::fchmodat(dirfd, name.c_str(), 0700, AT_SYMLINK_NOFOLLOW) != 0) {
      return;
    }
    fd.reset(open_in(dirfd, name, O_DIRECTORY));
    if (fd.fd < 0) return;
  }
  remove_contents(fd.fd);
  fd.reset();
  ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR);
}

void remove_tree(const fs::path& path) {
  Fd parent(::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (parent.fd >= 0) remove_at(parent.fd, path.filename().string());
}

namespace {

enum class Lookup { kFound, kOutside, kMissing, kUnreadable };

bool within(const fs::path& p, const fs::path& root) {
  return std::mismatch(root.begin(), root.end(), p.begin(), p.end()).first == root.end();
}

// Opens `rel` below the folder `out_fd` (IEXEC_OUT at `out_dir`). Symlinks are followed only
// while they stay below (absolute ones are refused), and the kernel walks the path itself, so
// a process the app left behind cannot swap a component for a link between check and use.
int open_beneath(int out_fd, const std::string& out_dir, const std::string& rel, Lookup* how) {
  *how = Lookup::kFound;
#ifdef SYS_openat2
  struct open_how oh;
  std::memset(&oh, 0, sizeof oh);
  oh.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
  oh.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, out_fd, rel.c_str(), &oh, sizeof oh));
  if (fd >= 0) return fd;
  if (errno != ENOSYS && errno != EPERM) {  // EPERM: a seccomp filter that does not know it
    *how = errno == EXDEV    ? Lookup::kOutside
           : errno == ENOENT ? Lookup::kMissing
                             : Lookup::kUnreadable;
    return -1;
  }
#else
  (void)out_fd;
#endif
  // Kernels before 5.6: resolve, check, then open without following the last component.
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::path(out_dir) / rel, ec);
  if (ec || !within(resolved, out_dir)) {
    *how = Lookup::kOutside;
    return -1;
  }
  int fd2 = ::open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd2 < 0) *how = errno == ENOENT ? Lookup::kMissing : Lookup::kUnreadable;
  return fd2;
}

// sha256 of an open file, streamed through /proc so it is the file already opened; read whole
// when /proc is not there.
std::optional<crypto::Hash32> sha256_fd(int fd) {
  try {
    return crypto::sha256_file("/proc/self/fd/" + std::to_string(fd));
  } catch (const crypto::CryptoError&) {
  }
  int err = 0;
  std::optional<std::string> bytes = read_fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0), INT64_MAX, &err);
  if (!bytes) return std::nullopt;
  return crypto::sha256(*bytes);
}

}  // namespace

std::string last_stderr_line(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.fd < 0) return "";
  struct stat st;
  std::string s(4096, '\0');
  ssize_t n = -1;
  if (::fstat(fd.fd, &st) == 0 && S_ISREG(st.st_mode)) {
    n = ::pread(fd.fd, s.data(), s.size(), std::max<off_t>(0, st.st_size - 4096));
  }
  s.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t nl = s.find_last_of('\n');
  return one_line(nl == std::string::npos ? s : s.substr(nl + 1));
}

// The same one line on every honest worker, so they still agree. The app may have replaced
// iexec_out by a link: everything here goes through fds, never a link.
RunResult error_result(RunResult result, const std::string& dir, const std::string& line,
                       const std::string& detail) {
  const std::string out_dir = dir + "/iexec_out";
  result.outcome = RunOutcome::kAppError;
  const std::string content = line + "\n";
  Fd task_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (task_fd.fd >= 0) {
    Fd out(open_in(task_fd.fd, "iexec_out", O_DIRECTORY));
    if (out.fd < 0) {
      remove_at(task_fd.fd, "iexec_out");
      ::mkdirat(task_fd.fd, "iexec_out", 0755);
      out.reset(open_in(task_fd.fd, "iexec_out", O_DIRECTORY));
    }
    if (out.fd >= 0) {
      remove_contents(out.fd);
      // The digest and the upload come from memory; the file is a courtesy.
      Fd f(::openat(out.fd, "error.txt", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0644));
      if (f.fd >= 0) write_all(f.fd, content);
    }
  }
  result.output_path = out_dir + "/error.txt";
  result.output_is_folder = false;
  result.files = {{"error.txt", content}};
  result.callback_data.reset();
  result.result_digest = crypto::sha256(content);
  result.cause = line;
  if (!detail.empty()) result.cause += "; " + detail;
  std::string last = last_stderr_line(dir + "/stderr.txt");
  if (!last.empty()) result.cause += " (stderr: " + last + ")";
  return result;
}

RunResult read_output(RunResult result, const std::string& who, const std::string& dir,
                      int64_t max_upload_bytes) {
  const std::string out_dir = dir + "/iexec_out";
  int err = 0;
  auto app_error = [&](const std::string& line, const std::string& detail = "") {
    return error_result(std::move(result), dir, line, detail);
  };
  Fd out_fd2(::open(out_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (out_fd2.fd < 0) return app_error(who + " removed or replaced its IEXEC_OUT folder");
  std::optional<std::string> text =
      read_fd(open_in(out_fd2.fd, "computed.json"), kMaxComputedJson, &err);
  if (!text) {
    if (err == ENOENT) return app_error(who + " wrote no computed.json");
    return app_error(who + ": computed.json is not a readable regular file", err_text(err));
  }
  nlohmann::json computed = nlohmann::json::parse(*text, nullptr, false);
  if (computed.is_discarded() || !computed.is_object()) {
    return app_error(who + ": computed.json is not a JSON object");
  }
  if (computed.contains("callback-data")) {
    const nlohmann::json& cb = computed["callback-data"];
    std::optional<std::vector<uint8_t>> bytes;
    if (cb.is_string()) bytes = crypto::from_hex(cb.get<std::string>());
    if (!bytes) return app_error(who + ": computed.json callback-data is not a 0x hex string");
    result.callback_data = std::string(bytes->begin(), bytes->end());
    result.result_digest = digest_callback(*result.callback_data);
    result.outcome = RunOutcome::kOk;
    result.cause = "ok (callback-data)";
    return result;
  }
  if (!computed.contains("deterministic-output-path")) {
    return app_error(who + ": computed.json has neither deterministic-output-path nor " +
                     "callback-data");
  }
  const nlohmann::json& dop = computed["deterministic-output-path"];
  if (!dop.is_string() || dop.get<std::string>().empty()) {
    return app_error(who + ": computed.json deterministic-output-path is not a path");
  }
  // The path relative to IEXEC_OUT. iExec apps write "/iexec_out/...", the folder's path in
  // iExec's container; $IEXEC_OUT/... is accepted too, and shown as /iexec_out/... so that
  // error.txt does not depend on this machine's task folder.
  const std::string named = dop.get<std::string>();
  std::string rel = named, shown = named;
  if (named == "/iexec_out" || named.rfind("/iexec_out/", 0) == 0) {
    rel = named.substr(std::min<size_t>(named.size(), 11));
  } else if (named == out_dir || named.rfind(out_dir + "/", 0) == 0) {
    rel = named.substr(std::min(named.size(), out_dir.size() + 1));
    shown = "/iexec_out/" + rel;
  } else if (named.front() == '/') {
    return app_error(who + ": computed.json names output '" + one_line(shown) +
                     "' outside IEXEC_OUT");
  }
  if (rel.empty()) rel = ".";
  shown = "'" + one_line(shown) + "'";

  Lookup how;
  Fd output(open_beneath(out_fd2.fd, out_dir, rel, &how));
  if (how == Lookup::kOutside) {
    return app_error(who + ": computed.json names output " + shown + " outside IEXEC_OUT");
  }
  if (how == Lookup::kMissing) {
    return app_error(who + ": computed.json names output " + shown + " which does not exist");
  }
  struct stat st;
  if (output.fd < 0 || ::fstat(output.fd, &st) != 0) {
    return app_error(who + ": output " + shown + " cannot be read", err_text(errno));
  }
  std::string out_path = (fs::path(out_dir) / rel).lexically_normal().string();
  while (out_path.size() > 1 && out_path.back() == '/') out_path.pop_back();
  result.output_path = out_path;

  // What the digest covers: the file, or the folder's top-level regular files by name.
  std::vector<std::pair<std::string, int64_t>> members;
  if (S_ISREG(st.st_mode)) {
    members.emplace_back(fs::path(out_path).filename().string(), st.st_size);
  } else if (S_ISDIR(st.st_mode)) {
    result.output_is_folder = true;
    int listing = ::fcntl(output.fd, F_DUPFD_CLOEXEC, 0);
    DIR* d = listing < 0 ? nullptr : ::fdopendir(listing);
    if (!d) {
      if (listing >= 0) ::close(listing);
      return app_error(who + ": output " + shown + " cannot be listed", err_text(errno));
    }
    while (struct dirent* e = ::readdir(d)) {
      struct stat est;
      if (::fstatat(output.fd, e->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(est.st_mode)) {
        members.emplace_back(e->d_name, est.st_size);
      }
    }
    ::closedir(d);
    std::sort(members.begin(), members.end());
  } else {
    return app_error(who + ": computed.json names output " + shown +
                     " which is neither a file nor a folder");
  }
  auto open_member = [&](const std::string& name) {
    return result.output_is_folder ? open_in(output.fd, name)
                                   : ::fcntl(output.fd, F_DUPFD_CLOEXEC, 0);
  };
  auto unreadable = [&](const std::string& name, int e) {
    return app_error(who + ": output file '" + one_line(name) + "' cannot be read", err_text(e));
  };
  int64_t total = 0;
  for (const auto& m : members) total += m.second;
  if (total <= max_upload_bytes) {
    // Digest the bytes that will be uploaded, so both always agree.
    for (const auto& [name, size] : members) {
      std::optional<std::string> bytes = read_fd(open_member(name), max_upload_bytes, &err);
      if (!bytes) return unreadable(name, err);
      result.files.emplace_back(name, std::move(*bytes));
    }
    result.result_digest = digest_files(result.files, result.output_is_folder);
  } else {
    crypto::Packed packed;
    for (const auto& [name, size] : members) {
      Fd f(open_member(name));
      std::optional<crypto::Hash32> h;
      if (f.fd >= 0) h = sha256_fd(f.fd);
      if (!h) return unreadable(name, f.fd < 0 ? errno : EIO);
      if (!result.output_is_folder) {
        result.result_digest = *h;
      } else {
        packed.add(*h);
      }
    }
    if (result.output_is_folder) result.result_digest = packed.keccak();
  }
  result.outcome = RunOutcome::kOk;
  result.cause = "ok";
  return result;
}

}  // namespace edgeflow::iexec::sandbox
