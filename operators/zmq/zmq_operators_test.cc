#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "brokers/codec.h"
#include "brokers/zmq/zmq_test_support.h"
#include "runtime/operator.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

using namespace std::chrono_literals;

constexpr int kWaitMs = 20000;  // bound on every wait; tests normally finish far sooner

using zmqlink::testing::free_endpoint;

// Steps a source until `port` holds `n` messages (or the wait ends). `between` runs before
// each wait, e.g. to publish again while a subscription is on its way.
bool collect(OperatorHarness& h, size_t n, const std::string& port = "out",
             const std::function<void()>& between = {}) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  for (;;) {
    h.step();
    if (h.output(port).size() >= n) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (between) between();
    h.wait_for_wake(50);
  }
}

std::string q(const std::string& s) { return "\"" + s + "\""; }

const Value* field(const MessagePtr& m, const std::string& key) {
  return find_field(m->fields, key);
}

TEST(ZmqOperators, PushToPullCarriesWholeMessages) {
  const std::string endpoint = free_endpoint();
  OperatorHarness sub("zmq.subscribe", "{endpoint: " + q(endpoint) + ", mode: pull}", "cloud");
  sub.open();  // binds (pull binds by default)
  OperatorHarness pub("zmq.publish", "{endpoint: " + q(endpoint) + ", mode: push}", "pi-1");
  for (int i = 0; i < 50; ++i) {
    pub.push_reading(1'000'000 * i, {{"n", i}, {"temperature", 20.5 + i}, {"site", "roof"}});
  }
  auto frame = std::make_shared<Message>();
  frame->stream = "camera";
  frame->origin = "pi-1";
  frame->event_time_us = 77;
  frame->seq = 9;
  frame->fields = {{"boxes", Array{int64_t{1}, int64_t{2}}}};
  frame->blob.type = "image/jpeg";
  frame->blob.bytes = std::make_shared<const std::string>(std::string("\xff\xd8\x00jpeg", 7));
  pub.push(frame);
  pub.finish();
  EXPECT_TRUE(pub.errors().empty());

  ASSERT_TRUE(collect(sub, 51));
  const auto& got = sub.output();
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(*field(got[i], "n"), Value(i));
    EXPECT_EQ(*field(got[i], "site"), Value("roof"));
    EXPECT_EQ(got[i]->event_time_us, 1'000'000 * i);
    EXPECT_EQ(got[i]->origin, "pi-1");
    EXPECT_EQ(got[i]->stream, "input");
  }
  EXPECT_EQ(got[50]->stream, "camera");
  EXPECT_EQ(got[50]->seq, 9u);
  EXPECT_EQ(got[50]->fields, frame->fields);
  EXPECT_EQ(got[50]->blob.type, "image/jpeg");
  ASSERT_TRUE(got[50]->blob.bytes);
  EXPECT_EQ(*got[50]->blob.bytes, *frame->blob.bytes);
  EXPECT_TRUE(sub.errors().empty());
  sub.finish();
}

TEST(ZmqOperators, PubToSubAsJsonWithTopicTemplate) {
  const std::string endpoint = free_endpoint();
  OperatorHarness pub(
      "zmq.publish",
      "{endpoint: " + q(endpoint) + ", topic: \"weather/{node}/{stream}\", " + "format: json}",
      "pi-1", "feed");
  pub.open();  // binds (pub binds by default)
  OperatorHarness sub("zmq.subscribe",
                      "{endpoint: " + q(endpoint) + ", topic: \"weather/pi-1/\", format: json}");
  OperatorHarness other("zmq.subscribe", "{endpoint: " + q(endpoint) +
                                             ", topic: \"weather/pi-2/\", " + "format: json}");
  other.open();
  // PUB drops messages until a subscription has arrived: publish until one gets through.
  int n = 0;
  ASSERT_TRUE(collect(sub, 1, "out", [&] { pub.push_reading(0, {{"n", n++}}); }));
  const int first = static_cast<int>(field(sub.output()[0], "n")->number().value());
  pub.push_reading(5, {{"n", 1000},
                       {"t", 21.25},
                       {"ok", true},
                       {"none", Value()},
                       {"list", Array{int64_t{1}, "two"}},
                       {"nested", Fields{{"a", int64_t{-3}}}}});
  ASSERT_TRUE(collect(sub, 2 + (n - 1 - first)));
  const MessagePtr& last = sub.output().back();
  EXPECT_EQ(*field(last, "n"), Value(1000));
  EXPECT_EQ(*field(last, "t"), Value(21.25));
  EXPECT_EQ(*field(last, "ok"), Value(true));
  EXPECT_TRUE(field(last, "none")->is_null());
  EXPECT_EQ(*field(last, "list"), Value(Array{int64_t{1}, "two"}));
  EXPECT_EQ(*field(last, "nested"), Value(Fields{{"a", int64_t{-3}}}));
  EXPECT_EQ(last->stream, "under-test");  // json: this stage's message, stamped on arrival
  other.step();
  EXPECT_TRUE(other.output().empty()) << "filtered out by topic";
  EXPECT_TRUE(sub.errors().empty());
}

