// zmq.publish — sends each message to a ZeroMQ socket, for programs outside the pipeline
// (a dashboard, a Python script with pyzmq, another edgeflow pipeline's zmq.subscribe).
//
// Ports: in (any); no data outputs.
// Options: endpoint (required), mode (pub | push), bind (default: true for pub, false for
// push), topic (pub only; {stage} {node} {pipeline} {stream} are replaced), format (msgpack:
// the whole edgeflow message as links encode it; json: the fields as one JSON object; raw: the
// binary body's bytes), hwm, timeout (push).
//
// Wire: pub sends two parts [topic][payload], push one part [payload]. PUB never blocks: a slow
// or absent subscriber loses messages (ZeroMQ drops beyond hwm). PUSH waits up to `timeout`
// for room; then the message goes to the error output, and so do the next ones, without
// waiting, until the peer takes messages again (the pipeline never hangs on an absent peer).
//
//   - id: feed
//     op: zmq.publish
//     from: minute
//     with: { endpoint: "tcp://0.0.0.0:5556", topic: "weather/{node}", format: json }
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "brokers/codec.h"
#include "brokers/zmq/zmq_util.h"
#include "operators/zmq/zmq_operator_curve.h"
#include "runtime/log.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

enum class Format { kMsgpack, kJson, kRaw };

