#include "security/broker_config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/client_internal.h"
#include "fleet/protocol.h"
#include "generated/make_test_ca_script.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"
#include "security/mosquitto_passwd.h"

namespace edgeflow::security {
namespace fs = std::filesystem;

namespace {

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Created 0600 before a byte of it is written: a password is never readable by others, not
// even for a moment (an existing file is made 0600 first, then truncated).
void write_private(const fs::path& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
  bool ok = fchmod(fd, 0600) == 0 && ftruncate(fd, 0) == 0;
  for (size_t done = 0; ok && done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0)
      ok = false;
    else
      done += static_cast<size_t>(n);
  }
  ok = ::close(fd) == 0 && ok;
  if (!ok) throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

std::string broker_acl(const PipelineSpec& p) {
  // user -> (access, topic) in a stable order
  std::map<std::string, std::set<std::pair<std::string, std::string>>> rules;
  std::vector<std::string> cloud_users;
  std::vector<std::string> users;
  for (const NodeSpec& n : p.nodes) {
    users.push_back(n.name);
    if (n.tier == "cloud") cloud_users.push_back(n.name);
  }
  if (cloud_users.empty()) {
    cloud_users.push_back("cloud");
    users.push_back("cloud");
  }
  for (const std::string& u : users) {
    rules[u].insert({"write", fleet::status_topic(u)});
    rules[u].insert({"read", fleet::deploy_topic(u)});
  }
  // The cloud reads every status, marks a silent node lost on its status topic
  // (cloud/registry.cc), deploys to every node and shows the deployments on its dashboard.
  for (const std::string& c : cloud_users) {
    rules[c].insert({"readwrite", fleet::kStatusFilter});
    rules[c].insert({"readwrite", fleet::kDeployFilter});
  }
  const Plan plan = place(p);
  for (const LinkPlan& l : plan.links) {
    if (l.via != "mqtt") continue;
    std::string path = l.name;
    path.replace(path.find("->"), 2, "/");
    const std::string base = "edgeflow/" + p.name + "/";
    // The names the link ends use (brokers/link/transport.cc, spooled_link.cc).
    for (const std::string& s : l.senders) {
      rules[s].insert({"write", base + path});
      rules[s].insert({"read", base + "_ready/" + path + "/+"});
      rules[s].insert({"read", base + "_ack/" + path + "/" + s + "/+"});
    }
    for (const std::string& r : l.receivers) {
      rules[r].insert({"read", base + path});
      rules[r].insert({"write", base + "_ready/" + path + "/" + r});
      rules[r].insert({"write", base + "_ack/" + path + "/+/" + r});
    }
  }
  // mqtt.* stages on the pipeline's broker (one naming a broker of its own is not ours).
  for (const StageInstance& copy : plan.instances) {
    const StageSpec& st = p.stages[static_cast<size_t>(copy.stage)];
    if (st.options.has("broker")) continue;
    if (st.op == "mqtt.subscribe") {
      for (const std::string& f : st.options.get_list("topic"))
        rules[copy.node].insert({"read", f});
    } else if (st.op == "mqtt.publish") {
      const std::string filter = fleet::topic_filter_of(st.options.get_string("topic"));
      rules[copy.node].insert({"write", filter});
      // The dashboard shows what sinks publish (motion events, their snapshots).
      for (const std::string& c : cloud_users) rules[c].insert({"read", filter});
    }
  }
  std::string acl = "# Written by edgeflow broker-config for pipeline '" + p.name +
                    "': each user is a node and may use only the topics listed under it.\n";
  for (const auto& [user, topics] : rules) {
    acl += "\nuser " + user + "\n";
    std::map<std::string, std::string> merged;  // a topic both read and written: readwrite
    for (const auto& [access, topic] : topics) {
      std::string& a = merged[topic];
      a = a.empty() ? access : a == access ? a : "readwrite";
    }
    for (const auto& [topic, access] : merged) acl += "topic " + access + " " + topic + "\n";
  }
  return acl;
}

int cmd_broker_config(const BrokerConfigArgs& a) {
  LoadResult r = load_pipeline_file(a.file);
  if (!r.pipeline) {
    std::cerr << r.diags.str();
    return 2;
  }
  const PipelineSpec& p = *r.pipeline;
  if (p.links.mqtt_broker.empty()) {
    std::cerr << a.file
              << ": links.mqtt.broker is not set: name the broker the fleet will use, as "
                 "mqtts://HOST:8883\n";
    return 2;
  }
  mqtt::detail::BrokerAddress address;
  try {
    address = mqtt::detail::parse_uri(p.links.mqtt_broker);
  } catch (const mqtt::MqttError& e) {
    std::cerr << a.file << ": " << e.what() << "\n";
    return 2;
  }
  const int port = address.port;
  std::string bind = !a.bind.empty() ? a.bind : is_ip_literal(address.host) ? address.host : "";
  try {
    const fs::path out = fs::absolute(a.out);
    fs::create_directories(out / "credentials");
    if (!a.force && fs::exists(out / "passwd")) {
      std::cerr << (out / "passwd").string()
                << " exists: its users would get new passwords. Use --force to replace them\n";
      return 2;
    }
    std::vector<std::string> users;
    bool has_cloud = false;
    for (const NodeSpec& n : p.nodes) {
      users.push_back(n.name);
      has_cloud = has_cloud || n.tier == "cloud";
    }
    if (!has_cloud) users.push_back("cloud");
    std::string passwd;
    for (const std::string& u : users) {
      const std::string pw = random_password();
      passwd += mosquitto_passwd_line(u, pw) + "\n";
      write_private(out / "credentials" / (u + ".yaml"),
                    "# MQTT credentials of " + u + " (edgeflow broker-config); keep it 0600\n" +
                        "username: " + u + "\npassword: " + pw + "\n");
    }
    write_private(out / "passwd", passwd);
    {
      std::ofstream f(out / "acl", std::ios::trunc);
      f << broker_acl(p);
    }
    {
      std::ofstream f(out / "mosquitto.conf", std::ios::trunc);
      f << "# Written by edgeflow broker-config for pipeline '" << p.name << "' ("
        << p.links.mqtt_broker << ").\n"
        << "# Certificates: DIR/make-test-ca.sh makes test ones; put real ones in their place.\n"
        << "per_listener_settings false\n"
        << "listener " << port << (bind.empty() ? "" : " " + bind) << "\n"
        << "cafile " << (out / "ca.crt").string() << "\n"
        << "certfile " << (out / "server.crt").string() << "\n"
        << "keyfile " << (out / "server.key").string() << "\n"
        << "tls_version tlsv1.2\n"
        << "allow_anonymous false\n"
        << "password_file " << (out / "passwd").string() << "\n"
        << "acl_file " << (out / "acl").string() << "\n"
        << "# QoS 1 messages of a node that is away are kept, not dropped after 1000.\n"
        << "max_queued_messages 0\n";
    }
    {
      std::ofstream f(out / "make-test-ca.sh", std::ios::trunc);
      f << kMakeTestCaScript;
    }
    fs::permissions(out / "make-test-ca.sh",
                    fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                        fs::perms::others_read | fs::perms::others_exec,
                    fs::perm_options::replace);
    std::cout << "broker config for '" << p.name << "' in " << out.string() << ": " << users.size()
              << " users\n"
              << "  certificates:  " << (out / "make-test-ca.sh").string() << " " << out.string()
              << " " << address.host << "   (test CA; or your own)\n"
              << "  broker:        mosquitto -c " << (out / "mosquitto.conf").string() << "\n"
              << "  each node:     links.mqtt.credentials: credentials/{node}.yaml, "
                 "tls: {ca_file: ca.crt}\n";
    if (!address.tls)
      std::cout << "  note: " << p.links.mqtt_broker
                << " is plain TCP; this listener is TLS: write mqtts://" << address.host << ":"
                << port << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "broker-config: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace edgeflow::security
