// TLS files, credentials files, and the diagnosis of a failed TLS handshake.
#include "brokers/mqtt/security.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "brokers/mqtt/client_internal.h"

namespace edgeflow::mqtt {

Credentials load_credentials(const std::string& path, const char* kind) {
  const std::string what = std::string(kind) + " credentials file ";
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    throw MqttError("cannot read " + what + path + ": " + std::strerror(errno));
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw MqttError(what + path + " may be read by others (mode " + mode + "); run: chmod 600 " +
                    path);
  }
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw MqttError(what + path + " is not valid YAML: " + e.msg);
  }
  auto text = [&](const char* key) -> std::string {
    YAML::Node n = doc.IsMap() ? doc[key] : YAML::Node();
    if (!n.IsDefined() || !n.IsScalar() || n.Scalar().empty())
      throw MqttError(what + path + " needs '" + key +
                      "': write it as\n  username: pi-1\n  password: ...");
    return n.Scalar();
  };
  Credentials c;
  c.username = text("username");
  c.password = text("password");
  return c;
}

void apply_security(const MqttSecurity& s, ClientOptions& o) {
  o.tls.ca_file = s.ca_file;
  o.tls.cert_file = s.cert_file;
  o.tls.key_file = s.key_file;
  o.tls.verify_hostname = s.verify_hostname;
  if (!s.credentials_file.empty()) {
    Credentials c = load_credentials(s.credentials_file);
    o.username = std::move(c.username);
    o.password = std::move(c.password);
  }
}

namespace detail {

void check_tls_files(const TlsOptions& tls, const std::string& uri) {
  auto check = [&](const std::string& path, const char* key) {
    if (path.empty()) return;
    if (access(path.c_str(), R_OK) != 0)
      throw MqttError("tls." + std::string(key) + " of MQTT broker " + uri + ": cannot read " +
                      path + " (" + std::strerror(errno) + ")");
  };
  check(tls.ca_file, "ca_file");
  check(tls.cert_file, "cert_file");
  check(tls.key_file, "key_file");
  if (tls.cert_file.empty() != tls.key_file.empty())
    throw MqttError("tls of MQTT broker " + uri +
                    ": cert_file and key_file go together (a client certificate needs its key)");
}

namespace {

// A connected TCP socket, or -1.
int connect_tcp(const BrokerAddress& a, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(a.host.c_str(), std::to_string(a.port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* ai = found; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

std::string openssl_errors() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    const char* reason = ERR_reason_error_string(e);
    if (!text.empty()) text += "; ";
    text += reason ? reason : buf;
  }
  return text;
}

}  // namespace

std::string tls_probe(const BrokerAddress& address, const TlsOptions& tls, int timeout_ms) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (!ctx) return "";
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (tls.ca_file.empty()
          ? SSL_CTX_set_default_verify_paths(ctx.get()) != 1
          : SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.c_str(), nullptr) != 1)
    return "cannot load the CA certificates of tls.ca_file " + tls.ca_file + ": " +
           openssl_errors();
  if (!tls.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1)
      return "cannot load tls.cert_file " + tls.cert_file + ": " + openssl_errors();
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return "cannot load tls.key_file " + tls.key_file + ": " + openssl_errors();
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
      return "tls.key_file " + tls.key_file + " is not the key of tls.cert_file " + tls.cert_file;
  }
  int fd = connect_tcp(address, timeout_ms);
  if (fd < 0) return "";  // not a TLS problem: the caller's TCP probe says what it is
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  SSL_set_fd(ssl.get(), fd);
  SSL_set_tlsext_host_name(ssl.get(), address.host.c_str());
  if (tls.verify_hostname) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    // An IP address is checked against the certificate's IP entries, a name against its DNS.
    if (X509_VERIFY_PARAM_set1_ip_asc(param, address.host.c_str()) != 1)
      X509_VERIFY_PARAM_set1_host(param, address.host.c_str(), 0);
  }
  std::string why;
  int rc = SSL_connect(ssl.get());
  if (rc != 1) {
    long verify = SSL_get_verify_result(ssl.get());
    if (verify != X509_V_OK) {
      why = std::string("the broker's certificate was refused: ") +
            X509_verify_cert_error_string(verify);
      if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
        why += " (it is not made out to '" + address.host +
               "': connect by the name the certificate names, or set tls.verify_hostname false)";
      else if (verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
               verify == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
               verify == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN)
        why += " (tls.ca_file must hold the CA that signed the broker's certificate)";
    } else {
      std::string e = openssl_errors();
      why = "TLS handshake failed" + (e.empty() ? std::string() : ": " + e);
      if (e.find("certificate required") != std::string::npos ||
          e.find("handshake failure") != std::string::npos)
        why +=
            " (does the broker require a client certificate? set tls.cert_file and "
            "tls.key_file)";
    }
  } else {
    // The handshake succeeded; with a client certificate the broker may refuse it only now.
    char byte;
    if (SSL_read(ssl.get(), &byte, 1) <= 0) {
      std::string e = openssl_errors();
      if (!e.empty()) why = "the broker refused our certificate: " + e;
    }
  }
  close(fd);
  return why;
}

}  // namespace detail
void write_private_file(const std::string& path, const std::string& text, bool exclusive) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
  const int fd = ::open(path.c_str(), flags, 0600);
  bool ok = fd >= 0 && fchmod(fd, 0600) == 0;
  int err = errno;
  for (size_t done = 0; ok && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    err = n == 0 ? EIO : errno;
    if (ok) done += static_cast<size_t>(n);
  }
  if (fd >= 0) ::close(fd);
  if (!ok) throw MqttError("cannot write " + path + ": " + std::strerror(err));
}

}  // namespace edgeflow::mqtt
