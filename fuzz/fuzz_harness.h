// Seeded mutation fuzzing as plain GoogleTest binaries (the toolchain is g++: no libFuzzer).
// Each target mutates the seed files of fuzz/corpus/<target>/ with AFL-style stacked edits
// (bit flips, dictionary tokens, big-endian lengths, splices, long runs) and feeds the result to
// one function, checking that it neither crashes nor hangs and reports errors as errors.
//
// Rounds are deterministic: round i of seed S is the same input on every machine, so a failure
// names the seed and round to replay. The environment changes the budget:
//   EDGEFLOW_FUZZ_SECONDS=N  run for N seconds instead of the default rounds
//   EDGEFLOW_FUZZ_SEED=S     another seed (default 2026)
//   EDGEFLOW_FUZZ_ROUND=I    replay round I alone
// A crash, a hang (one input for more than 20 s) or a failed check writes the input to
// fuzz-<target>-failure.bin in the working directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace edgeflow::fuzz {

// Every file of fuzz/corpus/<target>/ (under EDGEFLOW_SOURCE_DIR), in name order.
std::vector<std::string> load_corpus(const std::string& target);

class Mutator {
 public:
  Mutator(std::vector<std::string> seeds, std::vector<std::string> dictionary,
          size_t max_size = 64 * 1024)
      : seeds_(std::move(seeds)), dictionary_(std::move(dictionary)), max_size_(max_size) {}

  // Round `round` of `seed`: a seed with 1, 2, 4, 8 or 16 stacked edits (a few rounds leave it
  // as is).
  std::string input(uint64_t seed, uint64_t round) const;

 private:
  void edit(std::string& s, std::mt19937_64& rng) const;

  std::vector<std::string> seeds_;
  std::vector<std::string> dictionary_;
  size_t max_size_;
};

struct Target {
  std::string name;                     // the corpus folder, and the failure file's name
  std::vector<std::string> seeds;       // corpus files, plus any made in the test
  std::vector<std::string> dictionary;  // tokens worth inserting
  uint64_t rounds = 20000;  // default budget (no EDGEFLOW_FUZZ_SECONDS); an eighth under ASan
  size_t max_size = 64 * 1024;
};

// Runs `check` on each round's input under a crash and hang watch; stops at the first round
// whose checks failed (the test's failures say what). Returns the rounds run.
uint64_t run(const Target& target, const std::function<void(const std::string&)>& check);

}  // namespace edgeflow::fuzz
