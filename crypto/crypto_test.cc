// Every test vector of IEXEC.md (from iExec's own unit tests), plus the properties the
// protocol relies on: deterministic low-s signatures, strict recovery, safe key files.
#include "crypto/crypto.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace edgeflow::crypto {
namespace {

Hash32 H(const char* hex) { return *parse_hash32(hex); }
Address A(const char* hex) { return *parse_address(hex); }

TEST(Keccak, EmptyInputIsEthereumsNotSha3) {
  EXPECT_EQ(keccak256("").hex(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
}

TEST(Keccak, InputsAroundTheRateBoundary) {
  // 135, 136 and 200 bytes: padding in the last byte of a block, a whole extra padding block,
  // two blocks. Expected values from an independent Python Keccak-f[1600] written from the
  // Keccak reference; "abc" is the widely published Ethereum vector.
  EXPECT_EQ(keccak256("abc").hex(),
            "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
  EXPECT_EQ(keccak256(std::string(135, 'a')).hex(),
            "0x34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef454919cf446");
  EXPECT_EQ(keccak256(std::string(136, 'a')).hex(),
            "0xa6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e");
  EXPECT_EQ(keccak256(std::string(200, 'a')).hex(),
            "0x96ea54061def936c4be90b518992fdc6f12f535068a256229aca54267b4d084d");
}

TEST(Keccak, PackedAddressAndBytes32FromIexecTests) {
  Packed p;
  p.add(A("0x748e091bf16048cb5103E0E10F9D5a8b7fBDd860"))
      .add(H("0xd94b63fc2d3ec4b96daf84b403bbafdc8c8517e8e2addd51fec0fa4e67801be8"));
  EXPECT_EQ(p.keccak().hex(), "0x9ca8cbf81a285c62778678c874dae13fdc6857566b67a9a825434dd557e18a8d");
  p.add(A("0x9a43BB008b7A657e1936ebf5d8e28e5c5E021596"));
  EXPECT_EQ(p.keccak().hex(), "0x54a76d209e8167e1ffa3bde8e3e7b30068423ca9554e1d605d8ee8fd0f165562");
}

TEST(Sha256, ResultFileAndFolderDigestFromIexecTests) {
  EXPECT_EQ(sha256("A result").hex(),
            "0xd885f429a59e0816822fc0927be6a6af20ade2c79db49df6c6022f79cb27ac16");
  Packed folder;
  folder.add(sha256("A result")).add(sha256("Another result"));
  EXPECT_EQ(folder.keccak().hex(),
            "0xcc77508549295dd5de5876a2f4f00d4c3c27a547c6403450e43ab4de191bf1bc");
}

TEST(Sha256, FileStreamsAndNamesAMissingPath) {
  const std::string path = ::testing::TempDir() + "/sha_" + std::to_string(::getpid());
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(200000, 'x');
  }
  EXPECT_EQ(sha256_file(path), sha256(std::string(200000, 'x')));
  std::filesystem::remove(path);
  try {
    sha256_file(path);
    FAIL() << "expected CryptoError";
  } catch (const CryptoError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
}

TEST(Uint256, IsBigEndianIn32Bytes) {
  Packed p;
  p.add_uint256(0x0102);
  ASSERT_EQ(p.bytes().size(), 32u);
  EXPECT_EQ(p.bytes()[30], 0x01);
  EXPECT_EQ(p.bytes()[31], 0x02);
  EXPECT_EQ(p.bytes()[0], 0x00);
}

TEST(Signature, Eip191VectorFromIexecTestsRecoversTheSigner) {
  auto sig = parse_signature(
      "0x7e78fbf387024f96211345c9caae47bafccf9a992fbf7924b3473d133f73c02a32204b44309bb2eaba2fcfa3be"
      "7"
      "26c2c1d19f4ca560ba0c82dbd18b724ea52a11b");
  ASSERT_TRUE(sig);
  auto who =
      recover_eip191(H("0xe6fe0ad9cc7e30e83c9f9b6ce818ad20d576a496dd332cb1a257e85a7ebf2ca3"), *sig);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->hex(), "0x043b9300356351419d9f63e818054e99e6c831b2");
}

TEST(Wallet, KnownKeyHasItsKnownAddress) {
  // The key and address of web3.js's accounts documentation.
  Wallet w = Wallet::from_private_key(
      H("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"));
  EXPECT_EQ(w.address(), A("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"));
}

TEST(Wallet, SignaturesAreDeterministicLowSAndRecover) {
  Wallet w = Wallet::generate();
  const Hash32 msg = keccak256("contribution");
  Signature a = w.sign_eip191(msg), b = w.sign_eip191(msg);
  EXPECT_EQ(a, b);  // RFC 6979
  EXPECT_TRUE(a.bytes[64] == 27 || a.bytes[64] == 28);
  EXPECT_LT(a.bytes[32], 0x80);  // s <= n/2 starts below 0x80 (n/2 = 0x7fffffff...)
  EXPECT_EQ(recover_eip191(msg, a), w.address());
  // Signed over another message, or the raw hash instead of the EIP-191 one: another signer.
  EXPECT_NE(recover_eip191(keccak256("other"), a), w.address());
  EXPECT_NE(recover(msg, a), w.address());
}

TEST(Wallet, RecoverRefusesHighSBadVAndGarbage) {
  Wallet w = Wallet::generate();
  const Hash32 msg = keccak256("x");
  Signature sig = w.sign_eip191(msg);
  // s' = n - s with v flipped is the same signature in high-s form: Ethereum refuses it.
  static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
  Signature high = sig;
  int borrow = 0;
  for (int i = 31; i >= 0; --i) {
    int d = n[i] - sig.bytes[32 + i] - borrow;
    borrow = d < 0;
    high.bytes[32 + i] = static_cast<uint8_t>(d + (borrow ? 256 : 0));
  }
  high.bytes[64] = sig.bytes[64] == 27 ? 28 : 27;
  EXPECT_FALSE(recover_eip191(msg, high));
  Signature bad_v = sig;
  bad_v.bytes[64] = 29;
  EXPECT_FALSE(recover_eip191(msg, bad_v));
  bad_v.bytes[64] = 1;  // raw recovery ids are not Ethereum's v
  EXPECT_FALSE(recover_eip191(msg, bad_v));
  EXPECT_FALSE(recover_eip191(msg, Signature{}));
}

TEST(Hex, ParsesBothCasesAndRefusesGarbage) {
  EXPECT_TRUE(parse_address("0x9a43BB008b7A657e1936ebf5d8e28e5c5E021596"));
  EXPECT_TRUE(parse_address("9a43bb008b7a657e1936ebf5d8e28e5c5e021596"));
  EXPECT_FALSE(parse_address("0x9a43"));
  EXPECT_FALSE(parse_address("0xzz43bb008b7a657e1936ebf5d8e28e5c5e021596"));
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_EQ(to_hex("\x01\xab", 2), "0x01ab");
}

class KeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/keys_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(KeyFile, SaveWritesMode0600AndLoadGivesTheSameAddress) {
  Wallet w = Wallet::generate();
  const std::string path = dir_ + "/w.key";
  w.save(path);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(Wallet::load(path).address(), w.address());
}

TEST_F(KeyFile, SaveRefusesToOverwrite) {
  const std::string path = dir_ + "/w.key";
  Wallet::generate().save(path);
  const Address first = Wallet::load(path).address();
  EXPECT_THROW(Wallet::generate().save(path), CryptoError);
  EXPECT_EQ(Wallet::load(path).address(), first);
}

TEST_F(KeyFile, LoadErrorsNameTheFileAndTheFix) {
  auto message = [](const std::string& path) {
    try {
      Wallet::load(path);
    } catch (const CryptoError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(dir_ + "/missing.key").find("edgeflow wallet new"), std::string::npos);

  const std::string open = dir_ + "/open.key";
  Wallet::generate().save(open);
  ::chmod(open.c_str(), 0644);
  EXPECT_NE(message(open).find("chmod 600 " + open), std::string::npos);

  const std::string junk = dir_ + "/junk.key";
  { std::ofstream(junk) << "not a key\n"; }
  ::chmod(junk.c_str(), 0600);
  EXPECT_NE(message(junk).find("64 hex digits"), std::string::npos);

  const std::string zero = dir_ + "/zero.key";
  { std::ofstream(zero) << "0x" << std::string(64, '0') << "\n"; }
  ::chmod(zero.c_str(), 0600);
  EXPECT_NE(message(zero).find("not a valid secp256k1 private key"), std::string::npos);
}

}  // namespace
}  // namespace edgeflow::crypto
