// Fuzzes the msgpack decoders that read from the network: one message (brokers/codec.h), a
// user's msgpack map (mqtt.subscribe format: msgpack), and a link frame (brokers/link/batch.h).
// None may crash, throw or accept garbage silently; what decodes must re-encode to bytes that
// decode to the same thing.
//
// The seeds in fuzz/corpus/codec/ come from the encoder; EDGEFLOW_FUZZ_WRITE_SEEDS=1 rewrites
// them from made_seeds() below (after a format change).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "brokers/codec.h"
#include "brokers/link/batch.h"
#include "fuzz/fuzz_harness.h"

namespace edgeflow {
namespace {

Message reading(int i, const std::string& origin = "pi-1") {
  Message m;
  m.stream = "sensors";
  m.event_time_us = 1'780'315'200'000'000 + i * 1'000'000;
  m.seq = static_cast<uint64_t>(i + 1);
  m.origin = origin;
  m.fields = {{"temperature", 21.25 + i}, {"humidity", int64_t{40 + i}}, {"ok", true}};
  return m;
}

// Named by kind: message-*, fields-*, frame-* (the test below decodes each as its kind).
std::vector<std::pair<std::string, std::string>> made_seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  auto message = [&](const std::string& name, const Message& m) {
    std::string bytes;
    encode_message(m, bytes);
    out.emplace_back("message-" + name + ".bin", bytes);
  };
  message("reading", reading(0));
  Message rich = reading(1, "cloud");
  rich.fields.push_back({"boxes", Array{Value(Fields{{"x", 1}, {"y", 2}, {"w", 30}, {"h", 40}}),
                                        Value(-7), Value(), Value("text")}});
  rich.fields.push_back({"label", "north \"roof\"\n"});
  rich.fields.push_back({"big", int64_t{-9'000'000'000'000}});
  message("nested", rich);
  Message blob = reading(2);
  blob.blob.type = "image/jpeg";
  blob.blob.bytes =
      std::make_shared<const std::string>(std::string("\xff\xd8\xff\xe0\0\x10JFIF\xff\xd9", 12));
  message("blob", blob);
  message("empty", Message());

  std::string fields;
  encode_fields(reading(3).fields, fields);
  out.emplace_back("fields-reading.bin", fields);
  fields.clear();
  encode_fields(rich.fields, fields);
  out.emplace_back("fields-nested.bin", fields);

