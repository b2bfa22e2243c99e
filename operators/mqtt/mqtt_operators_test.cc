// mqtt.subscribe and mqtt.publish under the harness, against a real mosquitto on a free port,
// with both client libraries. Every wait is bounded.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "brokers/codec.h"
#include "brokers/mqtt/client.h"
#include "brokers/mqtt/embedded_broker.h"
#include "brokers/mqtt/mqtt_test_util.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

using mqtt::testing::Inbox;
using mqtt::testing::run_command;
using mqtt::testing::wait_until;

class MqttOperatorsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { broker_.start(); }

  // The stage name goes into the default client id: two stages alive at once need two.
  std::unique_ptr<OperatorHarness> harness(const std::string& op, const std::string& options,
                                           const std::string& node = "edge",
                                           const std::string& stage = "under-test") {
    std::string yaml = options;
    yaml.insert(yaml.size() - 1, ", client: " + GetParam());
    auto h = std::make_unique<OperatorHarness>(op, yaml, node, stage);
    h->mutable_links().mqtt_broker = broker_.uri();
    return h;
  }

  // Calls generate() until `count` messages (outputs plus errors) came out, for at most 10 s.
  static bool pump(OperatorHarness& h, size_t count) {
    return wait_until(
        [&] {
          SourceStep s = h.step();
          if (h.output().size() + h.errors().size() >= count) return true;
          if (s.kind == SourceStep::kWaitUntil) h.wait_for_wake(50);
          return false;
        },
        10000);
  }

  void mosquitto_pub(const std::string& topic, const std::string& message) {
    auto r = run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker_.port()),
                          "-t", topic, "-m", message, "-q", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }

  std::unique_ptr<mqtt::Client> client(Inbox* inbox = nullptr) {
    mqtt::ClientOptions o;
    o.uri = broker_.uri();
    auto c = mqtt::make_client(
        GetParam(), o, inbox ? inbox->handler() : [](mqtt::Received&&) {});
    c->connect();
    return c;
  }

  mqtt::EmbeddedBroker broker_;
};

TEST_P(MqttOperatorsTest, SubscribeTurnsJsonObjectsIntoFields) {
  auto h = harness("mqtt.subscribe", "{topic: [sensors/#, other/x]}");
  h->open();
  mosquitto_pub("sensors/kitchen", R"({"temperature": 21.5, "count": 3, "ok": true, "name": "pi", )"
                                   R"("nested": {"a": 1}, "list": [1, "two"], "none": null})");
  ASSERT_TRUE(pump(*h, 1));
  ASSERT_EQ(h->output().size(), 1u);
  const Message& m = *h->output()[0];
  const Fields& f = m.fields;
  EXPECT_EQ(*find_field(f, "temperature"), Value(21.5));
  EXPECT_EQ(*find_field(f, "count"), Value(int64_t{3}));
  EXPECT_EQ(*find_field(f, "ok"), Value(true));
  EXPECT_EQ(*find_field(f, "name"), Value("pi"));
  EXPECT_EQ(*find_field(f, "nested"), Value(Fields{{"a", Value(int64_t{1})}}));
  EXPECT_EQ(*find_field(f, "list"), Value(Array{Value(int64_t{1}), Value("two")}));
  EXPECT_TRUE(find_field(f, "none")->is_null());
  EXPECT_EQ(*find_field(f, "topic"), Value("sensors/kitchen"));
  EXPECT_EQ(m.event_time_us, h->now_us());  // no time_field: the time of reception
  EXPECT_EQ(m.origin, "edge");
  EXPECT_EQ(m.stream, "under-test");
}

TEST_P(MqttOperatorsTest, MalformedPayloadGoesToErrorsAndTheNextOneArrives) {
  auto h = harness("mqtt.subscribe", "{topic: s/t}");
  h->open();
  mosquitto_pub("s/t", "{not json");
  mosquitto_pub("s/t", "[1, 2]");
  mosquitto_pub("s/t", R"({"v": 1})");
  ASSERT_TRUE(pump(*h, 3));
  ASSERT_EQ(h->errors().size(), 2u);
  EXPECT_NE(h->errors()[0].find("topic 's/t'"), std::string::npos) << h->errors()[0];
  EXPECT_NE(h->errors()[0].find("invalid JSON"), std::string::npos) << h->errors()[0];
  EXPECT_NE(h->errors()[1].find("not a JSON object"), std::string::npos) << h->errors()[1];
  EXPECT_EQ(h->output("error").size(), 2u);
  ASSERT_EQ(h->output().size(), 1u);
  EXPECT_EQ(*find_field(h->output()[0]->fields, "v"), Value(int64_t{1}));
}

