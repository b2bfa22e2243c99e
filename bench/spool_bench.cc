// What the disk spool (brokers/spool/spool.h: SQLite in WAL mode, one transaction per append)
// costs against the least a hand-written segment-file spool would cost: a raw loop over one
// file opened O_WRONLY|O_APPEND|O_CREAT writing, per record, a 4-byte length + the frame + a
// 4-byte CRC32 (one writev) and then fdatasync. Same process, same run, ratios printed, because
// this machine is shared and absolute figures drift.
//
// Frames of 200 B (one batched sensor-reading message), 4 KiB and 64 KiB; per size:
//   r  raw append + fdatasync per record  (the baseline of every ratio of that size)
//   f  Spool sync=full: one append = one transaction, synced at commit (survives a power cut)
//   n  Spool sync=normal: synced at WAL checkpoints only
//   o  Spool sync=off: left to the kernel
//   w  raw append without fdatasync
// Spool appends are Spool::append() with one stream mark (what a link passes), timed from the
// first append to the last one returning; opening the spool and the final flush are not timed.
// The acknowledge path: N frames appended (not timed), then acknowledged 10 at a time:
//   ra raw: the acknowledged seq + CRC pwrite()n to an ack file, then fdatasync (the baseline)
//   af / an / ao  Spool::acknowledge() at sync=full / normal / off
// tail/head: the rate of the last 10 % of the operations over the first 10 %: below 1, the
// operation gets slower as the file fills.
//
// Every run uses fresh files in a temporary folder (under /tmp, or under --dir DIR: point it at
// the SD card), flushed (syncfs, not timed) and removed after the run; the folder is removed at
// the end. Variants are interleaved round by round and the best round of each is kept.
//
//   build/bench/spool_bench [--quick] [--dir DIR] [--count N] [--rounds R]
//     --count N: appends per variant (default 2000, quick 300); the raw loop without
//     fdatasync does 10 x N, the acknowledge path N / 2 frames. Every variant is capped at 32 MiB
//     of frames (quick 8 MiB). The Spool variants all append the same number: an append's cost
//     grows with the frames already waiting (see tail/head), so they are compared at equal fill.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "brokers/spool/spool.h"

