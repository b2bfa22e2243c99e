// A NATS cluster (or a single server) with JetStream and the MQTT interface for a test,
// started and stopped through scripts/nats-cluster.sh, the script the README uses: free
// loopback ports, data in a fresh temporary folder, every wait bounded.
#pragma once

#include <string>
#include <vector>

namespace edgeflow::testing {

class NatsCluster {
 public:
  // Starts `servers` servers; check ok() (error() says why not).
  // `extra`: more arguments of `nats-cluster.sh start` (--tls CADIR, --user NAME:PASSWORD).
  explicit NatsCluster(int servers = 1, const std::vector<std::string>& extra = {});
  void stop();     // every server, keeping their ports for restart()
  ~NatsCluster();  // stops every server
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  bool ok() const { return !servers_.empty(); }
  const std::string& error() const { return error_; }
  // "nats://127.0.0.1:P1,..." and the YAML list ["nats://...", ...] of the same.
  const std::string& servers() const { return servers_; }
  std::string servers_yaml() const;
  // "tcp://127.0.0.1:M1,...": each server's MQTT interface.
  const std::string& mqtt() const { return mqtt_; }
  // The MQTT interface of server i (1-based).
  std::string mqtt_uri(int i) const;
  void kill(int i);     // SIGKILL server i (1-based)
  bool restart(int i);  // start it again on its ports
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, servers_, mqtt_, error_;
};

}  // namespace edgeflow::testing
