// The broker of `edgeflow run` (run_broker.h): a real mosquitto that admits only the run's
// own credentials, with the password in no file but the 0600 credentials file.
#include "security/run_broker.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/security.h"
#include "tests/support/process.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

mqtt::ClientOptions options(const std::string& uri, const std::string& id) {
  mqtt::ClientOptions o;
  o.uri = uri;
  o.client_id = id;
  o.connect_timeout_ms = 3000;
  return o;
}

TEST(RunBroker, AdmitsOnlyTheRunsCredentials) {
  security::RunBroker rb = security::start_run_broker();
  ASSERT_TRUE(rb.broker->running());
  EXPECT_EQ(rb.broker->uri().rfind("tcp://127.0.0.1:", 0), 0u) << rb.broker->uri();
  struct stat st {};
  ASSERT_EQ(stat(rb.credentials_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const mqtt::Credentials c = mqtt::load_credentials(rb.credentials_file);
  EXPECT_EQ(c.username, "edgeflow");
  EXPECT_GE(c.password.size(), 20u);

  // With them: connected, and a message goes round.
  for (const std::string kind : {"mosquitto", "paho"}) {
    mqtt::ClientOptions o = options(rb.broker->uri(), "with-" + kind);
    o.username = c.username;
    o.password = c.password;
    auto client = mqtt::make_client(kind, o, [](mqtt::Received&&) {});
    EXPECT_NO_THROW(client->connect()) << kind;
  }
  // Anonymous, or with a wrong password: refused, naming the broker.
  for (const std::string& password : {std::string(), c.password + "x"}) {
    mqtt::ClientOptions o = options(rb.broker->uri(), "without");
    if (!password.empty()) {
      o.username = c.username;
      o.password = password;
    }
    auto client = mqtt::make_client("mosquitto", o, [](mqtt::Received&&) {});
    try {
      client->connect();
      ADD_FAILURE() << "connected with password '" << password << "'";
    } catch (const mqtt::MqttError& e) {
      EXPECT_NE(std::string(e.what()).find(rb.broker->uri()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not authorised"), std::string::npos) << e.what();
    }
  }
  // The password is in no other file of the broker's (the passwd file holds its hash).
  for (const auto& entry : fs::directory_iterator(rb.broker->work_dir())) {
    if (entry.path() == rb.credentials_file || !entry.is_regular_file()) continue;
    EXPECT_EQ(read_all(entry.path()).find(c.password), std::string::npos) << entry.path();
  }
}

// What the run's log tells a user to type: the mosquitto clients read the port and the
// credentials from their option files, so no password is on a command line.
TEST(RunBroker, MosquittoSubWatchesTheRunWithItsOptionFiles) {
  security::RunBroker rb = security::start_run_broker();
  for (const char* client : {"mosquitto_sub", "mosquitto_pub"}) {
    struct stat st {};
    ASSERT_EQ(stat((rb.client_config_dir + "/" + client).c_str(), &st), 0) << client;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << client;
  }
  const std::string env = "XDG_CONFIG_HOME=" + rb.client_config_dir;
  testing::Process sub({"env", env, "mosquitto_sub", "-t", "run/#", "-v", "-C", "1", "-W", "20"});
  // Published until the subscriber has it (its subscription may not be in place at first).
  bool got = false;
  for (int i = 0; i < 40 && !got; ++i) {
    testing::ProcessResult pub =
        testing::run_process({"env", env, "mosquitto_pub", "-t", "run/x", "-m", "hello"}, 10);
    EXPECT_EQ(pub.exit_code, 0) << pub.err;
    got = sub.wait_for_out("run/x hello", 0.5);
  }
  EXPECT_TRUE(got) << sub.err();
  // Without them the same command is refused.
  testing::ProcessResult anonymous = testing::run_process(
      {"mosquitto_pub", "-p", std::to_string(rb.broker->port()), "-t", "run/x", "-m", "x"}, 10);
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_NE(anonymous.err.find("not authorised"), std::string::npos) << anonymous.err;
}

TEST(RunBroker, EachRunHasItsOwnPassword) {
  security::RunBroker a = security::start_run_broker();
  security::RunBroker b = security::start_run_broker();
  EXPECT_NE(a.broker->port(), b.broker->port());
  EXPECT_NE(mqtt::load_credentials(a.credentials_file).password,
            mqtt::load_credentials(b.credentials_file).password);
  const std::string dir = a.broker->work_dir();
  a = security::RunBroker{};  // stopping the broker removes its folder, credentials and all
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace edgeflow
