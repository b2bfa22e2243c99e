#include "brokers/link/batch.h"

#include <gtest/gtest.h>

#include <random>

#include "brokers/link/dedup.h"

namespace edgeflow {
namespace {

std::shared_ptr<Message> reading(int i) {
  auto m = std::make_shared<Message>();
  m->stream = "sensors";
  m->event_time_us = 1'700'000'000'000'000 + i;
  m->seq = static_cast<uint64_t>(i + 1);
  m->origin = "pi-1";
  set_field(m->fields, "temperature", Value(20.0 + i));
  return m;
}

TEST(Batch, RoundTripKeepsHeaderAndEveryMessage) {
  BatchWriter w;
  std::string why;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(w.add(*reading(i), why));
  std::string frame;
  w.finish({"pi-1", 42, 7, true, 0}, frame);
  EXPECT_TRUE(w.empty());

  DecodedBatch b = decode_batch(frame.data(), frame.size());
  ASSERT_EQ(b.error, "");
  EXPECT_EQ(b.header.sender, "pi-1");
  EXPECT_EQ(b.header.session, 42u);
  EXPECT_EQ(b.header.sequence, 7u);
  EXPECT_TRUE(b.header.end);
  ASSERT_EQ(b.messages.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(b.messages[i]->seq, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(b.messages[i]->origin, "pi-1");
    EXPECT_EQ(b.messages[i]->event_time_us, 1'700'000'000'000'000 + i);
    ASSERT_NE(find_field(b.messages[i]->fields, "temperature"), nullptr);
  }
}

TEST(Batch, EmptyEndMarker) {
  BatchWriter w;
  std::string frame;
  w.finish({"cloud", 1, 1, true, 0}, frame);
  DecodedBatch b = decode_batch(frame.data(), frame.size());
  ASSERT_EQ(b.error, "");
  EXPECT_TRUE(b.header.end);
  EXPECT_TRUE(b.messages.empty());
}

// An in-memory blob without a registered encoder (camera frames have one: JPEG).
TEST(Batch, InMemoryBlobWithoutEncoderIsRefused) {
  Message m;
  m.blob.type = "frame/no-encoder";
  m.blob.native = std::make_shared<int>(1);
  BatchWriter w;
  std::string why;
  EXPECT_FALSE(w.add(m, why));
  EXPECT_NE(why.find("image.encode"), std::string::npos) << why;
  EXPECT_TRUE(w.empty());
}

TEST(Batch, EveryTruncationAndMutationIsRejectedOrDecoded) {
  BatchWriter w;
  std::string why;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(w.add(*reading(i), why));
  std::string frame;
  w.finish({"pi-1", 9, 3, false, 0}, frame);
  for (size_t n = 0; n < frame.size(); ++n) {
    DecodedBatch b = decode_batch(frame.data(), n);
    EXPECT_NE(b.error, "") << "prefix of " << n << " bytes";
    EXPECT_TRUE(b.messages.empty());
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 5000; ++round) {
    std::string bad = frame;
    for (int k = 0; k < 3; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
    DecodedBatch b = decode_batch(bad.data(), bad.size());
    if (b.error.empty()) {
      EXPECT_EQ(b.messages.size(), b.header.count);
    }
  }
  const std::string stray = frame + "x";
  EXPECT_NE(decode_batch(stray.data(), stray.size()).error, "");
}

TEST(Batch, FramesOverTheLimitAreRejectedUndecoded) {
  BatchWriter w;
  std::string why, frame;
  ASSERT_TRUE(w.add(*reading(0), why));
  w.finish({"pi-1", 1, 1, false, 0}, frame);
  frame.resize(kMaxFrameBytes + 1, '\xc0');  // a valid start, then too much of it
  DecodedBatch b = decode_batch(frame.data(), frame.size());
  EXPECT_NE(b.error.find("frame of 33554433 bytes is over the limit of 33554432 bytes"),
            std::string::npos)
      << b.error;
  EXPECT_TRUE(b.messages.empty());
}

TEST(Batch, CountBeyondWhatTheBytesHoldIsRejectedBeforeReserving) {
  // [2, "pi-1", 1, 1, false, 4294967295] and 90 bytes: room for 10 messages at most.
  std::string frame("\x96\x02\xa4pi-1\x01\x01\xc2\xce\xff\xff\xff\xff", 15);
  frame.append(90, '\xc0');
  DecodedBatch b = decode_batch(frame.data(), frame.size());
  EXPECT_NE(b.error.find("batch announces 4294967295 messages in 90 bytes"), std::string::npos)
      << b.error;
}

TEST(Batch, WriterRefusesAMessageOverTheLinkLimitAndGoesOn) {
  Message big = *reading(0);
  big.blob.type = "image/png";
  big.blob.bytes = std::make_shared<const std::string>(kMaxLinkMessageBytes, 'x');
  BatchWriter w;
  std::string why;
  ASSERT_TRUE(w.add(*reading(1), why));
  const size_t before = w.bytes();
  EXPECT_FALSE(w.add(big, why));
  EXPECT_NE(why.find("a link carries at most 8388608 bytes per message"), std::string::npos) << why;
  EXPECT_EQ(w.count(), 1u);
  EXPECT_EQ(w.bytes(), before);
  ASSERT_TRUE(w.add(*reading(2), why));
  std::string frame;
  w.finish({"pi-1", 1, 1, false, 0}, frame);
  DecodedBatch b = decode_batch(frame.data(), frame.size());
  ASSERT_EQ(b.error, "");
  ASSERT_EQ(b.messages.size(), 2u);
  EXPECT_EQ(b.messages[1]->seq, 3u);
}

TEST(FrameDedup, RedeliveriesRestartsAndGaps) {
  FrameDedup d;
  EXPECT_EQ(d.accept("pi-1", 7, 1), FrameDedup::kNewSession);
  EXPECT_EQ(d.accept("pi-1", 7, 2), FrameDedup::kNext);
  EXPECT_EQ(d.accept("pi-1", 7, 2), FrameDedup::kDuplicate);  // redelivered after a reconnect
  EXPECT_EQ(d.accept("pi-1", 7, 1), FrameDedup::kDuplicate);
  EXPECT_EQ(d.accept("pi-2", 7, 1), FrameDedup::kNewSession);  // senders are apart
  EXPECT_EQ(d.accept("pi-1", 9, 1), FrameDedup::kNewSession);  // pi-1 restarted
  // An old-session frame redelivered after the restart's first frame is still a duplicate.
  EXPECT_EQ(d.accept("pi-1", 7, 2), FrameDedup::kDuplicate);
  EXPECT_EQ(d.accept("pi-1", 9, 2), FrameDedup::kNext);
  EXPECT_EQ(d.accept("pi-1", 9, 5), FrameDedup::kGap);   // 3 and 4 lost, or still to come
  EXPECT_EQ(d.accept("pi-1", 9, 4), FrameDedup::kLate);  // a redelivery after newer frames
  EXPECT_EQ(d.accept("pi-1", 9, 4), FrameDedup::kDuplicate);
  EXPECT_EQ(d.accept("pi-1", 9, 3), FrameDedup::kLate);
  EXPECT_EQ(d.accept("pi-1", 9, 3), FrameDedup::kDuplicate);
  // A session whose first frame comes second: the first is still taken, once, but nobody
  // waits for it (an earlier run of the receiver may have had it).
  EXPECT_EQ(d.accept("pi-3", 1, 2), FrameDedup::kNewSession);
  EXPECT_EQ(d.awaiting("pi-3", 1), 0u);
  EXPECT_EQ(d.accept("pi-3", 1, 1), FrameDedup::kLate);
  EXPECT_EQ(d.accept("pi-3", 1, 1), FrameDedup::kDuplicate);
  // A new session keeps what the old one awaits: its redeliveries still come.
  EXPECT_EQ(d.accept("pi-3", 1, 5), FrameDedup::kGap);
  EXPECT_EQ(d.awaiting("pi-3", 1), 2u);
  EXPECT_EQ(d.accept("pi-3", 2, 1), FrameDedup::kNewSession);
  EXPECT_EQ(d.accept("pi-3", 1, 4), FrameDedup::kLate);
  EXPECT_EQ(d.awaiting("pi-3", 1), 1u);
}

TEST(FrameDedup, AwaitedNumbersAreBoundedAfterALongLoss) {
  FrameDedup d;
  EXPECT_EQ(d.accept("pi-1", 1, 1), FrameDedup::kNewSession);
  EXPECT_EQ(d.accept("pi-1", 1, 1'000'000'000), FrameDedup::kGap);  // returns at once
  EXPECT_EQ(d.awaiting("pi-1", 1), 1024u);
  EXPECT_EQ(d.accept("pi-1", 1, 1'000'000'000 - 1024), FrameDedup::kLate);
  EXPECT_EQ(d.accept("pi-1", 1, 1'000'000'000 - 1025), FrameDedup::kDuplicate);  // forgotten
  EXPECT_EQ(d.awaiting("pi-1", 1), 1023u);
  EXPECT_EQ(d.accept("pi-1", 1, 2), FrameDedup::kDuplicate);
}

}  // namespace
}  // namespace edgeflow