TEST_P(MqttOperatorsTest, OversizePayloadIsCountedAndTheNextOneArrives) {
  auto h = harness("mqtt.subscribe", "{topic: big, max_payload: 64}");
  h->open();
  auto pub = client();
  const std::string big = R"({"v": ")" + std::string(100, 'x') + R"("})";
  const std::string small = R"({"v": 1})";
  ASSERT_TRUE(pub->publish("big", big.data(), big.size(), 1, false));
  ASSERT_TRUE(pub->publish("big", small.data(), small.size(), 1, false));
  ASSERT_TRUE(pump(*h, 2));
  ASSERT_EQ(h->errors().size(), 1u);
  EXPECT_EQ(h->errors()[0],
            "message on topic 'big': payload of 109 bytes is over max_payload (64 bytes); dropped");
  EXPECT_EQ(h->output("error").size(), 1u);
  ASSERT_EQ(h->output().size(), 1u);
  EXPECT_EQ(*find_field(h->output()[0]->fields, "v"), Value(int64_t{1}));
}

// Sensors that are not edgeflow nodes: each message's origin from a topic level or a field,
// so per-origin windows downstream keep them apart; a message without one is an error.
TEST_P(MqttOperatorsTest, OriginComesFromATopicLevelOrAField) {
  auto by_topic = harness("mqtt.subscribe", "{topic: sensors/+/reading, origin: \"topic[2]\"}");
  by_topic->open();
  mosquitto_pub("sensors/ab12/reading", R"({"t": 20.5})");
  mosquitto_pub("sensors/cd34/reading", R"({"t": 21.5})");
  ASSERT_TRUE(pump(*by_topic, 2));
  ASSERT_EQ(by_topic->output().size(), 2u);
  EXPECT_EQ(by_topic->output()[0]->origin, "ab12");
  EXPECT_EQ(by_topic->output()[1]->origin, "cd34");
  by_topic.reset();  // the same client id as the next one's

  auto by_field = harness("mqtt.subscribe", "{topic: f/#, origin: field.sensor_id}");
  by_field->open();
  mosquitto_pub("f/x", R"({"sensor_id": "s-7", "t": 1})");
  mosquitto_pub("f/x", R"({"sensor_id": 42, "t": 2})");
  mosquitto_pub("f/x", R"({"t": 3})");
  mosquitto_pub("f/x", R"({"sensor_id": ")" + std::string(200, 'x') + R"("})");
  mosquitto_pub("f/x", R"({"sensor_id": "s-8", "t": 4})");
  ASSERT_TRUE(pump(*by_field, 5));
  ASSERT_EQ(by_field->output().size(), 3u);
  EXPECT_EQ(by_field->output()[0]->origin, "s-7");
  EXPECT_EQ(by_field->output()[1]->origin, "42");
  EXPECT_EQ(by_field->output()[2]->origin, "s-8");
  ASSERT_EQ(by_field->errors().size(), 2u);
  EXPECT_NE(by_field->errors()[0].find("no text or integer field 'sensor_id' for origin"),
            std::string::npos)
      << by_field->errors()[0];
  EXPECT_NE(by_field->errors()[1].find("origin of 200 bytes, more than 128"), std::string::npos)
      << by_field->errors()[1];
}

