// Fuzzes the CSV reader (operators/csv/csv_reader.h) and, on every 8th input, csv.replay
// reading it from a file: rows come with rising line numbers and bounded cells, bad rows are
// errors naming file:line, event times rise, and nothing crashes, hangs or throws after open().
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fuzz/fuzz_harness.h"
#include "operators/csv/csv_reader.h"
#include "runtime/operator.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

constexpr size_t kCap = 256;  // small, so that mutations cross it often

void check_reader(const std::string& in) {
  const char delimiter = ",;\t "[in.size() % 4];
  std::istringstream stream(in);
  CsvReader reader(stream, delimiter, kCap);
  CsvRow row;
  int last_line = 0;
  const CsvTimeFormat formats[] = {CsvTimeFormat("%Y-%m-%dT%H:%M:%S"),
                                   CsvTimeFormat("%Y/%m/%d %H:%M:%S"), CsvTimeFormat("unix"),
                                   CsvTimeFormat("unix_ms")};
  while (reader.next(row)) {
    EXPECT_GT(row.line, last_line);
    last_line = row.line;
    if (row.problem.find("-byte limit of a CSV line") != std::string::npos) {
      EXPECT_TRUE(row.cells.empty());
      continue;
    }
    for (const std::string& cell : row.cells) {
      EXPECT_LE(cell.size(), kCap);
      (void)parse_csv_number(cell);
      for (const CsvTimeFormat& f : formats) (void)f.parse_us(cell);
    }
  }
  EXPECT_FALSE(stream.bad());
}

// Options that fit the seed the input came from, judged by its first line.
std::string options_for(const std::string& in, const std::string& path) {
  const std::string header = in.substr(0, in.find('\n'));
  std::string o = "{path: \"" + path + "\"";
  if (header.find("epoch") != std::string::npos)
    o += ", time_column: epoch, time_format: unix";
  else if (header.find("date") != std::string::npos)
    o += ", time_column: date, time_format: \"%Y/%m/%d %H:%M:%S\"";
  else
    o += ", time_column: time";
  if (header.find("station") != std::string::npos) o += ", text_columns: [station]";
  return o + "}";
}

size_t g_opened = 0, g_replayed = 0;  // how deep the rounds reach: opened, and rows emitted

void check_replay(const std::string& in, const std::string& path) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << in;
  OperatorHarness h("csv.replay", options_for(in, path));
  try {
    h.open();
  } catch (const OperatorError& e) {
    // A bad header or an empty file: a start-up error, which names the file.
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    return;
  }
  ++g_opened;
  const size_t steps = h.run_source(10000);
  EXPECT_LT(steps, 10000u) << "csv.replay did not finish";
  h.finish();
  g_replayed += h.output().size();
  for (const std::string& e : h.errors()) EXPECT_EQ(e.rfind(path + ":", 0), 0u) << e;
  int64_t last = INT64_MIN;
  for (const MessagePtr& m : h.output()) {
    EXPECT_GE(m->event_time_us, last) << "event time went back";
    last = m->event_time_us;
  }
}

TEST(FuzzCsv, RowsOrErrorsNamingTheLine) {
  std::string pattern = (fs::temp_directory_path() / "edgeflow-fuzz-csv-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  const std::string path = pattern + "/in.csv";
  fuzz::Target t;
  t.name = "csv";
  t.seeds = fuzz::load_corpus("csv");
  t.dictionary = {",",
                  ";",
                  "\t",
                  "\"",
                  "\"\"",
                  "\r\n",
                  "\n",
                  "\r",
                  "\n\n",
                  "\xEF\xBB\xBF",
                  "nan",
                  "inf",
                  "-inf",
                  "1e309",
                  "+",
                  " ",
                  "2024-01-01T00:00:00",
                  "2024-01-01T00:00:00.999999999Z",
                  "1262304000.25",
                  "-9e18",
                  "9.3e12",
                  "2010/01/01 00:00:00",
                  "%Y",
                  "time",
                  "epoch",
                  "date",
                  "station",
                  std::string(1, '\0'),
                  std::string(300, 'x')};
  t.rounds = 30000;  // about a second
  uint64_t round = 0;
  const uint64_t rounds = fuzz::run(t, [&](const std::string& in) {
    check_reader(in);
    if (round++ % 8 == 0) check_replay(in, path);
  });
  std::printf("fuzz csv: csv.replay opened %zu files and emitted %zu rows\n", g_opened, g_replayed);
  if (rounds >= 1000) {  // not when replaying one round
    EXPECT_GT(g_replayed, 0u);
  }
  fs::remove_all(pattern);
}

}  // namespace
}  // namespace edgeflow