namespace edgeflow {
namespace {

using bench::now_ns;

// ---- CRC32 (the zlib / IEEE polynomial), table-driven ----

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

uint32_t crc32(const char* data, size_t size) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i)
    c = table[(c ^ static_cast<uint8_t>(data[i])) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- one timed run ----

struct Result {
  bool ok = false;
  int64_t ops = 0;  // appends, or frames acknowledged
  double seconds = 0;
  double head_rate = 0, tail_rate = 0;  // first and last 10 % of the operations
  std::string error;

  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  double tail_over_head() const { return head_rate > 0 ? tail_rate / head_rate : 0; }
};

// Times ops 0..n-1 of `op` (which throws on failure) and the rates of the first and last 10 %.
Result timed(int64_t n, const std::function<void(int64_t)>& op) {
  Result r;
  const int64_t tenth = std::max<int64_t>(1, n / 10);
  const int64_t t0 = now_ns();
  int64_t t_head = t0, t_tail = t0;
  for (int64_t i = 0; i < n; ++i) {
    if (i == n - tenth) t_tail = now_ns();
    op(i);
    if (i == tenth - 1) t_head = now_ns();
  }
  const int64_t t1 = now_ns();
  r.ops = n;
  r.seconds = static_cast<double>(t1 - t0) / 1e9;
  r.head_rate =
      t_head > t0 ? static_cast<double>(tenth) * 1e9 / static_cast<double>(t_head - t0) : 0;
  r.tail_rate =
      t1 > t_tail ? static_cast<double>(tenth) * 1e9 / static_cast<double>(t1 - t_tail) : 0;
  r.ok = true;
  return r;
}

[[noreturn]] void sys_fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// Flushes everything written under `dir` (not timed): no run pays for the previous one's
// write-back.
void flush_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::syncfs(fd);
  ::close(fd);
}

// Frame contents: pseudo-random bytes (nothing compresses), the first 8 bytes the seq.
std::string make_frame(size_t size) {
  std::string f(size, '\0');
  std::mt19937_64 rng(size);
  for (char& c : f) c = static_cast<char>(rng());
  return f;
}

void stamp(std::string& frame, uint64_t seq) {
  std::memcpy(frame.data(), &seq, std::min(sizeof seq, frame.size()));
}

// One record of the raw segment file: length, bytes, CRC32; one writev.
void raw_write(int fd, const std::string& frame) {
  const uint32_t len = static_cast<uint32_t>(frame.size());
  const uint32_t crc = crc32(frame.data(), frame.size());
  iovec iov[3] = {{const_cast<uint32_t*>(&len), sizeof len},
                  {const_cast<char*>(frame.data()), frame.size()},
                  {const_cast<uint32_t*>(&crc), sizeof crc}};
  const ssize_t want = static_cast<ssize_t>(sizeof len + frame.size() + sizeof crc);
  ssize_t n = ::writev(fd, iov, 3);
  if (n != want) sys_fail("writev");
}

Result run_raw(const std::string& dir, size_t size, int64_t n, bool sync) {
  const std::string path = dir + "/segment";
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) sys_fail("open " + path);
  std::string frame = make_frame(size);
  Result r = timed(n, [&](int64_t i) {
    stamp(frame, static_cast<uint64_t>(i + 1));
    raw_write(fd, frame);
    if (sync && ::fdatasync(fd) != 0) sys_fail("fdatasync");
  });
  ::close(fd);
  struct stat st {};
  const int64_t expected = n * static_cast<int64_t>(size + 8);
  if (::stat(path.c_str(), &st) != 0 || st.st_size != expected) {
    r.ok = false;
    r.error = "segment holds " + std::to_string(st.st_size) + " bytes, expected " +
              std::to_string(expected);
  }
  return r;
}

const char* kLink = "edge->cloud";

SpoolOptions spool_options(const std::string& sync) {
  SpoolOptions o;
  o.sync = sync;
  return o;
}

void spool_append(Spool& spool, std::string& frame, int64_t i) {
  const uint64_t seq = static_cast<uint64_t>(i + 1);
  stamp(frame, seq);
  spool.append(kLink, seq, frame, 1, {{"sensors.readings", seq}}, wall_us());
}

Result run_spool(const std::string& dir, size_t size, int64_t n, const std::string& sync) {
  Spool spool(dir + "/spool.db", spool_options(sync));
  spool.outgoing(kLink);
  std::string frame = make_frame(size);
  Result r = timed(n, [&](int64_t i) { spool_append(spool, frame, i); });
  SpoolStats s = spool.stats();
  if (s.frames != static_cast<uint64_t>(n) || s.dropped_frames != 0) {
    r.ok = false;
    r.error = "spool holds " + std::to_string(s.frames) + " frames (" +
              std::to_string(s.dropped_frames) + " dropped), expected " + std::to_string(n);
  }
  return r;
}

constexpr int64_t kAckStep = 10;

