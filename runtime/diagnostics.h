// Load-time problems, each pointing at a place in the pipeline file:
//   pipelines/weather.yaml:14:5: stage 'minute': option 'window' must be > 0 (got -5s)
//     hint: ...
#pragma once

#include <string>
#include <vector>

#include "runtime/schema.h"

namespace edgeflow {

struct Diagnostic {
  std::string file;
  SourceMark mark;
  std::string stage;  // empty when the problem is not inside one stage
  std::string message;
  std::string hint;
};

std::string format_diagnostic(const Diagnostic& d);

class Diagnostics {
 public:
  explicit Diagnostics(std::string file = "") : file_(std::move(file)) {}
  void add(SourceMark mark, const std::string& stage, std::string message, std::string hint = "");
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  void sort_by_place();     // file order: the way a user reads and fixes them
  std::string str() const;  // every diagnostic, one (or two, with a hint) lines each
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<Diagnostic> items_;
};

// The known name closest to `word` by edit distance, or "" when none is close enough to be a
// plausible typo.
std::string nearest_name(const std::string& word, const std::vector<std::string>& known);
// "did you mean 'x'?" or a list of the known names when nothing is near.
std::string suggest(const std::string& word, const std::vector<std::string>& known);

}  // namespace edgeflow
