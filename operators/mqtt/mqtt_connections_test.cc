// Which mqtt.* stages share a connection (mqtt_connections.h), against a real mosquitto on a
// free port: a relay's publisher rides on its clean subscriber's connection; a persistent
// session, a client id set by hand and Paho keep their own.
#include "operators/mqtt/mqtt_connections.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "brokers/mqtt/embedded_broker.h"
#include "brokers/mqtt/mqtt_test_util.h"
#include "operators/mqtt/mqtt_payload.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

using mqtt::testing::Inbox;
using mqtt::testing::wait_until;

class MqttConnectionsTest : public ::testing::Test {
 protected:
  void SetUp() override { broker_.start(); }

  mqtt::ClientOptions options(const std::string& id) {
    mqtt::ClientOptions o;
    o.uri = broker_.uri();
    o.client_id = id;
    return o;
  }

  mqtt::EmbeddedBroker broker_;
};

TEST_F(MqttConnectionsTest, AQos0PublisherRidesOnTheCleanSubscribersConnection) {
  std::atomic<int> got{0};
  auto sub = mqttop::connect_subscriber("p/n", "mosquitto", options("sub"), true,
                                        [&](mqtt::Received&&) { ++got; });
  auto pub = mqttop::connect_publisher("p/n", "mosquitto", options("pub"), true);
  auto pub2 = mqttop::connect_publisher("p/n", "mosquitto", options("pub2"), true);
  EXPECT_TRUE(pub.shared());
  EXPECT_EQ(pub.client(), sub.client());
  EXPECT_EQ(pub2.client(), sub.client());

  // The subscriber gets what is published on the connection it shares.
  sub.client()->subscribe("relay/#", 0);
  ASSERT_TRUE(pub.client()->publish("relay/a", "x", 1, 0, false));
  EXPECT_TRUE(wait_until([&] { return got.load() == 1; }, 5000));

  // Detached, it gets nothing more, while the publishers go on over the same connection.
  sub.release();
  Inbox outside;
  auto watcher = mqtt::make_client("mosquitto", options("watcher"), outside.handler());
  watcher->connect();
  watcher->subscribe("relay/#", 0);
  ASSERT_TRUE(pub.client()->publish("relay/b", "y", 1, 0, false));
  EXPECT_TRUE(outside.wait_for(1, 5000));
  EXPECT_EQ(got.load(), 1);
  EXPECT_TRUE(pub.client()->connected());

  // A new subscriber gets a connection of its own: the first one's filters are still on
  // this one, and their messages are not for it.
  std::atomic<int> got2{0};
  auto sub2 = mqttop::connect_subscriber("p/n", "mosquitto", options("sub2"), true,
                                         [&](mqtt::Received&&) { ++got2; });
  EXPECT_NE(sub2.client(), pub.client());
  ASSERT_TRUE(pub.client()->publish("relay/c", "z", 1, 0, false));
  EXPECT_TRUE(outside.wait_for(2, 5000));
  EXPECT_EQ(got2.load(), 0);
}

// A relay's chain runs on the shared network thread, which also reads the acknowledgements:
// a QoS 1 publish from there queues beyond a full window instead of waiting for them.
TEST_F(MqttConnectionsTest, AQos1PublishFromTheNetworkThreadNeverWaitsForItsOwnAcks) {
  mqtt::ClientOptions o = options("sub");
  o.max_inflight = 2;  // full at once
  std::atomic<int> relayed{0}, refused{0};
  mqtt::Client* shared = nullptr;
  std::atomic<bool> ready{false};
  auto sub = mqttop::connect_subscriber("p/n", "mosquitto", o, true, [&](mqtt::Received&& r) {
    if (!ready.load()) return;
    // Without the exception for its own thread this would wait 3 s and give up.
    if (shared->publish("relay/out", r.payload.data(), r.payload.size(), 1, false, 3000))
      ++relayed;
    else
      ++refused;
  });
  auto pub = mqttop::connect_publisher("p/n", "mosquitto", o, true);
  ASSERT_EQ(pub.client(), sub.client());
  shared = pub.client();
  ready.store(true);
  sub.client()->subscribe("relay/in", 0);

  Inbox outside;
  auto watcher = mqtt::make_client("mosquitto", options("watcher"), outside.handler());
  watcher->connect();
  watcher->subscribe("relay/out", 1);
  auto source = mqtt::make_client("mosquitto", options("source"), [](mqtt::Received&&) {});
  source->connect();
  constexpr int kCount = 2000;
  for (int i = 0; i < kCount; ++i) {
    const std::string m = std::to_string(i);
    ASSERT_TRUE(source->publish("relay/in", m.data(), m.size(), 1, false, 10000));
  }
  ASSERT_TRUE(outside.wait_for(kCount, 20000)) << outside.size() << " of " << kCount;
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(relayed.load(), kCount);
  EXPECT_TRUE(shared->flush(10000));
}

