#include "cli/run_replicas.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "brokers/link/transport.h"
#include "brokers/nats/nats_leases.h"
#include "runtime/log.h"

namespace edgeflow::cli {

ReplicaChoice choose_replica(const PipelineSpec& pipeline, const std::string& node,
                             const std::string& text) {
  ReplicaChoice c;
  if (node.empty()) {
    c.error = "--replica needs --node: the cloud node that runs the stage with replicas";
    return c;
  }
  const StageSpec* stage = pipeline.replicated_on(node);
  if (!stage) {
    c.error = "--replica: node '" + node + "' runs no stage with replicas: (give one replicas: N)";
    return c;
  }
  const std::string n = std::to_string(stage->replicas);
  int index = 0, count = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%d/%d%c", &index, &count, &tail) != 2 ||
      count != stage->replicas || index < 1 || index > count) {
    c.error = "--replica takes I/" + n + " with I from 1 to " + n + " (stage '" + stage->id +
              "' has replicas: " + n + "); got '" + text + "'";
    return c;
  }
  c.index = index - 1;
  c.node = replica_node(node, stage->id);
  return c;
}

ReplicaChildren::~ReplicaChildren() {
  signal(SIGTERM);
  wait();
}

void ReplicaChildren::start(int count,
                            const std::function<std::vector<std::string>(int)>& args_for) {
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0)
    throw std::runtime_error(std::string("cannot find this program: ") + std::strerror(errno));
  exe[len] = 0;
  for (int i = 1; i <= count; ++i) {
    std::vector<std::string> args = args_for(i);
    args.insert(args.begin(), exe);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0)
      throw std::runtime_error(std::string("cannot start a replica: ") + std::strerror(errno));
    if (pid == 0) {
      // A group of its own: a Ctrl-C reaches the parent alone, which passes it on once (a
      // second one would make the replica exit at once). It goes when the parent dies.
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      // The parent watches SIGINT/SIGTERM through a blocked mask; a child starts clean.
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execv(exe, argv.data());
      _exit(127);
    }
    pids_.push_back(pid);
  }
}

void ReplicaChildren::signal(int sig) {
  for (pid_t pid : pids_)
    if (pid > 0) kill(pid, sig);
}

int ReplicaChildren::reap() {
  int worst = 0;
  for (size_t i = 0; i < pids_.size(); ++i) {
    pid_t& pid = pids_[i];
    if (pid <= 0) continue;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) != pid) continue;
    const int code = outcome(i, status);
    if (worst == 0) worst = code;
    pid = 0;
  }
  return worst;
}

int ReplicaChildren::outcome(size_t i, int status) {
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (!WIFSIGNALED(status) && code != kExitLeaseLost) return code;
  // Killed, crashed, or fenced off: the others take its partition over, and the run goes on
  // while one is left to.
  bool others_running = false;
  for (size_t j = 0; j < pids_.size(); ++j)
    if (j != i && pids_[j] > 0) others_running = true;
  if (!others_running) {
    logger().error("replica {} ended with exit code {}, the last one running", i + 1, code);
    return code;
  }
  logger().warn(
      "replica {} ended with exit code {}; another replica takes its partition over once its "
      "lease lapses ({} s) and reads again what it had not settled",
      i + 1, code, PartitionLeases::kLeaseMs / 1000);
  return 0;
}

bool ReplicaChildren::running() const {
  for (pid_t pid : pids_)
    if (pid > 0) return true;
  return false;
}

int ReplicaChildren::wait() {
  int worst = 0;
  for (size_t i = 0; i < pids_.size(); ++i) {
    pid_t& pid = pids_[i];
    if (pid <= 0) continue;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const int code = outcome(i, status);
    if (worst == 0) worst = code;
    pid = 0;
  }
  return worst;
}

}  // namespace edgeflow::cli
