#include "runtime/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace edgeflow {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> log = [] {
    auto l = spdlog::stderr_color_mt("edgeflow");
    l->set_pattern("%^%L%$ %H:%M:%S.%e %v");
    return l;
  }();
  return *log;
}

}  // namespace edgeflow
