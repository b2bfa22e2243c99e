#include "operators/csv/csv_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

namespace edgeflow {
namespace {

using Cells = std::vector<std::string>;

Cells split(std::string_view line, char delimiter = ',') {
  Cells cells;
  std::string problem = CsvReader::split(line, delimiter, cells);
  EXPECT_EQ(problem, "") << line;
  return cells;
}

std::string problem_of(std::string_view line) {
  Cells cells;
  return CsvReader::split(line, ',', cells);
}

TEST(CsvReader, SplitsCells) {
  EXPECT_EQ(split("47.8,2010/01/01 00:00:00"), (Cells{"47.8", "2010/01/01 00:00:00"}));
  EXPECT_EQ(split("a, b ,c"), (Cells{"a", "b", "c"}));
  EXPECT_EQ(split("1,,3,"), (Cells{"1", "", "3", ""}));
  EXPECT_EQ(split("1;2", ';'), (Cells{"1", "2"}));
  EXPECT_EQ(split("a b\t c", '\t'), (Cells{"a b", "c"}));
}

TEST(CsvReader, SplitsQuotedCells) {
  EXPECT_EQ(split(R"("Oakland, CA",12)"), (Cells{"Oakland, CA", "12"}));
  EXPECT_EQ(split(R"("say ""hi""", "")"), (Cells{R"(say "hi")", ""}));
  EXPECT_EQ(split(R"(1, " padded " ,2)"), (Cells{"1", " padded ", "2"}));
}

TEST(CsvReader, ReportsBadQuotes) {
  EXPECT_EQ(problem_of(R"(1,"open)"), "cell 2 opens a quote it does not close");
  EXPECT_EQ(problem_of(R"("a"b,1)"), "cell 1 has text after its closing quote");
}

TEST(CsvReader, CountsLinesAndSkipsBlankOnes) {
  std::istringstream in("\xEF\xBB\xBFtime,t\r\n1,2\r\n\r\n   \n3,4");
  CsvReader reader(in, ',');
  CsvRow row;
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row.line, 1);
  EXPECT_EQ(row.cells, (Cells{"time", "t"}));
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row.line, 2);
  EXPECT_EQ(row.cells, (Cells{"1", "2"}));
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row.line, 5);
  EXPECT_EQ(row.cells, (Cells{"3", "4"}));
  EXPECT_FALSE(reader.next(row));
}

TEST(CsvReader, LinesOverTheCapAreProblemsNotMemory) {
  std::istringstream in("time,t\n" + std::string(100, 'x') + "\r\n1,2\n" + std::string(17, 'y'));
  CsvReader reader(in, ',', 16);
  CsvRow row;
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row.problem, "");
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row.line, 2);
  EXPECT_TRUE(row.cells.empty());
  EXPECT_EQ(row.problem, "line is longer than the 16-byte limit of a CSV line");
  ASSERT_TRUE(reader.next(row));  // the rest of the long line is skipped, not read as a row
  EXPECT_EQ(row.line, 3);
  EXPECT_EQ(row.cells, (Cells{"1", "2"}));
  ASSERT_TRUE(reader.next(row));  // the last line has no line end
  EXPECT_EQ(row.line, 4);
  EXPECT_NE(row.problem, "");
  EXPECT_FALSE(reader.next(row));
  EXPECT_TRUE(in.eof());
  EXPECT_FALSE(in.bad());
}

TEST(CsvReader, ALineOfExactlyTheCapIsRead) {
  std::istringstream in(std::string(15, 'a') + ",\n");
  CsvReader reader(in, ',', 16);
  CsvRow row;
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row.problem, "");
  EXPECT_EQ(row.cells, (Cells{std::string(15, 'a'), ""}));
  EXPECT_FALSE(reader.next(row));
}

TEST(CsvNumber, ParsesNumbersOnly) {
  EXPECT_EQ(parse_csv_number("47.8"), 47.8);
  EXPECT_EQ(parse_csv_number(" -3e2 "), -300.0);
  EXPECT_EQ(parse_csv_number("+5"), 5.0);
  EXPECT_TRUE(std::isnan(*parse_csv_number("nan")));
  EXPECT_EQ(parse_csv_number("12abc"), std::nullopt);
  EXPECT_EQ(parse_csv_number("sunny"), std::nullopt);
  EXPECT_EQ(parse_csv_number(""), std::nullopt);
  EXPECT_EQ(parse_csv_number("inf"), std::nullopt);
}

TEST(CsvTimeFormat, ParsesStrptimeFormatsAsUtc) {
  CsvTimeFormat iso("%Y-%m-%dT%H:%M:%S");
  EXPECT_EQ(iso.parse_us("2010-01-01T00:00:00"), 1'262'304'000'000'000);
  EXPECT_EQ(iso.parse_us("2010-01-01T00:00:00Z"), 1'262'304'000'000'000);
  EXPECT_EQ(iso.parse_us("2010-01-01T00:00:01.25Z"), 1'262'304'001'250'000);
  EXPECT_EQ(iso.parse_us("2010-01-01T00:00:01.1234567"), 1'262'304'001'123'456);
  EXPECT_EQ(iso.parse_us("2010-01-01"), std::nullopt);
  EXPECT_EQ(iso.parse_us("2010-01-01T00:00:00 extra"), std::nullopt);
  EXPECT_EQ(iso.parse_us(""), std::nullopt);
  CsvTimeFormat slashes("%Y/%m/%d %H:%M:%S");
  EXPECT_EQ(slashes.parse_us("2010/07/01 12:00:00"), 1'277'985'600'000'000);
}

TEST(CsvTimeFormat, ParsesUnixTimes) {
  EXPECT_EQ(CsvTimeFormat("unix").parse_us("1262304000.5"), 1'262'304'000'500'000);
  EXPECT_EQ(CsvTimeFormat("unix").parse_us("1262304000"), 1'262'304'000'000'000);
  EXPECT_EQ(CsvTimeFormat("unix_ms").parse_us("1262304000123"), 1'262'304'000'123'000);
  EXPECT_EQ(CsvTimeFormat("unix").parse_us("yesterday"), std::nullopt);
  EXPECT_EQ(CsvTimeFormat("unix").parse_us("1e300"), std::nullopt);
}

TEST(CsvTimeFormat, KnowsAFormatThatCannotMatch) {
  EXPECT_TRUE(CsvTimeFormat("unix").valid());
  EXPECT_TRUE(CsvTimeFormat("%H:%M").valid());
  EXPECT_FALSE(CsvTimeFormat("iso").valid());
}

}  // namespace
}  // namespace edgeflow
