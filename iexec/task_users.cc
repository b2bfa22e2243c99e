#include "iexec/task_users.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "iexec/sandbox_files.h"

namespace edgeflow::iexec {

namespace {

// A user or a group of that number exists (the task runs with gid = uid). An answer the
// database cannot give (a buffer too small, an NSS error) counts as named: not taken.
bool named(uid_t id) {
  std::vector<char> buf(16384);
  struct passwd pw, *user = nullptr;
  struct group gr, *group = nullptr;
  if (::getpwuid_r(id, &pw, buf.data(), buf.size(), &user) != 0 || user) return true;
  return ::getgrgid_r(static_cast<gid_t>(id), &gr, buf.data(), buf.size(), &group) != 0 || group;
}

// A child takes the id and signals everything it may (kill(-1) spares the caller), until
// nothing is left, as isolate does for a box's uid. Raw system calls: this process may have
// threads, whose locks a forked child must not touch.
void kill_all_of(uid_t uid) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::syscall(SYS_setgroups, 0, nullptr) != 0 || ::syscall(SYS_setresgid, uid, uid, uid) != 0 ||
        ::syscall(SYS_setresuid, uid, uid, uid) != 0)
      ::_exit(1);
    for (int i = 0; i < 1000; ++i) {
      if (::kill(-1, SIGKILL) != 0 && errno == ESRCH) ::_exit(0);
      struct timespec ts = {0, 1000000};
      ::nanosleep(&ts, nullptr);
    }
    ::_exit(2);
  }
  int status = 0;
  while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::unique_ptr<TaskUser> TaskUser::take(uid_t first, int count, const std::string& lock_dir,
                                         std::string* why) {
  int skipped = 0, last_err = 0;
  for (int i = 0; i < count; ++i) {
    const uid_t uid = first + static_cast<uid_t>(i);
    if (named(uid)) {
      ++skipped;  // a real account: its files are not a task's to take over
      continue;
    }
    const std::string path = lock_dir + "/.task-uid-" + std::to_string(uid) + ".lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      last_err = errno;
      continue;
    }
    // Per open file: a second open in this process conflicts as another process's would.
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0)
      return std::unique_ptr<TaskUser>(new TaskUser(uid, fd));
    ::close(fd);
  }
  *why = "no free task user id in " + std::to_string(first) + ".." +
         std::to_string(first + static_cast<uid_t>(count) - 1) + " (" + std::to_string(count) +
         " ids, " + std::to_string(skipped) + " of them named users or groups";
  if (last_err) {
    *why += ", lock files in " + lock_dir + ": " + sandbox::err_text(last_err);
  }
  *why += "); raise task_uids or move first_task_uid";
  return nullptr;
}

TaskUser::~TaskUser() {
  if (sweep_) kill_all_of(uid_);
  ::close(lock_fd_);
}

}  // namespace edgeflow::iexec
