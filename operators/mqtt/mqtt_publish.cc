// mqtt.publish — publishes each record to an MQTT broker, for dashboards, Home Assistant,
// Node-RED or any other subscriber.
//
// Ports: in (any) ; no data outputs.
// Options: topic (a template: {node}, {stage}, {stream}, {origin}, {field.NAME}), qos, retain,
// format, broker / client / client_id (default: the pipeline's links.mqtt settings and
// edgeflow-PIPELINE-STAGE-NODE), max_inflight (QoS 1/2 messages unacknowledged before the
// stage waits), drain_timeout (at the end, how long to wait for the broker to acknowledge
// QoS 1/2 messages).
// format json: one JSON object per message, the fields plus "time" (event time, ISO 8601 UTC)
// and "origin" (the node the data came from); these two replace fields of the same name. It
// is what `mosquitto_sub -t TOPIC` prints, and what mqtt.subscribe with time_field: time
// reads back with the same event time. format msgpack: the same map, msgpack-encoded. format
// raw: the binary body's bytes as they are. A message the topic or format cannot be made for
// (a missing field, no binary body for raw) goes to the error output and is not published.
// Back-pressure: when the broker has not acknowledged max_inflight QoS 1/2 messages,
// process() waits (until a quarter of them are), and so does the pipeline upstream.
//
//   - id: to-dashboard
//     op: mqtt.publish
//     from: minute
//     with: { topic: "weather/{origin}/minute", qos: 1, retain: true }
#include <chrono>

#include "brokers/codec.h"
#include "brokers/mqtt/client.h"
#include "operators/mqtt/mqtt_connections.h"
#include "operators/mqtt/mqtt_payload.h"
#include "runtime/duration.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

using mqttop::Format;

