#include "brokers/link/zmq_keys.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "runtime/link_settings.h"

namespace edgeflow {

ZmqKeyPair load_zmq_keys(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw std::runtime_error("cannot read ZeroMQ key file " + path + ": " + std::strerror(errno) +
                             "; make it with: edgeflow keys zmq NODE --out DIR");
  }
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw std::runtime_error("ZeroMQ key file " + path + " may be read by others (mode " + mode +
                             "); run: chmod 600 " + path);
  }
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error("ZeroMQ key file " + path + " is not valid YAML: " + e.msg);
  }
  auto key = [&](const char* name) {
    YAML::Node n = doc.IsMap() ? doc[name] : YAML::Node();
    if (!n.IsDefined() || !n.IsScalar() || !is_z85_key(n.Scalar())) {
      throw std::runtime_error("ZeroMQ key file " + path + " needs '" + name +
                               "', 40 characters of Z85; make it again with: edgeflow keys zmq "
                               "NODE --out DIR --force");
    }
    return n.Scalar();
  };
  return ZmqKeyPair{key("public"), key("secret")};
}

}  // namespace edgeflow