TEST_P(MqttOperatorsTest, SubscribeReadsTimeFieldMsgpackAndRaw) {
  auto json = harness("mqtt.subscribe", "{topic: j, time_field: time}", "edge", "json");
  auto pack = harness("mqtt.subscribe", "{topic: p, format: msgpack}", "edge", "pack");
  auto raw = harness("mqtt.subscribe", "{topic: r, format: raw}", "edge", "raw");
  json->open();
  pack->open();
  raw->open();
  auto pub = client();
  std::string j1 = R"({"time": "2026-06-01T12:00:00.250Z", "v": 1})";
  std::string j2 = R"({"time": 1780315200.5, "v": 2})";
  std::string j3 = R"({"v": 3})";
  for (const std::string* s : {&j1, &j2, &j3})
    ASSERT_TRUE(pub->publish("j", s->data(), s->size(), 1, false));
  std::string packed;
  encode_fields(Fields{{"a", Value(int64_t{7})}}, packed);
  ASSERT_TRUE(pub->publish("p", packed.data(), packed.size(), 1, false));
  ASSERT_TRUE(pub->publish("p", "\xc1", 1, 1, false));  // never valid msgpack
  const std::string bytes("\x00\x01\xff", 3);
  ASSERT_TRUE(pub->publish("r", bytes.data(), bytes.size(), 1, false));

  ASSERT_TRUE(pump(*json, 3));
  ASSERT_EQ(json->output().size(), 2u);
  EXPECT_EQ(json->output()[0]->event_time_us, 1780315200250000);
  EXPECT_EQ(json->output()[1]->event_time_us, 1780315200500000);
  ASSERT_EQ(json->errors().size(), 1u);
  EXPECT_NE(json->errors()[0].find("no time field 'time'"), std::string::npos);

  ASSERT_TRUE(pump(*pack, 2));
  ASSERT_EQ(pack->output().size(), 1u);
  EXPECT_EQ(*find_field(pack->output()[0]->fields, "a"), Value(int64_t{7}));
  ASSERT_EQ(pack->errors().size(), 1u);
  EXPECT_NE(pack->errors()[0].find("invalid msgpack"), std::string::npos);

  ASSERT_TRUE(pump(*raw, 1));
  const Message& m = *raw->output()[0];
  EXPECT_EQ(m.blob.type, "application/octet-stream");
  ASSERT_TRUE(m.blob.bytes);
  EXPECT_EQ(*m.blob.bytes, bytes);
  EXPECT_EQ(m.fields, (Fields{{"topic", Value("r")}}));
}

// Stop with a full queue: what the client took is still emitted, and what it did not take
// stays with the broker (persistent session) for the next run of the stage: nothing is lost.
TEST_P(MqttOperatorsTest, StopEmitsWhatWasReceivedAndTheBrokerKeepsTheRest) {
  auto h = harness("mqtt.subscribe", "{topic: q, queue: 4}");
  h->open();
  auto pub = client();
  constexpr int kCount = 20;
  for (int i = 0; i < kCount; ++i) {
    std::string s = R"({"i": )" + std::to_string(i) + "}";
    ASSERT_TRUE(pub->publish("q", s.data(), s.size(), 1, false));
  }
  ASSERT_TRUE(pub->flush(10000));
  // The queue holds 4 and the network thread waits with the next one (back-pressure).
  ASSERT_TRUE(h->wait_for_wake(10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(h->op().on_stop(*h));
  size_t steps = 0;
  while (h->step().kind != SourceStep::kDone && ++steps < 1000) {
  }
  EXPECT_LT(steps, 1000u);
  h->finish();
  std::vector<int64_t> seen;
  for (const auto& m : h->output())
    seen.push_back(std::get<int64_t>(find_field(m->fields, "i")->v));
  EXPECT_GE(seen.size(), 4u);

  auto again = harness("mqtt.subscribe", "{topic: q, queue: 4}");  // same client id
  again->open();
  ASSERT_TRUE(wait_until(
      [&] {
        SourceStep st = again->step();
        std::set<int64_t> all(seen.begin(), seen.end());
        for (const auto& m : again->output())
          all.insert(std::get<int64_t>(find_field(m->fields, "i")->v));
        if (static_cast<int>(all.size()) == kCount) return true;
        if (st.kind == SourceStep::kWaitUntil) again->wait_for_wake(50);
        return false;
      },
      10000))
      << "first run emitted " << seen.size() << ", second " << again->output().size();
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], static_cast<int64_t>(i));
}

