#include "security/run_broker.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "brokers/mqtt/client.h"
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
  const int fd = ::open(rb.credentials_file.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool ok = fd >= 0;
  for (size_t done = 0; ok && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) throw mqtt::MqttError("cannot write " + rb.credentials_file + ": " + std::strerror(err));
  rb.broker->start();
  return rb;
}

}  // namespace edgeflow::security
