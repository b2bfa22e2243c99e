// The spool alone: order, acknowledgement, marks, de-duplication, limits, and what a crash,
// a damaged file or a disk that refuses writes leave behind.
#include "brokers/spool/spool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace edgeflow {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ef-spool-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

constexpr int64_t kNow = 1'700'000'000'000'000;

TEST(Spool, FramesStayInOrderUntilAcknowledged) {
  TempDir dir;
  {
    Spool s(dir.file("spool.db"));
    Spool::Outgoing o = s.outgoing("a->b");
    EXPECT_NE(o.session, 0u);
    EXPECT_EQ(o.last_seq, 0u);
    for (uint64_t i = 1; i <= 5; ++i)
      s.append("a->b", i, "frame" + std::to_string(i), 2, {{"src", i * 10}}, kNow);
    auto frames = s.read("a->b", 0, 10);
    ASSERT_EQ(frames.size(), 5u);
    EXPECT_EQ(frames[0].bytes, "frame1");
    EXPECT_EQ(frames[4].seq, 5u);
    s.acknowledge("a->b", 3);
    frames = s.read("a->b", 0, 10);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].seq, 4u);
    EXPECT_EQ(s.stats().frames, 2u);
  }
  // A restart keeps the session, the numbering, what is unconfirmed and the marks.
  Spool s(dir.file("spool.db"));
  Spool::Outgoing o = s.outgoing("a->b");
  EXPECT_EQ(o.last_seq, 5u);
  EXPECT_EQ(o.acked, 3u);
  EXPECT_EQ(s.read("a->b", o.acked, 10).size(), 2u);
  EXPECT_EQ(s.stream_marks("a->b").at("src"), 50u);
}

TEST(Spool, SourcePositionsSurviveARestart) {
  TempDir dir;
  { Spool(dir.file("s.db")).set_position("sensors@pi-1", 42); }
  Spool s(dir.file("s.db"));
  EXPECT_EQ(s.position("sensors@pi-1"), 42u);
  EXPECT_EQ(s.position("other"), 0u);
}

TEST(Spool, ReceiverAcceptsEachFrameOnceAndInOrder) {
  TempDir dir;
  Spool s(dir.file("cloud.db"));
  using V = Spool::Verdict;
  EXPECT_EQ(s.receive("l", "pi-1", 7, 1, 0, "f1", kNow), V::kAccepted);
  EXPECT_EQ(s.receive("l", "pi-1", 7, 1, 0, "f1", kNow), V::kDuplicate);
  EXPECT_EQ(s.receive("l", "pi-1", 7, 3, 0, "f3", kNow), V::kOutOfOrder);
  EXPECT_EQ(s.receive("l", "pi-1", 7, 2, 0, "f2", kNow), V::kAccepted);
  // The sender dropped 3..4 from a full spool and says so with its floor.
  EXPECT_EQ(s.receive("l", "pi-1", 7, 5, 5, "f5", kNow), V::kAccepted);
  EXPECT_EQ(s.received("l", "pi-1", 7), 5u);
  // Another sender, and a new session of the same sender, start at frame 1 or at their
  // floor: frames 1..3 may have been published before this receiver subscribed.
  EXPECT_EQ(s.receive("l", "pi-2", 9, 4, 0, "g4", kNow), V::kOutOfOrder);
  EXPECT_EQ(s.receive("l", "pi-2", 9, 4, 4, "g4", kNow), V::kAccepted);
  EXPECT_EQ(s.receive("l", "pi-1", 8, 1, 0, "h1", kNow), V::kAccepted);
  std::vector<std::string> inbox = s.inbox("l");
  EXPECT_EQ(inbox, (std::vector<std::string>{"f1", "f2", "f5", "g4", "h1"}));
  s.prune_inbox("l", kNow, true);
  EXPECT_TRUE(s.inbox("l").empty());
  // The de-duplication state outlives the inbox.
  EXPECT_EQ(s.receive("l", "pi-1", 7, 5, 0, "f5", kNow), V::kDuplicate);
}

TEST(Spool, FullSpoolDropsTheOldestAndCountsThem) {
  TempDir dir;
  SpoolOptions o;
  o.max_bytes = 1000;
  Spool s(dir.file("s.db"), o);
  const std::string frame(300, 'x');
  for (uint64_t i = 1; i <= 6; ++i) s.append("l", i, frame, 10, {}, kNow + i);
  SpoolStats st = s.stats();
  EXPECT_EQ(st.frames, 3u);  // 3 x 300 bytes fit in 1000
  EXPECT_EQ(st.dropped_frames, 3u);
  EXPECT_EQ(st.dropped_messages, 30u);
  auto frames = s.read("l", 0, 10);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].seq, 4u);  // oldest first
}

