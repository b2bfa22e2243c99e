// Fuzzes the JSON payload reader of mqtt.subscribe (operators/mqtt/mqtt_payload.h): any
// payload a publisher sends is either fields or an error, never a crash or an exception, and
// fields written back as JSON (file.write, mqtt.publish) read back the same.
#include <gtest/gtest.h>

#include "fuzz/fuzz_harness.h"
#include "operators/mqtt/mqtt_payload.h"

namespace edgeflow {
namespace {

size_t g_objects = 0;  // payloads that read as fields: how deep the rounds reach

void check(const std::string& in) {
  Fields fields;
  std::string error;
  if (!mqttop::json_to_fields(in, fields, error)) {
    EXPECT_NE(error, "");
    return;
  }
  EXPECT_EQ(error, "");
  ++g_objects;
  // What we write, we read, and after one trip through writer and reader the text is
  // stable. (Not after the first write: -0.0 is written "-0" and read back as the integer 0,
  // infinities are written null.)
  const std::string once = to_json(fields);
  Fields back;
  ASSERT_TRUE(mqttop::json_to_fields(once, back, error)) << error << "\n" << once;
  const std::string twice = to_json(back);
  Fields again;
  ASSERT_TRUE(mqttop::json_to_fields(twice, again, error)) << error << "\n" << twice;
  EXPECT_EQ(to_json(again), twice);
  // A time field of any shape is a time or an error.
  if (const Value* t = find_field(fields, "time")) {
    std::string problem;
    if (!mqttop::time_from_value(*t, problem)) {
      EXPECT_NE(problem, "");
    }
  }
}

TEST(FuzzJson, PayloadsAreFieldsOrErrors) {
  fuzz::Target t;
  t.name = "json";
  t.seeds = fuzz::load_corpus("json");
  t.dictionary = {"{",
                  "}",
                  "[",
                  "]",
                  ":",
                  ",",
                  "\"",
                  "\\",
                  "\\u0000",
                  "\\ud800",
                  "\\udc00",
                  "\\ud83d\\ude00",
                  "\\u00e9",
                  "\\n",
                  "true",
                  "false",
                  "null",
                  "-0",
                  "1e999",
                  "-1e999",
                  "1e-400",
                  "18446744073709551616",
                  "0.1",
                  "NaN",
                  "Infinity",
                  "\"time\": ",
                  "\"2026-06-01T12:00:00Z\"",
                  "\"2026-13-45T99:99:99+99:99\"",
                  "1780315200.5",
                  "-1e300",
                  "[[[[[[[[",
                  "{\"a\":{\"a\":{\"a\":",
                  "\xc3\xa9",
                  "\xff\xfe",
                  "\xed\xa0\x80",
                  "\xf4\x90\x80\x80",
                  "/*",
                  "//"};
  t.rounds = 150000;  // about a second
  const uint64_t rounds = fuzz::run(t, check);
  std::printf("fuzz json: %zu of %llu payloads read as fields\n", g_objects,
              static_cast<unsigned long long>(rounds));
  if (rounds >= 1000) {  // not when replaying one round
    EXPECT_GT(g_objects, 0u);
  }
}

}  // namespace
}  // namespace edgeflow
