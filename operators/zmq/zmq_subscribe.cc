// zmq.subscribe — a source of messages from a ZeroMQ SUB or PULL socket: another pipeline's
// zmq.publish, or any program speaking ZeroMQ (pyzmq, a sensor gateway).
//
// Ports: none -> out (any: msgpack gives the messages as they were sent; json a record; raw a
// blob).
// Options: endpoint (required), mode (sub | pull), bind (default: false for sub, true for pull,
// the counterparts of zmq.publish's defaults), topic (sub: subscription prefix), format
// (msgpack | json | raw), queue (messages held between the socket thread and the pipeline),
// hwm, blob_type (raw).
//
// Wire: a sub message is [topic][payload] or a single [payload] part; a pull message is one
// [payload] part. A payload that does not decode, or a message with other parts, goes to the
// error output and the stage goes on. json and raw messages take the arrival (wall clock) time
// as event time; msgpack ones keep their stream, origin, sequence number and event time.
//
// A socket thread receives into a bounded queue (full: it stops reading, so ZeroMQ's own
// high-water mark applies: PUB drops, PUSH waits) and wakes the source. On stop, the source
// delivers what is queued, then ends.
//
//   - id: remote
//     op: zmq.subscribe
//     with: { endpoint: "tcp://192.168.1.20:5556", topic: "weather/", format: json }
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
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

constexpr int kMaxPerCall = 256;
constexpr int kPollMs = 1000;      // idle wake-ups of the socket thread (stop wakes it at once)
constexpr int kMaxJsonDepth = 64;  // deeper JSON is refused (no deep recursion on bad input)
constexpr int64_t kIdleWaitUs = 1'000'000;

enum class Format { kMsgpack, kJson, kRaw };

Format parse_format(const std::string& s) {
  if (s == "json") return Format::kJson;
  if (s == "raw") return Format::kRaw;
  return Format::kMsgpack;
}

bool json_to_value(const nlohmann::json& j, Value& out, int depth) {
  if (depth > kMaxJsonDepth) return false;
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      out = Value();
      return true;
    case nlohmann::json::value_t::boolean:
      out = Value(j.get<bool>());
      return true;
    case nlohmann::json::value_t::number_integer:
      out = Value(j.get<int64_t>());
      return true;
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        out = Value(static_cast<double>(u));
      } else {
        out = Value(static_cast<int64_t>(u));
      }
      return true;
    }
    case nlohmann::json::value_t::number_float:
      out = Value(j.get<double>());
      return true;
    case nlohmann::json::value_t::string:
      out = Value(j.get<std::string>());
      return true;
    case nlohmann::json::value_t::array: {
      Array a;
      a.reserve(j.size());
      for (const auto& item : j) {
        a.emplace_back();
        if (!json_to_value(item, a.back(), depth + 1)) return false;
      }
      out = Value(std::move(a));
      return true;
    }
    case nlohmann::json::value_t::object: {
      Fields f;
      f.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        f.push_back(Field{it.key(), Value()});
        if (!json_to_value(it.value(), f.back().value, depth + 1)) return false;
      }
      out = Value(std::move(f));
      return true;
    }
    default:
      return false;  // binary, discarded: not produced by parsing text
  }
}

