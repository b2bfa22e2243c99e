// `edgeflow operator add|remove FILE NAME`: who may act on the cloud's dashboard (log in,
// forget an offline node). FILE holds one digest per operator (user:edgeflow:md5, as
// Apache's htdigest writes), mode 0600; the cloud config names it with `operators: FILE`.
#pragma once

#include <string>

namespace edgeflow {

// `add` reads the password from standard input: asked twice without echo on a terminal,
// else the first line. 0 when done, 1 when the file cannot be written, 2 for bad arguments.
int cmd_operator(const std::string& action, const std::string& file, const std::string& name);

}  // namespace edgeflow
