#include "brokers/codec.h"

#include <gtest/gtest.h>

#include <random>

namespace edgeflow {
namespace {

Message sample() {
  Message m;
  m.stream = "minute";
  m.event_time_us = 1'262'304'000'000'000;
  m.seq = 42;
  m.origin = "pi-1";
  m.fields = {{"temperature", 21.25},
              {"count", int64_t{60}},
              {"negative", int64_t{-7}},
              {"ok", true},
              {"label", "north \"roof\"\n"},
              {"none", Value()},
              {"boxes", Array{Value(Fields{{"x", 1}, {"y", 2}}), Value(3.5)}}};
  return m;
}

TEST(Codec, RoundTripsEveryFieldKind) {
  Message m = sample();
  std::string bytes;
  encode_message(m, bytes);
  DecodeResult r = decode_message(bytes.data(), bytes.size());
  ASSERT_TRUE(r.message) << r.error;
  EXPECT_EQ(r.consumed, bytes.size());
  EXPECT_EQ(r.message->stream, "minute");
  EXPECT_EQ(r.message->event_time_us, m.event_time_us);
  EXPECT_EQ(r.message->seq, 42u);
  EXPECT_EQ(r.message->origin, "pi-1");
  EXPECT_EQ(r.message->fields, m.fields);
  EXPECT_TRUE(r.message->blob.empty());
}

// The size limits scale with the input, but never below what the smallest message needs.
TEST(Codec, TinyMessagesRoundTrip) {
  Message m;
  m.stream = "s";
  m.origin = "o";
  m.fields = {{"v", int64_t{7}}};
  std::string bytes;
  encode_message(m, bytes);
  ASSERT_LT(bytes.size(), 28u);
  DecodeResult r = decode_message(bytes.data(), bytes.size());
  ASSERT_TRUE(r.message) << r.error;
  EXPECT_EQ(r.message->fields, m.fields);
  Message empty;
  bytes.clear();
  encode_message(empty, bytes);
  EXPECT_TRUE(decode_message(bytes.data(), bytes.size()).message);
}

TEST(Codec, RoundTripsEncodedBlobs) {
  Message m = sample();
  m.blob.type = "image/jpeg";
  m.blob.bytes = std::make_shared<const std::string>(std::string("\xff\xd8\x00\x01\xff\xd9", 6));
  std::string bytes;
  encode_message(m, bytes);
  DecodeResult r = decode_message(bytes.data(), bytes.size());
  ASSERT_TRUE(r.message) << r.error;
  EXPECT_EQ(r.message->blob.type, "image/jpeg");
  EXPECT_EQ(*r.message->blob.bytes, *m.blob.bytes);
}

TEST(Codec, ConsecutiveMessagesDecodeOneByOne) {
  std::string bytes;
  Message a = sample(), b = sample();
  b.seq = 43;
  encode_message(a, bytes);
  encode_message(b, bytes);
  DecodeResult first = decode_message(bytes.data(), bytes.size());
  ASSERT_TRUE(first.message);
  DecodeResult second =
      decode_message(bytes.data() + first.consumed, bytes.size() - first.consumed);
  ASSERT_TRUE(second.message) << second.error;
  EXPECT_EQ(second.message->seq, 43u);
}

TEST(Codec, EveryTruncationIsAnErrorNotACrash) {
  std::string bytes;
  encode_message(sample(), bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    DecodeResult r = decode_message(bytes.data(), n);
    EXPECT_FALSE(r.message) << "prefix of " << n << " bytes decoded";
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(Codec, HugeAnnouncedSizesAreRefusedWithoutAllocating) {
  // array32 / map32 / str32 / bin32 headers announcing 4 G entries, followed by nothing.
  // The errors come from the size check that runs before msgpack-c reserves anything.
  const std::pair<std::string, std::string> cases[] = {
      {std::string("\xdd\xff\xff\xff\xff", 5), "array at offset 0 announces 4294967295 elements"},
      {std::string("\xdf\xff\xff\xff\xff", 5), "map at offset 0 announces 4294967295 entries"},
      {std::string("\xdb\xff\xff\xff\xff", 5), "4294967295 bytes announced at offset 0"},
      {std::string("\xc6\xff\xff\xff\xff", 5), "4294967295 bytes announced at offset 0"}};
  for (const auto& [header, error] : cases) {
    DecodeResult r = decode_message(header.data(), header.size());
    EXPECT_FALSE(r.message);
    EXPECT_NE(r.error.find(error), std::string::npos) << r.error;
  }
}

// Per-header limits alone let each of 16 nested headers reserve a quarter of the input in
// elements (16 bytes each): 64 times the input. Every element announced, at any level, must
// fit in the bytes that remain.
TEST(Codec, NestedHeadersCannotReserveMoreThanTheInput) {
  constexpr uint32_t kSize = 1 << 20;
  std::string bytes;
  for (int level = 0; level < 15; ++level) {
    bytes += '\xdd';  // array32 of kSize / 4 elements
    for (int shift : {24, 16, 8, 0}) bytes += static_cast<char>(((kSize / 4) >> shift) & 0xff);
  }
  bytes.resize(kSize, '\xc0');  // nils: the innermost array's elements, and more
  DecodeResult r = decode_message(bytes.data(), bytes.size());
  EXPECT_FALSE(r.message);
  // Three levels fit (3 x 262144 < 1 MiB); the fourth does not.
  EXPECT_NE(r.error.find("array at offset 15 announces 262144 elements but only"),
            std::string::npos)
      << r.error;

  // What enclosing containers still expect counts too: an outer array of 3 leaves 2 elements
  // to come after an inner array that alone would fit.
  std::string sibling = "\x93\x9f";  // [ [15 elements] , ...
  sibling.append(16, '\xc0');        // 16 bytes for the 17 still expected
  std::string error;
  Fields f;
  EXPECT_FALSE(decode_fields(sibling.data(), sibling.size(), f, error));
  EXPECT_NE(error.find("array at offset 1 announces 15 elements but only 16 bytes remain"),
            std::string::npos)
      << error;
}

// Nesting counts every open container, also one that is the last element of its parent.
TEST(Codec, NestingUpToTheLimitDecodesAndDeeperIsRefused) {
  auto nested = [](int arrays) {
    std::string bytes = "\x81\xa1v";  // {"v": ...}: the map is the first level
    bytes.append(arrays, '\x91');     // [[[ ... ]]]
    bytes += '\x07';
    return bytes;
  };
  Fields f;
  std::string error;
  std::string ok = nested(14);
  EXPECT_TRUE(decode_fields(ok.data(), ok.size(), f, error)) << error;
  std::string deeper = nested(15);  // the 7 is a 17th value: refused after decoding
  EXPECT_FALSE(decode_fields(deeper.data(), deeper.size(), f, error));
  EXPECT_NE(error.find("nested deeper than 16"), std::string::npos) << error;
  std::string deepest = nested(16);  // a 17th container: refused before decoding
  EXPECT_FALSE(decode_fields(deepest.data(), deepest.size(), f, error));
  EXPECT_NE(error.find("msgpack nested deeper than 16 levels"), std::string::npos) << error;
}

TEST(Codec, ExtIsSkippedBySizeAndRefusedByType) {
  std::string bytes("\x81\xa1x\xd6\x01\x00\x00\x00\x00", 9);  // {"x": fixext4}
  Fields f;
  std::string error;
  EXPECT_FALSE(decode_fields(bytes.data(), bytes.size(), f, error));
  EXPECT_NE(error.find("ext"), std::string::npos) << error;
  bytes.pop_back();  // the ext's data cut short
  EXPECT_FALSE(decode_fields(bytes.data(), bytes.size(), f, error));
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
}

TEST(Codec, DeepNestingIsRefused) {
  std::string bytes(100000, '\x91');  // fixarray of one, nested 100000 deep
  bytes.push_back('\xc0');
  DecodeResult r = decode_message(bytes.data(), bytes.size());
  EXPECT_FALSE(r.message);
  EXPECT_NE(r.error.find("deep"), std::string::npos) << r.error;
}

TEST(Codec, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  std::string valid;
  encode_message(sample(), valid);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = valid;
    // Flip a few bytes of a valid message: more interesting than pure noise.
    for (int k = 0; k < 1 + i % 4; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    DecodeResult r = decode_message(bytes.data(), bytes.size());
    if (r.message)
      ++decoded;
    else
      EXPECT_FALSE(r.error.empty());
  }
  // Some mutations only change a value; most break the structure.
  EXPECT_LT(decoded, 20000);
}

TEST(Codec, WrongShapeNamesTheProblem) {
  std::string bytes;
  encode_fields({{"a", 1}}, bytes);  // a bare map is not a message
  DecodeResult r = decode_message(bytes.data(), bytes.size());
  EXPECT_FALSE(r.message);
  EXPECT_NE(r.error.find("not an edgeflow message"), std::string::npos) << r.error;
}

TEST(Codec, FieldsRoundTripAndRejectTrailingBytes) {
  std::string bytes;
  Fields f = {{"temperature", 20.5}, {"humidity", int64_t{40}}};
  encode_fields(f, bytes);
  Fields back;
  std::string error;
  ASSERT_TRUE(decode_fields(bytes.data(), bytes.size(), back, error)) << error;
  EXPECT_EQ(back, f);
  bytes += "x";
  EXPECT_FALSE(decode_fields(bytes.data(), bytes.size(), back, error));
  EXPECT_NE(error.find("trailing"), std::string::npos);
}

}  // namespace
}  // namespace edgeflow
