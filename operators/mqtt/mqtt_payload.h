// What mqtt.subscribe and mqtt.publish share: payload <-> fields, event times read from a
// payload, topic templates, and the client options both build from their stage options.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brokers/mqtt/client.h"
#include "runtime/message.h"
#include "runtime/operator.h"

namespace edgeflow::mqttop {

enum class Format { kJson, kMsgpack, kRaw };
Format parse_format(const std::string& text);  // the option is an enum: always known

// A JSON object as fields: numbers become int (when integral and in range) or double,
// nested objects and arrays stay nested. False with `error` set for invalid JSON, a value
// that is not an object, or nesting deeper than 64 levels.
bool json_to_fields(std::string_view payload, Fields& out, std::string& error);

// An event time from a payload field: a number is seconds since the epoch (fractions
// allowed), a string is ISO 8601 (2026-06-01T12:00:00Z, 2026-06-01T12:00:00.250+02:00).
std::optional<int64_t> time_from_value(const Value& value, std::string& error);

// A publish topic with placeholders: {node} (this stage's node), {stage}, {stream} and
// {origin} (of the message), {field.NAME} (a field's value: text, number or bool).
class TopicTemplate {
 public:
  // Throws OptionError("topic", ...) for unbalanced braces, an unknown placeholder, or a
  // wildcard ('+', '#') in the text.
  explicit TopicTemplate(const std::string& text);

  // The topic for `m`, or nothing with `error` set (a missing field, a value holding a
  // wildcard, an empty result).
  std::optional<std::string> expand(const Message& m, const Context& ctx, std::string& error) const;

 private:
  enum class Kind { kLiteral, kNode, kStage, kStream, kOrigin, kField };
  struct Part {
    Kind kind = Kind::kLiteral;
    std::string text;  // literal text, or the field name
    bool field = false;
  };
  std::vector<Part> parts_;
};

// Client settings shared by both operators, from their options and the pipeline's links.
struct ClientChoice {
  std::string broker;     // "" = links.mqtt_broker
  std::string client;     // "" = links.mqtt_client
  std::string client_id;  // "" = edgeflow-PIPELINE-STAGE-NODE
  // tls: and credentials: of the stage; a stage that names its own broker uses only these,
  // one that does not uses those of links.mqtt.
  MqttSecurity security;
};
// The options of both operators for TLS and credentials.
std::vector<OptionSpec> security_options();
// Reads them into choice.security (OptionError on 'tls' or 'credentials').
void read_security_options(const Options& o, ClientChoice& choice);
// Checks the broker URI at load time (OptionError on 'broker').
void check_broker_option(const std::string& broker);
// Options for a client of `ctx`'s stage; throws OperatorError when no broker is known.
mqtt::ClientOptions client_options(const ClientChoice& choice, Context& ctx);
std::string client_kind(const ClientChoice& choice, Context& ctx);

}  // namespace edgeflow::mqttop
