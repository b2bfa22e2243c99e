// mqtt.subscribe — a source of the messages published on MQTT topics, from any publisher
// (sensors, Node-RED, mosquitto_pub, another edgeflow).
//
// Ports: none -> out (record: the payload's fields plus `topic`; with format raw, a binary
// body of type application/octet-stream and the field `topic`).
// Options: topic (a filter or a list; + and # allowed), qos, format (json | msgpack | raw),
// broker / client / client_id (default: the pipeline's links.mqtt settings and
// edgeflow-PIPELINE-STAGE-NODE), persistent (clean_session false: the broker keeps QoS 1/2
// messages while the stage is away; default true when qos > 0), queue (messages buffered
// between the network thread and the pipeline; when full, the network thread waits, which is
// back-pressure towards the broker), time_field (payload field holding the event time:
// seconds since the epoch or ISO 8601 text; default: the time of reception), max_payload
// (bytes; a larger payload is dropped on arrival and reported, so a hostile or broken
// publisher cannot fill memory), origin (where each message's origin comes from, for sensors
// that are not edgeflow nodes: topic[N], the Nth level of its topic counting from 1, or
// field.NAME, a payload field; default: this node). The queue also holds at most 64 MiB of
// payloads.
// A payload that is not valid JSON, not a JSON object, or not a msgpack map, or is over
// max_payload, goes to the error output with its topic; the stage keeps running. At stop, the
// subscription ends first and every message already received is still emitted.
//
//   - id: readings
//     op: mqtt.subscribe
//     with: { topic: "sensors/+/reading", qos: 1, time_field: time, origin: "topic[2]" }
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "brokers/codec.h"
#include "brokers/mqtt/client.h"
#include "brokers/mqtt/client_internal.h"
#include "operators/mqtt/mqtt_connections.h"
#include "operators/mqtt/mqtt_payload.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

using mqttop::Format;

constexpr size_t kMaxPerCall = 256;
// Payload bytes the queue holds before reception waits, whatever `queue` says: 10000 large
// payloads would not fit a small device. One payload is always let in.
constexpr size_t kMaxQueuedBytes = size_t{64} << 20;
constexpr int64_t kIdleWakeUs = 1'000'000;
// An origin is a key of per-origin state downstream (windows, de-duplication): bounded, so a
// publisher cannot make one key hold a payload's worth of memory.
constexpr size_t kMaxOriginBytes = 128;

