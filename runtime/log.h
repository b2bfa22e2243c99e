// The runtime's logger: spdlog to stderr, so stdout stays free for data (the log operator,
// `edgeflow ops`, piping).
#pragma once

#include <spdlog/spdlog.h>

namespace edgeflow {

spdlog::logger& logger();

}  // namespace edgeflow
