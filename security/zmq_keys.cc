#include "security/zmq_keys.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>

namespace edgeflow::security {

namespace fs = std::filesystem;

std::string z85_encode(const std::string& bytes) {
  static const char kAlphabet[] =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  std::string out;
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) v = v * 256 + static_cast<uint8_t>(bytes[i + j]);
    char chunk[5];
    for (int j = 4; j >= 0; --j) {
      chunk[j] = kAlphabet[v % 85];
      v /= 85;
    }
    out.append(chunk, 5);
  }
  return out;
}

ZmqKeyPair make_zmq_keys() {
  std::string secret(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), 32) != 1)
    throw std::runtime_error("OpenSSL could not draw random bytes for a key");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                   reinterpret_cast<const unsigned char*>(secret.data()), 32),
      &EVP_PKEY_free);
  std::string pub(32, '\0');
  size_t len = pub.size();
  if (!key ||
      EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pub.data()), &len) !=
          1 ||
      len != 32)
    throw std::runtime_error("OpenSSL could not make a Curve25519 key");
  ZmqKeyPair pair{z85_encode(pub), z85_encode(secret)};
  OPENSSL_cleanse(secret.data(), secret.size());
  return pair;
}

int cmd_keys_zmq(const KeysArgs& a) {
  if (a.node.empty() || a.node.find('/') != std::string::npos) {
    std::cerr << "edgeflow keys zmq: give a node name like pi-1\n";
    return 2;
  }
  const fs::path path = fs::path(a.out) / (a.node + ".zmq.key");
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) {
    std::cerr << "edgeflow keys zmq: cannot create " << a.out << ": " << ec.message() << "\n";
    return 1;
  }
  if (fs::exists(path) && !a.force) {
    std::cerr << "edgeflow keys zmq: " << path.string()
              << " exists; its public key is in it. Add --force to replace it (every peer "
                 "then needs the new public key)\n";
    return 1;
  }
  ZmqKeyPair keys;
  try {
    keys = make_zmq_keys();
  } catch (const std::exception& e) {
    std::cerr << "edgeflow keys zmq: " << e.what() << "\n";
    return 1;
  }
  fs::remove(path, ec);
  // 0600 from the start: the secret is never readable by others, not even for a moment.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  const std::string text = "# ZeroMQ CURVE keys of node " + a.node +
                           " (edgeflow keys zmq); keep this file secret\npublic: \"" +
                           keys.public_key + "\"\nsecret: \"" + keys.secret_key + "\"\n";
  ssize_t n = fd >= 0 ? ::write(fd, text.data(), text.size()) : -1;
  bool ok = n == static_cast<ssize_t>(text.size());
  int err = n >= 0 && !ok ? ENOSPC : errno;  // a short write sets no errno
  if (fd >= 0) ::close(fd);
  if (!ok) {
    std::cerr << "edgeflow keys zmq: cannot write " << path.string() << ": " << std::strerror(err)
              << "\n";
    return 1;
  }
  std::cout << keys.public_key << "\n";
  std::cerr << "wrote " << path.string()
            << " (mode 0600). In the pipeline file (keys: is relative to the file):\n"
            << "  links: {zmq: {curve: {keys: \"" << a.out << "/{node}.zmq.key\", peers: {"
            << a.node << ": \"" << keys.public_key << "\", ...}}}}\n";
  return 0;
}

}  // namespace edgeflow::security
