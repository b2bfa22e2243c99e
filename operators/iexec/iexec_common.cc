#include "operators/iexec/iexec_common.h"

#include <sys/stat.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "brokers/mqtt/security.h"
#include "runtime/duration.h"
#include "runtime/log.h"

namespace edgeflow::iexecop {

std::string expand(std::string path, Context& ctx, const std::string& pool) {
  const std::pair<const char*, std::string> vars[] = {
      {"{node}", ctx.node()}, {"{stage}", ctx.stage()}, {"{pool}", pool}};
  for (const auto& [key, value] : vars) {
    for (size_t at; (at = path.find(key)) != std::string::npos;)
      path.replace(at, std::char_traits<char>::length(key), value);
  }
  return path;
}

void ensure_parent_dir(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec)
    throw OperatorError("cannot create the folder " + parent.string() + " for " + path + ": " +
                        ec.message());
}

crypto::Wallet load_wallet(const std::string& path, bool create, Context& ctx) {
  struct stat st;
  if (create && ::stat(path.c_str(), &st) != 0) {
    try {
      ensure_parent_dir(path);
      crypto::Wallet w = crypto::Wallet::generate();
      w.save(path);
      logger().info("{} on {}: new key file {}, address {}", ctx.stage(), ctx.node(), path,
                    w.address().hex());
      return w;
    } catch (const crypto::CryptoError& e) {
      throw OperatorError(ctx.stage() + ": " + e.what());
    }
  }
  try {
    return crypto::Wallet::load(path);
  } catch (const crypto::CryptoError& e) {
    throw OperatorError(ctx.stage() + ": " + e.what() +
                        (create ? "" : " (or set create_wallet: true to make one at start)"));
  }
}

iexec::AppRegistry load_registry(const std::string& path) {
  try {
    return iexec::AppRegistry::load(path);
  } catch (const iexec::AppError& e) {
    throw OperatorError(e.what());
  }
}

std::unique_ptr<mqtt::Client> connect_client(Context& ctx, const std::string& broker,
                                             const std::string& kind, const std::string& role,
                                             mqtt::MessageHandler handler,
                                             const std::string& will_topic,
                                             const std::string& will_payload) {
  mqtt::ClientOptions o;
  o.uri = broker.empty() ? ctx.links().mqtt_broker : broker;
  if (o.uri.empty())
    throw OperatorError(ctx.stage() +
                        ": no MQTT broker: set the stage's 'broker' option or links.mqtt.broker "
                        "(edgeflow run starts an embedded one when the pipeline names none)");
  o.client_id = "edgeflow-" + ctx.pipeline() + "-" + ctx.stage() + "-" + ctx.node() + "-" + role;
  o.clean_session = false;
  o.retry_first_connect = ctx.links().mqtt_retry;
  o.will_topic = will_topic;
  o.will_payload = will_payload;
  o.will_retain = true;
  try {
    // On the pipeline's broker, the pipeline's TLS and credentials (links.mqtt), as the
    // links and the mqtt.* stages use them.
    if (broker.empty()) mqtt::apply_security(ctx.links().mqtt_security.for_node(ctx.node()), o);
    auto c =
        mqtt::make_client(kind.empty() ? ctx.links().mqtt_client : kind, o, std::move(handler));
    c->connect();
    return c;
  } catch (const mqtt::MqttError& e) {
    throw OperatorError(ctx.stage() + ": " + e.what());
  }
}

void Inbox::push(mqtt::Received&& r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    q_.push_back(std::move(r));
  }
  if (waker_) waker_();
}

std::deque<mqtt::Received> Inbox::take() {
  std::lock_guard<std::mutex> lock(mu_);
  std::deque<mqtt::Received> out;
  out.swap(q_);
  return out;
}

Slots& Slots::of_node(const std::string& node, int capacity) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Slots>> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto& p = pools[node];
  if (!p) p.reset(new Slots(capacity));
  return *p;
}

bool Slots::try_acquire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_ == 0) return false;
  --free_;
  return true;
}

bool Slots::acquire(const std::function<bool()>& give_up) {
  std::unique_lock<std::mutex> lock(mu_);
  while (free_ == 0) {
    if (give_up()) return false;
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  --free_;
  return true;
}

void Slots::release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++free_;
  }
  cv_.notify_one();
}

int Slots::free() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_;
}

std::vector<OptionSpec> task_user_options() {
  const iexec::SandboxOptions d;
  return {opt_int("first_task_uid",
                  "when the node runs as root, each running task gets its own user id from "
                  "first_task_uid on (ids no named user has)")
              .def(std::to_string(d.first_task_uid))
              .at_least(1000)
              .at_most(2147483647),
          opt_int("task_uids", "how many task user ids; 0: every task runs as nobody")
              .def(std::to_string(d.task_uids))
              .at_least(0)
              .at_most(65536)};
}

int default_slots() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

namespace {

void csv_cell(std::string& out, const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v.v)) {
    if (s->find_first_of(",\"\n") == std::string::npos) {
      out += *s;
    } else {
      out += '"';
      for (char c : *s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
      out += '"';
    }
  } else if (const auto* i = std::get_if<int64_t>(&v.v)) {
    out += std::to_string(*i);
  } else if (const auto* d = std::get_if<double>(&v.v)) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, *d);  // shortest exact form: same everywhere
    out.append(buf, r.ptr);
  } else if (const auto* b = std::get_if<bool>(&v.v)) {
    out += *b ? "true" : "false";
  }
}

}  // namespace

std::string records_csv(const std::vector<MessagePtr>& records) {
  std::vector<std::string> columns;
  if (!records.empty()) {
    for (const Field& f : records.front()->fields) {
      if (std::holds_alternative<Array>(f.value.v) || std::holds_alternative<Fields>(f.value.v))
        continue;
      if (f.key != "origin" && f.key != "event_time") columns.push_back(f.key);
    }
  }
  std::string out = "origin,event_time";
  for (const std::string& c : columns) out += "," + c;
  out += "\n";
  for (const MessagePtr& m : records) {
    csv_cell(out, Value(m->origin));
    out += ",";
    out += format_iso8601(m->event_time_us);
    for (const std::string& c : columns) {
      out += ",";
      if (const Value* v = find_field(m->fields, c)) csv_cell(out, *v);
    }
    out += "\n";
  }
  return out;
}

}  // namespace edgeflow::iexecop
