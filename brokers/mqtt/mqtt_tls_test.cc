// MQTT over TLS with a username and password, against real mosquitto brokers on loopback
// ports: one with a good certificate, password file and ACL, one with an expired certificate,
// one whose certificate names another host. The certificates come from
// scripts/make-test-ca.sh, the password file from mosquitto_passwd. Both clients.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "brokers/mqtt/client.h"
#include "brokers/mqtt/embedded_broker.h"
#include "brokers/mqtt/mqtt_test_util.h"
#include "brokers/mqtt/security.h"

namespace edgeflow::mqtt {
namespace {

namespace fs = std::filesystem;
using testing::Inbox;
using testing::run_command;

constexpr char kPassword[] = "s3cret-Pa55word";

struct TlsWorld {
  std::string dir;  // certificates, passwd, acl, credentials
  std::unique_ptr<EmbeddedBroker> good, expired, wrongname;
};
TlsWorld* g_world = nullptr;

std::string write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
  return path;
}

class MqttTlsTest : public ::testing::TestWithParam<std::string> {
 public:
  static void SetUpTestSuite() {
    g_world = new TlsWorld;
    char tmpl[] = "/tmp/edgeflow-tls-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    g_world->dir = tmpl;
    const char* src = std::getenv("EDGEFLOW_SOURCE_DIR");
    ASSERT_NE(src, nullptr) << "run through ctest (EDGEFLOW_SOURCE_DIR)";
    auto ca = run_command({std::string(src) + "/scripts/make-test-ca.sh", g_world->dir}, 60000);
    ASSERT_EQ(ca.exit_code, 0) << ca.out;
    const std::string passwd = g_world->dir + "/passwd";
    for (const char* user : {"pi-1", "pi-2"}) {
      std::vector<std::string> argv = {"mosquitto_passwd", "-b"};
      if (std::string(user) == "pi-1") argv.push_back("-c");
      argv.insert(argv.end(), {passwd, user, kPassword});
      auto r = run_command(argv);
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    // Each node its own topics only: what broker-config generates, in small.
    write_file(
        g_world->dir + "/acl",
        "user pi-1\ntopic readwrite nodes/pi-1/#\n\nuser pi-2\ntopic readwrite nodes/pi-2/#\n",
        0644);
    write_file(g_world->dir + "/pi-1.credentials.yaml",
               std::string("username: pi-1\npassword: ") + kPassword + "\n", 0600);
    write_file(g_world->dir + "/pi-2.credentials.yaml",
               std::string("username: pi-2\npassword: ") + kPassword + "\n", 0600);
    write_file(g_world->dir + "/wrong.credentials.yaml", "username: pi-1\npassword: not-it\n",
               0600);
    auto broker = [](const std::string& cert) {
      EmbeddedBrokerOptions o;
      o.persistence = false;
      o.tls_ca_file = g_world->dir + "/ca.crt";
      o.tls_cert_file = g_world->dir + "/" + cert + ".crt";
      o.tls_key_file = g_world->dir + "/" + cert + ".key";
      o.password_file = g_world->dir + "/passwd";
      o.acl_file = g_world->dir + "/acl";
      auto b = std::make_unique<EmbeddedBroker>(o);
      b->start();
      return b;
    };
    g_world->good = broker("server");
    g_world->expired = broker("expired");
    g_world->wrongname = broker("wrongname");
  }
  static void TearDownTestSuite() {
    if (!g_world) return;
    std::error_code ec;
    g_world->good.reset();
    g_world->expired.reset();
    g_world->wrongname.reset();
    fs::remove_all(g_world->dir, ec);
    delete g_world;
    g_world = nullptr;
  }

 protected:
  // The broker by name: mqtts://localhost:PORT (the certificates are made out to localhost).
  static std::string uri(const EmbeddedBroker& b) {
    return "mqtts://localhost:" + std::to_string(b.port());
  }
  ClientOptions options(const EmbeddedBroker& b, const std::string& who,
                        const std::string& ca = "ca.crt") {
    MqttSecurity s;
    s.ca_file = g_world->dir + "/" + ca;
    s.credentials_file = g_world->dir + "/" + who + ".credentials.yaml";
    ClientOptions o;
    o.uri = uri(b);
    o.client_id = "tls-test-" + who + "-" + GetParam() + std::to_string(++ids_);
    o.connect_timeout_ms = 5000;
    apply_security(s, o);
    return o;
  }
  // The text of the MqttError that connect() throws ("" when it connects).
  std::string connect_error(ClientOptions o) {
    try {
      auto c = make_client(GetParam(), std::move(o), [](Received&&) {});
      c->connect();
      c->disconnect();
      return "";
    } catch (const MqttError& e) {
      return e.what();
    }
  }
  int ids_ = 0;
};

TEST_P(MqttTlsTest, RoundTripOverTlsWithAPassword) {
  ASSERT_NE(g_world->good, nullptr);
  Inbox inbox;
  auto sub = make_client(GetParam(), options(*g_world->good, "pi-1"), inbox.handler());
  sub->connect();
  sub->subscribe("nodes/pi-1/#", 1);
  auto pub = make_client(GetParam(), options(*g_world->good, "pi-1"), [](Received&&) {});
  pub->connect();
  ASSERT_TRUE(pub->publish("nodes/pi-1/status", "up", 2, 1, false, 5000));
  ASSERT_TRUE(inbox.wait_for(1));
  EXPECT_EQ(inbox.messages()[0].payload, "up");
}

TEST_P(MqttTlsTest, ANodeCannotPublishOnAnotherNodesTopic) {
  Inbox pi2_inbox;
  auto pi2 = make_client(GetParam(), options(*g_world->good, "pi-2"), pi2_inbox.handler());
  pi2->connect();
  pi2->subscribe("nodes/pi-2/#", 1);
  auto pi1 = make_client(GetParam(), options(*g_world->good, "pi-1"), [](Received&&) {});
  pi1->connect();
  // The broker acknowledges a refused publish like any other (MQTT 3.1.1 has no way to say
  // no) and drops it. pi-2's own message, sent after it, shows delivery is working.
  pi1->publish("nodes/pi-2/deploy", "forged", 6, 1, false, 5000);
  ASSERT_TRUE(pi1->flush(5000));
  ASSERT_TRUE(pi2->publish("nodes/pi-2/status", "own", 3, 1, false, 5000));
  ASSERT_TRUE(pi2_inbox.wait_for(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (const Received& r : pi2_inbox.messages()) EXPECT_NE(r.payload, "forged") << r.topic;
  EXPECT_EQ(pi2_inbox.size(), 1u);
}

TEST_P(MqttTlsTest, AWrongPasswordNamesTheBrokerAndNeverThePassword) {
  ClientOptions o = options(*g_world->good, "wrong");
  std::string e = connect_error(o);
  EXPECT_NE(e.find(o.uri), std::string::npos) << e;
  EXPECT_TRUE(e.find("not authorised") != std::string::npos ||
              e.find("bad user name or password") != std::string::npos)
      << e;
  EXPECT_EQ(e.find("not-it"), std::string::npos) << "the password leaked: " << e;
}

TEST_P(MqttTlsTest, AnUntrustedCertificateIsRefusedWithTheReason) {
  ClientOptions o = options(*g_world->good, "pi-1", "other-ca.crt");
  std::string e = connect_error(o);
  EXPECT_NE(e.find(o.uri), std::string::npos) << e;
  // OpenSSL's reason depends on whether the broker sends its CA along: "unable to get local
  // issuer certificate" or "self-signed certificate in certificate chain".
  EXPECT_NE(e.find("the broker's certificate was refused"), std::string::npos) << e;
  EXPECT_NE(e.find("tls.ca_file"), std::string::npos) << e;
}

TEST_P(MqttTlsTest, AnExpiredCertificateIsRefusedWithTheReason) {
  ClientOptions o = options(*g_world->expired, "pi-1");
  std::string e = connect_error(o);
  EXPECT_NE(e.find(o.uri), std::string::npos) << e;
  EXPECT_NE(e.find("certificate has expired"), std::string::npos) << e;
}

TEST_P(MqttTlsTest, AHostNameMismatchIsRefusedUnlessVerificationIsOff) {
  ClientOptions o = options(*g_world->wrongname, "pi-1");
  std::string e = connect_error(o);
  EXPECT_NE(e.find(o.uri), std::string::npos) << e;
  EXPECT_NE(e.find("mismatch"), std::string::npos) << e;
  o.tls.verify_hostname = false;  // the certificate is still checked against the CA
  EXPECT_EQ(connect_error(o), "");
}

TEST_P(MqttTlsTest, TlsSettingsOnAPlainBrokerOrUnreadableFilesAreClearErrors) {
  ClientOptions o = options(*g_world->good, "pi-1");
  o.uri = "tcp://localhost:" + std::to_string(g_world->good->port());
  std::string e = connect_error(o);
  EXPECT_NE(e.find("write the broker as mqtts://"), std::string::npos) << e;
  o = options(*g_world->good, "pi-1");
  o.tls.ca_file = g_world->dir + "/no-such-ca.crt";
  e = connect_error(o);
  EXPECT_NE(e.find("tls.ca_file"), std::string::npos) << e;
  EXPECT_NE(e.find("no-such-ca.crt"), std::string::npos) << e;
}

TEST(MqttCredentials, APasswordInTheUriIsRefusedWithoutRepeatingIt) {
  ClientOptions o;
  o.uri = "mqtts://pi-1:Hunter2-secret@broker.example:8883";
  try {
    make_client("mosquitto", o, [](Received&&) {});
    ADD_FAILURE() << "a URI with a password was accepted";
  } catch (const MqttError& e) {
    const std::string text = e.what();
    EXPECT_EQ(text.find("Hunter2"), std::string::npos) << text;
    EXPECT_NE(text.find("credentials file"), std::string::npos) << text;
  }
}

TEST(MqttCredentials, AFileOthersMayReadIsRefused) {
  char tmpl[] = "/tmp/edgeflow-cred-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path =
      write_file(std::string(tmpl) + "/c.yaml", "username: u\npassword: p\n", 0644);
  try {
    load_credentials(path);
    ADD_FAILURE() << "a 0644 credentials file was accepted";
  } catch (const MqttError& e) {
    EXPECT_NE(std::string(e.what()).find("chmod 600 " + path), std::string::npos) << e.what();
  }
  chmod(path.c_str(), 0600);
  EXPECT_EQ(load_credentials(path).username, "u");
  write_file(path, "username: u\n", 0600);
  EXPECT_THROW(load_credentials(path), MqttError);
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

INSTANTIATE_TEST_SUITE_P(Clients, MqttTlsTest, ::testing::Values("mosquitto", "paho"));

}  // namespace
}  // namespace edgeflow::mqtt