// The raw acknowledge: the segment is written (not timed), then each step overwrites the
// acknowledged seq + its CRC at offset 0 of an ack file and syncs it.
Result run_ack_raw(const std::string& dir, size_t size, int64_t n) {
  const std::string seg_path = dir + "/segment", ack_path = dir + "/acked";
  int seg = ::open(seg_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, 0644);
  if (seg < 0) sys_fail("open " + seg_path);
  std::string frame = make_frame(size);
  for (int64_t i = 0; i < n; ++i) {
    stamp(frame, static_cast<uint64_t>(i + 1));
    raw_write(seg, frame);
  }
  if (::fdatasync(seg) != 0) sys_fail("fdatasync");
  ::close(seg);
  int fd = ::open(ack_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) sys_fail("open " + ack_path);
  const int64_t steps = n / kAckStep;
  Result r = timed(steps, [&](int64_t i) {
    char rec[12];
    const uint64_t seq = static_cast<uint64_t>((i + 1) * kAckStep);
    std::memcpy(rec, &seq, 8);
    const uint32_t crc = crc32(rec, 8);
    std::memcpy(rec + 8, &crc, 4);
    if (::pwrite(fd, rec, sizeof rec, 0) != static_cast<ssize_t>(sizeof rec)) sys_fail("pwrite");
    if (::fdatasync(fd) != 0) sys_fail("fdatasync");
  });
  ::close(fd);
  // Figures in frames: each step acknowledges kAckStep frames.
  r.ops *= kAckStep;
  r.head_rate *= kAckStep;
  r.tail_rate *= kAckStep;
  return r;
}

// The spool is filled at sync=off (not timed), closed, and opened again at `sync`.
Result run_ack_spool(const std::string& dir, size_t size, int64_t n, const std::string& sync) {
  const std::string path = dir + "/spool.db";
  {
    Spool fill(path, spool_options("off"));
    fill.outgoing(kLink);
    std::string frame = make_frame(size);
    for (int64_t i = 0; i < n; ++i) spool_append(fill, frame, i);
  }
  flush_dir(dir);
  Spool spool(path, spool_options(sync));
  spool.outgoing(kLink);
  const int64_t steps = n / kAckStep;
  Result r = timed(steps, [&](int64_t i) {
    spool.acknowledge(kLink, static_cast<uint64_t>((i + 1) * kAckStep));
  });
  r.ops *= kAckStep;
  r.head_rate *= kAckStep;
  r.tail_rate *= kAckStep;
  SpoolStats s = spool.stats();
  const uint64_t left = static_cast<uint64_t>(n - steps * kAckStep);
  if (s.frames != left) {
    r.ok = false;
    r.error = "spool holds " + std::to_string(s.frames) + " frames after the acknowledgements, " +
              "expected " + std::to_string(left);
  }
  return r;
}

// ---- variants, rounds, table ----

struct Variant {
  std::string key, label;
  size_t size = 0;
  int64_t count = 0;
  bool ack = false;  // an acknowledge-path variant (its ratio is to `ra`, not `r`)
  std::function<Result(const std::string& dir)> run;
  bool failed = false;
  std::string failure;
  Result best;
  std::vector<double> rates;

  void add(const Result& r) {
    if (!r.ok) {
      failed = true;
      failure = r.error;
      return;
    }
    rates.push_back(r.rate());
    if (r.rate() > best.rate()) best = r;
  }
};

std::string size_name(size_t size) {
  if (size % 1024 == 0) return std::to_string(size / 1024) + " KiB";
  return std::to_string(size) + " B";
}

const Variant* find(const std::vector<Variant>& vs, const std::string& key, size_t size) {
  for (const Variant& v : vs)
    if (v.key == key && v.size == size) return &v;
  return nullptr;
}