TEST(ZmqOperators, PublishTalksToRawPeers) {
  zmq::context_t ctx(1);
  // A raw SUB connects to zmq.publish's PUB and sees [topic][payload].
  const std::string pub_endpoint = free_endpoint();
  OperatorHarness pub("zmq.publish",
                      "{endpoint: " + q(pub_endpoint) + ", topic: \"t/{stage}\", format: json}",
                      "pi-1", "feed");
  pub.open();
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "t/");
  sub.set(zmq::sockopt::rcvtimeo, 50);
  sub.connect(pub_endpoint);
  std::vector<std::string> parts;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (parts.empty() && std::chrono::steady_clock::now() < deadline) {
    pub.push_reading(0, {{"x", 1}});
    zmq::message_t m;
    while (sub.recv(m)) {
      parts.push_back(m.to_string());
      if (!m.more()) break;
    }
  }
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], "t/feed");
  EXPECT_EQ(parts[1], R"({"x":1})");

  // A raw PULL binds; zmq.publish pushes raw blob bytes to it.
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::linger, 0);
  pull.set(zmq::sockopt::rcvtimeo, kWaitMs);
  pull.bind("tcp://127.0.0.1:*");
  OperatorHarness push("zmq.publish", "{endpoint: " + q(pull.get(zmq::sockopt::last_endpoint)) +
                                          ", mode: push, format: raw}");
  auto blob = std::make_shared<Message>();
  blob->blob.type = "application/octet-stream";
  blob->blob.bytes = std::make_shared<const std::string>(std::string("\x00\x01\x02", 3));
  push.push(blob);
  push.push_reading(0, {{"no", "blob"}});
  zmq::message_t m;
  ASSERT_TRUE(pull.recv(m));
  EXPECT_EQ(m.to_string(), std::string("\x00\x01\x02", 3));
  ASSERT_EQ(push.errors().size(), 1u);
  EXPECT_NE(push.errors()[0].find("format raw"), std::string::npos) << push.errors()[0];
  EXPECT_EQ(push.output("error").size(), 1u);
}

TEST(ZmqOperators, MalformedPayloadsGoToTheErrorOutput) {
  zmq::context_t ctx(1);
  const std::string msgpack_endpoint = free_endpoint();
  OperatorHarness sub("zmq.subscribe", "{endpoint: " + q(msgpack_endpoint) + ", mode: pull}");
  sub.open();
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(msgpack_endpoint);
  Message good;
  good.stream = "sensors";
  good.origin = "pi-1";
  good.event_time_us = 1'700'000'000'000'000;
  good.fields = {{"v", int64_t{7}}, {"temperature", 21.5}};
  std::string encoded;
  encode_message(good, encoded);
  push.send(zmq::buffer(std::string("not msgpack at all")));
  push.send(zmq::buffer(encoded + "trailing"));
  push.send(zmq::buffer(std::string("a")), zmq::send_flags::sndmore);
  push.send(zmq::buffer(std::string("b")));
  push.send(zmq::buffer(encoded.substr(0, encoded.size() / 2)));
  push.send(zmq::buffer(encoded));
  ASSERT_TRUE(collect(sub, 1)) << ::testing::PrintToString(sub.errors());
  ASSERT_TRUE(collect(sub, 4, "error"));
  EXPECT_EQ(*field(sub.output()[0], "v"), Value(7));
  ASSERT_EQ(sub.errors().size(), 4u);
  EXPECT_NE(sub.errors()[0].find("malformed msgpack"), std::string::npos) << sub.errors()[0];
  EXPECT_NE(sub.errors()[1].find("bytes after"), std::string::npos) << sub.errors()[1];
  EXPECT_NE(sub.errors()[2].find("2 parts"), std::string::npos) << sub.errors()[2];

  const std::string json_endpoint = free_endpoint();
  OperatorHarness js("zmq.subscribe",
                     "{endpoint: " + q(json_endpoint) + ", mode: pull, format: json}");
  js.open();
  zmq::socket_t push2(ctx, zmq::socket_type::push);
  push2.set(zmq::sockopt::linger, 0);
  push2.connect(json_endpoint);
  std::string deep = std::string(200, '[') + std::string(200, ']');
  for (const std::string& text :
       {std::string("{bad"), std::string("[1,2]"), "{\"d\":" + deep + "}", std::string(""),
        std::string(R"({"a":1,"big":18446744073709551615})")}) {
    push2.send(zmq::buffer(text));
  }
  ASSERT_TRUE(collect(js, 1));
  ASSERT_TRUE(collect(js, 4, "error"));
  EXPECT_EQ(*field(js.output()[0], "a"), Value(1));
  EXPECT_TRUE(field(js.output()[0], "big")->number().has_value());
  EXPECT_NE(js.errors()[2].find("deeper"), std::string::npos) << js.errors()[2];
  // The stage goes on after bad input.
  push2.send(zmq::buffer(std::string(R"({"after":true})")));
  ASSERT_TRUE(collect(js, 2));
  EXPECT_EQ(*field(js.output()[1], "after"), Value(true));
}

