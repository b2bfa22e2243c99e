// CURVE on the zmq.* operators (zmq_operator_curve.h), with real ZeroMQ sockets on loopback:
// the binding side admits only the keys it lists; a peer with another key, or in plaintext,
// gets nothing through and is counted on the binding stage's errors; and the options say what
// is missing.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "brokers/zmq/zmq_test_support.h"
#include "runtime/operator.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

constexpr int kWaitMs = 20000;  // bound on every wait

using zmqlink::testing::free_endpoint;

std::string q(const std::string& s) { return "\"" + s + "\""; }

struct Key {
  std::string file, public_key;
};

// A key file as `edgeflow keys zmq` writes it (mode 0600), from libzmq's own key maker.
Key make_key(const std::string& dir, const std::string& name) {
  char pub[41], sec[41];
  EXPECT_EQ(zmq_curve_keypair(pub, sec), 0);
  Key k{dir + "/" + name + ".zmq.key", pub};
  std::ofstream(k.file) << "public: \"" << pub << "\"\nsecret: \"" << sec << "\"\n";
  ::chmod(k.file.c_str(), 0600);
  return k;
}

class ZmqOperatorCurve : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zmq_curve_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cloud_ = make_key(dir_, "cloud");
    pi_ = make_key(dir_, "pi-1");
    stranger_ = make_key(dir_, "stranger");
    endpoint_ = free_endpoint();
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  // The cloud's PULL binds and admits only pi-1's key.
  std::unique_ptr<OperatorHarness> receiver() {
    auto h = std::make_unique<OperatorHarness>("zmq.subscribe",
                                               "{endpoint: " + q(endpoint_) +
                                                   ", mode: pull, curve_keys: " + q(cloud_.file) +
                                                   ", curve_clients: [" + q(pi_.public_key) + "]}",
                                               "cloud");
    h->open();
    return h;
  }
  // A PUSH with `key` (none: plaintext) that pins the cloud's key.
  // hwm 1: with no peer admitted, one message waits in ZeroMQ and the others time out.
  std::unique_ptr<OperatorHarness> sender(const Key* key) {
    std::string yaml = "{endpoint: " + q(endpoint_) + ", mode: push, timeout: 300ms, hwm: 1";
    if (key)
      yaml += ", curve_keys: " + q(key->file) + ", curve_server_key: " + q(cloud_.public_key);
    return std::make_unique<OperatorHarness>("zmq.publish", yaml + "}", "pi-1");
  }
  static bool collect(OperatorHarness& h, size_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
    for (;;) {
      h.step();
      if (h.output().size() >= n) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      h.wait_for_wake(50);
    }
  }
  // Steps a source until it reports an error (or the wait ends).
  static bool wait_for_error(OperatorHarness& source) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
    for (;;) {
      source.step();
      if (!source.errors().empty()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      source.wait_for_wake(50);
    }
  }

  // The pi's PUB binds and admits only the cloud's key.
  std::unique_ptr<OperatorHarness> publisher() {
    auto h = std::make_unique<OperatorHarness>(
        "zmq.publish",
        "{endpoint: " + q(endpoint_) + ", curve_keys: " + q(pi_.file) + ", curve_clients: [" +
            q(cloud_.public_key) + "]}",
        "pi-1", "feed");
    h->open();
    return h;
  }
  // A SUB with `key` (none: plaintext) that pins the pi's key.
  std::unique_ptr<OperatorHarness> subscriber(const Key* key) {
    std::string yaml = "{endpoint: " + q(endpoint_);
    if (key) yaml += ", curve_keys: " + q(key->file) + ", curve_server_key: " + q(pi_.public_key);
    return std::make_unique<OperatorHarness>("zmq.subscribe", yaml + "}", "dashboard");
  }
  // Publishes until the publisher reports an error, or `sub` gets a message, or the wait ends.
  static void publish_until_error_or_delivery(OperatorHarness& pub, OperatorHarness& sub) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
    for (int i = 0; pub.errors().empty() && sub.output().empty(); ++i) {
      if (std::chrono::steady_clock::now() > deadline) return;
      pub.push_reading(i, {{"n", i}});
      sub.step();
      sub.wait_for_wake(50);
    }
  }
  static bool mentions(const std::vector<std::string>& errors, const std::string& what) {
    return !errors.empty() && errors.front().find(what) != std::string::npos;
  }

  std::string dir_, endpoint_;
  Key cloud_, pi_, stranger_;
};

TEST_F(ZmqOperatorCurve, AListedKeyGetsThroughEncrypted) {
  auto in = receiver();
  auto out = sender(&pi_);
  for (int i = 0; i < 20; ++i) out->push_reading(i, {{"n", i}});  // each waits for room
  out->finish();
  EXPECT_TRUE(out->errors().empty()) << out->errors().front();
  ASSERT_TRUE(collect(*in, 20));
  EXPECT_EQ(*find_field(in->output()[19]->fields, "n"), Value(19));
  EXPECT_TRUE(in->errors().empty()) << in->errors().front();  // nothing refused
}

