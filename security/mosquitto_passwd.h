// Mosquitto's password file format, written without the mosquitto_passwd tool: one line per
// user, "NAME:$7$101$SALT$HASH" (PBKDF2-HMAC-SHA512, 101 iterations, a 12-byte random salt,
// both base64), as Mosquitto 2.0 reads it.
#pragma once

#include <string>

namespace edgeflow::security {

// The line for one user, without the newline. Throws std::runtime_error if OpenSSL fails.
std::string mosquitto_passwd_line(const std::string& user, const std::string& password);

// A random password of `length` letters and digits (look-alikes such as l, 1, O, 0 left out),
// from OpenSSL's random source.
std::string random_password(size_t length = 24);

}  // namespace edgeflow::security
