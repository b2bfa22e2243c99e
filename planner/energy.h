// Per-node energy: a device profile turns the node's load (CPU time measured on the profiling
// machine, bytes and packets on its network) into watts and watt-hours a day; with a solar
// spec, into harvest, battery autonomy and the verdict (harvest above consumption).
#pragma once

#include <optional>
#include <string>

#include "planner/device_profile.h"
#include "planner/solar.h"

namespace edgeflow {

struct NodeLoad {
  double cpu_core_seconds_per_s = 0;  // CPU seconds per second, measured on the profiling machine
  double tx_bytes_per_s = 0;          // on the wire, link layer included (estimate_wire)
  double rx_bytes_per_s = 0;
  double tx_packets_per_s = 0;
  double rx_packets_per_s = 0;
  // Radio wake-ups per second: sends separated by idle time, such as a link's batches. < 0:
  // one per sent packet, an upper bound (packets of one message go out together).
  double bursts_per_s = -1;
  std::string network;  // wifi, ethernet, cellular; "" = default_network(profile)
};

struct NodeEnergy {
  std::string network;     // the network the figures are for ("" when the device has none)
  double busy_cores = 0;   // cores busy on the device: core-seconds / speed_factor, capped
  double cpu_util = 0;     // busy_cores / cores, 0..1
  bool saturated = false;  // the load needs more than every core: the device falls behind
  double cpu_watts = 0;    // w_per_busy_core * busy_cores
  double network_watts = 0;
  double watts = 0;  // idle_w + cpu_watts + network_watts: the average draw
  double wh_per_day = 0;
  bool has_solar = false;  // the figures below are set only with a solar spec
  double harvest_wh_per_day = 0;
  double autonomy_h = 0;  // from a full battery with no sun
  bool positive = false;  // harvest_wh_per_day > wh_per_day
  std::string error;      // the load uses a network the device does not have; "" when fine
};

// Average watts of a network moving `load`'s traffic: per byte, per packet, and the radio
// tail of each burst. A burst's tail is cut short by the next burst, so with bursts every
// 1/r seconds the tail costs min(r * tail_j, tail_j / tail_s) watts: at most the radio
// staying up all the time.
double network_watts(const NetworkEnergy& net, const NodeLoad& load);

// The energy of a node on `profile` carrying `load` in `month` (1-12: the caller's choice,
// e.g. `--month`, else the solar spec's month, else the current one).
NodeEnergy node_energy(const DeviceProfile& profile, const NodeLoad& load,
                       const std::optional<SolarSpec>& solar, int month);

// What `writes` application writes of `stream_bytes` in all cost on `network` over TCP/IPv4
// (rates work too: bytes/s and writes/s): IP and TCP headers per segment of up to 1448 bytes
// (as brokers/channel.h counts them), the link layer's framing of each packet, and the
// receiver's delayed ACKs coming back (one per two segments, at least one per write).
struct WireTraffic {
  double tx_bytes = 0, rx_bytes = 0, tx_packets = 0, rx_packets = 0;
};
WireTraffic estimate_wire(double stream_bytes, double writes, const std::string& network);
// Bytes the link layer adds to each IP packet: Ethernet 38 (header, FCS, preamble, gap),
// Wi-Fi 38 (802.11 QoS data header, LLC/SNAP, FCS), cellular 6 (LTE PDCP, RLC, MAC; approx.).
double link_layer_bytes_per_packet(const std::string& network);

}  // namespace edgeflow
