// A user id per running task, so that tasks running at once cannot touch each other's files or
// processes, and the process limit (RLIMIT_NPROC, counted per user) holds each task alone: a
// fork bomb in one does not starve the next. Like isolate's boxes (first_uid 60000), ids with
// no name in the user database, from a range the owner may move.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace edgeflow::iexec {

class TaskUser {
 public:
  // The lowest id of [first, first + count) that no named user or group has and no other task
  // holds. A
  // task holds its id by a lock (flock) on `lock_dir`/.task-uid-ID.lock, so edgeflow
  // processes sharing a work_root share the range too. nullptr with *why when none is free.
  static std::unique_ptr<TaskUser> take(uid_t first, int count, const std::string& lock_dir,
                                        std::string* why);
  // Frees the id; first, when asked, ends every process still running as it.
  ~TaskUser();
  // What the task started may outlive it (no PID namespace, no cgroup): the id is then freed
  // only after every process of it is killed, so the next task does not meet them.
  void end_processes_on_release() { sweep_ = true; }
  TaskUser(const TaskUser&) = delete;
  TaskUser& operator=(const TaskUser&) = delete;
  uid_t uid() const { return uid_; }

 private:
  TaskUser(uid_t uid, int lock_fd) : uid_(uid), lock_fd_(lock_fd) {}
  uid_t uid_;
  int lock_fd_;
  bool sweep_ = false;
};

}  // namespace edgeflow::iexec