TEST_P(MqttOperatorsTest, PublishWritesJsonThatMosquittoSubPrints) {
  auto h = harness("mqtt.publish", "{topic: out/json, retain: true}", "pi-1");
  h->open();
  h->push_reading(1'780'315'200'000'000, {{"temperature", 21.5}, {"name", "a\"b"}});
  h->finish();
  EXPECT_TRUE(h->errors().empty());
  auto r = run_command({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker_.port()),
                        "-t", "out/json", "-C", "1", "-W", "10"},
                       15000);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out,
            R"({"temperature":21.5,"name":"a\"b","time":"2026-06-01T12:00:00Z","origin":"pi-1"})"
            "\n");
}

TEST_P(MqttOperatorsTest, PublishExpandsTopicTemplates) {
  Inbox inbox;
  auto sub = client(&inbox);
  sub->subscribe("t/#", 1);
  auto h = harness("mqtt.publish",
                   "{topic: \"t/{node}/{stage}/{stream}/{origin}/{field.room}/{field.n}\", "
                   "format: msgpack}",
                   "pi-2");
  h->open();
  h->push_reading(1'000'000, {{"room", "kitchen"}, {"n", int64_t{4}}}, "pi-9");
  h->push_reading(2'000'000, {{"n", int64_t{5}}});                   // no room: error
  h->push_reading(3'000'000, {{"room", "a+b"}, {"n", int64_t{6}}});  // a wildcard: error
  h->finish();
  ASSERT_EQ(h->errors().size(), 2u);
  EXPECT_NE(h->errors()[0].find("no field 'room'"), std::string::npos) << h->errors()[0];
  EXPECT_NE(h->errors()[1].find("wildcard"), std::string::npos) << h->errors()[1];
  ASSERT_TRUE(inbox.wait_for(1));
  auto got = inbox.messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "t/pi-2/under-test/input/pi-9/kitchen/4");
  Fields f;
  std::string error;
  ASSERT_TRUE(decode_fields(got[0].payload.data(), got[0].payload.size(), f, error)) << error;
  EXPECT_EQ(*find_field(f, "room"), Value("kitchen"));
  EXPECT_EQ(*find_field(f, "origin"), Value("pi-9"));
  EXPECT_EQ(*find_field(f, "time"), Value("1970-01-01T00:00:01Z"));
}

// max_inflight 2: the stage waits on the broker's acknowledgements every other message, and
// loses none of them; at the end every one is acknowledged.
TEST_P(MqttOperatorsTest, PublishWithASmallWindowDeliversEveryMessageInOrder) {
  Inbox inbox;
  auto sub = client(&inbox);
  sub->subscribe("win/t", 1);
  auto h = harness("mqtt.publish", "{topic: win/t, qos: 1, max_inflight: 2}", "pi-1");
  h->open();
  constexpr int kCount = 500;
  for (int i = 0; i < kCount; ++i) h->push_reading(1'000'000 + i, {{"n", int64_t{i}}});
  h->finish();
  EXPECT_TRUE(h->errors().empty()) << h->errors()[0];
  ASSERT_TRUE(inbox.wait_for(kCount)) << inbox.size();
  const auto got = inbox.messages();
  ASSERT_EQ(got.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i)
    ASSERT_EQ(got[i].payload.rfind("{\"n\":" + std::to_string(i) + ",", 0), 0u) << got[i].payload;
}