// A publisher waiting on its own thread for a full window while the subscriber's network
// thread is held up by a full queue (in a relay, by that very publisher): no acknowledgement
// can be read until the handler returns, so the publisher must not wait for one.
TEST_F(MqttConnectionsTest, APublisherIsNotStuckBehindTheSubscribersFullQueue) {
  OperatorHarness h("mqtt.subscribe", "{topic: relay/in, qos: 1, persistent: false, queue: 2}",
                    "edge", "in");
  h.mutable_links().mqtt_broker = broker_.uri();
  h.open();
  mqtt::ClientOptions o = mqttop::client_options(mqttop::ClientChoice{}, h);
  auto pub = mqttop::connect_publisher(h.pipeline() + "/" + h.node(), "mosquitto", o, true);
  ASSERT_TRUE(pub.shared());

  auto source = mqtt::make_client("mosquitto", options("source"), [](mqtt::Received&&) {});
  source->connect();
  constexpr int kIn = 50;
  for (int i = 0; i < kIn; ++i) {
    const std::string m = "{\"i\": " + std::to_string(i) + "}";
    ASSERT_TRUE(source->publish("relay/in", m.data(), m.size(), 1, false, 10000));
  }
  ASSERT_TRUE(source->flush(10000));
  // Nobody drains the subscriber: its queue of 2 is full and its network thread waits. It is
  // the publisher's connection too (it has received what the subscriber got).
  ASSERT_TRUE(wait_until([&] { return pub.client()->stats().received >= 3; }, 10000));

  Inbox outside;
  auto watcher = mqtt::make_client("mosquitto", options("watcher"), outside.handler());
  watcher->connect();
  watcher->subscribe("relay/out", 1);
  // More than a window. Each publish may wait 5 s: a deadlock fails here, it does not hang.
  const int kOut = o.max_inflight + 500;
  int published = 0;
  for (; published < kOut; ++published)
    if (!pub.client()->publish("relay/out", "x", 1, 1, false, 5000)) break;
  EXPECT_EQ(published, kOut);

  // Once the subscriber is drained, everything received is emitted in order, and everything
  // published reaches the broker.
  ASSERT_TRUE(wait_until(
      [&] {
        SourceStep st = h.step();
        if (h.output().size() >= static_cast<size_t>(kIn)) return true;
        if (st.kind == SourceStep::kWaitUntil) h.wait_for_wake(50);
        return false;
      },
      10000))
      << h.output().size() << " of " << kIn;
  for (int i = 0; i < kIn; ++i)
    EXPECT_EQ(std::get<int64_t>(find_field(h.output()[i]->fields, "i")->v), i);
  EXPECT_TRUE(outside.wait_for(static_cast<size_t>(published), 20000)) << outside.size();
  EXPECT_TRUE(pub.client()->flush(10000));
  h.finish();
}

// Stages of another pipeline or node in the same process never share a connection with these.
TEST_F(MqttConnectionsTest, SharingStaysWithinOnePipelinesNode) {
  auto sub =
      mqttop::connect_subscriber("p/n", "mosquitto", options("sub"), true, [](mqtt::Received&&) {});
  auto other = mqttop::connect_publisher("q/n", "mosquitto", options("other"), true);
  auto same = mqttop::connect_publisher("p/n", "mosquitto", options("same"), true);
  EXPECT_NE(other.client(), sub.client());
  EXPECT_EQ(same.client(), sub.client());
}

TEST_F(MqttConnectionsTest, WhatMustKeepItsOwnConnectionDoes) {
  auto sub =
      mqttop::connect_subscriber("p/n", "mosquitto", options("sub"), true, [](mqtt::Received&&) {});
  // A second subscriber: one subscriber per connection.
  auto sub2 = mqttop::connect_subscriber("p/n", "mosquitto", options("sub2"), true,
                                         [](mqtt::Received&&) {});
  EXPECT_NE(sub2.client(), sub.client());
  // Not to be shared (a client id set by hand): a connection of its own.
  auto own = mqttop::connect_publisher("p/n", "mosquitto", options("own"), false);
  EXPECT_FALSE(own.shared());
  EXPECT_NE(own.client(), sub.client());
  EXPECT_NE(own.client(), sub2.client());
  // A persistent session is never shared, and no publisher joins it.
  mqtt::ClientOptions persistent = options("persistent");
  persistent.clean_session = false;
  auto keeper =
      mqttop::connect_subscriber("p/n", "mosquitto", persistent, true, [](mqtt::Received&&) {});
  EXPECT_FALSE(keeper.shared());
  EXPECT_EQ(keeper.client()->options().client_id, "persistent");
  // Paho clients are not shared.
  auto paho = mqttop::connect_publisher("p/n", "paho", options("paho-pub"), true);
  EXPECT_FALSE(paho.shared());
  // A last will belongs to one client.
  mqtt::ClientOptions with_will = options("will");
  with_will.will_topic = "gone";
  auto willed = mqttop::connect_publisher("p/n", "mosquitto", with_will, true);
  EXPECT_FALSE(willed.shared());
}

TEST_F(MqttConnectionsTest, AnUnreachableBrokerIsAnErrorAndLeavesNothingBehind) {
  mqtt::ClientOptions o = options("pub");
  broker_.stop();
  o.connect_timeout_ms = 500;
  EXPECT_THROW(mqttop::connect_publisher("p/n", "mosquitto", o, true), mqtt::MqttError);
  broker_.start();  // the same port: a failed connection was not kept for sharing
  auto pub = mqttop::connect_publisher("p/n", "mosquitto", o, true);
  EXPECT_TRUE(pub.client()->connected());
}

}  // namespace
}  // namespace edgeflow
