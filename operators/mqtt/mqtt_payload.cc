#include "operators/mqtt/mqtt_payload.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "brokers/mqtt/client_internal.h"
#include "brokers/mqtt/security.h"
#include "runtime/duration.h"
#include "runtime/schema.h"

namespace edgeflow::mqttop {
namespace {

constexpr int kMaxDepth = 64;

Value to_value(const nlohmann::json& j) {
  using T = nlohmann::json::value_t;
  switch (j.type()) {
    case T::boolean:
      return Value(j.get<bool>());
    case T::number_integer:
      return Value(j.get<int64_t>());
    case T::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case T::number_float:
      return Value(j.get<double>());
    case T::string:
      return Value(j.get<std::string>());
    case T::array: {
      Array a;
      a.reserve(j.size());
      for (const auto& item : j) a.push_back(to_value(item));
      return Value(std::move(a));
    }
    case T::object: {
      Fields f;
      f.reserve(j.size());
      for (const auto& [k, v] : j.items()) f.push_back({k, to_value(v)});
      return Value(std::move(f));
    }
    default:
      return Value();
  }
}

// Nesting depth of JSON text, strings skipped; checked before parsing so that hostile input
// cannot make the conversion recurse deeply.
int json_depth(std::string_view s) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

const char* json_kind(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a bool";
    case nlohmann::json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}

}  // namespace

Format parse_format(const std::string& text) {
  if (text == "msgpack") return Format::kMsgpack;
  if (text == "raw") return Format::kRaw;
  return Format::kJson;
}

bool json_to_fields(std::string_view payload, Fields& out, std::string& error) {
  if (json_depth(payload) > kMaxDepth) {
    error = "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels";
    return false;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(payload.begin(), payload.end());
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    if (size_t close = what.find("] ");
        what.starts_with("[json.exception") && close != std::string::npos)
      what = what.substr(close + 2);
    error = "invalid JSON: " + what;
    return false;
  }
  if (!j.is_object()) {
    error = std::string("payload is ") + json_kind(j) + ", not a JSON object";
    return false;
  }
  Value v = to_value(j);
  out = std::move(std::get<Fields>(v.v));
  return true;
}

std::optional<int64_t> time_from_value(const Value& value, std::string& error) {
  if (const std::string* s = value.string()) {
    if (auto us = parse_iso8601_us(*s)) return us;
    error = "'" + *s + "' is not an ISO 8601 time like 2026-06-01T12:00:00Z";
    return std::nullopt;
  }
  if (value.is_number()) {
    double seconds = *value.number();
    if (std::isfinite(seconds) && std::fabs(seconds) < 9e12)
      return static_cast<int64_t>(std::llround(seconds * 1e6));
    error = "time out of range";
    return std::nullopt;
  }
  error = "not a number of seconds or ISO 8601 text";
  return std::nullopt;
}

TopicTemplate::TopicTemplate(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return OptionError("topic", why + " in topic template '" + text + "'",
                       "placeholders are {node}, {stage}, {stream}, {origin} and {field.NAME}");
  };
  size_t i = 0;
  std::string literal;
  while (i < text.size()) {
    char c = text[i];
    if (c == '}') throw bad("unmatched '}'");
    if (c == '+' || c == '#')
      throw OptionError("topic", std::string("'") + c +
                                     "' is a wildcard, not allowed in a topic to publish to ('" +
                                     text + "')");
    if (c != '{') {
      literal += c;
      ++i;
      continue;
    }
    size_t close = text.find('}', i + 1);
    if (close == std::string::npos) throw bad("unclosed '{'");
    std::string name = text.substr(i + 1, close - i - 1);
    if (name.find('{') != std::string::npos) throw bad("'{' inside a placeholder");
    Part part;
    if (name == "node") {
      part.kind = Kind::kNode;
    } else if (name == "stage") {
      part.kind = Kind::kStage;
    } else if (name == "stream") {
      part.kind = Kind::kStream;
    } else if (name == "origin") {
      part.kind = Kind::kOrigin;
    } else if (name.starts_with("field.") && name.size() > 6) {
      part.kind = Kind::kField;
      part.text = name.substr(6);
      part.field = true;
    } else {
      throw bad("unknown placeholder {" + name + "}");
    }
    if (!literal.empty()) parts_.push_back({Kind::kLiteral, std::move(literal), false});
    literal.clear();
    parts_.push_back(std::move(part));
    i = close + 1;
  }
  if (!literal.empty()) parts_.push_back({Kind::kLiteral, std::move(literal), false});
  if (parts_.empty()) throw OptionError("topic", "must not be empty");
}