TEST_F(ZmqOperatorCurve, AnUnknownKeyOrAPlaintextPeerGetsNothingThrough) {
  auto in = receiver();
  const Key* const senders[] = {&stranger_, nullptr};
  for (const Key* key : senders) {
    auto out = sender(key);
    for (int i = 0; i < 5; ++i) out->push_reading(i, {{"n", i}});
    // Refused in the handshake, the PUSH has no peer: beyond its hwm, messages time out.
    ASSERT_GE(out->errors().size(), 3u) << (key ? "unknown key" : "plaintext");
    EXPECT_NE(out->errors().front().find("dropped"), std::string::npos) << out->errors().front();
    out->finish();
  }
  in->step();
  EXPECT_TRUE(in->output().empty());
  // The listed key still gets through afterwards.
  auto out = sender(&pi_);
  out->push_reading(7, {{"n", 7}});
  out->finish();
  ASSERT_TRUE(collect(*in, 1));
}

// zmq.subscribe binding: each refused peer is counted on the stage's errors, and delivers
// nothing. A fresh receiver for each, so each count is that peer's own.
TEST_F(ZmqOperatorCurve, ABindingSubscribeCountsAPlaintextPeerAndAnUnknownKey) {
  const Key* const senders[] = {nullptr, &stranger_};
  for (const Key* key : senders) {
    SCOPED_TRACE(key ? "unknown key" : "plaintext");
    endpoint_ = free_endpoint();
    auto in = receiver();
    auto out = sender(key);
    out->push_reading(0, {{"n", 0}});  // waits in ZeroMQ: no peer admitted
    ASSERT_TRUE(wait_for_error(*in));
    EXPECT_TRUE(mentions(in->errors(), "refused")) << in->errors().front();
    EXPECT_TRUE(mentions(in->errors(), endpoint_)) << in->errors().front();
    EXPECT_TRUE(mentions(in->errors(), "curve_clients")) << in->errors().front();
    out->finish();
    in->finish();
    EXPECT_TRUE(in->output().empty());
  }
}

// zmq.publish binding: a listed subscriber gets messages and nothing is counted; a plaintext
// subscriber and one with an unknown key get nothing, and each is counted on the publishing
// stage's errors.
TEST_F(ZmqOperatorCurve, ABindingPublishCountsAPlaintextPeerAndAnUnknownKey) {
  {
    auto pub = publisher();
    auto sub = subscriber(&cloud_);
    publish_until_error_or_delivery(*pub, *sub);  // a SUB joins late: publish until it has one
    ASSERT_FALSE(sub->output().empty());
    EXPECT_TRUE(pub->errors().empty()) << pub->errors().front();
    pub->finish();
    EXPECT_TRUE(pub->errors().empty()) << pub->errors().front();
  }
  const Key* const peers[] = {nullptr, &stranger_};
  for (const Key* key : peers) {
    SCOPED_TRACE(key ? "unknown key" : "plaintext");
    endpoint_ = free_endpoint();
    auto pub = publisher();
    auto sub = subscriber(key);
    publish_until_error_or_delivery(*pub, *sub);
    ASSERT_FALSE(pub->errors().empty());
    EXPECT_TRUE(mentions(pub->errors(), "refused")) << pub->errors().front();
    EXPECT_TRUE(mentions(pub->errors(), "curve_clients")) << pub->errors().front();
    for (int i = 0; i < 5; ++i) pub->push_reading(100 + i, {{"n", i}});
    sub->finish();
    EXPECT_TRUE(sub->output().empty());
    pub->finish();
  }
}

TEST_F(ZmqOperatorCurve, TheOptionsSayWhatIsMissing) {
  auto problems = [&](const std::string& op, const std::string& extra) {
    return OperatorHarness::option_problems(op, "{endpoint: " + q(endpoint_) + extra + "}");
  };
  const std::string keys = ", curve_keys: " + q(cloud_.file);
  EXPECT_NE(problems("zmq.subscribe", ", mode: pull" + keys).find("curve_clients"),
            std::string::npos);
  EXPECT_NE(problems("zmq.publish", ", mode: push" + keys).find("curve_server_key"),
            std::string::npos);
  EXPECT_NE(problems("zmq.publish", ", mode: push, curve_server_key: " + q(cloud_.public_key))
                .find("needs curve_keys"),
            std::string::npos);
  EXPECT_NE(problems("zmq.publish", ", mode: push" + keys + ", curve_server_key: short")
                .find("not a public key"),
            std::string::npos);
  EXPECT_NE(problems("zmq.subscribe",
                     ", mode: pull" + keys + ", curve_server_key: " + q(cloud_.public_key))
                .find("is for a socket that connects"),
            std::string::npos);
  EXPECT_EQ(problems("zmq.publish", keys + ", curve_clients: [" + q(pi_.public_key) + "]"), "");

  // A key file others may read is refused when the stage opens, naming the file.
  ::chmod(cloud_.file.c_str(), 0644);
  OperatorHarness h("zmq.subscribe", "{endpoint: " + q(endpoint_) + ", mode: pull" + keys +
                                         ", curve_clients: [" + q(pi_.public_key) + "]}");
  try {
    h.open();
    ADD_FAILURE() << "opened with a 0644 key file";
  } catch (const OperatorError& e) {
    EXPECT_NE(std::string(e.what()).find(cloud_.file), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace edgeflow
