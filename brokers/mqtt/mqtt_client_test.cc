// Integration tests of both MQTT clients against a real mosquitto (EmbeddedBroker) on a free
// loopback port. Every wait is bounded; nothing asserts on speed.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/embedded_broker.h"
#include "brokers/mqtt/mqtt_test_util.h"

namespace edgeflow::mqtt {
namespace {

using testing::free_port;
using testing::Inbox;
using testing::run_command;
using testing::wait_until;

// The parameter: a client kind, or "mosquitto-publish-only": libmosquitto, with every client
// made without a message handler (the publishers) publish-only (ClientOptions::publish_only).
class MqttClientTest : public ::testing::TestWithParam<std::string> {
 protected:
  static constexpr char kPublishOnly[] = "mosquitto-publish-only";
  std::string kind() const { return GetParam() == kPublishOnly ? "mosquitto" : GetParam(); }
  ClientOptions options_for(const EmbeddedBroker& broker, const std::string& id = "") {
    ClientOptions o;
    o.uri = broker.uri();
    o.client_id = id.empty() ? "" : id + "-" + GetParam();
    o.reconnect_min_ms = 50;
    o.reconnect_max_ms = 500;
    o.connect_timeout_ms = 5000;
    return o;
  }
  std::unique_ptr<Client> make(ClientOptions o, MessageHandler h = nullptr) {
    if (!h) {
      h = [](Received&&) {};
      o.publish_only = GetParam() == kPublishOnly;
    }
    return make_client(kind(), std::move(o), std::move(h));
  }
};

TEST_P(MqttClientTest, RoundTripAtEveryQos) {
  EmbeddedBroker broker;
  broker.start();
  Inbox inbox;
  auto sub = make(options_for(broker), inbox.handler());
  sub->connect();
  sub->subscribe("rt/#", 2);
  auto pub = make(options_for(broker));
  pub->connect();
  EXPECT_TRUE(pub->connected());
  const std::string binary("a\0b\xff", 4);
  for (int qos = 0; qos <= 2; ++qos) {
    std::string topic = "rt/q" + std::to_string(qos);
    ASSERT_TRUE(pub->publish(topic, binary.data(), binary.size(), qos, false, 5000));
  }
  ASSERT_TRUE(inbox.wait_for(3));
  EXPECT_TRUE(pub->flush(5000));
  std::map<std::string, Received> by_topic;
  for (auto& r : inbox.messages()) by_topic[r.topic] = r;
  ASSERT_EQ(by_topic.size(), 3u);
  for (int qos = 0; qos <= 2; ++qos) {
    const Received& r = by_topic["rt/q" + std::to_string(qos)];
    EXPECT_EQ(r.payload, binary);
    EXPECT_EQ(r.qos, qos);
    EXPECT_FALSE(r.retained);
  }
  ClientStats s = pub->stats();
  EXPECT_EQ(s.published, 3u);
  EXPECT_EQ(s.published_bytes, 12u);
  EXPECT_EQ(s.acknowledged, 2u);  // QoS 1 and 2
  EXPECT_EQ(s.unacknowledged, 0u);
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(sub->stats().received, 3u);
  pub->disconnect();
  pub->disconnect();  // idempotent
  EXPECT_FALSE(pub->connected());
  EXPECT_FALSE(pub->publish("rt/x", "x", 1, 1, false, 100));  // after disconnect: refused
}

TEST_P(MqttClientTest, NothingListeningGivesErrorNamingTheUri) {
  ClientOptions o;
  o.uri = "tcp://127.0.0.1:" + std::to_string(free_port());
  o.connect_timeout_ms = 3000;
  auto c = make(o);
  try {
    c->connect();
    FAIL() << "connect() succeeded with nothing listening";
  } catch (const MqttError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("cannot reach MQTT broker " + o.uri), std::string::npos) << what;
    EXPECT_NE(what.find("connection refused"), std::string::npos) << what;
    EXPECT_NE(what.find("links.mqtt.broker"), std::string::npos) << what;
  }
  EXPECT_FALSE(c->connected());
}

TEST_P(MqttClientTest, BadUriOrKindIsRejected) {
  ClientOptions o;
  o.uri = "http://127.0.0.1:1883";
  try {
    make(o);
    FAIL();
  } catch (const MqttError& e) {
    EXPECT_NE(std::string(e.what()).find("http://127.0.0.1:1883"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("tcp://HOST:PORT"), std::string::npos);
  }
  o.uri = "tcp://127.0.0.1:99999";
  EXPECT_THROW(make(o), MqttError);
  o.uri = "mqtt://localhost";  // default port
  EXPECT_NO_THROW(make(o));
  EXPECT_THROW(make_client("hivemq", o, [](Received&&) {}), MqttError);
}

TEST_P(MqttClientTest, RetryFirstConnectDeliversOnceTheBrokerStarts) {
  EmbeddedBrokerOptions bo;
  bo.port = free_port();
  EmbeddedBroker broker(bo);
  Inbox inbox;
  ClientOptions o = options_for(broker, "late-sub");
  o.retry_first_connect = true;
  auto sub = make(o, inbox.handler());
  sub->subscribe("late/t", 1);  // before connect: made once connected
  sub->connect();               // returns at once, keeps trying
  EXPECT_FALSE(sub->connected());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  broker.start();
  ASSERT_TRUE(wait_until([&] { return sub->connected(); }, 15000));
  auto pub = make(options_for(broker));
  pub->connect();
  // The subscription is renewed by the connect callback, just after connected() turns true.
  ASSERT_TRUE(wait_until(
      [&] {
        pub->publish("late/t", "hi", 2, 1, false, 1000);
        return inbox.size() > 0;
      },
      10000));
  EXPECT_EQ(inbox.messages()[0].payload, "hi");
}

// Broker stopped and started mid-stream: with persistent sessions (clean_session false) and
// QoS 1, every message whose publish() returned true arrives at least once.
TEST_P(MqttClientTest, BrokerRestartLosesNoAcceptedQos1Message) {
  EmbeddedBroker broker;
  broker.start();
  std::mutex mu;
  std::map<std::string, int> seen;  // payload -> times received
  ClientOptions so = options_for(broker, "restart-sub");
  so.clean_session = false;
  auto sub = make(so, [&](Received&& r) {
    std::lock_guard<std::mutex> lock(mu);
    ++seen[r.payload];
  });
  sub->subscribe("restart/t", 1);
  sub->connect();
  ClientOptions po = options_for(broker, "restart-pub");
  po.clean_session = false;
  po.max_inflight = 50;
  auto pub = make(po);
  pub->connect();

  constexpr int kCount = 600;
  std::set<std::string> accepted;
  std::atomic<int> published{0};
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::thread producer([&] {
    for (int i = 0; i < kCount && std::chrono::steady_clock::now() < give_up; ++i) {
      std::string payload = "m" + std::to_string(i);
      if (pub->publish("restart/t", payload.data(), payload.size(), 1, false, 10000))
        accepted.insert(payload);
      published.store(i + 1);
      if (i % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  ASSERT_TRUE(wait_until([&] { return published.load() >= kCount / 3; }, 20000));
  broker.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  broker.start();
  producer.join();
  EXPECT_EQ(accepted.size(), static_cast<size_t>(kCount));
  bool all = wait_until(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& p : accepted)
          if (!seen.count(p)) return false;
        return true;
      },
      30000);
  std::lock_guard<std::mutex> lock(mu);
  int missing = 0, duplicates = 0;
  for (const auto& p : accepted) missing += seen.count(p) ? 0 : 1;
  for (const auto& [p, n] : seen) duplicates += n - 1;
  EXPECT_TRUE(all) << missing << " of " << accepted.size()
                   << " accepted messages never arrived; broker log:\n"
                   << broker.log_tail(60);
  RecordProperty("accepted", static_cast<int>(accepted.size()));
  RecordProperty("duplicates", duplicates);
  std::cout << GetParam() << ": accepted " << accepted.size() << ", received " << seen.size()
            << " distinct, " << duplicates << " duplicates, reconnects pub "
            << pub->stats().reconnects << " sub " << sub->stats().reconnects << ", unacknowledged "
            << pub->stats().unacknowledged << "\n";
  EXPECT_TRUE(pub->flush(10000));
  EXPECT_GE(pub->stats().reconnects, 1u);
  EXPECT_GE(sub->stats().reconnects, 1u);
}

// Broker gone: QoS 1 publishes are kept (up to max_inflight), then publish() blocks and times
// out; QoS 0 is refused at once. After the broker returns, the kept ones are acknowledged.
TEST_P(MqttClientTest, WindowFullBlocksPublishWhileBrokerIsDown) {
  EmbeddedBrokerOptions bo;
  bo.persistence = false;
  EmbeddedBroker broker(bo);
  broker.start();
  ClientOptions o = options_for(broker, "window-pub");
  o.max_inflight = 10;
  auto pub = make(o);
  pub->connect();
  broker.kill();
  ASSERT_TRUE(wait_until([&] { return !pub->connected(); }));
  EXPECT_FALSE(pub->publish("w/t", "zero", 4, 0, false, 100));
  int accepted = 0;
  for (int i = 0; i < 12; ++i) {
    std::string payload = "w" + std::to_string(i);
    if (pub->publish("w/t", payload.data(), payload.size(), 1, false, 200)) ++accepted;
  }
  EXPECT_EQ(accepted, 10);
  EXPECT_EQ(pub->stats().unacknowledged, 10u);
  EXPECT_FALSE(pub->flush(100));
  broker.start();
  EXPECT_TRUE(pub->flush(20000));
  EXPECT_EQ(pub->stats().acknowledged, 10u);
  EXPECT_EQ(pub->stats().unacknowledged, 0u);
  EXPECT_TRUE(pub->publish("w/t", "more", 4, 1, false, 5000));
}

TEST_P(MqttClientTest, MosquittoPubReachesOurSubscriber) {
  EmbeddedBroker broker;
  broker.start();
  Inbox inbox;
  auto sub = make(options_for(broker), inbox.handler());
  sub->connect();
  sub->subscribe("interop/t", 1);
  auto r = run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()),
                        "-t", "interop/t", "-m", "hello", "-q", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_TRUE(inbox.wait_for(1));
  EXPECT_EQ(inbox.messages()[0].payload, "hello");
  EXPECT_EQ(inbox.messages()[0].topic, "interop/t");
}

TEST_P(MqttClientTest, MosquittoSubReadsOurRetainedMessage) {
  EmbeddedBroker broker;
  broker.start();
  auto pub = make(options_for(broker));
  pub->connect();
  ASSERT_TRUE(pub->publish("interop/retained", "kept", 4, 1, true, 5000));
  ASSERT_TRUE(pub->flush(5000));
  auto r = run_command({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()),
                        "-t", "interop/retained", "-C", "1", "-W", "10"},
                       15000);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "kept\n");
}

// Persistence: retained messages and a persistent session's queued QoS 1 messages survive
// stop()/start(), on the same port.
TEST_P(MqttClientTest, BrokerRestartKeepsRetainedAndQueuedMessages) {
  EmbeddedBroker broker;
  broker.start();
  int port = broker.port();
  {
    ClientOptions so = options_for(broker, "away-sub");
    so.clean_session = false;
    auto sub = make(so, [](Received&&) {});
    sub->connect();
    sub->subscribe("keep/queued", 1);
    sub->disconnect();  // away: the broker queues for it
  }
  auto pub = make(options_for(broker));
  pub->connect();
  ASSERT_TRUE(pub->publish("keep/retained", "r", 1, 1, true, 5000));
  ASSERT_TRUE(pub->publish("keep/queued", "q", 1, 1, false, 5000));
  ASSERT_TRUE(pub->flush(5000));
  pub->disconnect();
  broker.stop();
  EXPECT_FALSE(broker.running());
  broker.start();
  EXPECT_TRUE(broker.running());
  EXPECT_EQ(broker.port(), port);

  Inbox queued;
  ClientOptions so = options_for(broker, "away-sub");
  so.clean_session = false;
  auto sub = make(so, queued.handler());
  sub->connect();  // the session and its subscription came back with the broker
  ASSERT_TRUE(queued.wait_for(1));
  EXPECT_EQ(queued.messages()[0].payload, "q");

  Inbox retained;
  auto reader = make(options_for(broker), retained.handler());
  reader->connect();
  reader->subscribe("keep/retained", 1);
  ASSERT_TRUE(retained.wait_for(1));
  EXPECT_EQ(retained.messages()[0].payload, "r");
  EXPECT_TRUE(retained.messages()[0].retained);
}

// A client that vanishes without DISCONNECT (connection cut under it): the broker publishes
// its last will. A clean disconnect() sends none.
TEST_P(MqttClientTest, LastWillOnVanishingButNotOnDisconnect) {
  EmbeddedBroker broker;
  broker.start();
  Inbox inbox;
  auto watcher = make(options_for(broker), inbox.handler());
  watcher->connect();
  watcher->subscribe("status/#", 1);

  testing::TcpProxy proxy(broker.port());
  ClientOptions o = options_for(broker, "will-a");
  o.uri = proxy.uri();
  o.will_topic = "status/a";
  o.will_payload = "offline";
  o.will_retain = false;
  auto a = make(o);
  a->connect();
  ASSERT_TRUE(a->publish("status/a", "online", 6, 1, false, 5000));
  ASSERT_TRUE(inbox.wait_for(1));
  proxy.cut();
  ASSERT_TRUE(inbox.wait_for(2));
  EXPECT_EQ(inbox.messages()[1].topic, "status/a");
  EXPECT_EQ(inbox.messages()[1].payload, "offline");
  a.reset();

  o.uri = broker.uri();
  o.client_id = "will-b-" + GetParam();
  o.will_topic = "status/b";
  auto b = make(o);
  b->connect();
  b->disconnect();
  // A marker published after b's disconnect: when it arrives, a will (if any) came before it.
  auto marker = make(options_for(broker));
  marker->connect();
  ASSERT_TRUE(marker->publish("status/marker", "m", 1, 1, false, 5000));
  ASSERT_TRUE(inbox.wait_for(3));
  EXPECT_EQ(inbox.messages()[2].topic, "status/marker");
}

// A small window, many QoS 1 messages: the publisher never has more than max_inflight
// unacknowledged, waits when it is full, and every message arrives once, in order.
TEST_P(MqttClientTest, ASmallWindowCarriesManyQos1MessagesInOrder) {
  EmbeddedBrokerOptions bo;
  bo.persistence = false;
  EmbeddedBroker broker(bo);
  broker.start();
  Inbox inbox;
  auto sub = make(options_for(broker, "window-sub"), inbox.handler());
  sub->connect();
  sub->subscribe("many/t", 1);
  ClientOptions o = options_for(broker, "window-many");
  o.max_inflight = 8;
  auto pub = make(o);
  pub->connect();
  constexpr int kCount = 3000;
  uint64_t most_unacknowledged = 0;
  for (int i = 0; i < kCount; ++i) {
    const std::string payload = std::to_string(i);
    ASSERT_TRUE(pub->publish("many/t", payload.data(), payload.size(), 1, false, 10000)) << i;
    most_unacknowledged = std::max(most_unacknowledged, pub->stats().unacknowledged);
  }
  ASSERT_TRUE(pub->flush(20000));
  EXPECT_LE(most_unacknowledged, 8u);
  EXPECT_GE(most_unacknowledged, 1u);
  EXPECT_EQ(pub->stats().acknowledged, static_cast<uint64_t>(kCount));
  ASSERT_TRUE(inbox.wait_for(kCount, 20000)) << inbox.size();
  const std::vector<Received> got = inbox.messages();
  ASSERT_EQ(got.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(got[i].payload, std::to_string(i)) << i;
}

TEST(MqttPublishOnly, SubscribingIsRefusedWithTheReason) {
  ClientOptions o;
  o.uri = "tcp://127.0.0.1:1";
  o.publish_only = true;
  auto c = make_client("mosquitto", o, [](Received&&) {});
  try {
    c->subscribe("a/b", 1);
    FAIL() << "subscribe() on a publish-only client returned";
  } catch (const MqttError& e) {
    EXPECT_NE(std::string(e.what()).find("publish-only"), std::string::npos) << e.what();
  }
}

std::vector<std::string> client_params() {
  std::vector<std::string> p = client_kinds();
  p.push_back("mosquitto-publish-only");
  return p;
}

INSTANTIATE_TEST_SUITE_P(Clients, MqttClientTest, ::testing::ValuesIn(client_params()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(TopicMatches, Mqtt311Section47) {
  struct Case {
    const char* filter;
    const char* topic;
    bool match;
  };
  const Case cases[] = {
      {"a/b", "a/b", true},
      {"a/b", "a/c", false},
      {"a/b", "a/b/c", false},
      {"a/b/c", "a/b", false},
      {"#", "a", true},
      {"#", "a/b/c", true},
      {"#", "/a", true},
      {"a/#", "a", true},  // '#' also matches the parent level
      {"a/#", "a/b", true},
      {"a/#", "a/b/c", true},
      {"a/#", "ab", false},
      {"a/b/#", "a", false},
      {"+", "a", true},
      {"+", "a/b", false},
      {"+", "/a", false},
      {"+/+", "/a", true},
      {"/+", "/a", true},
      {"a/+", "a/", true},  // an empty level is a level
      {"a/+", "a", false},
      {"a/+/c", "a/b/c", true},
      {"a/+/c", "a/b/d", false},
      {"+/b/#", "a/b", true},
      {"+/b/#", "x/b/c/d", true},
      {"#", "$SYS/broker", false},  // wildcards at the first level skip $ topics
      {"+/broker", "$SYS/broker", false},
      {"$SYS/#", "$SYS/broker", true},
      {"$SYS/+", "$SYS/broker", true},
      {"a/b#", "a/b", false},  // malformed filters match nothing
      {"a/#/b", "a/x/b", false},
      {"a+/b", "a+/b", false},
      {"", "a", false},
      {"a", "", false},
  };
  for (const Case& c : cases)
    EXPECT_EQ(topic_matches(c.filter, c.topic), c.match)
        << "filter '" << c.filter << "' topic '" << c.topic << "'";
}

TEST(EmbeddedBroker, MissingBinaryIsExplained) {
  EmbeddedBrokerOptions o;
  o.mosquitto = "mosquitto-not-installed-here";
  EmbeddedBroker broker(o);
  try {
    broker.start();
    FAIL();
  } catch (const MqttError& e) {
    EXPECT_NE(std::string(e.what()).find("not found: apt-get install mosquitto"), std::string::npos)
        << e.what();
  }
}

TEST(EmbeddedBroker, TempWorkDirIsRemovedAndProcessStopped) {
  std::string dir;
  int port = 0;
  {
    EmbeddedBroker broker;
    broker.start();
    dir = broker.work_dir();
    port = broker.port();
    EXPECT_TRUE(std::filesystem::exists(dir + "/mosquitto.conf"));
    EXPECT_NE(broker.log_tail().find("running"), std::string::npos) << broker.log_tail();
    EXPECT_NE(broker.uri().find(std::to_string(port)), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  ClientOptions o;
  o.uri = "tcp://127.0.0.1:" + std::to_string(port);
  o.connect_timeout_ms = 2000;
  auto c = make_client("mosquitto", o, [](Received&&) {});
  EXPECT_THROW(c->connect(), MqttError);  // nothing listens any more
}

TEST(EmbeddedBroker, PortTakenFailsWithLogTail) {
  EmbeddedBrokerOptions o;
  o.port = free_port();
  EmbeddedBroker taken(o);  // same port twice: the second cannot bind
  taken.start();
  EmbeddedBroker second(o);
  try {
    second.start();
    FAIL();
  } catch (const MqttError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(std::to_string(o.port)), std::string::npos) << what;
    EXPECT_NE(what.find("Address already in use"), std::string::npos) << what;
  }
  EXPECT_FALSE(second.running());
  EXPECT_TRUE(taken.running());
}

}  // namespace
}  // namespace edgeflow::mqtt