std::optional<std::string> TopicTemplate::expand(const Message& m, const Context& ctx,
                                                 std::string& error) const {
  std::string topic;
  for (const Part& p : parts_) {
    size_t start = topic.size();
    switch (p.kind) {
      case Kind::kLiteral:
        topic += p.text;
        continue;
      case Kind::kNode:
        topic += ctx.node();
        break;
      case Kind::kStage:
        topic += ctx.stage();
        break;
      case Kind::kStream:
        topic += m.stream;
        break;
      case Kind::kOrigin:
        topic += m.origin;
        break;
      case Kind::kField: {
        const Value* v = find_field(m.fields, p.text);
        if (!v) {
          error = "topic: the message has no field '" + p.text + "'";
          return std::nullopt;
        }
        if (const std::string* s = v->string()) {
          topic += *s;
        } else if (v->is_number() || std::holds_alternative<bool>(v->v)) {
          append_json(topic, *v);
        } else {
          error = "topic: field '" + p.text + "' is not text, a number or a bool";
          return std::nullopt;
        }
        break;
      }
    }
    if (topic.find_first_of("+#", start) != std::string::npos) {
      error = "topic: '" + topic.substr(start) + "' holds an MQTT wildcard ('+' or '#')";
      return std::nullopt;
    }
  }
  if (topic.empty()) {
    error = "topic: expands to an empty topic";
    return std::nullopt;
  }
  return topic;
}

void check_broker_option(const std::string& broker) {
  if (broker.empty()) return;
  try {
    mqtt::detail::parse_uri(broker);
  } catch (const mqtt::MqttError& e) {
    throw OptionError("broker", e.what());
  }
}

std::vector<OptionSpec> security_options() {
  return {
      opt_map("tls",
              "TLS for an mqtts:// broker: {ca_file, cert_file, key_file, verify_hostname}; "
              "default: links.mqtt.tls when the stage names no broker of its own"),
      opt_string("credentials",
                 "YAML file with username and password (mode 0600); default: "
                 "links.mqtt.credentials when the stage names no broker of its own"),
  };
}

void read_security_options(const Options& o, ClientChoice& choice) {
  auto resolve = [&](const std::string& path) { return o.resolve(path); };
  if (o.has("tls")) {
    for (const auto& [key, value] : o.get_map("tls")) {
      std::string problem = set_mqtt_tls_key(choice.security, key, value, resolve);
      if (!problem.empty()) throw OptionError("tls", problem);
    }
  }
  if (o.has("credentials")) choice.security.credentials_file = o.resolve_path("credentials");
  for (const char* key : {"tls", "credentials"}) {
    if (o.has(key) && choice.broker.empty())
      throw OptionError(key, std::string(key) +
                                 " goes with the stage's own broker: set 'broker' on the stage, "
                                 "or put it under links.mqtt for the pipeline's broker");
  }
  if (o.has("tls") && !choice.broker.empty() && !mqtt::detail::parse_uri(choice.broker).tls)
    throw OptionError("tls", "the broker " + choice.broker +
                                 " is plain TCP: write it as mqtts://HOST:8883 to use TLS");
}

mqtt::ClientOptions client_options(const ClientChoice& choice, Context& ctx) {
  mqtt::ClientOptions o;
  o.uri = choice.broker.empty() ? ctx.links().mqtt_broker : choice.broker;
  if (o.uri.empty())
    throw OperatorError(
        "no MQTT broker: set the stage's 'broker' option or links.mqtt.broker in the pipeline");
  try {
    mqtt::apply_security(
        (choice.broker.empty() ? ctx.links().mqtt_security : choice.security).for_node(ctx.node()),
        o);
  } catch (const mqtt::MqttError& e) {
    throw OperatorError(e.what());
  }
  o.client_id = choice.client_id.empty()
                    ? "edgeflow-" + ctx.pipeline() + "-" + ctx.stage() + "-" + ctx.node()
                    : choice.client_id;
  o.retry_first_connect = ctx.links().mqtt_retry;
  return o;
}

std::string client_kind(const ClientChoice& choice, Context& ctx) {
  return choice.client.empty() ? ctx.links().mqtt_client : choice.client;
}

}  // namespace edgeflow::mqttop
