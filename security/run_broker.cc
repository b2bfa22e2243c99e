#include "security/run_broker.h"

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
  return rb;
}

}  // namespace edgeflow::security
