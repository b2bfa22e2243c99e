// CURVE on the zmq.* operators (zmq_operator_curve.h), with real ZeroMQ sockets on loopback:
// the binding side admits only the keys it lists; a peer with another key, or in plaintext,
// gets nothing through; and the options say what is missing.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
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
