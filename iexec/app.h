// Task applications: the registry of apps a node may run, and the sandbox that runs one with
// the iExec interface (IEXEC_IN, IEXEC_OUT, IEXEC_TASK_ID, input files, computed.json). iExec
// runs Docker images; edge devices have no container engine, so edgeflow runs a native
// executable, checked against its registered sha256, in its own directory as user nobody, in
// its own PID and network namespaces, under a seccomp filter and a Landlock file ruleset, with
// resource limits and a wall-clock timeout (see SECURITY.md). No dependency on the runtime.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "crypto/crypto.h"

namespace edgeflow::iexec {

// A registry or sandbox set-up failure; the text names the file (and line) and the fix.
class AppError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct AppLimits {
  int64_t cpu_seconds = 60;            // RLIMIT_CPU
  int64_t memory_bytes = 512ll << 20;  // the task's memory cgroup, else RLIMIT_AS
  int64_t file_bytes = 64ll << 20;     // RLIMIT_FSIZE: largest file the app may write
  int64_t open_files = 64;             // RLIMIT_NOFILE
  int64_t processes = 64;              // RLIMIT_NPROC of the task's user, when the worker is root
  int64_t timeout_us = 120'000'000;    // wall clock; then SIGKILL to the process group
};

struct AppSpec {
  std::string name;
  std::string path;  // absolute (the registry resolves it against the registry file's folder)
  crypto::Hash32 sha256;
  std::vector<std::string> args;  // default arguments, used when a task gives none
  AppLimits limits;
  int64_t price = 0;  // what a task of it costs its requester (the ledger's balances)
};

// The registry file (YAML):
//   apps:
//     forecast:
//       path: forecast.sh            # relative to this file
//       sha256: 9f2c...               # sha256sum of the executable
//       args: ["3"]                   # optional default arguments
//       price: 10                     # optional: what a task costs its requester
//       limits: { cpu: 10s, memory: 64MiB, file_size: 1MiB, open_files: 32, processes: 16,
//                 timeout: 30s }
class AppRegistry {
 public:
  // Throws AppError naming the file and line: unreadable, malformed YAML, an unknown key, a
  // missing path or sha256, a bad size or duration.
  static AppRegistry load(const std::string& path);
  const AppSpec* find(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::vector<AppSpec>& apps() const { return apps_; }
  void add(AppSpec app) { apps_.push_back(std::move(app)); }  // tests and benches

 private:
  std::vector<AppSpec> apps_;
};

struct TaskInput {
  std::string name;  // a plain file name: no '/', not "." or ".."
  std::string bytes;
};

struct RunRequest {
  const AppSpec* app = nullptr;
  crypto::Hash32 taskid;
  std::vector<std::string> args;  // empty: the app's default args
  std::vector<TaskInput> inputs;  // written to IEXEC_IN; IEXEC_INPUT_FILE_NAME_1..n in order
};

enum class RunOutcome {
  kOk,        // computed.json named an output; result_digest is over it
  kAppError,  // non-zero exit, crash, timeout, missing/invalid computed.json or output:
              // result_digest is over error.txt, so honest workers still agree
  kRefused,   // the app did not run (checksum mismatch, missing executable, bad input name):
              // no result, the replicate fails without a contribution
};

struct RunResult {
  RunOutcome outcome = RunOutcome::kRefused;
  std::string cause;   // one line for people: "exited with code 3", "sha256 mismatch: ..."
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it
  bool timed_out = false;
  crypto::Hash32 result_digest;  // kOk / kAppError: resultDigest of IEXEC.md
  std::string work_dir;          // the task's folder (holds iexec_in/ and iexec_out/)
  std::string output_path;       // the file or folder digested (error.txt on kAppError)
  // The digested files (top-level, sorted by name) with their bytes, for the result upload;
  // empty when the output holds more than max_upload_bytes in total.
  std::vector<std::pair<std::string, std::string>> files;
  bool output_is_folder = false;             // the digest is over a folder (see digest_files)
  std::optional<std::string> callback_data;  // raw bytes, when computed.json had callback-data
  int64_t wall_us = 0;
  int64_t cpu_us = 0;              // user + system of the app's processes
  bool network_isolated = false;   // false: the app could reach the network (see warning)
  bool pid_namespace = false;      // its processes ended with the task, setsid or not
  bool syscalls_filtered = false;  // the seccomp filter was installed
  bool files_confined = false;     // Landlock: reads below read_paths, writes in its folder
  bool memory_cgroup = false;      // memory limited by a cgroup of its own, not RLIMIT_AS
  uid_t uid = 0;                   // the user it ran as
  std::string warning;             // each distinct fallback of the controls, once per sandbox
};

struct SandboxOptions {
  std::string work_root = "/tmp/edgeflow-tasks";  // one folder per task below it
  bool keep_work_dirs = false;                    // false: removed after the run
  int64_t max_upload_bytes = 1 << 20;
  bool isolate_network = true;  // new network namespace (root, or an unprivileged user ns)
  bool pid_namespace = true;    // a PID namespace per task (root): no process outlives it
  bool filter_syscalls = true;  // seccomp: no network sockets, ptrace, mount, modules, ...
  bool confine_files = true;    // Landlock: see read_paths; writes only in the task folder
  // Folders an app may read below (besides its task folder), when confine_files.
  std::vector<std::string> read_paths = {"/usr",    "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                         "/libx32", "/etc", "/opt",  "/dev", "/proc",  "/sys"};
  // The user of each task, when the worker is root: an id of [first_task_uid, first_task_uid +
  // task_uids) no other running task has (task_users.h); task_uids 0: all run as nobody.
  uid_t first_task_uid = 60000;
  int task_uids = 64;
  bool memory_cgroup = true;  // a memory cgroup per task where possible; else RLIMIT_AS
};

struct SandboxWarnings;

class Sandbox {
 public:
  explicit Sandbox(SandboxOptions options);
  // Runs one task; blocks until the app ended or was killed. Thread-safe: several tasks may
  // run at once from different threads. `cancel` (optional) set to true kills the app early
  // (a shutdown) and yields kAppError "cancelled". Never throws for what the app does; throws
  // AppError only when this node cannot set up a task (work_root or the task folder cannot be
  // created or written, pipe/fork fail).
  RunResult run(const RunRequest& request, const std::atomic<bool>* cancel = nullptr);
  const SandboxOptions& options() const { return options_; }

 private:
  SandboxOptions options_;
  std::shared_ptr<SandboxWarnings> warned_;  // the warnings given (copies share)
};

// An input file name the sandbox accepts: not empty, not "." or "..", no '/' and no NUL.
bool valid_input_name(const std::string& name);

// resultDigest of an output path (IEXEC.md): a file -> sha256(file); a folder ->
// keccak256(sha256(f1) || sha256(f2) || ...) over its top-level regular files sorted by name.
// Throws AppError naming the path when it cannot be read.
crypto::Hash32 digest_path(const std::string& path);
// The same digest over files held in memory (a result upload): folder=false -> sha256 of the
// single file; folder=true -> keccak256 of the files' sha256 in the order given (sorted).
crypto::Hash32 digest_files(const std::vector<std::pair<std::string, std::string>>& files,
                            bool folder);
// resultDigest of callback data: keccak256 of its bytes.
inline crypto::Hash32 digest_callback(const std::string& bytes) { return crypto::keccak256(bytes); }

}  // namespace edgeflow::iexec
