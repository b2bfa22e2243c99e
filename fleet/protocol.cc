#include "fleet/protocol.h"

#include <nlohmann/json.hpp>

namespace edgeflow::fleet {

std::string status_topic(const std::string& node) { return "edgeflow/nodes/" + node + "/status"; }
std::string deploy_topic(const std::string& node) { return "edgeflow/nodes/" + node + "/deploy"; }

std::string topic_filter_of(const std::string& topic_template) {
  std::string out, level;
  auto flush = [&] {
    out += level.find('{') != std::string::npos ? "+" : level;
    level.clear();
  };
  for (char c : topic_template) {
    if (c == '/') {
      flush();
      out += '/';
    } else {
      level += c;
    }
  }
  flush();
  return out;
}

std::string part_hash(const std::string& file_text, const std::vector<std::string>& sets,
                      const std::string& node) {
  std::string all = file_text;
  for (const std::string& s : sets) all += '\0' + s;
  all += '\0' + node;
  crypto::Hash32 h = crypto::sha256(all);
  return crypto::to_hex(h.data(), 8, false);  // 16 hex digits: enough to tell parts apart
}

std::string seal(const Deployment& d, const crypto::Wallet& key) {
  nlohmann::json body = {{"kind", d.kind},
                         {"pipeline", d.pipeline},
                         {"version", d.version},
                         {"node", d.node},
                         {"file_name", d.file_name},
                         {"file", d.file_text},
                         {"base_dir", d.base_dir},
                         {"sets", d.sets},
                         {"part_hash", d.part_hash},
                         {"signer", crypto::to_hex(key.address().data(), key.address().size())}};
  const std::string text = body.dump();
  crypto::Signature sig = key.sign_eip191(crypto::keccak256(text));
  nlohmann::json env = {{"body", text}, {"signature", crypto::to_hex(sig.data(), sig.size())}};
  return env.dump();
}

Opened open(const std::string& payload, const std::string& trust_address) {
  Opened out;
  nlohmann::json env = nlohmann::json::parse(payload, nullptr, false);
  if (env.is_discarded() || !env.is_object() || !env.contains("body") || !env["body"].is_string()) {
    out.error = "not a deployment (expected JSON {\"body\": ..., \"signature\": ...})";
    return out;
  }
  const std::string text = env["body"].get<std::string>();
  if (!env.contains("signature") || !env["signature"].is_string()) {
    out.error = "unsigned deployment refused: deploy with `edgeflow deploy --key KEYFILE`";
    return out;
  }
  auto sig = crypto::parse_signature(env["signature"].get<std::string>());
  std::optional<crypto::Address> signer;
  try {
    if (sig) signer = crypto::recover_eip191(crypto::keccak256(text), *sig);
  } catch (const std::exception& e) {  // nettle or libsecp256k1 cannot be loaded
    out.error = std::string("cannot check the deployment's signature: ") + e.what();
    return out;
  }
  if (!signer) {
    out.error = "deployment with a malformed signature refused";
    return out;
  }
  out.signer = crypto::to_hex(signer->data(), signer->size());
  if (trust_address != kAnySigner) {
    auto trust = crypto::parse_address(trust_address);
    if (!trust || *trust != *signer) {
      out.error = "deployment signed by " + out.signer + ", not by the trusted " + trust_address +
                  " (forged or from another cloud key)";
      return out;
    }
  }
  nlohmann::json body = nlohmann::json::parse(text, nullptr, false);
  try {
    Deployment d;
    d.kind = body.at("kind").get<std::string>();
    d.pipeline = body.at("pipeline").get<std::string>();
    d.version = body.at("version").get<uint64_t>();
    d.node = body.at("node").get<std::string>();
    if (d.kind == "deploy") {
      d.file_name = body.at("file_name").get<std::string>();
      d.file_text = body.at("file").get<std::string>();
      d.base_dir = body.value("base_dir", "");
      d.sets = body.value("sets", std::vector<std::string>{});
      d.part_hash = body.at("part_hash").get<std::string>();
    } else if (d.kind != "undeploy") {
      out.error = "deployment of unknown kind '" + d.kind + "'";
      return out;
    }
    out.deployment = std::move(d);
  } catch (const std::exception& e) {
    out.error = std::string("malformed deployment body: ") + e.what();
  }
  return out;
}

}  // namespace edgeflow::fleet
