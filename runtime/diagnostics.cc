#include "runtime/diagnostics.h"

#include <algorithm>
#include <cstdio>

namespace edgeflow {

namespace {

// A message may quote bytes of a broken file; never send raw control bytes to a terminal.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n' || (c >= 0x20 && c < 0x7f) || c >= 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

std::string format_diagnostic(const Diagnostic& d) {
  std::string out = d.file.empty() ? "<pipeline>" : d.file;
  if (d.mark.line > 0)
    out += ":" + std::to_string(d.mark.line) + ":" + std::to_string(d.mark.column);
  out += ": ";
  if (!d.stage.empty()) out += "stage '" + d.stage + "': ";
  out += d.message;
  if (!d.hint.empty()) out += "\n  hint: " + d.hint;
  return printable(out);
}

void Diagnostics::add(SourceMark mark, const std::string& stage, std::string message,
                      std::string hint) {
  items_.push_back(Diagnostic{file_, mark, stage, std::move(message), std::move(hint)});
}

void Diagnostics::sort_by_place() {
  std::stable_sort(items_.begin(), items_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.mark.line != b.mark.line ? a.mark.line < b.mark.line : a.mark.column < b.mark.column;
  });
}

std::string Diagnostics::str() const {
  std::string out;
  for (const Diagnostic& d : items_) out += format_diagnostic(d) + "\n";
  return out;
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string nearest_name(const std::string& word, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const std::string& k : known) {
    size_t d = edit_distance(word, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  // A third of the word's length (at least 2 edits) still reads as a typo, not a new word.
  size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_distance <= limit ? best : "";
}

std::string suggest(const std::string& word, const std::vector<std::string>& known) {
  std::string near = nearest_name(word, known);
  if (!near.empty()) return "did you mean '" + near + "'?";
  std::string list;
  for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
  return "known: " + list;
}

}  // namespace edgeflow
