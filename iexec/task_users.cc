#include "iexec/task_users.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace edgeflow::iexec {

namespace {

bool named(uid_t uid) {
  struct passwd pw, *found = nullptr;
  std::vector<char> buf(4096);
  return ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found;
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
         " ids, " + std::to_string(skipped) + " of them named users";
  if (last_err)
    *why += std::string(", lock files in ") + lock_dir + ": " + strerrordesc_np(last_err);
  *why += "); raise task_uids or move first_task_uid";
  return nullptr;
}

TaskUser::~TaskUser() { ::close(lock_fd_); }

}  // namespace edgeflow::iexec