Format parse_format(const std::string& s) {
  if (s == "json") return Format::kJson;
  if (s == "raw") return Format::kRaw;
  return Format::kMsgpack;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

class ZmqPublish : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "zmq.publish";
    s.summary =
        "Sends each message on a ZeroMQ PUB or PUSH socket, for programs outside the "
        "pipeline.";
    s.example =
        "- id: feed\n  op: zmq.publish\n  from: minute\n"
        "  with: { endpoint: \"tcp://0.0.0.0:5556\", topic: \"weather/{node}\", format: json }";
    s.inputs = {{"in", "any", "messages to send"}};
    s.outputs = {};
    s.options = {
        opt_string("endpoint",
                   "tcp://HOST:PORT (or ipc://PATH) to bind or connect; when binding, HOST "
                   "0.0.0.0 is every interface and PORT * a free port (logged)")
            .require(),
        opt_enum("mode", {"pub", "push"},
                 "pub: every subscriber gets a copy, best effort; push: one peer takes each "
                 "message, waiting for room")
            .def("pub"),
        opt_bool("bind",
                 "bind the endpoint instead of connecting to it (default: true for "
                 "pub, false for push)"),
        opt_string("topic",
                   "pub: first part of every message, which subscribers filter on by prefix; "
                   "{stage}, {node}, {pipeline} and {stream} are replaced")
            .def("\"\""),
        opt_enum("format", {"msgpack", "json", "raw"},
                 "msgpack: the whole message (fields, blob, stream, origin, times) as links "
                 "encode it; json: the fields as one JSON object; raw: the blob's bytes")
            .def("msgpack"),
        opt_int("hwm",
                "messages queued for a slow or absent peer: pub drops beyond it, push "
                "waits")
            .def("1000")
            .at_least(1),
        opt_duration("timeout",
                     "push: how long to wait for room before the message goes to the error "
                     "output")
            .def("5s")
            .at_least(0),
    };
    for (OptionSpec& c : zmqop::curve_options()) s.options.push_back(std::move(c));
    return s;
  }

  explicit ZmqPublish(const Options& o)
      : endpoint_(o.get_string("endpoint")),
        push_(o.get_string("mode") == "push"),
        bind_(o.given("bind") ? o.get_bool("bind") : !push_),
        topic_(o.get_string("topic")),
        format_(parse_format(o.get_string("format"))),
        hwm_(static_cast<int>(std::min<int64_t>(o.get_int("hwm"), 1 << 30))),
        timeout_ms_(static_cast<int>(
            std::min<int64_t>(o.get_duration_us("timeout") / 1000, 24 * 3600 * 1000))) {
    if (std::string problem = zmqlink::endpoint_problem(endpoint_, bind_); !problem.empty()) {
      throw OptionError("endpoint", problem);
    }
    if (push_ && !topic_.empty()) {
      throw OptionError("topic", "only mode pub sends a topic", "remove topic, or use mode: pub");
    }
    curve_ = zmqop::read_curve_options(o, bind_);
  }

  ~ZmqPublish() override { shut(); }

  void open(Context& ctx) override {
    replace_all(topic_, "{stage}", ctx.stage());
    replace_all(topic_, "{node}", ctx.node());
    replace_all(topic_, "{pipeline}", ctx.pipeline());
    topic_has_stream_ = topic_.find("{stream}") != std::string::npos;
    zctx_ = std::make_unique<zmq::context_t>(1);
    socket_ = zmq::socket_t(*zctx_, push_ ? zmq::socket_type::push : zmq::socket_type::pub);
    socket_.set(zmq::sockopt::sndhwm, hwm_);
    // At exit, queued messages get up to `timeout` to leave.
    socket_.set(zmq::sockopt::linger, std::min(timeout_ms_, 10'000));
    bound_ = endpoint_;
    try {
      where_ = "stage '" + ctx.stage() + "' (zmq.publish " + endpoint_ + ")";
      gate_ = zmqop::apply_curve(*zctx_, socket_, curve_, bind_, where_);
      std::string picked = zmqlink::attach_user_socket(socket_, endpoint_, bind_);
      if (!picked.empty()) {
        logger().info("stage '{}' on '{}': zmq.publish bound {}", ctx.stage(), ctx.node(), picked);
        bound_ = picked;
        where_ = "stage '" + ctx.stage() + "' (zmq.publish " + picked + ")";
        if (gate_) gate_->set_where(where_);
      }
    } catch (const std::exception& e) {
      shut();
      throw OperatorError(e.what());
    }
    // A sink has no thread of its own to answer CURVE handshakes (ZAP requests): one small one.
    if (gate_) gate_thread_ = std::thread([this] { answer_handshakes(); });
  }

  void process(int, MessagePtr m, Context& ctx) override {
    if (!socket_) return;
    // A sink reports on its own thread: the refusals since, on the stage's errors.
    if (gate_) refusals_.update(ctx, gate_->refused(), bound_);
    payload_.clear();
    switch (format_) {
      case Format::kMsgpack:
        encode_message(*m, payload_);
        break;
      case Format::kJson:
        append_json(payload_, m->fields);
        break;
      case Format::kRaw:
        if (!m->blob.bytes) {
          ctx.error(m.get(),
                    "format raw sends a binary body, and this message has none "
                    "(use format json or msgpack for records)");
          return;
        }
        payload_ = *m->blob.bytes;
        break;
    }
    try {
      if (push_) {
        send_push(m.get(), ctx);
      } else {
        std::string topic = topic_;
        if (topic_has_stream_) replace_all(topic, "{stream}", m->stream);
        // PUB never blocks: with no room for a subscriber, ZeroMQ drops the message for it.
        socket_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        socket_.send(zmq::buffer(payload_), zmq::send_flags::dontwait);
      }
    } catch (const zmq::error_t& e) {
      ctx.error(m.get(), "cannot send to '" + endpoint_ + "': " + e.what());
    }
  }

  void close(Context& ctx) override {
    shut();
    refusals_.update(ctx, refused_, bound_, true);  // what no message came to report
  }

 private:
  void send_push(const Message* m, Context& ctx) {
    if (socket_.send(zmq::buffer(payload_), zmq::send_flags::dontwait)) {
      dropping_ = false;
      return;
    }
    if (!dropping_ && timeout_ms_ > 0) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLOUT, 0};
      auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
      for (auto now = std::chrono::steady_clock::now(); now < deadline;
           now = std::chrono::steady_clock::now()) {
        zmq::poll(&item, 1,
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                      std::chrono::milliseconds(1));
        if (socket_.send(zmq::buffer(payload_), zmq::send_flags::dontwait)) return;
      }
    }
    dropping_ = true;  // until the peer takes messages again: no more waiting
    ctx.error(m, "dropped: no peer took the message at '" + endpoint_ + "' within the timeout (" +
                     std::to_string(timeout_ms_) + " ms); is the receiving PULL socket up?");
  }

  void answer_handshakes() {
    try {
      while (!gate_stop_.load()) {
        zmq::pollitem_t items[2] = {gate_->zap_item(), gate_->events_item()};
        zmq::poll(items, 2, std::chrono::milliseconds(100));
        gate_->serve();
      }
    } catch (const std::exception& e) {
      logger().error("{}: stops answering CURVE handshakes (no new peer gets in): {}", where_,
                     e.what());
    }
  }

  void shut() {
    if (gate_) gate_->unwatch();
    if (socket_) socket_.close();  // before its ZAP handler: see zmq_curve.h
    gate_stop_ = true;
    if (gate_thread_.joinable()) gate_thread_.join();
    if (gate_) refused_ = gate_->refused();
    gate_.reset();
    zctx_.reset();  // waits up to the linger time for queued messages
  }

  std::string endpoint_;
  bool push_;
  bool bind_;
  std::string topic_;
  bool topic_has_stream_ = false;
  Format format_;
  int hwm_;
  int timeout_ms_;
  zmqop::OperatorCurve curve_;
  std::string where_;
  std::unique_ptr<zmq::context_t> zctx_;
  zmq::socket_t socket_;
  std::string bound_;                       // the endpoint, with the port picked for `*`
  std::unique_ptr<zmqop::CurveGate> gate_;  // binding with CURVE; served by its own thread
  std::thread gate_thread_;
  std::atomic<bool> gate_stop_{false};
  zmqop::RefusalReport refusals_;
  uint64_t refused_ = 0;  // the gate's count once it is gone
  bool dropping_ = false;
  std::string payload_;  // reused
};

EF_REGISTER_OPERATOR(ZmqPublish)

}  // namespace
}  // namespace edgeflow