class MqttSubscribe : public Operator {
  struct Incoming {
    mqtt::Received r;
    size_t refused_bytes = 0;  // over max_payload: the payload was dropped on arrival
  };

 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "mqtt.subscribe";
    s.summary = "Receives MQTT messages: JSON or msgpack objects as records, or raw payloads.";
    s.example =
        "- id: readings\n  op: mqtt.subscribe\n"
        "  with: { topic: \"sensors/+/reading\", qos: 1, time_field: time }";
    s.outputs = {{"out", "record",
                  "the payload's fields plus 'topic'; format raw: a binary body "
                  "(application/octet-stream) and 'topic'"}};
    s.options = {
        opt_list("topic", "topic filter, or a list of them; + matches one level, # the rest")
            .require(),
        opt_int("qos", "quality of service of the subscription: 0, 1 or 2")
            .def("1")
            .at_least(0)
            .at_most(2),
        opt_enum("format", {"json", "msgpack", "raw"},
                 "payload format: a JSON object, a msgpack map, or bytes kept as a blob")
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
        opt_bool("persistent",
                 "persistent session (clean_session false): the broker keeps QoS 1/2 messages "
                 "while the stage is away; default: true when qos > 0"),
        opt_int("queue",
                "messages buffered between the network and the pipeline; when full, reception "
                "waits (back-pressure to the broker)")
            .def("10000")
            .at_least(1),
        opt_string("time_field",
                   "payload field holding the event time (seconds since the epoch, or ISO 8601 "
                   "text); default: the time of reception"),
        opt_int("max_payload",
                "largest payload accepted, in bytes; a larger one is dropped and counted on "
                "the error output")
            .def("1048576")
            .at_least(1)
            .at_most(268435455),  // the largest MQTT packet
        opt_string("origin",
                   "where each message's origin comes from: topic[N] (the Nth level of its "
                   "topic, from 1: topic[2] of sensors/ab12/reading is ab12) or field.NAME (a "
                   "text or integer payload field); default: this node"),
    };
    for (OptionSpec& sec : mqttop::security_options()) s.options.push_back(std::move(sec));
    return s;
  }

  explicit MqttSubscribe(const Options& o)
      : filters_(o.get_list("topic")),
        qos_(static_cast<int>(o.get_int("qos"))),
        format_(mqttop::parse_format(o.get_string("format"))),
        persistent_(o.has("persistent") ? o.get_bool("persistent") : qos_ > 0),
        capacity_(static_cast<size_t>(o.get_int("queue"))),
        max_payload_(static_cast<size_t>(o.get_int("max_payload"))),
        time_field_(o.has("time_field") ? o.get_string("time_field") : "") {
    if (filters_.empty()) throw OptionError("topic", "needs at least one topic filter");
    for (const std::string& f : filters_) {
      if (!mqtt::detail::valid_filter(f))
        throw OptionError("topic", "'" + f + "' is not a valid MQTT topic filter",
                          "'+' and '#' must fill a whole level, and '#' must come last, "
                          "as in sensors/+/temperature or sensors/#");
    }
    if (o.has("broker")) choice_.broker = o.get_string("broker");
    mqttop::read_security_options(o, choice_);
    if (o.has("client")) choice_.client = o.get_string("client");
    if (o.has("client_id")) choice_.client_id = o.get_string("client_id");
    mqttop::check_broker_option(choice_.broker);
    if (!time_field_.empty() && format_ == Format::kRaw)
      throw OptionError("time_field", "needs format json or msgpack (raw payloads have no fields)");
    if (o.has("origin")) parse_origin(o.get_string("origin"));
  }

  ~MqttSubscribe() override {
    stop_client();
    lease_.release();  // before the queue and its mutex go
  }

  void open(Context& ctx) override {
    // The network thread runs the turn itself when the source thread is idle: a message goes
    // to the sink with no hand-over between threads (Context::make_driver).
    waker_ = ctx.make_driver();
    mqtt::ClientOptions co = mqttop::client_options(choice_, ctx);
    co.clean_session = !persistent_;
    try {
      // A clean session may share its connection with this process's QoS 0 publishers to
      // the same broker, so a relay's publish is written by this network thread: see
      // mqtt_connections.h.
      lease_ = mqttop::connect_subscriber(
          ctx.pipeline() + "/" + ctx.node(), mqttop::client_kind(choice_, ctx), co,
          choice_.client_id.empty(), [this](mqtt::Received&& r) { on_message(std::move(r)); });
      // After connect: subscribe() then waits for the broker's SUBACK, so whatever is
      // published once open() returns is received. (Unconnected, with links.mqtt.retry, the
      // client subscribes when it gets through.)
      for (const std::string& f : filters_) lease_.client()->subscribe(f, qos_);
    } catch (const mqtt::MqttError& e) {
      lease_.release();
      throw OperatorError(e.what());
    }
    std::lock_guard<std::mutex> lock(mu_);
    opened_ = true;
  }

  SourceStep generate(Context& ctx) override {
    drain(ctx, kMaxPerCall);
    bool empty;
    {
      std::lock_guard<std::mutex> lock(mu_);
      empty = queue_.empty();
    }
    // Stopping: the client is gone, so the queue only shrinks. Done once it is empty.
    if (stopping_) return empty ? SourceStep::done() : SourceStep::emitted();
    if (!empty) return SourceStep::emitted();
    return SourceStep::wait_until(ctx.now_us() + kIdleWakeUs);  // the handler wakes us earlier
  }

  bool on_stop(Context&) override {
    // No more reception; what was received is emitted by the next generate() calls.
    stopping_ = true;
    stop_client();
    return false;
  }

  void close(Context& ctx) override {
    stop_client();
    while (drain(ctx, kMaxPerCall) > 0) {
    }
  }

 private:
  // Network thread: enqueue only. Waits while the queue is full (back-pressure), except
  // during open() (a persistent session's backlog arrives at once, and waiting would hold up
  // the SUBACK open() waits for) and once the stage is stopping (the client acknowledged the
  // message already, so dropping it would lose it).
  void on_message(mqtt::Received&& r) {
    Incoming in;
    if (r.payload.size() > max_payload_) {
      // Dropped here, reported in order by the source thread (ctx is not ours to call).
      in.refused_bytes = r.payload.size();
      std::string().swap(r.payload);
    }
    in.r = std::move(r);
    bool was_empty;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const size_t bytes = in.r.payload.size();
      room_.wait(lock, [&] {
        return (queue_.size() < capacity_ &&
                (queue_.empty() || queued_bytes_ + bytes <= kMaxQueuedBytes)) ||
               closing_ || !opened_;
      });
      was_empty = queue_.empty();
      queued_bytes_ += bytes;
      queue_.push_back(std::move(in));
    }
    if (was_empty && waker_) waker_();
  }

  void stop_client() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
    }
    room_.notify_all();
    lease_.detach();  // waits for a handler call in progress: no handler after this
    lease_.release();
  }

  size_t drain(Context& ctx, size_t max) {
    batch_.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (!queue_.empty() && batch_.size() < max) {
        queued_bytes_ -= queue_.front().r.payload.size();
        batch_.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (batch_.empty()) return 0;
    room_.notify_all();
    int64_t now = ctx.now_us();
    for (Incoming& in : batch_) {
      if (in.refused_bytes > 0) {
        bad(in.r,
            "payload of " + std::to_string(in.refused_bytes) + " bytes is over max_payload (" +
                std::to_string(max_payload_) + " bytes); dropped",
            ctx);
      } else {
        emit_one(in.r, now, ctx);
      }
    }
    return batch_.size();
  }

  void emit_one(mqtt::Received& r, int64_t now, Context& ctx) {
    Fields fields;
    std::string problem;
    switch (format_) {
      case Format::kJson:
        if (!mqttop::json_to_fields(r.payload, fields, problem)) return bad(r, problem, ctx);
        break;
      case Format::kMsgpack:
        if (!decode_fields(r.payload.data(), r.payload.size(), fields, problem))
          return bad(r, "invalid msgpack: " + problem, ctx);
        break;
      case Format::kRaw:
        break;
    }
    int64_t event_time = now;
    if (!time_field_.empty()) {
      const Value* t = find_field(fields, time_field_);
      if (!t) return bad(r, "no time field '" + time_field_ + "'", ctx);
      auto us = mqttop::time_from_value(*t, problem);
      if (!us) return bad(r, "time field '" + time_field_ + "': " + problem, ctx);
      event_time = *us;
    }
    std::optional<std::string> origin;
    if (origin_level_ > 0 || !origin_field_.empty()) {
      origin = origin_of(r.topic, fields, &problem);
      if (!origin) return bad(r, problem, ctx);
    }
    auto m = ctx.make_message(event_time);
    if (origin) m->origin = std::move(*origin);
    m->fields = std::move(fields);
    set_field(m->fields, "topic", std::move(r.topic));
    if (format_ == Format::kRaw) {
      m->blob.type = "application/octet-stream";
      m->blob.bytes = std::make_shared<const std::string>(std::move(r.payload));
    }
    ctx.emit(std::move(m));
  }

  void parse_origin(const std::string& spec) {
    static const char* kFix = "write origin: topic[2] (a topic level, from 1) or origin: field.id";
    if (spec.starts_with("topic[") && spec.size() > 7 && spec.back() == ']') {
      const char* first = spec.data() + 6;
      const char* last = spec.data() + spec.size() - 1;
      int level = 0;
      auto [end, ec] = std::from_chars(first, last, level);
      if (ec != std::errc() || end != last || level < 1)
        throw OptionError("origin", "'" + spec + "': the level must be a number from 1", kFix);
      origin_level_ = level;
    } else if (spec.starts_with("field.") && spec.size() > 6) {
      if (format_ == Format::kRaw)
        throw OptionError("origin", "field." + spec.substr(6) + " needs format json or msgpack",
                          "raw payloads have no fields; use topic[N]");
      origin_field_ = spec.substr(6);
    } else {
      throw OptionError("origin", "'" + spec + "' is neither topic[N] nor field.NAME", kFix);
    }
  }

  // The origin of a message from its topic or a field; nullopt with *problem when it has none.
  std::optional<std::string> origin_of(const std::string& topic, const Fields& fields,
                                       std::string* problem) const {
    std::string origin;
    if (origin_level_ > 0) {
      size_t start = 0;
      for (int level = 1; level < origin_level_ && start != std::string::npos; ++level) {
        start = topic.find('/', start);
        if (start != std::string::npos) ++start;
      }
      if (start != std::string::npos) origin = topic.substr(start, topic.find('/', start) - start);
      if (origin.empty()) {
        *problem = "no level " + std::to_string(origin_level_) + " in its topic for origin";
        return std::nullopt;
      }
    } else {
      const Value* v = find_field(fields, origin_field_);
      if (v && v->string()) {
        origin = *v->string();
      } else if (v && std::holds_alternative<int64_t>(v->v)) {
        origin = std::to_string(std::get<int64_t>(v->v));
      } else if (v && std::holds_alternative<double>(v->v) &&
                 std::get<double>(v->v) == std::trunc(std::get<double>(v->v)) &&
                 std::abs(std::get<double>(v->v)) < 9.0e15) {
        origin = std::to_string(static_cast<int64_t>(std::get<double>(v->v)));
      }
      if (origin.empty()) {
        *problem = "no text or integer field '" + origin_field_ + "' for origin";
        return std::nullopt;
      }
    }
    for (char c : origin) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        *problem = "origin with a control character";  // it reaches logs and topics
        return std::nullopt;
      }
    }
    if (origin.size() > kMaxOriginBytes) {
      *problem = "origin of " + std::to_string(origin.size()) + " bytes, more than " +
                 std::to_string(kMaxOriginBytes);
      return std::nullopt;
    }
    return origin;
  }

  void bad(const mqtt::Received& r, const std::string& problem, Context& ctx) {
    ctx.error(nullptr, "message on topic '" + r.topic + "': " + problem);
  }

  std::vector<std::string> filters_;
  int qos_;
  Format format_;
  bool persistent_;
  size_t capacity_;
  size_t max_payload_;
  std::string time_field_;
  int origin_level_ = 0;      // origin: topic[N], N from 1; 0: not from the topic
  std::string origin_field_;  // origin: field.NAME
  mqttop::ClientChoice choice_;

  std::function<void()> waker_;
  mqttop::ConnectionLease lease_;
  bool stopping_ = false;  // on_stop() was called (source thread only)

  std::mutex mu_;
  std::condition_variable room_;
  std::deque<Incoming> queue_;
  size_t queued_bytes_ = 0;  // payload bytes in queue_
  bool closing_ = false;
  bool opened_ = false;          // open() done: from now on a full queue makes reception wait
  std::vector<Incoming> batch_;  // source thread only; reused
};

EF_REGISTER_OPERATOR(MqttSubscribe)

}  // namespace
}  // namespace edgeflow