  auto frame = [&](const std::string& name, const std::vector<Message>& messages, BatchHeader h) {
    BatchWriter w;
    std::string why, bytes;
    for (const Message& m : messages) EXPECT_TRUE(w.add(m, why)) << why;
    w.finish(h, bytes);
    out.emplace_back("frame-" + name + ".bin", bytes);
  };
  frame("three", {reading(0), reading(1), reading(2)}, {"pi-1", 42, 7, false, 0, 0});
  frame("end", {}, {"pi-2", 9, 1, true, 0, 0});
  frame("floor-blob", {blob, rich}, {"cloud", 5, 12, false, 0, 10});
  return out;
}

// The bytes of a message after one decode/encode round, for comparing what two decodes saw
// (NaN fields compare unequal as values, not as bytes).
std::string canonical(const Message& m) {
  std::string bytes;
  encode_message(m, bytes);
  return bytes;
}

size_t g_messages = 0, g_frames = 0;  // inputs that decoded: how deep the rounds reach

void check(const std::string& in) {
  DecodeResult r = decode_message(in.data(), in.size());
  if (r.message) {
    ++g_messages;
    EXPECT_EQ(r.error, "");
    EXPECT_GT(r.consumed, 0u);
    EXPECT_LE(r.consumed, in.size());
    const std::string once = canonical(*r.message);
    DecodeResult again = decode_message(once.data(), once.size());
    ASSERT_TRUE(again.message) << "a decoded message does not decode once re-encoded: "
                               << again.error;
    EXPECT_EQ(again.consumed, once.size());
    EXPECT_EQ(canonical(*again.message), once);
  } else {
    EXPECT_NE(r.error, "");
  }

  Fields fields;
  std::string error;
  if (decode_fields(in.data(), in.size(), fields, error)) {
    std::string once;
    encode_fields(fields, once);
    Fields back;
    ASSERT_TRUE(decode_fields(once.data(), once.size(), back, error)) << error;
    std::string twice;
    encode_fields(back, twice);
    EXPECT_EQ(twice, once);
  } else {
    EXPECT_NE(error, "");
  }

  DecodedBatch b = decode_batch(in.data(), in.size());
  if (b.error.empty()) {
    ++g_frames;
    EXPECT_EQ(b.messages.size(), b.header.count);
    // A spooled frame is resent with a floor: the rest of it must survive that.
    std::string floored = with_batch_floor(in, 77);
    DecodedBatch f = decode_batch(floored.data(), floored.size());
    ASSERT_EQ(f.error, "");
    EXPECT_EQ(f.header.floor, 77u);
    EXPECT_EQ(f.header.sequence, b.header.sequence);
    ASSERT_EQ(f.messages.size(), b.messages.size());
    for (size_t i = 0; i < f.messages.size(); ++i)
      EXPECT_EQ(canonical(*f.messages[i]), canonical(*b.messages[i]));
  } else {
    EXPECT_TRUE(b.messages.empty());
  }
}

TEST(FuzzCodec, SeedsInTheCorpusDecode) {
  namespace fs = std::filesystem;
  const char* root = std::getenv("EDGEFLOW_SOURCE_DIR");
  ASSERT_NE(root, nullptr);
  const fs::path dir = fs::path(root) / "fuzz" / "corpus" / "codec";
  if (std::getenv("EDGEFLOW_FUZZ_WRITE_SEEDS")) {
    fs::create_directories(dir);
    for (const auto& [name, bytes] : made_seeds())
      std::ofstream(dir / name, std::ios::binary) << bytes;
  }
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(name);
    if (name.starts_with("message-")) {
      DecodeResult r = decode_message(bytes.data(), bytes.size());
      EXPECT_TRUE(r.message) << r.error;
    } else if (name.starts_with("fields-")) {
      Fields f;
      std::string error;
      EXPECT_TRUE(decode_fields(bytes.data(), bytes.size(), f, error)) << error;
    } else {
      EXPECT_EQ(decode_batch(bytes.data(), bytes.size()).error, "");
    }
    ++n;
  }
  EXPECT_GE(n, 9u);
}

TEST(FuzzCodec, DecodersNeverCrashAndReportErrors) {
  fuzz::Target t;
  t.name = "codec";
  t.seeds = fuzz::load_corpus("codec");
  for (auto& [name, bytes] : made_seeds()) t.seeds.push_back(bytes);
  t.dictionary = {std::string("\x98\x01", 2),                         // message header
                  std::string("\x96\x02", 2),                         // frame header
                  std::string("\x97\x02", 2),                         // frame header with a floor
                  std::string("\xa4pi-1"),                            // a node
                  std::string("\xdd\xff\xff\xff\xff"),                // array32 of 4 G
                  std::string("\xdf\x00\x01\x00\x00", 5),             // map32 of 64 K
                  std::string("\xdb\x7f\xff\xff\xff"),                // str32 of 2 G
                  std::string("\xc6\x00\x00\x00\x10", 5),             // bin32 of 16
                  std::string("\xc7\x03\x01\x00\x00\x00", 6),         // ext8
                  std::string("\xd8\x01") + std::string(16, '\x00'),  // fixext16
                  std::string("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9),  // NaN
                  std::string("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),     // uint64 max
                  std::string("\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9),  // int64 min
                  std::string("\x91\x91\x91\x91\x91\x91\x91\x91"),         // nesting
                  std::string("\x81\xa1k\x81\xa1k\x81\xa1k"),
                  std::string(1, '\xc1')};  // never valid
  t.rounds = 250000;                        // about a second
  const uint64_t rounds = fuzz::run(t, check);
  std::printf("fuzz codec: %zu messages and %zu frames decoded of %llu inputs\n", g_messages,
              g_frames, static_cast<unsigned long long>(rounds));
  if (rounds >= 1000) {  // not when replaying one round
    EXPECT_GT(g_messages, 0u);
    EXPECT_GT(g_frames, 0u);
  }
}

}  // namespace
}  // namespace edgeflow
