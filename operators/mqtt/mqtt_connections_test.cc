// Which mqtt.* stages share a connection (mqtt_connections.h), against a real mosquitto on a
// free port: a relay's QoS 0 publisher rides on its clean subscriber's connection; a
// persistent session, a client id set by hand, a QoS 1 publisher and Paho keep their own.
#include "operators/mqtt/mqtt_connections.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "brokers/mqtt/embedded_broker.h"
#include "brokers/mqtt/mqtt_test_util.h"

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
  // Not to be shared (a client id set by hand, a QoS 1 publisher): a connection of its own.
  auto own = mqttop::connect_publisher("p/n", "mosquitto", options("own"), false);
  EXPECT_FALSE(own.shared());
  // It writes on the publisher's thread (mqtt::ClientOptions::publish_only); a subscriber's
  // connection does not.
  EXPECT_TRUE(own.client()->options().publish_only);
  EXPECT_FALSE(sub.client()->options().publish_only);
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
