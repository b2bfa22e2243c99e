// A real `mosquitto` started on a free loopback port: the broker of `edgeflow run` when the
// pipeline names none (the embedded default), and of every integration test.
#pragma once

#include <sys/types.h>

#include <string>

namespace edgeflow::mqtt {

struct EmbeddedBrokerOptions {
  std::string mosquitto = "mosquitto";  // the binary; looked up on PATH, then in /usr/sbin
  int port = 0;                         // 0: a free loopback port
  // Persistence keeps sessions, queued QoS 1 messages and retained messages across a
  // stop()/start() of the broker (saved on a clean stop).
  bool persistence = true;
  std::string work_dir;  // config, log and persistence; "" = a fresh temporary directory
  int start_timeout_ms = 5000;
  // TLS on the listener (all three set: uri() is then mqtts://), and who may connect: with a
  // password_file (mosquitto_passwd's format) anonymous clients are refused; acl_file limits
  // each user's topics. Paths are absolute.
  std::string tls_ca_file, tls_cert_file, tls_key_file;
  bool require_certificate = false;  // clients must present a certificate signed by the CA
  std::string password_file;
  // Or the password file's text, which start() writes to work_dir/passwd (mode 0600).
  std::string password_text;
  std::string acl_file;
};

class EmbeddedBroker {
 public:
  explicit EmbeddedBroker(EmbeddedBrokerOptions options = {});
  ~EmbeddedBroker();  // stops the broker and removes a temporary work_dir
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // Starts mosquitto and waits until it accepts connections. Throws mqtt::MqttError naming
  // the binary, the port and the broker's last log lines when it does not come up (for
  // example: "mosquitto not found: apt-get install mosquitto"). The child runs in its own
  // process group with stdout/stderr in work_dir/mosquitto.log, and gets SIGTERM when this
  // process dies (PR_SET_PDEATHSIG), so a crashed owner leaks no broker. The config it
  // writes (work_dir/mosquitto.conf) explains its settings.
  void start();
  // SIGTERM, waits for exit (SIGKILL after a timeout). start() again reuses the same port.
  void stop();
  // SIGKILL without saving, to test outages.
  void kill();
  bool running() const;

  int port() const { return port_; }
  std::string uri() const;  // tcp://127.0.0.1:PORT
  const std::string& work_dir() const { return work_dir_; }
  std::string log_tail(size_t lines = 20) const;

 private:
  EmbeddedBrokerOptions options_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string work_dir_;
  bool owns_work_dir_ = false;
};

}  // namespace edgeflow::mqtt
