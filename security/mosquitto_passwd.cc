#include "security/mosquitto_passwd.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>
#include <vector>

namespace edgeflow::security {
namespace {

std::string base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(n));
  return out;
}

void random_bytes(unsigned char* out, size_t size) {
  if (RAND_bytes(out, static_cast<int>(size)) != 1)
    throw std::runtime_error("no random bytes from OpenSSL");
}

}  // namespace

std::string mosquitto_passwd_line(const std::string& user, const std::string& password) {
  constexpr int kIterations = 101;  // mosquitto_passwd's own default
  unsigned char salt[12];
  random_bytes(salt, sizeof salt);
  unsigned char hash[64];
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt, sizeof salt,
                        kIterations, EVP_sha512(), sizeof hash, hash) != 1)
    throw std::runtime_error("PBKDF2 failed in OpenSSL");
  return user + ":$7$" + std::to_string(kIterations) + "$" + base64(salt, sizeof salt) + "$" +
         base64(hash, sizeof hash);
}

std::string random_password(size_t length) {
  static const char kChars[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  std::vector<unsigned char> bytes(length);
  random_bytes(bytes.data(), bytes.size());
  std::string out;
  for (unsigned char b : bytes) out += kChars[b % (sizeof kChars - 1)];
  return out;
}

}  // namespace edgeflow::security
