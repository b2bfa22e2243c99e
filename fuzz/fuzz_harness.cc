#include "fuzz/fuzz_harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#if defined(__SANITIZE_ADDRESS__)
#define EF_FUZZ_SANITIZED 1
#include <sanitizer/common_interface_defs.h>
#endif

namespace edgeflow::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr int kHangSeconds = 20;

// What a signal handler may read: the input of the running round, in a fixed buffer.
char g_failure_path[256];
std::atomic<const std::string*> g_input{nullptr};
std::atomic<uint64_t> g_seed{0}, g_round{0};

// Decimal digits of `v`, without allocating (signal handlers).
void write_number(uint64_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0) (void)!::write(2, &digits[--n], 1);
}

void write_input() {
  const std::string* input = g_input.load();
  if (!input || !g_failure_path[0]) return;
  int fd = ::open(g_failure_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  size_t done = 0;
  while (done < input->size()) {
    ssize_t n = ::write(fd, input->data() + done, input->size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  const char note[] = "\nfuzz: round ";
  (void)!::write(2, note, sizeof note - 1);
  write_number(g_round.load());
  const char of_seed[] = " of seed ";
  (void)!::write(2, of_seed, sizeof of_seed - 1);
  write_number(g_seed.load());
  const char input_in[] = " failed; its input is in ";
  (void)!::write(2, input_in, sizeof input_in - 1);
  (void)!::write(2, g_failure_path, std::strlen(g_failure_path));
  (void)!::write(2, "\n", 1);
}

#ifndef EF_FUZZ_SANITIZED
void on_fatal_signal(int sig) {
  write_input();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}
#endif

void install_crash_handlers() {
#ifdef EF_FUZZ_SANITIZED
  // The sanitizers own the fatal signals and print their own report first.
  __sanitizer_set_death_callback(write_input);
#else
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, on_fatal_signal);
#endif
}

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strtoull(v, nullptr, 10);
}

// Kills the process when one round runs longer than kHangSeconds: a hang is a bug too.
class HangWatch {
 public:
  HangWatch() : thread_([this] { watch(); }) {}
  ~HangWatch() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void next_round() { rounds_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void watch() {
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t seen = rounds_.load();
    auto since = std::chrono::steady_clock::now();
    while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return quit_; })) {
      uint64_t now_rounds = rounds_.load();
      auto now = std::chrono::steady_clock::now();
      if (now_rounds != seen) {
        seen = now_rounds;
        since = now;
      } else if (now - since > std::chrono::seconds(kHangSeconds)) {
        std::fprintf(stderr, "fuzz: one input has run for more than %d s: a hang\n", kHangSeconds);
        write_input();
        std::_Exit(3);
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  std::atomic<uint64_t> rounds_{0};
  std::thread thread_;
};

constexpr char kInterestingBytes[] =
    "\x00\x01\x7f\x80\x81\x8f\x90\x9f\xa0\xbf\xc0\xc1\xc2\xc3"
    "\xc4\xc6\xc7\xca\xcb\xcc\xcf\xd0\xd3\xd4\xd8\xd9\xdb\xdc"
    "\xdd\xde\xdf\xe0\xff\n\r\t\"',:{}[]";
constexpr size_t kInterestingCount = sizeof kInterestingBytes - 1;

const uint32_t kInterestingNumbers[] = {
    0,   1,   2,     7,     15,         16,         31,         32,         127,      128,
    255, 256, 65535, 65536, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 1u << 20, 1u << 24};

}  // namespace

std::vector<std::string> load_corpus(const std::string& target) {
  const char* root = std::getenv("EDGEFLOW_SOURCE_DIR");
  fs::path dir = fs::path(root ? root : ".") / "fuzz" / "corpus" / target;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::string> out;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    out.push_back(text.str());
  }
  return out;
}

std::string Mutator::input(uint64_t seed, uint64_t round) const {
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + round);
  std::string s = seeds_.empty() ? std::string() : seeds_[rng() % seeds_.size()];
  if (rng() % 16 == 0) return s;  // the seeds themselves must pass
  // Mostly few edits, sometimes many: structured text (YAML, CSV) survives one or two edits
  // and then reaches the checks behind the parser.
  int edits = 1 << (rng() % 5);
  for (int i = 0; i < edits; ++i) edit(s, rng);
  if (s.size() > max_size_) s.resize(max_size_);
  return s;
}

