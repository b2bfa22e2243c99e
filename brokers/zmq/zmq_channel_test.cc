#include "brokers/zmq/zmq_channel.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "brokers/zmq/zmq_test_support.h"

namespace edgeflow::zmqlink {
namespace {

using namespace std::chrono_literals;

using testing::Collector;
using testing::kWaitMs;

std::string frame_name(const std::string& prefix, int i) { return prefix + std::to_string(i); }

std::vector<std::string> names(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(frame_name(prefix, i));
  return out;
}

ReceiverOptions receiver_options(Mode mode, std::string endpoint = "tcp://127.0.0.1:*") {
  ReceiverOptions o;
  o.endpoint = std::move(endpoint);
  o.mode = mode;
  return o;
}

SenderOptions sender_options(Mode mode, const std::string& endpoint, std::string identity = "") {
  SenderOptions o;
  o.endpoint = endpoint;
  o.mode = mode;
  o.identity = std::move(identity);
  o.resend_ms = 200;  // quick recovery in tests
  return o;
}

// A free loopback endpoint: bound by a receiver, then released.
std::string free_endpoint() {
  Collector unused;
  auto r = make_receiver(receiver_options(Mode::kAcked), unused.handler());
  std::string endpoint = bound_endpoint(*r);
  r->stop();
  return endpoint;
}

template <class Pred>
bool eventually(Pred pred, int timeout_ms = kWaitMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

bool has_duplicates(const std::vector<std::string>& frames) {
  return std::set<std::string>(frames.begin(), frames.end()).size() != frames.size();
}

// The kAcked header, as documented in zmq_channel.cc: big-endian session, seq, base.
std::string header(uint64_t session, uint64_t seq, uint64_t base) {
  std::string h(24, '\0');
  uint64_t v[3] = {session, seq, base};
  for (int k = 0; k < 3; ++k) {
    for (int i = 0; i < 8; ++i) h[k * 8 + i] = static_cast<char>(v[k] >> (56 - 8 * i));
  }
  return h;
}

uint64_t read_u64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

void send_parts(zmq::socket_t& s, const std::vector<std::string>& parts) {
  for (size_t i = 0; i < parts.size(); ++i) {
    s.send(zmq::buffer(parts[i]),
           i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

std::vector<std::string> recv_parts(zmq::socket_t& s, int timeout_ms = kWaitMs) {
  s.set(zmq::sockopt::rcvtimeo, timeout_ms);
  std::vector<std::string> parts;
  zmq::message_t m;
  do {
    if (!s.recv(m)) return parts;
    parts.push_back(m.to_string());
  } while (m.more());
  return parts;
}

// ---------------------------------------------------------------------------------------------

TEST(ZmqModes, ParseAndName) {
  for (Mode m : {Mode::kAcked, Mode::kPush, Mode::kPubSub}) {
    EXPECT_EQ(parse_mode(mode_name(m)), m);
  }
  EXPECT_THROW(parse_mode("ack"), std::invalid_argument);
}

TEST(ZmqChannel, AckedRoundTripInOrderExactlyOnce) {
  Collector got;
  auto receiver = make_receiver(receiver_options(Mode::kAcked), got.handler());
  SenderOptions so = sender_options(Mode::kAcked, bound_endpoint(*receiver), "pi-1/link");
  so.window = 50;
  auto sender = make_sender(so);
  std::vector<std::string> sent = names("f-", 500);
  sent.push_back(std::string(300 * 1024, 'x'));  // a large frame too
  for (const std::string& f : sent) ASSERT_TRUE(sender->send(f, kWaitMs));
  ASSERT_TRUE(sender->drain(kWaitMs));
  EXPECT_EQ(sender->unacknowledged(), 0u);
  EXPECT_EQ(got.frames(), sent);
  ReceiverStats stats = receiver_stats(*receiver);
  EXPECT_EQ(stats.delivered, sent.size());
  EXPECT_EQ(stats.malformed, 0u);
}

TEST(ZmqChannel, PushRoundTrip) {
  Collector got;
  auto receiver = make_receiver(receiver_options(Mode::kPush), got.handler());
  auto sender = make_sender(sender_options(Mode::kPush, bound_endpoint(*receiver)));
  std::vector<std::string> sent = names("p-", 500);
  for (const std::string& f : sent) ASSERT_TRUE(sender->send(f, kWaitMs));
  EXPECT_TRUE(sender->drain(kWaitMs));
  ASSERT_TRUE(got.wait_for(sent.size()));
  EXPECT_EQ(got.frames(), sent);
}

TEST(ZmqChannel, PubSubRoundTripWithTopic) {
  Collector got;
  ReceiverOptions ro = receiver_options(Mode::kPubSub);
  ro.topic = "weather";
  auto receiver = make_receiver(ro, got.handler());
  SenderOptions so = sender_options(Mode::kPubSub, bound_endpoint(*receiver));
  so.topic = "weather/pi-1";
  auto sender = make_sender(so);
  // PUB drops frames until the subscription has reached it: probe until one arrives.
  ASSERT_TRUE(eventually([&] {
    sender->send("probe", kWaitMs);
    return got.wait_for(1, 20);
  }));
  std::vector<std::string> sent = names("s-", 200);
  for (const std::string& f : sent) ASSERT_TRUE(sender->send(f, kWaitMs));
  ASSERT_TRUE(sender->drain(kWaitMs));
  ASSERT_TRUE(eventually([&] { return got.frames().size() >= 1 + sent.size(); }));
  std::vector<std::string> frames = got.frames();
  // Best effort, but loopback with room in every queue loses nothing: the frames after the
  // probes arrive in order.
  std::vector<std::string> tail(frames.end() - static_cast<long>(sent.size()), frames.end());
  EXPECT_EQ(tail, sent);
}

TEST(ZmqChannel, PubSubFiltersOnTopic) {
  Collector got;
  ReceiverOptions ro = receiver_options(Mode::kPubSub);
  ro.topic = "a";
  auto receiver = make_receiver(ro, got.handler());
  SenderOptions sb = sender_options(Mode::kPubSub, bound_endpoint(*receiver));
  sb.topic = "b";
  SenderOptions sa = sb;
  sa.topic = "a";
  auto other = make_sender(sb);
  auto wanted = make_sender(sa);
  ASSERT_TRUE(eventually([&] {
    other->send("from-b", kWaitMs);
    wanted->send("from-a", kWaitMs);
    return got.wait_for(1, 20);
  }));
  for (const std::string& f : got.frames()) EXPECT_EQ(f, "from-a");
}

TEST(ZmqChannel, AckedReceiverStartingLateGetsEverythingOnce) {
  std::string endpoint = free_endpoint();
  auto sender = make_sender(sender_options(Mode::kAcked, endpoint, "late"));
  std::vector<std::string> sent = names("l-", 200);
  for (const std::string& f : sent) ASSERT_TRUE(sender->send(f, kWaitMs));
  EXPECT_EQ(sender->unacknowledged(), sent.size());
  EXPECT_FALSE(sender->drain(300));  // nobody to acknowledge

  Collector got;
  auto receiver = make_receiver(receiver_options(Mode::kAcked, endpoint), got.handler());
  ASSERT_TRUE(sender->drain(kWaitMs));
  EXPECT_EQ(got.frames(), sent);  // exactly once, in order, despite the resends
  EXPECT_EQ(sender->unacknowledged(), 0u);
}

// What the restart test checks is the guarantee: every frame reaches a handler at least once;
// each receiver object sees a sender's frames in order and without duplicates; frames seen by
// both receivers are only ones the first delivered but had not acknowledged when it stopped.
TEST(ZmqChannel, AckedReceiverRestartMidStreamLosesNothing) {
  constexpr int kReceivers = 3;  // the first, and two restarts on the same endpoint
  std::vector<std::unique_ptr<Collector>> got;
  got.push_back(std::make_unique<Collector>());
  auto receiver = make_receiver(receiver_options(Mode::kAcked), got.back()->handler());
  const std::string endpoint = bound_endpoint(*receiver);
  SenderOptions so = sender_options(Mode::kAcked, endpoint, "restart");
  so.window = 50;
  auto sender = make_sender(so);
  std::vector<std::string> sent = names("r-", 1500);
  std::atomic<bool> all_taken{true};
  std::thread producer([&] {
    for (const std::string& f : sent) {
      if (!sender->send(f, kWaitMs)) all_taken = false;
    }
  });
  for (int k = 1; k < kReceivers; ++k) {
    ASSERT_TRUE(got.back()->wait_for(200));
    receiver->stop();
    receiver.reset();
    got.push_back(std::make_unique<Collector>());
    receiver = make_receiver(receiver_options(Mode::kAcked, endpoint), got.back()->handler());
  }
  producer.join();
  ASSERT_TRUE(all_taken);
  ASSERT_TRUE(sender->drain(kWaitMs));

  // In order within each receiver: the sequence numbers rise.
  auto ascending = [](const std::vector<std::string>& v) {
    for (size_t i = 1; i < v.size(); ++i) {
      if (std::stoi(v[i].substr(2)) <= std::stoi(v[i - 1].substr(2))) return false;
    }
    return true;
  };
  std::set<std::string> seen;
  size_t total = 0;
  for (const auto& c : got) {
    std::vector<std::string> frames = c->frames();
    EXPECT_FALSE(has_duplicates(frames));
    EXPECT_TRUE(ascending(frames));
    seen.insert(frames.begin(), frames.end());
    total += frames.size();
  }
  EXPECT_EQ(seen, std::set<std::string>(sent.begin(), sent.end()));
  // Seen twice: at most a window per restart (delivered, not yet acknowledged).
  EXPECT_LE(total - seen.size(), static_cast<size_t>(so.window * (kReceivers - 1)));
  EXPECT_TRUE(eventually([&] { return sender->reconnects() >= kReceivers - 1; }));
}

TEST(ZmqChannel, FullWindowBlocksSendUntilTimeout) {
  SenderOptions so = sender_options(Mode::kAcked, free_endpoint(), "blocked");
  so.window = 5;
  auto sender = make_sender(so);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(sender->send(frame_name("w-", i), 0));
  EXPECT_FALSE(sender->send("one too many", 200));
  EXPECT_EQ(sender->unacknowledged(), 5u);
  EXPECT_FALSE(sender->drain(100));
  // Destroying a sender with frames unacknowledged returns (linger 0).
}

TEST(ZmqChannel, TwoSendersFanIn) {
  Collector got;
  auto receiver = make_receiver(receiver_options(Mode::kAcked), got.handler());
  const std::string endpoint = bound_endpoint(*receiver);
  auto a = make_sender(sender_options(Mode::kAcked, endpoint, "pi-1"));
  auto b = make_sender(sender_options(Mode::kAcked, endpoint, "pi-2"));
  std::thread ta([&] {
    for (const std::string& f : names("a-", 300)) a->send(f, kWaitMs);
  });
  std::thread tb([&] {
    for (const std::string& f : names("b-", 300)) b->send(f, kWaitMs);
  });
  ta.join();
  tb.join();
  ASSERT_TRUE(a->drain(kWaitMs));
  ASSERT_TRUE(b->drain(kWaitMs));
  std::vector<std::string> from_a, from_b;
  for (const std::string& f : got.frames()) (f[0] == 'a' ? from_a : from_b).push_back(f);
  EXPECT_EQ(from_a, names("a-", 300));
  EXPECT_EQ(from_b, names("b-", 300));
}

TEST(ZmqChannel, RestartedSenderWithSameIdentityIsNotTakenForDuplicates) {
  Collector got;
  auto receiver = make_receiver(receiver_options(Mode::kAcked), got.handler());
  const std::string endpoint = bound_endpoint(*receiver);
  for (int run = 0; run < 2; ++run) {
    auto sender = make_sender(sender_options(Mode::kAcked, endpoint, "same-id"));
    for (const std::string& f : names("run" + std::to_string(run) + "-", 10)) {
      ASSERT_TRUE(sender->send(f, kWaitMs));
    }
    ASSERT_TRUE(sender->drain(kWaitMs));
  }
  std::vector<std::string> want = names("run0-", 10);
  for (const std::string& f : names("run1-", 10)) want.push_back(f);
  EXPECT_EQ(got.frames(), want);
}

// A raw DEALER speaks the protocol: duplicates are acknowledged but not delivered, a frame
// after a gap waits for the missing one, and acks are cumulative.
TEST(ZmqChannel, AckedReceiverDeduplicatesAndKeepsOrder) {
  Collector got;
  auto receiver = make_receiver(receiver_options(Mode::kAcked), got.handler());
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::routing_id, "raw");
  dealer.connect(bound_endpoint(*receiver));
  const uint64_t session = 42;
  auto exchange = [&](uint64_t seq, uint64_t base, const std::string& payload) {
    send_parts(dealer, {header(session, seq, base), payload});
    std::vector<std::string> ack = recv_parts(dealer);
    EXPECT_EQ(ack.size(), 1u);
    if (ack.size() != 1 || ack[0].size() != 16) return uint64_t{0};
    EXPECT_EQ(read_u64(ack[0], 0), session);
    return read_u64(ack[0], 8);  // next expected
  };
  EXPECT_EQ(exchange(1, 1, "one"), 2u);
  EXPECT_EQ(exchange(1, 1, "one again"), 2u);  // duplicate
  EXPECT_EQ(exchange(3, 1, "three"), 2u);      // after a gap: dropped
  EXPECT_EQ(exchange(2, 1, "two"), 3u);
  EXPECT_EQ(exchange(3, 1, "three"), 4u);
  // base above next: the frames below were acknowledged by another receiver.
  EXPECT_EQ(exchange(10, 10, "ten"), 11u);
  EXPECT_EQ(got.frames(), (std::vector<std::string>{"one", "two", "three", "ten"}));
  ReceiverStats stats = receiver_stats(*receiver);
  EXPECT_EQ(stats.duplicates, 1u);
  EXPECT_EQ(stats.out_of_order, 1u);
}

TEST(ZmqChannel, HostileFramesAreDroppedAndCounted) {
  Collector acked_got, push_got, sub_got;
  auto acked = make_receiver(receiver_options(Mode::kAcked), acked_got.handler());
  auto pull = make_receiver(receiver_options(Mode::kPush), push_got.handler());
  auto sub = make_receiver(receiver_options(Mode::kPubSub), sub_got.handler());
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(bound_endpoint(*acked));
  send_parts(dealer, {"only one part"});
  send_parts(dealer, {"short", "payload"});
  send_parts(dealer, {header(1, 1, 1), "payload", "extra"});
  send_parts(dealer, {""});
  send_parts(dealer, {header(1, 1, 1).substr(0, 23), "payload"});

  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(bound_endpoint(*pull));
  send_parts(push, {"a", "b"});
  send_parts(push, {"fine"});

  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.connect(bound_endpoint(*sub));
  ASSERT_TRUE(eventually([&] {
    send_parts(pub, {"one part"});
    send_parts(pub, {"t", "x", "three parts"});
    send_parts(pub, {"t", "fine"});
    return sub_got.wait_for(1, 20);
  }));

  ASSERT_TRUE(eventually([&] { return receiver_stats(*acked).malformed >= 5; }));
  EXPECT_TRUE(push_got.wait_for(1));
  EXPECT_EQ(push_got.frames(), std::vector<std::string>{"fine"});
  EXPECT_EQ(receiver_stats(*pull).malformed, 1u);
  EXPECT_GE(receiver_stats(*sub).malformed, 2u);
  for (const std::string& f : sub_got.frames()) EXPECT_EQ(f, "fine");
  EXPECT_TRUE(acked_got.frames().empty());

  // The receivers still work.
  auto sender = make_sender(sender_options(Mode::kAcked, bound_endpoint(*acked), "after"));
  ASSERT_TRUE(sender->send("ok", kWaitMs));
  ASSERT_TRUE(sender->drain(kWaitMs));
  EXPECT_EQ(acked_got.frames(), std::vector<std::string>{"ok"});
}

// A raw ROUTER plays a hostile receiver: garbage acks are ignored, a true one is honoured.
TEST(ZmqChannel, SenderIgnoresHostileAcks) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  auto sender =
      make_sender(sender_options(Mode::kAcked, router.get(zmq::sockopt::last_endpoint), "victim"));
  ASSERT_TRUE(sender->send("hello", kWaitMs));
  std::vector<std::string> data = recv_parts(router);
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[0], "victim");
  ASSERT_EQ(data[1].size(), 24u);
  EXPECT_EQ(data[2], "hello");
  const uint64_t session = read_u64(data[1], 0);
  EXPECT_EQ(read_u64(data[1], 8), 1u);   // seq
  EXPECT_EQ(read_u64(data[1], 16), 1u);  // base

  std::string good = header(session, 2, 0).substr(0, 16);
  send_parts(router, {"victim", "x"});
  send_parts(router, {"victim", good, "extra part"});
  send_parts(router, {"victim", header(session + 1, 2, 0).substr(0, 16)});  // other session
  send_parts(router, {"victim", ""});
  EXPECT_FALSE(sender->drain(300));
  send_parts(router, {"victim", good});
  EXPECT_TRUE(sender->drain(kWaitMs));
}

TEST(ZmqChannel, StopIsIdempotentAndEndsHandlerCalls) {
  Collector got;
  auto receiver = make_receiver(receiver_options(Mode::kPush), got.handler());
  auto sender = make_sender(sender_options(Mode::kPush, bound_endpoint(*receiver)));
  ASSERT_TRUE(sender->send("before", kWaitMs));
  ASSERT_TRUE(got.wait_for(1));
  receiver->stop();
  receiver->stop();
  size_t count = got.frames().size();
  sender->send("after", kWaitMs);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(got.frames().size(), count);
}

TEST(ZmqChannel, BindErrorsNameTheEndpointAndTheFix) {
  Collector got;
  auto receiver = make_receiver(receiver_options(Mode::kAcked), got.handler());
  const std::string taken = bound_endpoint(*receiver);
  try {
    make_receiver(receiver_options(Mode::kAcked, taken), got.handler());
    FAIL() << "bound twice";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(taken), std::string::npos) << what;
    EXPECT_NE(what.find("already in use"), std::string::npos) << what;
    EXPECT_NE(what.find("links.zmq.port"), std::string::npos) << what;
  }
  for (const char* bad : {"tcp://127.0.0.1", "127.0.0.1:5555", "tcp://:5555",
                          "tcp://127.0.0.1:99999", "udp://127.0.0.1:5555", ""}) {
    EXPECT_THROW(make_receiver(receiver_options(Mode::kPush, bad), got.handler()),
                 std::runtime_error)
        << bad;
    EXPECT_THROW(make_sender(sender_options(Mode::kPush, bad)), std::runtime_error) << bad;
  }
  EXPECT_THROW(make_sender(sender_options(Mode::kAcked, "tcp://127.0.0.1:*")), std::runtime_error);
  try {
    make_sender(sender_options(Mode::kAcked, "tcp://127.0.0.1"));
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tcp://127.0.0.1"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("write it like"), std::string::npos);
  }
}

TEST(ZmqChannel, WireBytesCountFramingAndAcks) {
  Collector got;
  auto receiver = make_receiver(receiver_options(Mode::kAcked), got.handler());
  const std::string endpoint = bound_endpoint(*receiver);
  auto push = make_sender(sender_options(Mode::kPush, endpoint));
  auto acked = make_sender(sender_options(Mode::kAcked, endpoint, "wb"));
  SenderOptions po = sender_options(Mode::kPubSub, endpoint);
  po.topic = "topic";
  auto pub = make_sender(po);
  EXPECT_EQ(push->wire_bytes(100), tcp_wire_bytes(102));
  EXPECT_EQ(push->wire_bytes(1000), tcp_wire_bytes(1009));
  EXPECT_EQ(pub->wire_bytes(100), tcp_wire_bytes(7 + 102));
  EXPECT_EQ(acked->wire_bytes(100), tcp_wire_bytes(26 + 102) + tcp_wire_bytes(18));
  EXPECT_GT(acked->wire_bytes(100000), 100000u + 52 * 69);
}

}  // namespace
}  // namespace edgeflow::zmqlink
