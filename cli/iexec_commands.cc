// `edgeflow wallet` and `edgeflow task`: the key files of schedulers and workers, and task
// requests to a running pool's scheduler over the pipeline's broker.
#include "cli/iexec_commands.h"

#include <signal.h>
#include <sys/random.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/security.h"
#include "crypto/crypto.h"
#include "iexec/poco.h"
#include "iexec/protocol.h"
#include "runtime/duration.h"
#include "runtime/pipeline.h"

namespace edgeflow {

using nlohmann::json;

int cmd_wallet_new(const std::string& file) {
  try {
    crypto::Wallet w = crypto::Wallet::generate();
    w.save(file);
    std::cout << w.address().hex() << "\n";
    std::cerr << "edgeflow wallet: wrote " << file
              << " (mode 0600, unencrypted: guard it like an SSH key)\n";
    return 0;
  } catch (const crypto::CryptoError& e) {
    std::cerr << "edgeflow wallet new: " << e.what() << "\n";
    return 1;
  }
}

int cmd_wallet_address(const std::string& file) {
  try {
    std::cout << crypto::Wallet::load(file).address().hex() << "\n";
    return 0;
  } catch (const crypto::CryptoError& e) {
    std::cerr << "edgeflow wallet address: " << e.what() << "\n";
    return 1;
  }
}

namespace {

// Topics arrive on the client's thread; the command waits on them here.
struct Mailbox {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::string> latest;  // topic -> payload
  void put(mqtt::Received&& r) {
    {
      std::lock_guard<std::mutex> lock(mu);
      latest[r.topic] = std::move(r.payload);
    }
    cv.notify_all();
  }
  std::optional<std::string> wait(const std::string& topic, int64_t timeout_ms) {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                     [&] { return latest.count(topic) != 0; }))
      return std::nullopt;
    return latest[topic];
  }
};

}  // namespace

