// The config file of a node service (`edgeflow edge --config`, `edgeflow cloud --config`):
//
//   node: pi-1                        # this node's name in pipeline files
//   broker: tcp://127.0.0.1:1883      # or a list, tried in turn
//   data_dir: /var/lib/edgeflow       # spool, state, the running part
//   trust: "0x..."                    # address whose signature a deployment must carry
//   credentials: pi-1.credentials.yaml  # optional: username, password; mode 0600
//   tls: { ca_file: ca.crt, cert_file: pi-1.crt, key_file: pi-1.key }  # mqtts:// brokers
//   status_period: 10s                # status message at least this often (and on change)
//   keepalive: 10s                    # MQTT keep-alive: a lost node is seen in 1.5x this
//   labels: { site: vineyard-north }
//   device: rpi-zero-2w               # device profile name, for energy figures
//   files_dir: /srv/edgeflow/files    # relative paths of deployed pipelines (default: as
//                                     # on the deploying machine)
//   spool: { sync: full, max_bytes: 256MB, max_age: 7d }
//   sysfs_root: /sys                  # battery figures from <root>/class/power_supply
//   metrics: 127.0.0.1:9464           # serve Prometheus metrics on http://ADDR/metrics
//   operators: operators.digest       # cloud: who may act on the dashboard (mode 0600)
//   battery:                          # the charge energy modes act on (edge/battery_gauge.h)
//     poll: 30s                       # how often it is read
//     source: auto                    # auto (the kernel's, else the model), sysfs or model
//     supply: BAT0                    # which power_supply (default: the first battery)
//     start: 100%                     # the model's charge the first time it runs
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "brokers/spool/spool.h"
#include "runtime/link_settings.h"

namespace edgeflow {

// The text names the file, the line and the fix.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BatteryConfig {
  int64_t poll_ms = 30000;
  std::string source = "auto";  // auto, sysfs, model
  std::string supply;           // "" = the first supply of type Battery with a capacity
  double start_pct = 100;
};

struct NodeConfig {
  std::string file;
  std::string node;
  std::vector<std::string> brokers;
  std::string data_dir;
  std::string trust;  // 0x address; empty only for the cloud service without deployments
  std::string username, password;  // from the credentials file; never logged
  MqttSecurity security;           // tls: and the credentials file's path (for the part)
  int64_t status_period_ms = 10000;
  int keepalive_s = 10;
  std::map<std::string, std::string> labels;
  std::string device;
  std::string files_dir;
  std::string metrics;         // PORT, HOST:PORT or :PORT; "" = no /metrics
  std::string operators_file;  // "" = the dashboard is read-only for everyone
  std::string sysfs_root = "/sys";
  SpoolOptions spool;
  BatteryConfig battery;
};

// `require_trust`: edge services run only signed parts, so `trust` is required there.
NodeConfig load_node_config(const std::string& path, bool require_trust);

}  // namespace edgeflow