TEST(Spool, FramesOlderThanMaxAgeAreDropped) {
  TempDir dir;
  SpoolOptions o;
  o.max_age_s = 60;
  Spool s(dir.file("s.db"), o);
  s.append("l", 1, "old", 1, {}, kNow);
  s.append("l", 2, "new", 1, {}, kNow + 61'000'000);
  auto frames = s.read("l", 0, 10);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].bytes, "new");
  EXPECT_EQ(s.stats().dropped_frames, 1u);
}

TEST(Spool, DamagedFileIsMovedAsideAndANewSpoolStarts) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  {
    Spool s(path);
    for (uint64_t i = 1; i <= 50; ++i) s.append("l", i, std::string(1000, 'y'), 1, {}, kNow);
  }
  // Overwrite the middle of the file: a card that lost power while writing.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f << std::string(8192, '\xff');
  }
  Spool s(path);
  EXPECT_NE(s.stats().error.find("damaged"), std::string::npos);
  s.append("l", 1, "fresh", 1, {}, kNow);
  EXPECT_EQ(s.read("l", 0, 10).size(), 1u);
  bool aside = false;
  for (auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    aside |= e.path().filename().string().rfind("s.db.damaged-", 0) == 0;
  EXPECT_TRUE(aside);
}

TEST(Spool, TornWalTailIsCut) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  {
    Spool s(path);
    s.append("l", 1, "one", 1, {}, kNow);
    s.append("l", 2, std::string(20000, 'z'), 1, {}, kNow);
    // Copy the WAL while the connection is open (a crash leaves it behind, unmerged).
    std::filesystem::copy_file(path + "-wal", dir.file("wal.copy"));
    std::filesystem::copy_file(path, dir.file("db.copy"));
  }
  // Restore the crash image with the WAL cut in the middle of the last frame's pages.
  std::filesystem::remove(path);
  std::filesystem::copy_file(dir.file("db.copy"), path);
  auto wal_size = std::filesystem::file_size(dir.file("wal.copy"));
  std::filesystem::copy_file(dir.file("wal.copy"), path + "-wal",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(path + "-wal", wal_size - 3000);
  Spool s(path);
  auto frames = s.read("l", 0, 10);
  ASSERT_EQ(frames.size(), 1u);  // the torn last transaction is gone, the first is whole
  EXPECT_EQ(frames[0].bytes, "one");
  EXPECT_TRUE(s.stats().error.empty());
}

// Runs `body` in a child process (its own limits and user) and returns its exit status.
template <typename F>
int in_child(F body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST(Spool, DiskThatCannotBeWrittenGivesAClearError) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  { Spool s(path); }
  std::filesystem::permissions(
      dir.file(""), std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                        std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                        std::filesystem::perms::others_exec);
  int status = in_child([&] {
    // root writes through permission bits: become nobody, for whom the folder is read-only.
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 3;
    try {
      Spool s(path);
      s.append("l", 1, "one", 1, {}, kNow);
      return 1;  // took a frame
    } catch (const SpoolError& e) {
      std::string what = e.what();
      return what.find(path) != std::string::npos ? 0 : 2;
    }
  });
  EXPECT_EQ(status, 0) << "1: a frame was taken; 2: the error does not name the spool";
}

TEST(Spool, FullDiskGivesAnErrorAndKeepsWhatWasSpooled) {
  TempDir dir;
  const std::string path = dir.file("s.db");
  int status = in_child([&] {
    signal(SIGXFSZ, SIG_IGN);  // a file-size limit stands for a full disk: writes fail
    rlimit small{256 * 1024, 256 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &small) != 0) return 3;
    Spool s(path);
    uint64_t seq = 0;
    try {
      while (seq < 1000) {
        s.append("l", seq + 1, std::string(8000, 'f'), 1, {}, kNow);
        ++seq;
      }
      return 1;  // never full
    } catch (const SpoolError& e) {
      if (std::string(e.what()).find(path) == std::string::npos) return 2;
      if (s.stats().error.empty()) return 4;
    }
    // Everything appended before the failure is still there.
    return s.read("l", 0, 2000).size() == seq && seq > 0 ? 0 : 5;
  });
  EXPECT_EQ(status, 0);
  Spool s(path);  // and after the "disk" has room again, the spool opens whole
  EXPECT_GT(s.read("l", 0, 2000).size(), 0u);
}

}  // namespace
}  // namespace edgeflow
