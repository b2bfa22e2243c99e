// Device profiles: what a device draws idle and per busy core, how fast its cores are next to
// the machine operators were profiled on, and what its networks cost per byte, per packet and
// per radio wake-up. Data files (edge/devices/*.yaml, docs/planner.md), looked up by name or
// given by path, so a user can measure their own board and name the file in `device:`.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace edgeflow {

// Energy of one network interface. Bytes and packets are on the wire (link layer included,
// see estimate_wire in planner/energy.h); a burst is a run of packets after the radio was
// idle, which pays the promotion and the tail (the radio staying up after the last packet).
struct NetworkEnergy {
  double j_per_byte = 0;     // joules per byte sent, above idle
  double rx_j_per_byte = 0;  // joules per byte received (the file's j_per_byte when not given)
  double j_per_packet = 0;   // fixed cost of each packet either way (contention, preamble, ack)
  double tail_j = 0;         // joules of one wake-up: promotion plus the full tail
  double tail_s = 0;         // seconds the radio stays up after a burst (0: no tail)
};

struct DeviceProfile {
  std::string name;    // the file's name without .yaml
  std::string source;  // the file it was read from
  std::string description;
  double idle_w = 0;           // whole board, idle, network associated
  double w_per_busy_core = 0;  // extra watts per fully busy core
  int cores = 1;
  double speed_factor = 1;  // one core's speed over one core of the profiling machine
  std::map<std::string, NetworkEnergy> networks;  // "wifi", "ethernet", "cellular"
};

// `name_or_path` with a '/' or ending in .yaml is a file (relative to `base_dir`, the
// pipeline file's folder); otherwise a name looked up in device_search_path(). nullopt with
// `error` set (file:line:column: problem, then a hint line) when it cannot be read.
std::optional<DeviceProfile> load_device_profile(const std::string& name_or_path,
                                                 const std::string& base_dir, std::string* error);
// Parses a profile's text; `file` names it in errors and `name` becomes its name.
std::optional<DeviceProfile> parse_device_profile(const std::string& text, const std::string& file,
                                                  const std::string& name, std::string* error);

// Folders searched for a profile name, first match wins: each of $EDGEFLOW_DEVICE_PATH
// (colon separated), ../share/edgeflow/devices beside the running binary, the install's data
// folder, then this source tree's edge/devices.
std::vector<std::string> device_search_path();
// Names of the profiles in those folders, sorted, each once.
std::vector<std::string> known_device_profiles();

// The network a node uses when its `network:` is not given: wifi, else ethernet, else
// cellular, whichever the device has first; "" when it has none.
std::string default_network(const DeviceProfile& profile);

// Joules to send `bytes` in `packets` (no wake-up: see network_watts in planner/energy.h).
double network_joules(const NetworkEnergy& net, double bytes, double packets);

}  // namespace edgeflow
