// The broker of `edgeflow run` when the pipeline names none: Mosquitto on a free loopback
// port that refuses every client without the credentials made for this run.
//
// Loopback alone does not keep out the machine's other users and processes, which could then
// read every reading and link frame, or publish into the pipeline's links and its iExec pool.
// So each run makes a random password for the user `edgeflow`, gives the broker only its
// hash, and writes the credentials file (mode 0600, the format of links.mqtt.credentials)
// where the run's own stages and the user who started it can read it.
#pragma once

#include <memory>
#include <string>

#include "brokers/mqtt/embedded_broker.h"

namespace edgeflow::security {

struct RunBroker {
  std::unique_ptr<mqtt::EmbeddedBroker> broker;  // running; stops when this goes
  std::string credentials_file;                  // in the broker's folder, mode 0600
  // A folder (0700) with option files for mosquitto_sub and mosquitto_pub (host, port, user,
  // password; 0600): XDG_CONFIG_HOME=DIR mosquitto_sub -t '#' watches the run with no
  // password on a command line, where ps would show it to every user.
  std::string client_config_dir;
};

// Starts it. Throws mqtt::MqttError (no mosquitto, no port) or std::runtime_error (OpenSSL).
RunBroker start_run_broker();

}  // namespace edgeflow::security