void print_rows(const std::vector<Variant>& vs, bool ack) {
  if (ack) {
    std::printf("\nacknowledge path: N frames appended, then acknowledged %lld at a time\n",
                static_cast<long long>(kAckStep));
    std::printf("%-7s %-3s %-34s %7s %11s %9s %11s %9s  %s\n", "frame", "", "variant", "frames",
                "frames/s", "acks/s", "x raw ack", "tail/head", "rounds (frames/s)");
  } else {
    std::printf("%-7s %-3s %-34s %7s %11s %9s %11s %9s  %s\n", "frame", "", "variant", "appends",
                "appends/s", "MB/s", "x raw sync", "tail/head", "rounds (/s)");
  }
  size_t last_size = 0;
  for (const Variant& v : vs) {
    if (v.ack != ack) continue;
    const std::string size = v.size == last_size ? "" : size_name(v.size);
    last_size = v.size;
    if (v.failed) {
      std::printf("%-7s %-3s %-34s %7lld  FAILED: %s\n", size.c_str(), v.key.c_str(),
                  v.label.c_str(), static_cast<long long>(v.count), v.failure.c_str());
      continue;
    }
    const Variant* base = find(vs, ack ? "ra" : "r", v.size);
    char ratio[32] = "n/a";
    if (base && !base->failed && base->best.rate() > 0)
      std::snprintf(ratio, sizeof ratio, "%.2fx", v.best.rate() / base->best.rate());
    std::string all;
    for (double r : v.rates) all += (all.empty() ? "" : " ") + std::to_string(int64_t(r));
    const double second = ack ? v.best.rate() / static_cast<double>(kAckStep)
                              : v.best.rate() * static_cast<double>(v.size) / 1e6;
    std::printf("%-7s %-3s %-34s %7lld %11.0f %9.*f %11s %9.2f  %s\n", size.c_str(), v.key.c_str(),
                v.label.c_str(), static_cast<long long>(v.count), v.best.rate(), ack ? 0 : 2,
                second, ratio, v.best.tail_over_head(), all.c_str());
  }
}

std::string fs_type(const std::string& dir) {
  struct statfs s {};
  if (::statfs(dir.c_str(), &s) != 0) return "?";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs";
    case 0x9123683E:
      return "btrfs";
    case 0x58465342:
      return "xfs";
    case 0x4d44:
      return "vfat";
    case 0x2011BAB0:
      return "exfat";
    case 0x794c7630:
      return "overlayfs";
    case 0xF2F52010:
      return "f2fs";
    default: {
      char hex[24];
      std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(s.f_type));
      return hex;
    }
  }
}

// The build's default PRAGMA secure_delete (Debian compiles it on): 1 means every deleted
// page, acknowledged frames included, is overwritten with zeros and so written again.
int secure_delete_default() {
  sqlite3* db = nullptr;
  int value = -1;
  if (sqlite3_open(":memory:", &db) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA secure_delete", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
      value = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return value;
}

struct Args {
  bool quick = false;
  int64_t count = 0;
  int rounds = 3;
  std::string dir = "/tmp";
};

constexpr const char* kUsage = "spool_bench [--quick] [--dir DIR] [--count N] [--rounds R]";

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--quick") {
      a.quick = true;
    } else if (s == "--count" && i + 1 < argc) {
      a.count = std::atoll(argv[++i]);
    } else if (s == "--rounds" && i + 1 < argc) {
      a.rounds = std::atoi(argv[++i]);
    } else if (s == "--dir" && i + 1 < argc) {
      a.dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s\n", kUsage);
      std::exit(2);
    }
  }
  if (a.quick) a.rounds = 1;
  if (a.rounds < 1 || a.count < 0 || (a.count > 0 && a.count < kAckStep)) {
    std::fprintf(stderr, "usage: %s   (N >= %lld)\n", kUsage, static_cast<long long>(kAckStep));
    std::exit(2);
  }
  return a;
}