TEST(ZmqOperators, RawFormatMakesBlobs) {
  zmq::context_t ctx(1);
  const std::string endpoint = free_endpoint();
  OperatorHarness sub("zmq.subscribe", "{endpoint: " + q(endpoint) +
                                           ", mode: pull, format: raw, blob_type: image/jpeg}");
  sub.open();
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(endpoint);
  push.send(zmq::buffer(std::string("\xff\xd8\xff", 3)));
  ASSERT_TRUE(collect(sub, 1));
  const MessagePtr& m = sub.output()[0];
  EXPECT_EQ(m->blob.type, "image/jpeg");
  ASSERT_TRUE(m->blob.bytes);
  EXPECT_EQ(*m->blob.bytes, std::string("\xff\xd8\xff", 3));
  EXPECT_EQ(m->origin, "edge");
}

TEST(ZmqOperators, StopDeliversWhatIsQueuedThenEnds) {
  zmq::context_t ctx(1);
  const std::string endpoint = free_endpoint();
  OperatorHarness sub("zmq.subscribe",
                      "{endpoint: " + q(endpoint) + ", mode: pull, format: json, queue: 1000}");
  sub.open();
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(endpoint);
  push.send(zmq::buffer(std::string(R"({"n":0})")));
  ASSERT_TRUE(collect(sub, 1));  // connected and flowing
  for (int i = 1; i < 200; ++i) push.send(zmq::buffer(R"({"n":)" + std::to_string(i) + "}"));
  // Give the socket thread time to queue them; what is queued when stopping is delivered.
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(sub.op().on_stop(sub));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  SourceStep step;
  do {
    step = sub.step();
    if (step.kind == SourceStep::kWaitUntil) sub.wait_for_wake(50);
  } while (step.kind != SourceStep::kDone && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(step.kind, SourceStep::kDone);
  const auto& got = sub.output();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(*field(got[i], "n"), Value(int64_t(i)));
  EXPECT_EQ(got.size(), 200u);
  sub.finish();
}

TEST(ZmqOperators, PushWithNoPeerTimesOutThenDropsWithoutWaiting) {
  OperatorHarness pub("zmq.publish",
                      "{endpoint: " + q(free_endpoint()) + ", mode: push, hwm: 1, timeout: 100ms}");
  for (int i = 0; i < 5; ++i) pub.push_reading(i, {{"n", i}});
  // A PUSH socket queues up to hwm for a peer that is not there yet; the rest is dropped.
  EXPECT_GE(pub.errors().size(), 3u);
  EXPECT_NE(pub.errors().back().find("dropped"), std::string::npos);
  pub.finish();

  OperatorHarness bcast("zmq.publish", "{endpoint: " + q(free_endpoint()) + "}");
  for (int i = 0; i < 5; ++i) bcast.push_reading(i, {{"n", i}});
  EXPECT_TRUE(bcast.errors().empty()) << "PUB without subscribers drops silently";
}

TEST(ZmqOperators, OptionAndOpenErrors) {
  auto problems = [](const std::string& op, const std::string& yaml) {
    return OperatorHarness::option_problems(op, yaml);
  };
  EXPECT_NE(problems("zmq.publish", "{endpoint: \"tcp://host\"}").find("no port"),
            std::string::npos);
  EXPECT_NE(problems("zmq.publish", "{endpoint: \"tcp://h:1\", mode: push, topic: x}")
                .find("only mode pub"),
            std::string::npos);
  EXPECT_NE(problems("zmq.subscribe", "{endpoint: \"tcp://h:*\"}").find("only works when"),
            std::string::npos);
  EXPECT_NE(problems("zmq.subscribe", "{endpoint: \"tcp://h:1\", mode: pull, topic: x}")
                .find("only mode sub"),
            std::string::npos);
  EXPECT_FALSE(problems("zmq.subscribe", "{endpoint: \"tcp://h:1\", mode: bogus}").empty());
  EXPECT_EQ(problems("zmq.subscribe", "{endpoint: \"tcp://0.0.0.0:*\", mode: pull}"), "");

  zmq::context_t ctx(1);
  zmq::socket_t holder(ctx, zmq::socket_type::pull);
  holder.set(zmq::sockopt::linger, 0);
  holder.bind("tcp://127.0.0.1:*");
  const std::string taken = holder.get(zmq::sockopt::last_endpoint);
  for (const char* op : {"zmq.subscribe", "zmq.publish"}) {
    OperatorHarness h(op, "{endpoint: " + q(taken) + ", bind: true}");
    try {
      h.open();
      ADD_FAILURE() << op << " bound a port in use";
    } catch (const OperatorError& e) {
      EXPECT_NE(std::string(e.what()).find(taken), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("already in use"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace edgeflow
