// Reading CSV files as loggers and spreadsheets write them, without the runtime: a line
// splitter that keeps line numbers for error messages, cell-to-number conversion, and event
// times in a chosen format. csv.replay is a thin operator around these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgeflow {

struct CsvRow {
  int line = 0;  // 1-based line number in the file
  std::vector<std::string> cells;
  std::string problem;  // empty, or what is wrong with the line (an unclosed quote...)
};

// Splits lines into cells at a delimiter. Handles cells in double quotes (which may hold the
// delimiter, and "" for a quote), spaces around unquoted cells, CRLF line ends, a UTF-8 byte
// order mark, blank lines (skipped). A quoted cell does not span lines. A line longer than
// max_line_bytes is not held in memory: it comes back as a row with a problem and no cells.
class CsvReader {
 public:
  static constexpr size_t kDefaultMaxLineBytes = size_t{1} << 20;

  CsvReader(std::istream& in, char delimiter, size_t max_line_bytes = kDefaultMaxLineBytes)
      : in_(in), delimiter_(delimiter), max_line_bytes_(max_line_bytes) {}

  // Reads the next non-blank line; false at end of input (or on a read error: check the
  // stream).
  bool next(CsvRow& row);

  // Splits one line (no line end) into `cells`; returns "" or what is wrong.
  static std::string split(std::string_view line, char delimiter, std::vector<std::string>& cells);

 private:
  bool read_line(bool& too_long);

  std::istream& in_;
  char delimiter_;
  size_t max_line_bytes_;
  int line_ = 0;
  std::string text_;
};

// A cell as a number: surrounding spaces and a leading '+' allowed. NaN for "nan" (loggers
// write it for "no value"); nothing for text, an empty cell or an infinite value.
std::optional<double> parse_csv_number(std::string_view cell);

// Event times in a cell, as µs since the epoch.
//   "unix"    seconds since the epoch, may be fractional: 1262304000.25
//   "unix_ms" milliseconds since the epoch
//   otherwise a strptime format read as UTC ("%Y-%m-%dT%H:%M:%S"); the cell may go on with
//   fractional seconds (".250") and a "Z" that the format does not spell out.
class CsvTimeFormat {
 public:
  explicit CsvTimeFormat(std::string format);
  // False for a format that can never match a time (no '%' field, not unix or unix_ms).
  bool valid() const;
  const std::string& text() const { return format_; }
  std::optional<int64_t> parse_us(std::string_view cell) const;

 private:
  enum class Kind { kStrptime, kUnixSeconds, kUnixMillis };
  std::string format_;
  Kind kind_;
};

}  // namespace edgeflow