class MqttPublish : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "mqtt.publish";
    s.summary = "Publishes each message to an MQTT broker as JSON, msgpack or raw bytes.";
    s.example =
        "- id: to-dashboard\n  op: mqtt.publish\n  from: minute\n"
        "  with: { topic: \"weather/{origin}/minute\", qos: 1, retain: true }";
    s.inputs = {{"in", "any", "messages to publish (records; a binary body for format raw)"}};
    s.outputs = {};
    s.options = {
        opt_string("topic",
                   "topic to publish to; may hold {node}, {stage}, {stream}, {origin} and "
                   "{field.NAME}, e.g. weather/{origin}/{field.sensor}")
            .require(),
        opt_int("qos", "quality of service: 0, 1 or 2").def("1").at_least(0).at_most(2),
        opt_bool("retain",
                 "ask the broker to keep the last message of each topic for new "
                 "subscribers")
            .def("false"),
        opt_enum("format", {"json", "msgpack", "raw"},
                 "json: the fields plus time (ISO 8601) and origin; msgpack: the same as a "
                 "msgpack map; raw: the binary body's bytes")
            .def("json"),
        opt_string("broker",
                   "broker URI tcp://HOST:PORT; default: links.mqtt.broker (the embedded "
                   "broker when that is empty)"),
        opt_enum("client", {"mosquitto", "paho"},
                 "MQTT client library; default: links.mqtt.client"),
        opt_string("client_id",
                   "MQTT client id, unique per broker; default: edgeflow-PIPELINE-STAGE-NODE. "
                   "Set, the stage keeps a connection of its own (else a QoS 0 publisher shares "
                   "a clean subscriber's)"),
        opt_int("max_inflight",
                "QoS 1/2 messages published and not yet acknowledged before the stage waits. "
                "libmosquitto walks them all on every publish and acknowledgement, so a small "
                "window is cheaper; it caps the rate at max_inflight per round trip to the "
                "broker (100 over a 50 ms link: 2,000 messages a second), and from 64 on, "
                "where acknowledgements are read every 2 ms, at max_inflight per 2 ms")
            .def("100")
            .at_least(1)
            .at_most(65535),
        opt_duration("drain_timeout",
                     "at the end, how long to wait for the broker to acknowledge QoS 1/2 "
                     "messages")
            .def("10s")
            .at_least(0),
    };
    for (OptionSpec& sec : mqttop::security_options()) s.options.push_back(std::move(sec));
    return s;
  }

  explicit MqttPublish(const Options& o)
      : topic_(o.get_string("topic")),
        qos_(static_cast<int>(o.get_int("qos"))),
        retain_(o.get_bool("retain")),
        format_(mqttop::parse_format(o.get_string("format"))),
        max_inflight_(static_cast<int>(o.get_int("max_inflight"))),
        drain_timeout_us_(o.get_duration_us("drain_timeout")) {
    if (o.has("broker")) choice_.broker = o.get_string("broker");
    mqttop::read_security_options(o, choice_);
    if (o.has("client")) choice_.client = o.get_string("client");
    if (o.has("client_id")) choice_.client_id = o.get_string("client_id");
    mqttop::check_broker_option(choice_.broker);
  }

  void open(Context& ctx) override {
    mqtt::ClientOptions co = mqttop::client_options(choice_, ctx);
    // At QoS 0 nothing is in flight; leaving the default keeps a subscriber's connection
    // shareable (its settings must match).
    if (qos_ > 0) co.max_inflight = max_inflight_;
    try {
      // QoS 0 on the connection of a subscriber of this process, where there is one: see
      // mqtt_connections.h.
      lease_ = mqttop::connect_publisher(ctx.pipeline() + "/" + ctx.node(),
                                         mqttop::client_kind(choice_, ctx), co,
                                         choice_.client_id.empty() && qos_ == 0);
      client_ = lease_.client();
    } catch (const mqtt::MqttError& e) {
      throw OperatorError(e.what());
    }
  }

  void process(int, MessagePtr m, Context& ctx) override {
    if (!client_) return;
    std::optional<std::string> topic = topic_.expand(*m, ctx, problem_);
    if (!topic) return ctx.error(m.get(), problem_);
    payload_.clear();
    switch (format_) {
      case Format::kJson:
      case Format::kMsgpack:
        body_ = m->fields;
        set_field(body_, "time", format_iso8601(m->event_time_us));
        set_field(body_, "origin", m->origin);
        if (format_ == Format::kJson) {
          append_json(payload_, body_);
        } else {
          encode_fields(body_, payload_);
        }
        break;
      case Format::kRaw:
        if (!m->blob.bytes) return ctx.error(m.get(), "format raw: the message has no binary body");
        break;
    }
    const std::string& bytes = format_ == Format::kRaw ? *m->blob.bytes : payload_;
    try {
      // Waits while the in-flight window is full: back-pressure to the pipeline. After a stop
      // it waits drain_timeout in all, so a shutdown never hangs on a broker that is away.
      for (;;) {
        const bool given_up = give_up_at_ >= 0 && steady_us() >= give_up_at_;
        if (client_->publish(*topic, bytes.data(), bytes.size(), qos_, retain_, given_up ? 0 : 500))
          return;
        if (qos_ == 0) {
          return ctx.error(m.get(), "not published: not connected to the MQTT broker (QoS 0)");
        }
        if (given_up) {
          return ctx.error(m.get(), "not published before shutdown: the MQTT broker " +
                                        client_->options().uri + " did not take it");
        }
        if (ctx.stopping() && give_up_at_ < 0) give_up_at_ = steady_us() + drain_timeout_us_;
      }
    } catch (const mqtt::MqttError& e) {
      ctx.error(m.get(), e.what());
    }
  }

  static int64_t steady_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void close(Context& ctx) override {
    if (!client_) return;
    int64_t left_us =
        give_up_at_ < 0 ? drain_timeout_us_ : std::max<int64_t>(0, give_up_at_ - steady_us());
    int timeout_ms = static_cast<int>(left_us / 1000);
    if (!client_->flush(timeout_ms)) {
      uint64_t left = client_->stats().unacknowledged;
      ctx.error(nullptr, std::to_string(left) + " message(s) not confirmed by the MQTT broker " +
                             client_->options().uri + " within drain_timeout " +
                             format_duration(drain_timeout_us_));
    }
    client_ = nullptr;
    lease_.release();
  }

 private:
  mqttop::TopicTemplate topic_;
  int qos_;
  bool retain_;
  Format format_;
  int max_inflight_;
  int64_t drain_timeout_us_;
  int64_t give_up_at_ = -1;  // steady µs: after a stop, when waiting for the broker ends
  mqttop::ClientChoice choice_;
  mqttop::ConnectionLease lease_;
  mqtt::Client* client_ = nullptr;  // lease_'s
  std::string problem_, payload_;   // reused per message
  Fields body_;
};

EF_REGISTER_OPERATOR(MqttPublish)

}  // namespace
}  // namespace edgeflow
