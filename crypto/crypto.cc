// Keccak-256 is nettle's Keccak-f[1600] permutation with Ethereum's original padding (0x01);
// nettle's own sha3_256 pads with 0x06 (FIPS 202) and gives other digests. Signatures are
// libsecp256k1's: RFC 6979 nonces and low-s by construction.
#include "crypto/crypto.h"

#include <fcntl.h>
#include <nettle/sha2.h>
#include <nettle/sha3.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include "runtime/lazy_library.h"

namespace edgeflow::crypto {
namespace {

// Both libraries are loaded on first use: a process that verifies and signs nothing (validate,
// a relay) does not map them. nettle's headers rename sha256_init and the rest to nettle_*.
constinit LazyLibrary nettle("libnettle.so.8", "libnettle8", "SHA-256 and Keccak-256");
constinit LazyLibrary secp256k1("libsecp256k1.so.1", "libsecp256k1-1", "secp256k1 signatures");
EF_LAZY_FUNCTION(nettle, nettle_sha3_permute);
EF_LAZY_FUNCTION(nettle, nettle_sha256_init);
EF_LAZY_FUNCTION(nettle, nettle_sha256_update);
EF_LAZY_FUNCTION(nettle, nettle_sha256_digest);
EF_LAZY_FUNCTION(secp256k1, secp256k1_context_create);
EF_LAZY_FUNCTION(secp256k1, secp256k1_context_randomize);
EF_LAZY_FUNCTION(secp256k1, secp256k1_ec_pubkey_create);
EF_LAZY_FUNCTION(secp256k1, secp256k1_ec_pubkey_serialize);
EF_LAZY_FUNCTION(secp256k1, secp256k1_ec_seckey_verify);
EF_LAZY_FUNCTION(secp256k1, secp256k1_ecdsa_recover);
EF_LAZY_FUNCTION(secp256k1, secp256k1_ecdsa_recoverable_signature_parse_compact);
EF_LAZY_FUNCTION(secp256k1, secp256k1_ecdsa_recoverable_signature_serialize_compact);
EF_LAZY_FUNCTION(secp256k1, secp256k1_ecdsa_sign_recoverable);
EF_LAZY_FUNCTION(secp256k1, secp256k1_ecdsa_signature_normalize);
EF_LAZY_FUNCTION(secp256k1, secp256k1_ecdsa_signature_parse_compact);

constexpr size_t kKeccak256Rate = 136;  // 1600-bit state minus 2 x 256-bit capacity, in bytes

void absorb_block(sha3_state& st, const uint8_t* block) {
  for (size_t i = 0; i < kKeccak256Rate / 8; ++i) {
    uint64_t lane = 0;
    for (int b = 7; b >= 0; --b) lane = (lane << 8) | block[i * 8 + b];  // little-endian lanes
    st.a[i] ^= lane;
  }
  sha3_permute(&st);
}

// A library that cannot be loaded is a CryptoError, as every other failure here is.
void require(LazyLibrary& library) {
  try {
    library.load();
  } catch (const std::runtime_error& e) {
    throw CryptoError(e.what());
  }
}

const secp256k1_context* context() {
  // One context for the process: read-only after creation, so safe from every thread.
  static secp256k1_context* ctx = [] {
    require(secp256k1);
    secp256k1_context* c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    unsigned char seed[32];
    // Blinding against side channels; signing stays correct without it.
    if (getrandom(seed, sizeof seed, 0) == sizeof seed && !secp256k1_context_randomize(c, seed))
      std::memset(seed, 0, sizeof seed);  // unblinded; still correct
    return c;
  }();
  return ctx;
}

Address address_of(const secp256k1_pubkey& pub) {
  unsigned char out[65];
  size_t len = sizeof out;
  secp256k1_ec_pubkey_serialize(context(), out, &len, &pub, SECP256K1_EC_UNCOMPRESSED);
  Hash32 h = keccak256(out + 1, 64);  // x || y, without the 0x04 prefix
  Address a;
  std::memcpy(a.data(), h.data() + 12, 20);
  return a;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <size_t N>
std::optional<FixedBytes<N>> parse_fixed(std::string_view hex) {
  auto bytes = from_hex(hex);
  if (!bytes || bytes->size() != N) return std::nullopt;
  FixedBytes<N> out;
  std::memcpy(out.data(), bytes->data(), N);
  return out;
}

}  // namespace

template <size_t N>
std::string FixedBytes<N>::hex() const {
  return to_hex(bytes.data(), N);
}
template struct FixedBytes<20>;
template struct FixedBytes<32>;
template struct FixedBytes<65>;

std::string to_hex(const void* data, size_t size, bool prefix) {
  static const char* digits = "0123456789abcdef";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string s = prefix ? "0x" : "";
  s.reserve(s.size() + size * 2);
  for (size_t i = 0; i < size; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

std::optional<std::vector<uint8_t>> from_hex(std::string_view hex) {
  if (hex.size() >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex.remove_prefix(2);
  if (hex.size() % 2) return std::nullopt;
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

std::optional<Hash32> parse_hash32(std::string_view hex) { return parse_fixed<32>(hex); }
std::optional<Address> parse_address(std::string_view hex) { return parse_fixed<20>(hex); }
std::optional<Signature> parse_signature(std::string_view hex) { return parse_fixed<65>(hex); }

Hash32 keccak256(const void* data, size_t size) {
  require(nettle);
  sha3_state st;
  std::memset(&st, 0, sizeof st);
  const auto* p = static_cast<const uint8_t*>(data);
  for (; size >= kKeccak256Rate; p += kKeccak256Rate, size -= kKeccak256Rate) absorb_block(st, p);
  uint8_t last[kKeccak256Rate] = {};
  if (size) std::memcpy(last, p, size);
  last[size] ^= 0x01;  // Keccak's padding, as Ethereum uses it
  last[kKeccak256Rate - 1] ^= 0x80;
  absorb_block(st, last);
  Hash32 out;
  for (size_t i = 0; i < 32; ++i) out.bytes[i] = static_cast<uint8_t>(st.a[i / 8] >> (8 * (i % 8)));
  return out;
}

Hash32 sha256(const void* data, size_t size) {
  require(nettle);
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, size, static_cast<const uint8_t*>(data));
  Hash32 out;
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

Hash32 sha256_file(const std::string& path) {
  require(nettle);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CryptoError("cannot read " + path + ": " + std::strerror(errno));
  sha256_ctx ctx;
  sha256_init(&ctx);
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    if (in.gcount() > 0)
      sha256_update(&ctx, static_cast<size_t>(in.gcount()), reinterpret_cast<uint8_t*>(buf));
  }
  if (in.bad()) throw CryptoError("error reading " + path);
  Hash32 out;
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

Packed& Packed::add_uint256(uint64_t v) {
  uint8_t word[32] = {};
  for (int i = 0; i < 8; ++i) word[31 - i] = static_cast<uint8_t>(v >> (8 * i));
  return add_raw(word, sizeof word);
}

Packed& Packed::add_raw(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  buf_.insert(buf_.end(), p, p + size);
  return *this;
}

Hash32 eip191_hash(const Hash32& message) {
  static constexpr char kPrefix[] =
      "\x19"
      "Ethereum Signed Message:\n32";
  Packed p;
  p.add_raw(kPrefix, sizeof kPrefix - 1).add(message);
  return p.keccak();
}

std::optional<Address> recover(const Hash32& digest, const Signature& sig) {
  const uint8_t v = sig.bytes[64];
  if (v != 27 && v != 28) return std::nullopt;
  // Ethereum (EIP-2) refuses high-s signatures: each has a low-s twin, so accepting both would
  // give one contribution two valid encodings.
  secp256k1_ecdsa_signature plain;
  if (!secp256k1_ecdsa_signature_parse_compact(context(), &plain, sig.data())) return std::nullopt;
  if (secp256k1_ecdsa_signature_normalize(context(), nullptr, &plain)) return std::nullopt;
  secp256k1_ecdsa_recoverable_signature rs;
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(context(), &rs, sig.data(), v - 27))
    return std::nullopt;
  secp256k1_pubkey pub;
  if (!secp256k1_ecdsa_recover(context(), &pub, &rs, digest.data())) return std::nullopt;
  return address_of(pub);
}

Wallet Wallet::generate() {
  for (int attempt = 0; attempt < 16; ++attempt) {
    Hash32 key;
    if (getrandom(key.data(), key.size(), 0) != static_cast<ssize_t>(key.size()))
      throw CryptoError(std::string("cannot read random bytes for a key: ") + std::strerror(errno));
    if (secp256k1_ec_seckey_verify(context(), key.data())) return from_private_key(key);
  }
  throw CryptoError("could not draw a valid secp256k1 key");
}

Wallet Wallet::from_private_key(const Hash32& key) {
  secp256k1_pubkey pub;
  if (!secp256k1_ec_seckey_verify(context(), key.data()) ||
      !secp256k1_ec_pubkey_create(context(), &pub, key.data()))
    throw CryptoError("not a valid secp256k1 private key (zero, or not below the curve order)");
  Wallet w;
  w.key_ = key;
  w.address_ = address_of(pub);
  return w;
}

Wallet Wallet::load(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw CryptoError("cannot read key file " + path + ": " + std::strerror(errno) +
                      " (create one with: edgeflow wallet new " + path + ")");
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw CryptoError("key file " + path + " is readable by others (mode " + mode +
                      "); restrict it with: chmod 600 " + path);
  }
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) throw CryptoError("cannot read key file " + path);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  auto key = parse_hash32(std::string_view(text).substr(start));
  if (!key)
    throw CryptoError("key file " + path +
                      " does not hold a private key: expected one line, 0x and 64 hex digits");
  try {
    return from_private_key(*key);
  } catch (const CryptoError& e) {
    throw CryptoError("key file " + path + ": " + e.what());
  }
}

void Wallet::save(const std::string& path) const {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST)
      throw CryptoError("key file " + path +
                        " already exists; not overwriting a key (pick another path, or delete it "
                        "if you are sure its address holds nothing)");
    throw CryptoError("cannot create key file " + path + ": " + std::strerror(errno));
  }
  const std::string line = key_.hex() + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    throw CryptoError("cannot write key file " + path + ": " + std::strerror(saved));
  }
}

Signature Wallet::sign(const Hash32& digest) const {
  secp256k1_ecdsa_recoverable_signature rs;
  if (!secp256k1_ecdsa_sign_recoverable(context(), &rs, digest.data(), key_.data(), nullptr,
                                        nullptr))
    throw CryptoError("secp256k1 signing failed");
  Signature sig;
  int recid = 0;
  secp256k1_ecdsa_recoverable_signature_serialize_compact(context(), sig.data(), &recid, &rs);
  sig.bytes[64] = static_cast<uint8_t>(27 + recid);
  return sig;
}

}  // namespace edgeflow::crypto