void Mutator::edit(std::string& s, std::mt19937_64& rng) const {
  auto pos = [&](size_t extra) { return static_cast<size_t>(rng() % (s.size() + extra)); };
  switch (rng() % 12) {
    case 0:  // flip a bit
      if (!s.empty()) s[pos(0)] ^= static_cast<char>(1u << (rng() % 8));
      break;
    case 1:  // a random byte
      if (!s.empty()) s[pos(0)] = static_cast<char>(rng());
      break;
    case 2:  // an interesting byte: msgpack type bytes, delimiters, line ends
      if (!s.empty()) s[pos(0)] = kInterestingBytes[rng() % kInterestingCount];
      break;
    case 3:  // a dictionary token, inserted
    case 4:  // or written over
      if (!dictionary_.empty()) {
        const std::string& t = dictionary_[rng() % dictionary_.size()];
        size_t at = pos(1);
        if (rng() % 2)
          s.insert(at, t);
        else
          s.replace(at, std::min(t.size(), s.size() - at), t);
      }
      break;
    case 5: {  // a big-endian 8/16/32-bit number: msgpack lengths and counts
      uint32_t v = kInterestingNumbers[rng() % std::size(kInterestingNumbers)];
      if (rng() % 4 == 0) v = static_cast<uint32_t>(rng());
      int width = 1 << (rng() % 3);
      size_t at = pos(1);
      std::string bytes;
      for (int i = width - 1; i >= 0; --i) bytes += static_cast<char>((v >> (8 * i)) & 0xff);
      s.replace(at, std::min(bytes.size(), s.size() - at), bytes);
      break;
    }
    case 6:  // delete a range
      if (!s.empty()) {
        size_t at = pos(0);
        size_t most = rng() % 4 ? 8 : s.size();
        s.erase(at, 1 + rng() % std::min(s.size() - at, most));
      }
      break;
    case 7:  // copy a range elsewhere: repeats structure (nesting, rows, stages)
      if (!s.empty()) {
        size_t from = pos(0);
        size_t n = 1 + rng() % std::min<size_t>(s.size() - from, 256);
        std::string chunk = s.substr(from, n);
        size_t at = pos(1);
        s.insert(at, chunk);
      }
      break;
    case 8:  // splice with another seed
      if (!seeds_.empty()) {
        const std::string& other = seeds_[rng() % seeds_.size()];
        size_t cut = pos(1);
        size_t from = other.empty() ? 0 : rng() % other.size();
        s = s.substr(0, cut) + other.substr(from);
      }
      break;
    case 9: {  // a run of one byte: long lines, long strings, deep nesting
      size_t n = rng() % 8 == 0 ? 1 + rng() % 8192 : 1 + rng() % 64;
      char c = rng() % 2 ? kInterestingBytes[rng() % kInterestingCount] : static_cast<char>(rng());
      size_t at = pos(1);
      s.insert(at, std::string(n, c));
      break;
    }
    case 10:  // cut short
      if (!s.empty()) s.resize(pos(0));
      break;
    case 11:  // swap two bytes
      if (s.size() > 1) {
        size_t a = pos(0), b = pos(0);  // sequenced: the same edits on every compiler
        std::swap(s[a], s[b]);
      }
      break;
  }
}

uint64_t run(const Target& target, const std::function<void(const std::string&)>& check) {
  EXPECT_FALSE(target.seeds.empty()) << "no seeds in fuzz/corpus/" << target.name;
  std::snprintf(g_failure_path, sizeof g_failure_path, "fuzz-%s-failure.bin", target.name.c_str());
  install_crash_handlers();
  Mutator mutator(target.seeds, target.dictionary, target.max_size);
  const uint64_t seed = env_u64("EDGEFLOW_FUZZ_SEED", 2026);
  const uint64_t seconds = env_u64("EDGEFLOW_FUZZ_SECONDS", 0);
  const char* only = std::getenv("EDGEFLOW_FUZZ_ROUND");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
#ifdef EF_FUZZ_SANITIZED
  const uint64_t rounds = target.rounds / 8;  // the sanitizers slow each round ten times over
#else
  const uint64_t rounds = target.rounds;
#endif
  HangWatch watch;
  uint64_t round = only ? std::strtoull(only, nullptr, 10) : 0;
  uint64_t done = 0;
  for (;; ++round) {
    if (only          ? done == 1
        : seconds > 0 ? std::chrono::steady_clock::now() >= deadline
                      : round >= rounds)
      break;
    const std::string input = mutator.input(seed, round);
    g_seed.store(seed);
    g_round.store(round);
    g_input.store(&input);
    watch.next_round();
    try {
      check(input);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "an exception escaped: " << e.what();
    } catch (...) {
      ADD_FAILURE() << "an exception of unknown type escaped";
    }
    ++done;
    if (::testing::Test::HasFailure()) {
      write_input();
      ADD_FAILURE() << target.name << ": round " << round << " of seed " << seed
                    << " failed; replay it with EDGEFLOW_FUZZ_SEED=" << seed
                    << " EDGEFLOW_FUZZ_ROUND=" << round;
      break;
    }
    g_input.store(nullptr);
  }
  g_input.store(nullptr);
  std::printf("fuzz %s: %llu rounds (seed %llu)\n", target.name.c_str(),
              static_cast<unsigned long long>(done), static_cast<unsigned long long>(seed));
  return done;
}

}  // namespace edgeflow::fuzz