namespace {

// A COMPLETED result must carry the scheduler's signature over keccak256(taskid || digest), and
// a single-file output must hash to the digest. "" when it checks out, else why not.
std::string check_result(const json& j, const crypto::Address& scheduler) {
  auto text = [&](const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  auto task = crypto::parse_hash32(text("task")),
       digest = crypto::parse_hash32(text("result_digest"));
  auto sig = crypto::parse_signature(text("result_signature"));
  if (!task || !digest || !sig) return "the result has no task, result_digest or result_signature";
  auto signer = crypto::recover_eip191(iexec::result_hash(*task, *digest), *sig);
  if (!signer || *signer != scheduler)
    return "the result's signature does not recover to scheduler " + scheduler.hex();
  if (j.contains("output") && j["output"].is_object() && j["output"].size() == 1 &&
      !j.value("output_is_folder", true) && j["output"].begin()->is_string() &&
      crypto::sha256(j["output"].begin()->get<std::string>()) != *digest)
    return "the output does not hash to result_digest";
  return "";
}

}  // namespace

int cmd_task_submit(const TaskSubmitArgs& a) {
  const char* me = "edgeflow task submit: ";
  {
    // main() blocks these for `run`; here Ctrl-C must simply end the wait.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  }
  LoadResult r = load_pipeline_file(a.pipeline_file);
  if (!r.pipeline) {
    std::cerr << r.diags.str();
    return 2;
  }
  const PipelineSpec& p = *r.pipeline;
  std::string pool = a.pool;
  if (pool.empty()) {
    for (const StageSpec& s : p.stages)
      if (s.op == "iexec.scheduler") pool = s.options.get_string("pool");
    if (pool.empty()) pool = "default";
  }
  const std::string broker = a.broker.empty() ? p.links.mqtt_broker : a.broker;
  if (broker.empty()) {
    std::cerr << me << a.pipeline_file
              << " names no broker (links.mqtt.broker); pass --broker tcp://HOST:PORT (edgeflow "
                 "run prints the embedded broker's URI)\n";
    return 2;
  }
  int64_t wait_us = 0;
  if (!a.wait.empty()) {
    auto d = parse_duration_us(a.wait);
    if (!d || *d <= 0) {
      std::cerr << me << "--wait takes a duration like 60s (got '" << a.wait << "')\n";
      return 2;
    }
    wait_us = *d;
  }
  json inputs = json::array();
  for (const std::string& f : a.inputs) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::cerr << me << "cannot read input file " << f << "\n";
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string name = f.substr(f.find_last_of('/') + 1);
    inputs.push_back({{"name", name}, {"bytes", iexec::bin(ss.str())}});
  }
  crypto::Hash32 id;
  if (!a.id.empty()) {
    auto parsed = crypto::parse_hash32(a.id);
    if (!parsed) {
      std::cerr << me << "--id takes 0x and 64 hex digits\n";
      return 2;
    }
    id = *parsed;
  } else if (getrandom(id.data(), id.size(), 0) != static_cast<ssize_t>(id.size())) {
    std::cerr << me << "no random bytes for a request id; pass --id\n";
    return 1;
  }
  std::optional<crypto::Wallet> wallet;
  if (!a.wallet.empty()) {
    try {
      wallet.emplace(crypto::Wallet::load(a.wallet));
    } catch (const crypto::CryptoError& e) {
      std::cerr << me << e.what() << "\n";
      return 2;
    }
  }
  json body = {{"type", "request"},
               {"id", iexec::bin(id)},
               {"app", a.app},
               {"args", a.args},
               {"inputs", inputs},
               {"trust", a.trust},
               {"requester", "edgeflow task submit"}};
  if (!a.time_ref.empty()) {
    auto d = parse_duration_us(a.time_ref);
    if (!d || *d <= 0) {
      std::cerr << me << "--time-ref takes a duration like 30s\n";
      return 2;
    }
    body["time_ref_us"] = *d;
  }
  const iexec::Topics topics(p.name, pool);
  body["to"] = topics.requests();  // binds the signature to this pool (no replay elsewhere)
  const std::string msg =
      wallet ? iexec::seal_message(*wallet, std::move(body)) : iexec::seal_unsigned(body);

  Mailbox box;
  mqtt::ClientOptions co;
  co.uri = broker;
  co.client_id = "edgeflow-task-submit-" + id.hex().substr(2, 16);
  // The pipeline's TLS and credentials for its own broker; --credentials for any broker.
  MqttSecurity security = a.broker.empty() ? p.links.mqtt_security : MqttSecurity{};
  if (!a.credentials.empty()) security.credentials_file = a.credentials;
  if (security.credentials_file.find("{node}") != std::string::npos) {
    std::cerr << me << "links.mqtt.credentials in " << a.pipeline_file
              << " names a file per node; pass the requester's own with --credentials FILE\n";
    return 2;
  }
  try {
    mqtt::apply_security(security, co);
  } catch (const mqtt::MqttError& e) {
    std::cerr << me << e.what() << "\n";
    return 2;
  }
  try {
    auto client = mqtt::make_client(p.links.mqtt_client.empty() ? "mosquitto" : p.links.mqtt_client,
                                    co, [&box](mqtt::Received&& m) { box.put(std::move(m)); });
    client->connect();
    client->subscribe(topics.announce(), 1);
    auto announce = box.wait(topics.announce(), 5000);
    std::optional<crypto::Address> scheduler;
    if (announce) {
      try {
        scheduler =
            crypto::parse_address(json::parse(*announce).at("scheduler").get<std::string>());
      } catch (const std::exception&) {
      }
    }
    if (!scheduler) {
      std::cerr << me << "no scheduler of pool '" << pool << "' has announced itself on "
                << topics.announce() << " at " << broker
                << "; start the pipeline with its iexec.scheduler stage first (or check --pool)\n";
      return 1;
    }
    if (!a.scheduler.empty()) {
      auto pinned = crypto::parse_address(a.scheduler);
      if (!pinned) {
        std::cerr << me << "--scheduler takes an address (0x + 40 hex digits)\n";
        return 2;
      }
      if (*pinned != *scheduler) {
        std::cerr << me << "the broker announces scheduler " << scheduler->hex()
                  << ", not the one you named, " << pinned->hex() << "; not sending\n";
        return 1;
      }
    }
    const crypto::Hash32 taskid = iexec::task_id(iexec::deal_id(*scheduler, id));
    if (wait_us > 0) client->subscribe(topics.result(taskid), 1);
    if (!client->publish(topics.requests(), msg.data(), msg.size(), 1, false, 10000) ||
        !client->flush(10000)) {
      std::cerr << me << "the broker at " << broker << " did not take the request\n";
      return 1;
    }
    std::cerr << "task " << taskid.hex() << " requested from scheduler " << scheduler->hex()
              << " (app " << a.app << ", trust " << a.trust << "); result on "
              << topics.result(taskid) << "\n";
    if (wait_us == 0) {
      std::cout << taskid.hex() << "\n";
      return 0;
    }
    auto result = box.wait(topics.result(taskid), wait_us / 1000);
    if (!result) {
      std::cerr << me << "no result within " << a.wait << "; the task may still finish (watch: "
                << "mosquitto_sub -t '" << topics.result(taskid) << "')\n";
      return 1;
    }
    json j = json::parse(*result, nullptr, false);
    std::cout << (j.is_discarded() ? *result
                                   : j.dump(2, ' ', false, json::error_handler_t::replace))
              << "\n";
    client->disconnect();
    const bool completed =
        !j.is_discarded() && j.is_object() && j.contains("status") && j["status"] == "COMPLETED";
    if (!completed) return 1;
    if (std::string why = check_result(j, *scheduler); !why.empty()) {
      std::cerr << me << why << "\n";
      return 1;
    }
    return 0;
  } catch (const mqtt::MqttError& e) {
    std::cerr << me << e.what() << "\n";
    return 1;
  }
}

}  // namespace edgeflow
