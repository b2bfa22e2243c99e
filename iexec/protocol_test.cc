// Envelopes: what a scheduler or worker accepts, and what it must refuse before any rule of
// the ledger is consulted.
#include "iexec/protocol.h"

#include <gtest/gtest.h>

namespace edgeflow::iexec {
namespace {

using nlohmann::json;

std::string envelope(const std::vector<uint8_t>& body, const crypto::Signature* sig) {
  json env = {{"b", json::binary(body)}};
  if (sig) env["s"] = bin(*sig);
  auto out = json::to_msgpack(env);
  return std::string(out.begin(), out.end());
}

TEST(Protocol, SealedMessageOpensWithItsSigner) {
  crypto::Wallet w = crypto::Wallet::generate();
  const std::string m = seal_message(w, {{"type", "ping"}, {"n", 7}});
  std::string why;
  auto o = open_message(m, &why);
  ASSERT_TRUE(o) << why;
  EXPECT_TRUE(o->signed_);
  EXPECT_EQ(o->from, w.address());
  EXPECT_EQ(o->body["n"], 7);
}

TEST(Protocol, ARequestIsForTheTopicItNames) {
  EXPECT_EQ(request_target_error({{"to", "p/iexec/a/requests"}}, "p/iexec/a/requests"), "");
  EXPECT_NE(request_target_error({{"to", "p/iexec/b/requests"}}, "p/iexec/a/requests")
                .find("signed for p/iexec/b/requests, not for this pool's p/iexec/a/requests"),
            std::string::npos);
  EXPECT_NE(request_target_error({{"type", "request"}}, "p/iexec/a/requests").find("(to)"),
            std::string::npos);
  EXPECT_NE(request_target_error({{"to", 3}}, "p/iexec/a/requests"), "");
}

TEST(Protocol, ABodyClaimingAnotherSenderIsRefused) {
  crypto::Wallet victim = crypto::Wallet::generate(), forger = crypto::Wallet::generate();
  json body = {{"type", "contribute"}, {"from", bin(victim.address())}};
  auto b = json::to_msgpack(body);
  const crypto::Signature sig = forger.sign_eip191(crypto::keccak256(b.data(), b.size()));
  std::string why;
  EXPECT_FALSE(open_message(envelope(b, &sig), &why));
  EXPECT_NE(why.find("recovers to " + forger.address().hex()), std::string::npos) << why;
}

TEST(Protocol, AChangedBodyNoLongerMatchesItsSignature) {
  crypto::Wallet w = crypto::Wallet::generate();
  json body = {{"type", "reveal"}, {"from", bin(w.address())}, {"digest", 1}};
  auto b = json::to_msgpack(body);
  const crypto::Signature sig = w.sign_eip191(crypto::keccak256(b.data(), b.size()));
  body["digest"] = 2;
  std::string why;
  EXPECT_FALSE(open_message(envelope(json::to_msgpack(body), &sig), &why));
}

TEST(Protocol, UnsignedIsAllowedOnlyFromTheZeroAddress) {
  std::string why;
  auto o = open_message(seal_unsigned({{"type", "request"}}), &why);
  ASSERT_TRUE(o) << why;
  EXPECT_FALSE(o->signed_);
  crypto::Wallet w = crypto::Wallet::generate();
  EXPECT_FALSE(open_message(
      envelope(json::to_msgpack(json{{"type", "request"}, {"from", bin(w.address())}}), nullptr),
      &why));
  EXPECT_NE(why.find("unsigned"), std::string::npos);
}

TEST(Protocol, MalformedPayloadsAreRefusedWithAReason) {
  std::string why;
  for (const std::string& junk :
       {std::string(), std::string("\xc1"), std::string("not msgpack at all"),
        envelope({0x01}, nullptr), envelope(json::to_msgpack(json{{"no", "type"}}), nullptr)}) {
    why.clear();
    EXPECT_FALSE(open_message(junk, &why));
    EXPECT_FALSE(why.empty());
  }
}

TEST(Protocol, DeepNestingIsRefusedBeforeParsing) {
  // 200,000 nested one-element arrays would overflow the parser's stack.
  std::string deep(200000, '\x91');
  deep += '\xc0';
  std::string why;
  EXPECT_FALSE(open_message(deep, &why));
  EXPECT_NE(why.find("nested deeper"), std::string::npos) << why;
  // The same inside a valid envelope's body.
  std::vector<uint8_t> body(deep.begin(), deep.end());
  EXPECT_FALSE(open_message(envelope(body, nullptr), &why));
  EXPECT_NE(why.find("nested deeper"), std::string::npos) << why;
  // A container that claims more items than the payload holds.
  EXPECT_FALSE(open_message(std::string("\xdd\xff\xff\xff\xff", 5), &why));
}

TEST(Protocol, InvalidUtf8NeverReachesJsonTextRaw) {
  // Overlong encoding of '/', accepted by a naive check, refused by nlohmann's dump().
  const std::string overlong("\xc0\xaf", 2);
  EXPECT_TRUE(printable(overlong).is_object());
  EXPECT_NO_THROW(dump_json(json{{"cause", std::string("\xff")}}));
}

TEST(Protocol, FieldHelpersNameTheField) {
  json body = {{"task", bin(std::string(31, 'x'))}, {"n", "seven"}};
  try {
    get_hash(body, "task");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'task' has 31 bytes"), std::string::npos);
  }
  EXPECT_THROW(get_int(body, "n"), std::runtime_error);
  EXPECT_THROW(get_string(body, "missing"), std::runtime_error);
}

TEST(Protocol, AuthorizationHashMatchesIexecsVector) {
  // IEXEC.md's vector keccak256(address || bytes32 || address) has the shape of an
  // authorization, keccak256(worker || taskid || enclave).
  const auto worker = *crypto::parse_address("0x748e091bf16048cb5103E0E10F9D5a8b7fBDd860");
  const auto task =
      *crypto::parse_hash32("0xd94b63fc2d3ec4b96daf84b403bbafdc8c8517e8e2addd51fec0fa4e67801be8");
  const auto enclave = *crypto::parse_address("0x9a43BB008b7A657e1936ebf5d8e28e5c5E021596");
  EXPECT_EQ(authorization_hash(worker, task, enclave).hex(),
            "0x54a76d209e8167e1ffa3bde8e3e7b30068423ca9554e1d605d8ee8fd0f165562");
}

TEST(Protocol, PrintableKeepsTextAndEncodesBinary) {
  EXPECT_EQ(printable("hello\n"), json("hello\n"));
  EXPECT_EQ(printable(std::string("\xff\x00", 2)), json({{"base64", "/wA="}}));
}

}  // namespace
}  // namespace edgeflow::iexec
