// `edgeflow loadgen`: a fleet of plain MQTT sensors (microcontrollers, not edgeflow nodes) for
// testing and benchmarking what receives them. Sensor i publishes JSON readings
// {"sensor_id": "s000042", "seq": n, "temperature": ..., "humidity": ..., "time": seconds}
// on its own topic (sensors/s000042/reading by default), `rate` readings per second each,
// spread evenly over time. Either one connection carries every sensor's topic (the default:
// what a gateway does, and cheap enough for 100,000 sensors), or each sensor has a client id
// and connection of its own (--clients per-sensor, up to 300: what a broker sees from real
// devices). At QoS 0 "published" counts what the client took; at QoS 1, what the broker
// acknowledged.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace edgeflow::loadgen {

struct Options {
  std::string broker;               // tcp://, mqtts://
  std::string tls_ca, credentials;  // as the fleet commands take them
  int sensors = 1000;
  double rate = 1.0;                           // readings per second of each sensor
  double seconds = 10.0;                       // how long to publish (0: until count)
  int64_t count = 0;                           // readings per sensor, then stop (0: seconds)
  std::string topic = "sensors/{id}/reading";  // {id}: the sensor id
  int qos = 0;
  bool per_sensor_clients = false;  // a connection per sensor
  uint64_t seed = 1;                // the readings' values
};

struct Result {
  uint64_t published = 0;  // readings the broker took (QoS 1: acknowledged by the end)
  uint64_t failed = 0;     // readings not sent (not connected at QoS 0, or a refusal)
  double seconds = 0;      // from the first publish to the last
  int connections = 0;
};

// The sensor id of sensor i: "s" and six digits (more past 999,999).
std::string sensor_id(int i);
// The payload of reading `seq` of sensor i at `time_s` (seconds since the epoch): the same
// for the same seed, so a receiver's aggregates can be checked against it.
std::string reading(const Options& o, int i, int64_t seq, double time_s);

// Publishes until the time or the count is reached, or *stop turns true. Throws
// std::runtime_error naming the broker and the fix when it cannot connect.
Result run(const Options& o, const std::atomic<bool>* stop);

// The command: runs until done or Ctrl-C, prints one summary line. 0 when every reading was
// published, 1 when some were not or the broker could not be reached, 2 for bad arguments.
int cmd_loadgen(const Options& o);

}  // namespace edgeflow::loadgen
