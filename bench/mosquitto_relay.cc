// The hand-written libmosquitto relay as a process of its own: the baseline of footprint_bench.
// It subscribes to bench/in, parses each JSON reading, adds temp_f = temperature * 9 / 5 + 32
// and publishes the JSON to bench/out, all from libmosquitto's message callback (the `hc`
// relay of mqtt_relay_bench, bench/hand_relay.h). It links libmosquitto and nothing of
// edgeflow's (nlohmann::json is header-only), so its peak RSS is what a relay written by hand
// costs. It stops after SECONDS, or at SIGTERM or SIGINT, and prints what it relayed.
//
//   build/bench/mosquitto_relay HOST PORT QOS SECONDS
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/hand_relay.h"

namespace {

constexpr char kUsage[] = "usage: mosquitto_relay HOST PORT QOS SECONDS";

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  const std::string host = argv[1];
  const int port = std::atoi(argv[2]);
  const int qos = std::atoi(argv[3]);
  const double seconds = std::atof(argv[4]);
  if (port <= 0 || port > 65535 || qos < 0 || qos > 2 || seconds <= 0) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  // Blocked before libmosquitto starts its thread, so only sigtimedwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  mosquitto_lib_init();
  edgeflow::bench::HandRelay r;
  r.qos = qos;
  r.from_callback = true;
  const std::string id = "mosquitto-relay-" + std::to_string(::getpid());
  r.mosq = edgeflow::bench::relay_client(id.c_str(), &r);
  int rc = mosquitto_connect(r.mosq, host.c_str(), port, 30);
  if (rc != MOSQ_ERR_SUCCESS) {
    std::fprintf(stderr, "mosquitto_relay: cannot connect to %s:%d: %s\n", host.c_str(), port,
                 mosquitto_strerror(rc));
    return 1;
  }
  mosquitto_loop_start(r.mosq);

  timespec left{
      static_cast<time_t>(seconds),
      static_cast<long>((seconds - static_cast<double>(static_cast<time_t>(seconds))) * 1e9)};
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += left.tv_sec;
  deadline.tv_nsec += left.tv_nsec;
  if (deadline.tv_nsec >= 1'000'000'000) deadline.tv_sec += 1, deadline.tv_nsec -= 1'000'000'000;
  for (;;) {
    if (sigtimedwait(&stop_signals, nullptr, &left) >= 0 || errno != EINTR) break;
    // Interrupted by another signal: wait for what is left.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns = (deadline.tv_sec - now.tv_sec) * 1'000'000'000LL + deadline.tv_nsec - now.tv_nsec;
    if (ns <= 0) break;
    left = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  }

  mosquitto_disconnect(r.mosq);
  mosquitto_loop_stop(r.mosq, false);
  mosquitto_destroy(r.mosq);
  mosquitto_lib_cleanup();
  std::printf("mosquitto_relay: relayed %lld readings, %lld did not parse\n",
              static_cast<long long>(r.relayed), static_cast<long long>(r.bad));
  return 0;
}
