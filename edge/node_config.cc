#include "edge/node_config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "crypto/crypto.h"
#include "runtime/byte_size.h"
#include "runtime/duration.h"
#include "runtime/energy_rules.h"

namespace edgeflow {
namespace {

std::string where(const std::string& file, const YAML::Node& n) {
  return file + ":" + std::to_string(n.Mark().line + 1) + ":" +
         std::to_string(n.Mark().column + 1) + ": ";
}

}  // namespace

NodeConfig load_node_config(const std::string& path, bool require_trust) {
  NodeConfig c;
  c.file = path;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path + ": cannot read the config file: " + std::strerror(errno));
  } catch (const YAML::Exception& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (!root.IsMap())
    throw ConfigError(path + ": the config must be a map (node: ..., broker: ...)");
  static const std::vector<std::string> known = {
      "node",      "broker", "data_dir", "trust",     "credentials", "status_period",
      "keepalive", "labels", "device",   "files_dir", "spool",       "sysfs_root",
      "battery",   "tls",    "metrics",  "operators"};
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      throw ConfigError(where(path, kv.first) + "unknown key '" + key + "' (known: " + list + ")");
    }
  }
  auto text = [&](const char* key, bool required) -> std::string {
    YAML::Node n = root[key];
    if (!n) {
      if (required) throw ConfigError(path + ": '" + key + "' is required");
      return "";
    }
    if (!n.IsScalar()) throw ConfigError(where(path, n) + "'" + key + "' must be a string");
    return n.as<std::string>();
  };
  auto duration_ms = [&](const char* key, int64_t def) -> int64_t {
    YAML::Node n = root[key];
    if (!n) return def;
    auto us = n.IsScalar() ? parse_duration_us(n.as<std::string>()) : std::nullopt;
    if (!us || *us <= 0)
      throw ConfigError(where(path, n) + "'" + key + "' must be a duration like 10s");
    return *us / 1000;
  };
  c.node = text("node", true);
  YAML::Node b = root["broker"];
  if (!b) throw ConfigError(path + ": 'broker' is required, e.g. broker: tcp://127.0.0.1:1883");
  if (b.IsSequence()) {
    for (const auto& x : b) c.brokers.push_back(x.as<std::string>());
  } else {
    c.brokers.push_back(b.as<std::string>());
  }
  if (c.brokers.empty()) throw ConfigError(where(path, b) + "'broker' names no broker");
  c.data_dir = text("data_dir", true);
  c.trust = text("trust", require_trust);
  if (!c.trust.empty() && !crypto::parse_address(c.trust)) {
    throw ConfigError(where(path, root["trust"]) +
                      "'trust' must be an address (0x + 40 hex "
                      "digits): the output of `edgeflow wallet address CLOUD_KEY`");
  }
  c.status_period_ms = duration_ms("status_period", 10000);
  c.keepalive_s = static_cast<int>(duration_ms("keepalive", 10000) / 1000);
  if (c.keepalive_s < 5 || c.keepalive_s > 3600) {
    throw ConfigError(where(path, root["keepalive"]) +
                      "'keepalive' must be from 5s to 1h (MQTT clients refuse less than 5 s)");
  }
  c.device = text("device", false);
  c.metrics = text("metrics", false);
  c.files_dir = text("files_dir", false);
  if (root["sysfs_root"]) c.sysfs_root = text("sysfs_root", false);
  if (YAML::Node l = root["labels"]) {
    if (!l.IsMap()) throw ConfigError(where(path, l) + "'labels' must be a map like {site: north}");
    for (const auto& kv : l) c.labels[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
  if (YAML::Node s = root["spool"]) {
    if (!s.IsMap())
      throw ConfigError(where(path, s) +
                        "'spool' must be a map like {sync: full, max_bytes: 256MB}");
    for (const auto& kv : s) {
      std::string k = kv.first.as<std::string>(), v = kv.second.as<std::string>();
      if (k == "sync") {
        if (v != "full" && v != "normal" && v != "off")
          throw ConfigError(where(path, kv.second) + "spool 'sync' must be full, normal or off");
        c.spool.sync = v;
      } else if (k == "max_bytes") {
        auto n = parse_byte_size(v);
        if (!n)
          throw ConfigError(where(path, kv.second) + "spool 'max_bytes' must be a size like 256MB");
        c.spool.max_bytes = *n;
      } else if (k == "max_age") {
        auto us = parse_duration_us(v);
        if (!us || *us <= 0)
          throw ConfigError(where(path, kv.second) + "spool 'max_age' must be a duration like 7d");
        c.spool.max_age_s = *us / 1000000;
      } else {
        throw ConfigError(where(path, kv.first) + "unknown spool key '" + k +
                          "' (known: sync, max_bytes, max_age)");
      }
    }
  }
  if (YAML::Node b = root["battery"]) {
    if (!b.IsMap())
      throw ConfigError(where(path, b) + "'battery' must be a map like {poll: 30s, source: auto}");
    for (const auto& kv : b) {
      const std::string k = kv.first.as<std::string>();
      const std::string v = kv.second.IsScalar() ? kv.second.Scalar() : "";
      if (k == "poll") {
        auto us = parse_duration_us(v);
        if (!us || *us < 10000 || *us > 3'600'000'000)
          throw ConfigError(where(path, kv.second) +
                            "battery 'poll' must be a duration from 10ms to 1h, like 30s");
        c.battery.poll_ms = *us / 1000;
      } else if (k == "source") {
        if (v != "auto" && v != "sysfs" && v != "model")
          throw ConfigError(where(path, kv.second) +
                            "battery 'source' must be auto, sysfs or model (got '" + v + "')");
        c.battery.source = v;
      } else if (k == "supply") {
        c.battery.supply = v;
      } else if (k == "start") {
        auto pct = parse_percent(v);
        if (!pct || *pct < 0 || *pct > 100)
          throw ConfigError(where(path, kv.second) +
                            "battery 'start' must be a percentage like 100% (got '" + v + "')");
        c.battery.start_pct = *pct;
      } else {
        throw ConfigError(where(path, kv.first) + "unknown battery key '" + k +
                          "' (known: poll, source, supply, start)");
      }
    }
  }
  if (YAML::Node cr = root["credentials"]) {
    std::filesystem::path file = cr.as<std::string>();
    if (file.is_relative()) file = std::filesystem::path(path).parent_path() / file;
    struct stat st {};
    if (stat(file.c_str(), &st) != 0)
      throw ConfigError(where(path, cr) + "cannot read credentials '" + file.string() + "'");
    if (st.st_mode & 077) {
      throw ConfigError(where(path, cr) + "credentials '" + file.string() +
                        "' can be read by others; run: chmod 600 " + file.string());
    }
    YAML::Node cred;
    try {
      cred = YAML::LoadFile(file.string());
    } catch (const YAML::Exception& e) {
      throw ConfigError(file.string() + ": " + e.msg);
    }
    if (!cred["username"] || !cred["password"])
      throw ConfigError(file.string() + ": needs 'username' and 'password'");
    c.username = cred["username"].as<std::string>();
    c.password = cred["password"].as<std::string>();
    c.security.credentials_file = file.string();
  }
  if (YAML::Node op = root["operators"]) {
    // Who may act on the cloud's dashboard: `edgeflow operator add FILE NAME` writes it.
    if (!op.IsScalar()) throw ConfigError(where(path, op) + "'operators' must be a file name");
    std::filesystem::path file = op.as<std::string>();
    if (file.is_relative()) file = std::filesystem::path(path).parent_path() / file;
    struct stat st {};
    if (stat(file.c_str(), &st) != 0)
      throw ConfigError(where(path, op) + "cannot read the operators file '" + file.string() +
                        "'; create it with: edgeflow operator add " + file.string() + " NAME");
    if (st.st_mode & 077) {
      throw ConfigError(where(path, op) + "the operators file '" + file.string() +
                        "' can be read by others; run: chmod 600 " + file.string());
    }
    c.operators_file = file.string();
  }
  if (YAML::Node tls = root["tls"]) {
    if (!tls.IsMap())
      throw ConfigError(where(path, tls) + "'tls' must be a map like {ca_file: ca.crt}");
    auto resolve = [&](const std::string& p) {
      std::filesystem::path f = p;
      return (f.is_relative() ? std::filesystem::path(path).parent_path() / f : f).string();
    };
    for (const auto& kv : tls) {
      if (!kv.second.IsScalar())
        throw ConfigError(where(path, kv.second) + "tls '" + kv.first.as<std::string>() +
                          "' must be a single value");
      std::string problem = set_mqtt_tls_key(c.security, kv.first.as<std::string>(),
                                             kv.second.as<std::string>(), resolve);
      if (!problem.empty()) throw ConfigError(where(path, kv.first) + problem);
    }
  }
  return c;
}

}  // namespace edgeflow