TEST_P(MqttOperatorsTest, PublishThenSubscribeKeepsFieldsAndEventTime) {
  auto sub = harness("mqtt.subscribe", "{topic: rt/#, time_field: time}", "cloud");
  sub->open();
  auto pub = harness("mqtt.publish", "{topic: \"rt/{origin}\"}", "pi-1");
  pub->open();
  pub->push_reading(1'780'315'200'123'000, {{"t", 20.25}});
  pub->finish();
  ASSERT_TRUE(pump(*sub, 1));
  ASSERT_EQ(sub->output().size(), 1u);
  const Message& m = *sub->output()[0];
  EXPECT_EQ(m.event_time_us, 1'780'315'200'123'000);
  EXPECT_EQ(*find_field(m.fields, "t"), Value(20.25));
  EXPECT_EQ(*find_field(m.fields, "origin"), Value("pi-1"));
  EXPECT_EQ(*find_field(m.fields, "topic"), Value("rt/pi-1"));
}

TEST_P(MqttOperatorsTest, UnreachableBrokerFailsOpenNamingIt) {
  std::string uri = "tcp://127.0.0.1:" + std::to_string(mqtt::testing::free_port());
  for (const char* op : {"mqtt.subscribe", "mqtt.publish"}) {
    OperatorHarness h(op, "{topic: x, broker: \"" + uri + "\", client: " + GetParam() + "}");
    try {
      h.open();
      FAIL() << op << " opened with nothing listening";
    } catch (const OperatorError& e) {
      EXPECT_NE(std::string(e.what()).find("cannot reach MQTT broker " + uri), std::string::npos)
          << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Clients, MqttOperatorsTest, ::testing::ValuesIn(mqtt::client_kinds()),
                         [](const auto& info) { return info.param; });

TEST(MqttOperatorOptions, BadOptionsAreRejected) {
  auto problems = [](const std::string& op, const std::string& yaml) {
    return OperatorHarness::option_problems(op, yaml);
  };
  EXPECT_EQ(problems("mqtt.subscribe", "{topic: a/+/b}"), "");
  EXPECT_EQ(problems("mqtt.subscribe", "{topic: [a/#, b]}"), "");
  EXPECT_NE(problems("mqtt.subscribe", "{topic: a/#/b}").find("not a valid MQTT topic filter"),
            std::string::npos);
  EXPECT_NE(problems("mqtt.subscribe", "{topic: a+}"), "");
  EXPECT_NE(problems("mqtt.subscribe", "{}").find("missing required option 'topic'"),
            std::string::npos);
  EXPECT_NE(problems("mqtt.subscribe", "{topic: a, qos: 3}"), "");
  EXPECT_NE(problems("mqtt.subscribe", "{topic: a, format: xml}"), "");
  EXPECT_NE(problems("mqtt.subscribe", "{topic: a, client: hivemq}"), "");
  EXPECT_NE(
      problems("mqtt.subscribe", "{topic: a, broker: \"http://x:1883\"}").find("http://x:1883"),
      std::string::npos);
  EXPECT_NE(problems("mqtt.subscribe", "{topic: a, format: raw, time_field: t}"), "");
  EXPECT_EQ(problems("mqtt.subscribe", "{topic: a/+, origin: \"topic[2]\"}"), "");
  EXPECT_NE(problems("mqtt.subscribe", "{topic: a, origin: \"topic[0]\"}").find("from 1"),
            std::string::npos);
  EXPECT_NE(problems("mqtt.subscribe", "{topic: a, origin: sensor}").find("topic[N]"),
            std::string::npos);
  EXPECT_NE(problems("mqtt.subscribe", "{topic: a, format: raw, origin: field.id}"), "");

  EXPECT_EQ(problems("mqtt.publish", "{topic: \"w/{origin}/{field.room}\"}"), "");
  EXPECT_NE(problems("mqtt.publish", "{topic: \"w/{nope}\"}").find("unknown placeholder {nope}"),
            std::string::npos);
  EXPECT_NE(problems("mqtt.publish", "{topic: \"w/{origin\"}").find("unclosed '{'"),
            std::string::npos);
  EXPECT_NE(problems("mqtt.publish", "{topic: \"w/origin}\"}").find("unmatched '}'"),
            std::string::npos);
  EXPECT_NE(problems("mqtt.publish", "{topic: \"w/{field.}\"}"), "");
  EXPECT_NE(problems("mqtt.publish", "{topic: w/#}").find("wildcard"), std::string::npos);
  EXPECT_NE(problems("mqtt.publish", "{topic: w, drain_timeout: -1s}"), "");
  EXPECT_EQ(problems("mqtt.publish", "{topic: w, max_inflight: 1}"), "");
  EXPECT_NE(problems("mqtt.publish", "{topic: w, max_inflight: 0}").find("max_inflight"),
            std::string::npos);
}

TEST(MqttOperatorOptions, NoBrokerAnywhereIsExplained) {
  OperatorHarness h("mqtt.publish", "{topic: x}");
  h.mutable_links().mqtt_broker = "";
  try {
    h.open();
    FAIL();
  } catch (const OperatorError& e) {
    EXPECT_NE(std::string(e.what()).find("links.mqtt.broker"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace edgeflow
