// `links:` of a pipeline file: the transport between nodes and its settings.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <string>

#include "runtime/duration.h"
#include "runtime/loader_internal.h"
#include "runtime/options_yaml.h"

namespace edgeflow {

namespace {

// An integer setting of `links:` within [lo, hi]; leaves `out` alone when absent or wrong.
void link_int(LoadContext& cx, const YAML::Node& node, const std::string& what, int lo, int hi,
              int& out) {
  if (!node.IsDefined()) return;
  auto text = cx.scalar(node, "", what);
  if (!text) return;
  try {
    size_t used = 0;
    long v = std::stol(*text, &used);
    if (used == text->size() && v >= lo && v <= hi) {
      out = static_cast<int>(v);
      return;
    }
  } catch (const std::exception&) {
  }
  cx.diags.add(mark_of(node), "",
               what + " must be a whole number from " + std::to_string(lo) + " to " +
                   std::to_string(hi) + " (got '" + *text + "')");
}

void load_nats(LoadContext& cx, const YAML::Node& nats) {
  if (!nats.IsDefined()) return;
  const char* example = "links 'nats' must be a map like {servers: [\"nats://127.0.0.1:4222\"]}";
  if (!nats.IsMap()) {
    cx.diags.add(mark_of(nats), "", example);
    return;
  }
  cx.check_keys(nats, {"servers", "replicas", "ack_wait", "retry", "tls", "credentials"}, "",
                "links.nats key");
  LinkDefaults& l = cx.spec.links;
  auto resolve = [&](const std::string& path) {
    return path.empty() || path[0] == '/' || cx.spec.base_dir.empty()
               ? path
               : cx.spec.base_dir + "/" + path;
  };
  if (YAML::Node tls = nats["tls"]; tls.IsDefined()) {
    if (!tls.IsMap()) {
      cx.diags.add(mark_of(tls), "",
                   "links.nats 'tls' must be a map like {ca_file: ca.crt} (and cert_file, "
                   "key_file for servers that verify clients)");
    } else {
      l.nats_tls = true;
      for (const auto& kv : tls) {
        const std::string key = kv.first.Scalar();
        if (auto v = cx.scalar(kv.second, "", "tls " + key)) {
          std::string problem = set_mqtt_tls_key(l.nats_security, key, *v, resolve);
          if (!problem.empty()) cx.diags.add(mark_of(kv.first), "", "links.nats " + problem);
        }
      }
      if (l.nats_security.cert_file.empty() != l.nats_security.key_file.empty())
        cx.diags.add(mark_of(tls), "",
                     "links.nats tls: cert_file and key_file go together (a client certificate "
                     "needs its key)");
    }
  }
  if (nats["credentials"].IsDefined())
    if (auto c = cx.scalar(nats["credentials"], "", "nats credentials"))
      l.nats_security.credentials_file = resolve(*c);
  // A missing key of a const map is an invalid node, whose type throws: IsDefined first
  // (no servers at all is reported with the links' via).
  YAML::Node servers = nats["servers"];
  if (!servers.IsDefined()) {
  } else if (servers.IsScalar()) {
    if (auto v = cx.scalar(servers, "", "nats servers")) l.nats_servers.push_back(*v);
  } else if (servers.IsSequence() && servers.size() > 0) {
    for (const auto& s : servers)
      if (auto v = cx.scalar(s, "", "nats server")) l.nats_servers.push_back(*v);
  } else {
    cx.diags.add(mark_of(servers), "", example);
  }
  for (const std::string& s : l.nats_servers)
    if (s.rfind("nats://", 0) != 0 && s.rfind("tls://", 0) != 0)
      cx.diags.add(mark_of(servers), "",
                   "links.nats server '" + s + "' must be a URL like nats://127.0.0.1:4222");
  for (const std::string& s : l.nats_servers)
    if (s.rfind("tls://", 0) == 0) l.nats_tls = true;
  link_int(cx, nats["replicas"], "links nats 'replicas'", 1, 5, l.nats_replicas);
  if (nats["ack_wait"].IsDefined())
    if (auto t = cx.scalar(nats["ack_wait"], "", "nats ack_wait")) {
      auto us = parse_duration_us(*t);
      if (us && *us >= 1'000'000 && *us <= 3'600'000'000)
        l.nats_ack_wait_ms = static_cast<int>(*us / 1000);
      else
        cx.diags.add(
            mark_of(nats["ack_wait"]), "",
            "links.nats 'ack_wait' must be a duration from 1s to 1h like 10s (got '" + *t + "')");
    }
  if (nats["retry"].IsDefined())
    if (auto r = cx.scalar(nats["retry"], "", "nats retry")) {
      if (*r == "true" || *r == "false")
        l.nats_retry = *r == "true";
      else
        cx.diags.add(mark_of(nats["retry"]), "",
                     "links.nats 'retry' must be true or false (got '" + *r + "')");
    }
}

}  // namespace

void load_links(LoadContext& cx, const YAML::Node& links) {
  if (!links.IsDefined() || links.IsNull()) return;
  if (!links.IsMap()) {
    cx.diags.add(mark_of(links), "", "'links' must be a map like {via: mqtt}");
    return;
  }
  cx.check_keys(links, {"via", "mqtt", "zmq", "nats", "batch", "drain_timeout"}, "", "links key");
  if (links["drain_timeout"].IsDefined())
    if (auto t = cx.scalar(links["drain_timeout"], "", "links drain_timeout")) {
      auto us = parse_duration_us(*t);
      if (us && *us >= 0 && *us <= 3'600'000'000)
        cx.spec.links.drain_timeout_ms = static_cast<int>(*us / 1000);
      else
        cx.diags.add(
            mark_of(links["drain_timeout"]), "",
            "links 'drain_timeout' must be a duration up to 1h like 10s (got '" + *t + "')");
    }
  YAML::Node batch = links["batch"];
  if (batch.IsDefined()) {
    if (!batch.IsMap()) {
      cx.diags.add(mark_of(batch), "", "links 'batch' must be a map like {messages: 1000}");
    } else {
      cx.check_keys(batch, {"messages", "bytes"}, "", "links.batch key");
      link_int(cx, batch["messages"], "links batch 'messages'", 1, 100000,
               cx.spec.links.batch_messages);
      link_int(cx, batch["bytes"], "links batch 'bytes'", 1, 16 * 1024 * 1024,
               cx.spec.links.batch_bytes);
    }
  }
  if (links["via"].IsDefined()) {
    if (auto v = cx.scalar(links["via"], "", "links via")) {
      if (std::find(kVias.begin(), kVias.end(), *v) == kVias.end())
        cx.diags.add(mark_of(links["via"]), "",
                     "links 'via' must be mqtt, zmq or nats (got '" + *v + "')");
      cx.spec.links.via = *v;
    }
  }
  YAML::Node mqtt = links["mqtt"];
  if (mqtt.IsDefined()) {
    if (!mqtt.IsMap()) {
      cx.diags.add(mark_of(mqtt), "",
                   "links 'mqtt' must be a map like {broker: \"tcp://127.0.0.1:1883\"}");
    } else {
      cx.check_keys(mqtt, {"broker", "qos", "client", "retry", "tls", "credentials"}, "",
                    "links.mqtt key");
      auto resolve = [&](const std::string& path) {
        return path.empty() || path[0] == '/' || cx.spec.base_dir.empty()
                   ? path
                   : cx.spec.base_dir + "/" + path;
      };
      if (YAML::Node tls = mqtt["tls"]; tls.IsDefined()) {
        if (!tls.IsMap()) {
          cx.diags.add(mark_of(tls), "",
                       "links.mqtt 'tls' must be a map like {ca_file: ca.crt, cert_file: "
                       "pi-1.crt, key_file: pi-1.key}");
        } else {
          for (const auto& kv : tls) {
            const std::string key = kv.first.Scalar();
            if (auto v = cx.scalar(kv.second, "", "tls " + key)) {
              std::string problem = set_mqtt_tls_key(cx.spec.links.mqtt_security, key, *v, resolve);
              if (!problem.empty()) cx.diags.add(mark_of(kv.first), "", "links.mqtt " + problem);
            }
          }
        }
      }
      if (mqtt["credentials"].IsDefined())
        if (auto c = cx.scalar(mqtt["credentials"], "", "mqtt credentials"))
          cx.spec.links.mqtt_security.credentials_file = resolve(*c);
      if (mqtt["retry"].IsDefined())
        if (auto r = cx.scalar(mqtt["retry"], "", "mqtt retry")) {
          if (*r == "true" || *r == "false")
            cx.spec.links.mqtt_retry = *r == "true";
          else
            cx.diags.add(mark_of(mqtt["retry"]), "",
                         "links mqtt 'retry' must be true or false (got '" + *r + "')");
        }
      if (mqtt["broker"].IsDefined())
        if (auto b = cx.scalar(mqtt["broker"], "", "mqtt broker")) cx.spec.links.mqtt_broker = *b;
      if (mqtt["qos"].IsDefined()) {
        if (auto q = cx.scalar(mqtt["qos"], "", "mqtt qos")) {
          if (*q != "0" && *q != "1" && *q != "2")
            cx.diags.add(mark_of(mqtt["qos"]), "",
                         "links mqtt 'qos' must be 0, 1 or 2 (got '" + *q + "')");
          else
            cx.spec.links.mqtt_qos = std::stoi(*q);
        }
      }
      if (mqtt["client"].IsDefined()) {
        if (auto c = cx.scalar(mqtt["client"], "", "mqtt client")) {
          if (*c != "paho" && *c != "mosquitto")
            cx.diags.add(mark_of(mqtt["client"]), "",
                         "links mqtt 'client' must be paho or mosquitto (got '" + *c + "')");
          cx.spec.links.mqtt_client = *c;
        }
      }
    }
  }
  load_nats(cx, links["nats"]);
  if (cx.spec.links.via == "nats" && cx.spec.links.nats_servers.empty())
    cx.diags.add(mark_of(links["via"]), "",
                 "links via nats needs the servers: links: {via: nats, nats: {servers: "
                 "[\"nats://127.0.0.1:4222\"]}} (scripts/nats-cluster.sh starts a local cluster)");
  YAML::Node zmq = links["zmq"];
  if (zmq.IsDefined() && !zmq.IsMap() && !zmq.IsNull())
    cx.diags.add(mark_of(zmq), "", "links 'zmq' must be a map like {port: 5600}");
  if (zmq.IsDefined() && zmq.IsMap()) {
    cx.check_keys(zmq, {"port", "mode", "curve"}, "", "links.zmq key");
    if (YAML::Node curve = zmq["curve"]; curve.IsDefined()) {
      const char* example =
          "links zmq 'curve' must be a map like {keys: \"keys/{node}.zmq.key\", peers: {pi-1: "
          "\"<public key>\", cloud: \"<public key>\"}} (edgeflow keys zmq NODE makes them)";
      if (!curve.IsMap()) {
        cx.diags.add(mark_of(curve), "", example);
      } else {
        cx.check_keys(curve, {"keys", "peers"}, "", "links.zmq.curve key");
        ZmqCurve& c = cx.spec.links.zmq_curve;
        if (auto k = curve["keys"].IsDefined() ? cx.scalar(curve["keys"], "", "curve keys")
                                               : std::nullopt) {
          c.keys_file = k->empty() || (*k)[0] == '/' || cx.spec.base_dir.empty()
                            ? *k
                            : cx.spec.base_dir + "/" + *k;
        }
        YAML::Node peers = curve["peers"];
        if (c.keys_file.empty() || !peers.IsMap() || peers.size() == 0) {
          cx.diags.add(mark_of(curve), "", example);
        } else {
          std::map<std::string, std::string> node_of;  // key -> the first node with it
          for (const auto& kv : peers) {
            auto node = cx.scalar(kv.first, "", "curve peer");
            auto key = cx.scalar(kv.second, "", "curve peer key");
            if (!node || !key) continue;
            if (auto [it, fresh] = node_of.emplace(*key, *node); !fresh) {
              cx.diags.add(mark_of(kv.second), "",
                           "links.zmq.curve.peers: '" + it->second + "' and '" + *node +
                               "' have the same public key; each node needs its own key pair "
                               "(keys: \"keys/{node}.zmq.key\")");
              continue;
            }
            if (!is_z85_key(*key))
              cx.diags.add(mark_of(kv.second), "",
                           "links.zmq.curve.peers '" + *node +
                               "' is not a CURVE public key (40 characters, as `edgeflow keys "
                               "zmq " +
                               *node + "` prints it)");
            else
              c.peers[*node] = *key;
          }
        }
      }
    }
    link_int(cx, zmq["port"], "links zmq 'port'", 1, 65535, cx.spec.links.zmq_port);
    if (zmq["mode"].IsDefined())
      if (auto m = cx.scalar(zmq["mode"], "", "zmq mode")) {
        if (*m != "acked" && *m != "push" && *m != "pubsub")
          cx.diags.add(mark_of(zmq["mode"]), "",
                       "links zmq 'mode' must be acked, push or pubsub (got '" + *m + "')");
        else
          cx.spec.links.zmq_mode = *m;
      }
  }
}

}  // namespace edgeflow
