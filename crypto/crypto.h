// Ethereum cryptography for iExec proofs of contribution: keccak256 (Ethereum's, padding 0x01,
// not SHA3-256), sha256, secp256k1 recoverable signatures (65 bytes r||s||v, v 27/28, low-s,
// RFC 6979 nonces), EIP-191 message hashes and address recovery. Built on nettle (the Keccak
// permutation, SHA-256) and libsecp256k1; no curve arithmetic of our own. Depends on nothing
// else in edgeflow, so signatures and hashes can be checked against any Ethereum tool.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace edgeflow::crypto {

// Every failure a caller can act on (an unreadable key file, a bad key); the text names the
// file and the fix.
class CryptoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <size_t N>
struct FixedBytes {
  std::array<uint8_t, N> bytes{};

  static constexpr size_t size() { return N; }
  const uint8_t* data() const { return bytes.data(); }
  uint8_t* data() { return bytes.data(); }
  bool is_zero() const {
    for (uint8_t b : bytes)
      if (b) return false;
    return true;
  }
  std::string hex() const;  // "0x" + lowercase hex
  friend bool operator==(const FixedBytes& a, const FixedBytes& b) { return a.bytes == b.bytes; }
  friend bool operator!=(const FixedBytes& a, const FixedBytes& b) { return a.bytes != b.bytes; }
  friend bool operator<(const FixedBytes& a, const FixedBytes& b) { return a.bytes < b.bytes; }
};

extern template struct FixedBytes<20>;
extern template struct FixedBytes<32>;
extern template struct FixedBytes<65>;
using Hash32 = FixedBytes<32>;     // a keccak256 or sha256 digest, a bytes32, a uint256
using Address = FixedBytes<20>;    // an Ethereum address
using Signature = FixedBytes<65>;  // r || s || v, v in {27, 28}

// Hex with or without "0x", either case (EIP-55 mixed case is accepted, not checked).
std::string to_hex(const void* data, size_t size, bool prefix = true);
std::optional<std::vector<uint8_t>> from_hex(std::string_view hex);
std::optional<Hash32> parse_hash32(std::string_view hex);
std::optional<Address> parse_address(std::string_view hex);
std::optional<Signature> parse_signature(std::string_view hex);

Hash32 keccak256(const void* data, size_t size);
inline Hash32 keccak256(std::string_view s) { return keccak256(s.data(), s.size()); }
Hash32 sha256(const void* data, size_t size);
inline Hash32 sha256(std::string_view s) { return sha256(s.data(), s.size()); }
// Streams the file; throws CryptoError naming the path when it cannot be read.
Hash32 sha256_file(const std::string& path);

// Solidity's abi.encodePacked of addresses, bytes32 and uint256, then keccak256:
//   Packed().add(worker).add(taskid).add(enclave).keccak()
class Packed {
 public:
  Packed& add(const Address& a) { return add_raw(a.data(), a.size()); }
  Packed& add(const Hash32& h) { return add_raw(h.data(), h.size()); }
  Packed& add_uint256(uint64_t v);  // 32 bytes big-endian
  Packed& add_raw(const void* data, size_t size);
  Hash32 keccak() const { return keccak256(buf_.data(), buf_.size()); }
  const std::vector<uint8_t>& bytes() const { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

// keccak256("\x19Ethereum Signed Message:\n32" || message): what personal_sign / EIP-191
// version 0x45 signs for a 32-byte message.
Hash32 eip191_hash(const Hash32& message);

// The signer of `digest` (a hash that was signed as is), or nullopt when the signature is
// malformed, has high s, a v other than 27/28, or does not recover.
std::optional<Address> recover(const Hash32& digest, const Signature& sig);
// The signer of an EIP-191 signature over a 32-byte message.
inline std::optional<Address> recover_eip191(const Hash32& message, const Signature& sig) {
  return recover(eip191_hash(message), sig);
}

// A secp256k1 key pair. Key files hold one line: the private key as 0x + 64 hex digits (the
// format `cast wallet` and geth's --private-key files use), mode 0600. Unencrypted: protect
// the file as you would an SSH key.
class Wallet {
 public:
  static Wallet generate();  // from getrandom(); throws CryptoError if the kernel has none
  static Wallet from_private_key(const Hash32& key);  // throws CryptoError for an invalid key
  // Throws CryptoError naming the file: missing, unreadable, malformed, or readable by group
  // or others (with the chmod that fixes it).
  static Wallet load(const std::string& path);
  // Creates the file with mode 0600; refuses to overwrite an existing one (CryptoError).
  void save(const std::string& path) const;

  const Address& address() const { return address_; }
  const Hash32& private_key() const { return key_; }
  Signature sign(const Hash32& digest) const;  // signs the 32 bytes as given
  Signature sign_eip191(const Hash32& message) const { return sign(eip191_hash(message)); }

 private:
  Hash32 key_;
  Address address_;
};

}  // namespace edgeflow::crypto