class ZmqSubscribe : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "zmq.subscribe";
    s.summary =
        "Messages from a ZeroMQ SUB or PULL socket: another pipeline's zmq.publish or "
        "any ZeroMQ program.";
    s.example =
        "- id: remote\n  op: zmq.subscribe\n"
        "  with: { endpoint: \"tcp://192.168.1.20:5556\", topic: \"weather/\", format: json }";
    s.outputs = {
        {"out", "any", "msgpack: the messages as they were sent; json: a record; raw: a blob"}};
    s.options = {
        opt_string("endpoint",
                   "tcp://HOST:PORT (or ipc://PATH) to connect or bind; when binding, HOST "
                   "0.0.0.0 is every interface and PORT * a free port (logged)")
            .require(),
        opt_enum("mode", {"sub", "pull"},
                 "sub: from a PUB socket, filtered by topic; pull: from PUSH sockets")
            .def("sub"),
        opt_bool("bind",
                 "bind the endpoint instead of connecting to it (default: false for "
                 "sub, true for pull)"),
        opt_string("topic",
                   "sub: receive only messages whose topic starts with this (\"\" = "
                   "all)")
            .def("\"\""),
        opt_enum("format", {"msgpack", "json", "raw"},
                 "msgpack: whole edgeflow messages (zmq.publish's default); json: one JSON "
                 "object per message, as a record; raw: the bytes, as a blob")
            .def("msgpack"),
        opt_int("queue",
                "messages held between the socket and the pipeline; when full, the "
                "socket is not read (ZeroMQ's hwm applies)")
            .def("10000")
            .at_least(1),
        opt_int("hwm", "messages ZeroMQ queues on the socket").def("1000").at_least(1),
        opt_string("blob_type", "raw: type of the blobs made").def("application/octet-stream"),
    };
    for (OptionSpec& c : zmqop::curve_options()) s.options.push_back(std::move(c));
    return s;
  }

  explicit ZmqSubscribe(const Options& o)
      : endpoint_(o.get_string("endpoint")),
        pull_(o.get_string("mode") == "pull"),
        bind_(o.given("bind") ? o.get_bool("bind") : pull_),
        topic_(o.get_string("topic")),
        format_(parse_format(o.get_string("format"))),
        capacity_(static_cast<size_t>(o.get_int("queue"))),
        hwm_(static_cast<int>(std::min<int64_t>(o.get_int("hwm"), 1 << 30))),
        blob_type_(o.get_string("blob_type")) {
    if (std::string problem = zmqlink::endpoint_problem(endpoint_, bind_); !problem.empty()) {
      throw OptionError("endpoint", problem);
    }
    if (pull_ && !topic_.empty()) {
      throw OptionError("topic", "only mode sub filters on a topic",
                        "remove topic, or use mode: sub");
    }
    if (blob_type_.empty()) throw OptionError("blob_type", "must not be empty");
    curve_ = zmqop::read_curve_options(o, bind_);
  }

  ~ZmqSubscribe() override { stop_thread(); }

  void open(Context& ctx) override {
    opened_ = true;
    zctx_ = std::make_unique<zmq::context_t>(1);
    socket_ = zmq::socket_t(*zctx_, pull_ ? zmq::socket_type::pull : zmq::socket_type::sub);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvhwm, hwm_);
    if (!pull_) socket_.set(zmq::sockopt::subscribe, topic_);
    bound_ = endpoint_;
    try {
      gate_ = zmqop::apply_curve(*zctx_, socket_, curve_, bind_,
                                 "stage '" + ctx.stage() + "' (zmq.subscribe " + endpoint_ + ")");
      std::string picked = zmqlink::attach_user_socket(socket_, endpoint_, bind_);
      if (!picked.empty()) {
        logger().info("stage '{}' on '{}': zmq.subscribe bound {}", ctx.stage(), ctx.node(),
                      picked);
        bound_ = picked;
        if (gate_) gate_->set_where("stage '" + ctx.stage() + "' (zmq.subscribe " + picked + ")");
      }
    } catch (const std::exception& e) {
      socket_.close();  // before its gate (ZAP handler): see zmq_curve.h
      gate_.reset();
      zctx_.reset();
      throw OperatorError(e.what());
    }
    waker_ = ctx.make_waker();
    thread_ = std::thread([this] { receive_loop(); });
  }

  SourceStep generate(Context& ctx) override {
    if (!opened_) open(ctx);
    if (gate_) refusals_.update(ctx, gate_->refused(), bound_);
    std::deque<Item> batch;
    bool ended;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (!queue_.empty() && batch.size() < kMaxPerCall) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      ended = queue_.empty() && thread_done_;
    }
    if (!batch.empty()) not_full_.notify_all();
    for (Item& item : batch) deliver(item, ctx);
    if (!batch.empty()) return SourceStep::emitted();
    if (ended) return SourceStep::done();
    return SourceStep::wait_until(ctx.now_us() + kIdleWaitUs);
  }

  // Stop reading the socket; generate() delivers what is queued, then ends.
  bool on_stop(Context&) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    not_full_.notify_all();
    wake_.signal();
    if (!thread_.joinable()) {
      std::lock_guard<std::mutex> lock(mu_);
      thread_done_ = true;
    }
    return false;
  }

  void close(Context& ctx) override {
    stop_thread();
    refusals_.update(ctx, refused_, bound_, true);  // what the last turns did not report
  }

 private:
  struct Item {
    std::string topic;
    std::string payload;
    std::string problem;  // not "" for a message with the wrong parts
  };

  void receive_loop() {
    try {
      while (!stop_requested()) {
        // With CURVE, this thread also answers the handshakes (the ZAP requests) and counts
        // the refused ones; the source reports them on the stage's errors.
        zmq::pollitem_t items[4] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}, wake_.pollitem()};
        if (gate_) {
          items[2] = gate_->zap_item();
          items[3] = gate_->events_item();
        }
        zmq::poll(items, gate_ ? 4 : 2, std::chrono::milliseconds(kPollMs));
        if (items[1].revents & ZMQ_POLLIN) wake_.clear();
        if (gate_ && ((items[2].revents | items[3].revents) & ZMQ_POLLIN) && gate_->serve() > 0)
          waker_();
        for (int i = 0; i < kMaxPerCall && !stop_requested(); ++i) {
          Item got;
          if (!receive(got)) break;
          if (!enqueue(std::move(got))) break;
        }
      }
    } catch (const std::exception& e) {
      logger().error("zmq.subscribe on '{}' stops receiving: {}", endpoint_, e.what());
    }
    if (gate_) gate_->unwatch();
    socket_.close();
    {
      std::lock_guard<std::mutex> lock(mu_);
      thread_done_ = true;
    }
    waker_();
  }

  bool stop_requested() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  // One whole message, without blocking. False when none is waiting.
  bool receive(Item& out) {
    zmq::message_t part;
    if (!socket_.recv(part, zmq::recv_flags::dontwait)) return false;
    std::string parts[2];
    size_t count = 0;
    for (;;) {
      if (count < 2) parts[count] = part.to_string();
      ++count;
      if (!part.more()) break;
      part = zmq::message_t();
      if (!socket_.recv(part, zmq::recv_flags::none)) break;  // the rest is already there
    }
    if (count == 1) {
      out.payload = std::move(parts[0]);
    } else if (count == 2 && !pull_) {
      out.topic = std::move(parts[0]);
      out.payload = std::move(parts[1]);
    } else {
      out.problem = "message of " + std::to_string(count) + " parts from '" + endpoint_ +
                    "' dropped: expected " +
                    (pull_ ? std::string("one part [payload]")
                           : std::string("[topic][payload] or one part [payload]"));
    }
    return true;
  }

  // Waits for room; false when stopping (the item is dropped: the socket is not read again).
  bool enqueue(Item&& item) {
    bool was_empty;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (queue_.size() >= capacity_ && !stopping_) {
        not_full_.wait_for(lock, std::chrono::milliseconds(kPollMs));
      }
      if (stopping_) return false;
      was_empty = queue_.empty();
      queue_.push_back(std::move(item));
    }
    if (was_empty) waker_();
    return true;
  }

  void deliver(Item& item, Context& ctx) {
    if (!item.problem.empty()) {
      ctx.error(nullptr, item.problem);
      return;
    }
    switch (format_) {
      case Format::kMsgpack: {
        DecodeResult r = decode_message(item.payload.data(), item.payload.size());
        if (!r.message) {
          ctx.error(nullptr, "malformed msgpack message from '" + endpoint_ + "': " + r.error +
                                 " (does the sender use format msgpack?)");
          return;
        }
        if (r.consumed != item.payload.size()) {
          ctx.error(nullptr, "malformed msgpack message from '" + endpoint_ +
                                 "': " + std::to_string(item.payload.size() - r.consumed) +
                                 " bytes after the message");
          return;
        }
        ctx.emit(std::move(r.message));
        return;
      }
      case Format::kJson: {
        nlohmann::json j = nlohmann::json::parse(item.payload, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
          ctx.error(nullptr, "malformed JSON message from '" + endpoint_ + "': " +
                                 (j.is_discarded() ? std::string("not valid JSON")
                                                   : std::string("not an object")) +
                                 ": " + excerpt(item.payload));
          return;
        }
        Value fields;
        if (!json_to_value(j, fields, 0)) {
          ctx.error(nullptr, "JSON message from '" + endpoint_ + "' nested deeper than " +
                                 std::to_string(kMaxJsonDepth) + " levels");
          return;
        }
        auto m = ctx.make_message(ctx.now_us());
        m->fields = std::move(*std::get_if<Fields>(&fields.v));
        ctx.emit(std::move(m));
        return;
      }
      case Format::kRaw: {
        auto m = ctx.make_message(ctx.now_us());
        m->blob.type = blob_type_;
        m->blob.bytes = std::make_shared<const std::string>(std::move(item.payload));
        ctx.emit(std::move(m));
        return;
      }
    }
  }

  static std::string excerpt(const std::string& s) {
    std::string out = s.substr(0, 60);
    for (char& c : out) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    return "'" + out + (s.size() > 60 ? "...'" : "'");
  }

  void stop_thread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    not_full_.notify_all();
    wake_.signal();
    if (thread_.joinable()) thread_.join();
    socket_.close();  // the thread closed it, unless it never ran; before its ZAP handler
    if (gate_) refused_ = gate_->refused();
    gate_.reset();
    zctx_.reset();
  }

  std::string endpoint_;
  bool pull_;
  bool bind_;
  std::string topic_;
  Format format_;
  size_t capacity_;
  int hwm_;
  std::string blob_type_;

  zmqop::OperatorCurve curve_;
  std::string bound_;  // the endpoint, with the port picked for `*`
  std::unique_ptr<zmq::context_t> zctx_;
  zmq::socket_t socket_;                    // the socket thread's once it runs
  std::unique_ptr<zmqop::CurveGate> gate_;  // binding with CURVE; served by the socket thread
  zmqop::RefusalReport refusals_;           // the stage thread's
  uint64_t refused_ = 0;                    // the gate's count once it is gone
  std::function<void()> waker_;
  zmqlink::WakeFd wake_;  // stop wakes the socket thread
  std::thread thread_;
  bool opened_ = false;

  std::mutex mu_;
  std::condition_variable not_full_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  bool thread_done_ = false;
};

EF_REGISTER_OPERATOR(ZmqSubscribe)

}  // namespace
}  // namespace edgeflow