int run(const Args& args, const std::string& root) {
  const int64_t synced = args.count ? args.count : args.quick ? 300 : 2000;
  const int64_t unsynced = 10 * synced;
  const int64_t cap_bytes = (args.quick ? 8ll : 32ll) << 20;
  auto bounded = [cap_bytes](int64_t n, size_t size) {
    return std::max<int64_t>(kAckStep,
                             std::min<int64_t>(n, cap_bytes / static_cast<int64_t>(size)));
  };

  std::vector<Variant> vs;
  auto add = [&](std::string key, std::string label, size_t size, int64_t n, bool ack,
                 std::function<Result(const std::string&, int64_t)> body) {
    Variant v;
    v.key = std::move(key);
    v.label = std::move(label);
    v.size = size;
    v.count = bounded(n, size);
    v.ack = ack;
    const int64_t count = v.count;
    v.run = [body, count](const std::string& dir) { return body(dir, count); };
    vs.push_back(std::move(v));
  };
  const std::vector<size_t> sizes = {200, 4096, 65536};
  for (size_t size : sizes) {
    add("r", "raw append + fdatasync", size, synced, false,
        [size](const std::string& d, int64_t n) { return run_raw(d, size, n, true); });
    add("f", "Spool sync=full", size, synced, false,
        [size](const std::string& d, int64_t n) { return run_spool(d, size, n, "full"); });
    add("n", "Spool sync=normal", size, synced, false,
        [size](const std::string& d, int64_t n) { return run_spool(d, size, n, "normal"); });
    add("o", "Spool sync=off", size, synced, false,
        [size](const std::string& d, int64_t n) { return run_spool(d, size, n, "off"); });
    add("w", "raw append, no fdatasync", size, unsynced, false,
        [size](const std::string& d, int64_t n) { return run_raw(d, size, n, false); });
  }
  const int64_t acked = std::max<int64_t>(kAckStep, synced / 2);
  for (size_t size : sizes) {
    add("ra", "raw: ack file pwrite + fdatasync", size, acked, true,
        [size](const std::string& d, int64_t n) { return run_ack_raw(d, size, n); });
    for (const char* sync : {"full", "normal", "off"}) {
      add(std::string("a") + sync[0], std::string("Spool acknowledge, sync=") + sync, size, acked,
          true, [size, sync](const std::string& d, int64_t n) {
            return run_ack_spool(d, size, n, sync);
          });
    }
  }

  std::printf("spool_bench: SQLite %s (WAL, secure_delete=%d), folder %s (%s), %s\n",
              sqlite3_libversion(), secure_delete_default(), root.c_str(), fs_type(root).c_str(),
              args.quick ? "quick: one round" : ("best of " + std::to_string(args.rounds)).c_str());
  std::fflush(stdout);
  const int64_t t0 = now_ns();
  for (int round = 0; round < args.rounds; ++round) {
    for (Variant& v : vs) {
      if (v.failed) continue;
      const std::string dir = root + "/run";
      std::filesystem::create_directories(dir);
      flush_dir(root);
      const int64_t started = now_ns();
      Result r;
      try {
        r = v.run(dir);
      } catch (const std::exception& e) {
        r = Result{};
        r.error = e.what();
      }
      flush_dir(dir);
      std::filesystem::remove_all(dir);
      v.add(r);
      // The run's wall time includes its untimed set-up and flush.
      std::fprintf(stderr, "  round %d %-7s %-3s %-34s %s (%.2f s)\n", round + 1,
                   size_name(v.size).c_str(), v.key.c_str(), v.label.c_str(),
                   v.failed ? ("FAILED: " + v.failure).c_str()
                            : (std::to_string(static_cast<int64_t>(r.rate())) + "/s").c_str(),
                   static_cast<double>(now_ns() - started) / 1e9);
    }
  }
  print_rows(vs, false);
  print_rows(vs, true);
  std::printf(
      "\nx raw sync: appends/s over raw append + fdatasync (r) of the same frame size;\n"
      "x raw ack: frames/s over the raw ack file (ra) of the same frame size. "
      "MB/s: frame bytes, 10^6 B.\n");
  std::printf("total %.1f s\n", static_cast<double>(now_ns() - t0) / 1e9);
  bool failed = false;
  for (const Variant& v : vs) failed = failed || v.failed;
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  Args args = parse_args(argc, argv);
  std::string pattern = args.dir + "/spool_bench.XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) {
    std::fprintf(stderr, "spool_bench: cannot create a folder under %s: %s\n", args.dir.c_str(),
                 std::strerror(errno));
    return 1;
  }
  const std::string root = buf.data();
  int rc = 1;
  try {
    rc = run(args, root);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spool_bench: %s\n", e.what());
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return rc;
}
