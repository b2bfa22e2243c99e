// A task app for the sandbox's escape tests: tries one thing a confined app must not do (or
// may do) and writes what happened ("ok" or the errno's name) as its iExec result.
//   sandbox_probe socket-inet | socket-unix | ptrace | unshare-user | read PATH | write PATH
//   sandbox_probe fork N      (starts up to N children that stay; result: how many started)
//   sandbox_probe sleep MS    (result: "ok" after MS milliseconds)
//   sandbox_probe uid         (result: the user id it runs as)
//   sandbox_probe alloc MIB   (allocates and touches MIB MiB; "ok")
//   sandbox_probe reserve MIB (maps MIB MiB of address space without touching it; "ok")
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::string outcome(bool ok) { return ok ? "ok" : strerrorname_np(errno); }

int finish(const std::string& text) {
  const char* out = std::getenv("IEXEC_OUT");
  if (!out) return 2;
  std::string dir = out;
  FILE* r = std::fopen((dir + "/result.txt").c_str(), "w");
  FILE* c = std::fopen((dir + "/computed.json").c_str(), "w");
  if (!r || !c) return 3;
  std::fputs(text.c_str(), r);
  std::fputs("{\"deterministic-output-path\":\"/iexec_out/result.txt\"}", c);
  std::fclose(r);
  std::fclose(c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 1;
  const std::string what = argv[1];
  const char* arg = argc > 2 ? argv[2] : "";
  if (what == "socket-inet" || what == "socket-unix") {
    int fd = ::socket(what == "socket-inet" ? AF_INET : AF_UNIX, SOCK_STREAM, 0);
    return finish(outcome(fd >= 0));
  }
  if (what == "ptrace") return finish(outcome(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0));
  if (what == "unshare-user") return finish(outcome(::unshare(CLONE_NEWUSER) == 0));
  if (what == "read") {
    int fd = ::open(arg, O_RDONLY);
    char c;
    return finish(outcome(fd >= 0 && ::read(fd, &c, 1) >= 0));
  }
  if (what == "write") return finish(outcome(::open(arg, O_WRONLY | O_CREAT, 0644) >= 0));
  if (what == "sleep") {
    ::usleep(static_cast<useconds_t>(std::atoi(arg)) * 1000);
    return finish("ok");
  }
  if (what == "uid") return finish(std::to_string(::getuid()));
  if (what == "alloc") {
    for (int i = 0; i < std::atoi(arg); ++i) {
      void* p = std::malloc(1 << 20);
      if (!p) return finish(outcome(false));
      std::memset(p, 1, 1 << 20);
    }
    return finish("ok");
  }
  if (what == "reserve") {
    size_t size = static_cast<size_t>(std::atoi(arg)) << 20;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return finish(outcome(p != MAP_FAILED));
  }
  if (what == "fork") {
    int started = 0;
    int ready[2];
    if (::pipe(ready) != 0) return 4;
    for (int i = 0; i < std::atoi(arg); ++i) {
      pid_t pid = ::fork();
      if (pid == 0) {
        // A new session, as a daemon would: out of the app's process group. Said on the pipe,
        // so the app ends only once every child has left its group.
        ::setsid();
        char c = 1;
        if (::write(ready[1], &c, 1) != 1) ::_exit(1);
        for (;;) ::pause();
      }
      char c;
      if (pid > 0 && ::read(ready[0], &c, 1) == 1) ++started;
    }
    return finish(std::to_string(started));
  }
  return 1;
}
