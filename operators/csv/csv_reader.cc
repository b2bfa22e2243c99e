#include "operators/csv/csv_reader.h"

#include <charconv>
#include <cmath>
#include <ctime>

namespace edgeflow {
namespace {

std::string_view trim(std::string_view s, std::string_view blanks = " \t") {
  size_t begin = s.find_first_not_of(blanks);
  if (begin == std::string_view::npos) return {};
  size_t end = s.find_last_not_of(blanks);
  return s.substr(begin, end - begin + 1);
}

}  // namespace

// std::getline without its unbounded growth: keeps at most max_line_bytes_ of the line and
// skips the rest, so a file with no line ends (a binary, a log gone wrong) cannot fill memory.
bool CsvReader::read_line(bool& too_long) {
  text_.clear();
  too_long = false;
  std::istream::sentry ok(in_, true);
  if (!ok) return false;
  std::streambuf* buf = in_.rdbuf();
  bool any = false;
  for (int c = buf->sbumpc(); c != std::char_traits<char>::eof(); c = buf->sbumpc()) {
    any = true;
    if (c == '\n') return true;
    if (text_.size() < max_line_bytes_)
      text_.push_back(static_cast<char>(c));
    else
      too_long = true;
  }
  in_.setstate(any ? std::ios::eofbit : std::ios::eofbit | std::ios::failbit);
  return any;
}

bool CsvReader::next(CsvRow& row) {
  bool too_long = false;
  while (read_line(too_long)) {
    ++line_;
    if (too_long) {
      row.line = line_;
      row.cells.clear();
      row.problem = "line is longer than the " + std::to_string(max_line_bytes_) +
                    "-byte limit of a CSV line";
      return true;
    }
    std::string_view line = text_;
    if (line_ == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) continue;
    row.line = line_;
    row.problem = split(line, delimiter_, row.cells);
    return true;
  }
  return false;
}

std::string CsvReader::split(std::string_view line, char delimiter,
                             std::vector<std::string>& cells) {
  // Blanks around cells are padding, unless the delimiter is itself one of them.
  std::string_view blanks = delimiter == ' ' ? "\t" : delimiter == '\t' ? " " : " \t";
  cells.clear();
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    size_t start = i;
    while (start < n && blanks.find(line[start]) != std::string_view::npos) ++start;
    if (start < n && line[start] == '"') {
      std::string cell;
      bool closed = false;
      for (i = start + 1; i < n; ++i) {
        if (line[i] != '"') {
          cell += line[i];
        } else if (i + 1 < n && line[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          closed = true;
          ++i;
          break;
        }
      }
      if (!closed)
        return "cell " + std::to_string(cells.size() + 1) + " opens a quote it does not close";
      while (i < n && blanks.find(line[i]) != std::string_view::npos) ++i;
      if (i < n && line[i] != delimiter)
        return "cell " + std::to_string(cells.size() + 1) + " has text after its closing quote";
      cells.push_back(std::move(cell));
    } else {
      size_t end = line.find(delimiter, i);
      if (end == std::string_view::npos) end = n;
      cells.emplace_back(trim(line.substr(i, end - i), blanks));
      i = end;
    }
    if (i >= n) return "";
    ++i;  // past the delimiter; a delimiter at the very end leaves one more, empty, cell
  }
}

std::optional<double> parse_csv_number(std::string_view cell) {
  cell = trim(cell);
  if (!cell.empty() && cell[0] == '+') cell.remove_prefix(1);
  if (cell.empty()) return std::nullopt;
  double value;
  auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (ec != std::errc() || end != cell.data() + cell.size() || std::isinf(value))
    return std::nullopt;
  return value;
}

CsvTimeFormat::CsvTimeFormat(std::string format) : format_(std::move(format)) {
  kind_ = format_ == "unix"      ? Kind::kUnixSeconds
          : format_ == "unix_ms" ? Kind::kUnixMillis
                                 : Kind::kStrptime;
}

bool CsvTimeFormat::valid() const {
  return kind_ != Kind::kStrptime || format_.find('%') != std::string::npos;
}

std::optional<int64_t> CsvTimeFormat::parse_us(std::string_view cell) const {
  cell = trim(cell);
  if (cell.empty()) return std::nullopt;
  if (kind_ != Kind::kStrptime) {
    std::optional<double> v = parse_csv_number(cell);
    double us = v ? *v * (kind_ == Kind::kUnixSeconds ? 1e6 : 1e3) : NAN;
    // Beyond ±9.2e18 µs (year ±292277) llround overflows: no sensor logged that.
    if (!std::isfinite(us) || std::fabs(us) > 9.2e18) return std::nullopt;
    return std::llround(us);
  }
  std::string text(cell);  // strptime needs a terminated string
  std::tm tm{};
  const char* rest = strptime(text.c_str(), format_.c_str(), &tm);
  if (!rest) return std::nullopt;
  int64_t fraction_us = 0;
  if (rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9') {
    int64_t scale = 100'000;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10)
      fraction_us += (*rest - '0') * scale;  // digits past µs add 0
  }
  if (*rest == 'Z') ++rest;
  if (*rest != '\0') return std::nullopt;
  time_t seconds = timegm(&tm);
  return static_cast<int64_t>(seconds) * 1'000'000 + fraction_us;
}

}  // namespace edgeflow
