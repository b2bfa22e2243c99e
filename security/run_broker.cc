#include "security/run_broker.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/security.h"
#include "security/mosquitto_passwd.h"

namespace edgeflow::security {

RunBroker start_run_broker() {
  const std::string user = "edgeflow";
  const std::string password = random_password();
  mqtt::EmbeddedBrokerOptions o;
  o.password_text = mosquitto_passwd_line(user, password) + "\n";
  RunBroker rb;
  rb.broker = std::make_unique<mqtt::EmbeddedBroker>(o);
  rb.credentials_file = rb.broker->work_dir() + "/credentials.yaml";
  const std::string text =
      "# The credentials of this run's embedded broker (edgeflow run).\n"
      "username: " +
      user + "\npassword: " + password + "\n";
  mqtt::write_private_file(rb.credentials_file, text, /*exclusive=*/true);
  rb.broker->start();
  rb.client_config_dir = rb.broker->work_dir() + "/clients";
  if (::mkdir(rb.client_config_dir.c_str(), 0700) != 0) {
    throw mqtt::MqttError("cannot create " + rb.client_config_dir + ": " + std::strerror(errno));
  }
  // One "-option value" per line: the mosquitto clients' defaults file.
  const std::string options = "-h 127.0.0.1\n-p " + std::to_string(rb.broker->port()) + "\n-u " +
                              user + "\n-P " + password + "\n";
  for (const char* client : {"mosquitto_sub", "mosquitto_pub"})
    mqtt::write_private_file(rb.client_config_dir + "/" + client, options, /*exclusive=*/true);
  return rb;
}

}  // namespace edgeflow::security
