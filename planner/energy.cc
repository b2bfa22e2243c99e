#include "planner/energy.h"

#include <algorithm>
#include <cmath>

namespace edgeflow {

namespace {

constexpr double kTcpIpHeaderBytes = 52;  // IPv4 20 + TCP 20 + timestamps 12
constexpr double kSegmentBytes = 1448;    // MSS on a 1500-byte MTU with timestamps

}  // namespace

double network_watts(const NetworkEnergy& net, const NodeLoad& load) {
  double bursts = load.bursts_per_s >= 0 ? load.bursts_per_s : load.tx_packets_per_s;
  double tail = bursts * net.tail_j;
  if (net.tail_s > 0) tail = std::min(tail, net.tail_j / net.tail_s);
  return net.j_per_byte * load.tx_bytes_per_s + net.rx_j_per_byte * load.rx_bytes_per_s +
         net.j_per_packet * (load.tx_packets_per_s + load.rx_packets_per_s) + tail;
}

NodeEnergy node_energy(const DeviceProfile& profile, const NodeLoad& load,
                       const std::optional<SolarSpec>& solar, int month) {
  NodeEnergy e;
  int cores = std::max(1, profile.cores);
  double needed = profile.speed_factor > 0
                      ? std::max(0.0, load.cpu_core_seconds_per_s) / profile.speed_factor
                      : 0;
  e.saturated = needed > cores;
  e.busy_cores = std::min(needed, static_cast<double>(cores));
  e.cpu_util = e.busy_cores / cores;
  e.cpu_watts = profile.w_per_busy_core * e.busy_cores;

  e.network = load.network.empty() ? default_network(profile) : load.network;
  auto net = profile.networks.find(e.network);
  bool traffic = load.tx_bytes_per_s > 0 || load.rx_bytes_per_s > 0 || load.tx_packets_per_s > 0 ||
                 load.rx_packets_per_s > 0 || load.bursts_per_s > 0;
  if (net != profile.networks.end()) {
    e.network_watts = network_watts(net->second, load);
  } else if (traffic) {
    std::string has;
    for (const auto& [kind, energy] : profile.networks) has += (has.empty() ? "" : ", ") + kind;
    e.error = "device '" + profile.name + "' has no " +
              (e.network.empty() ? std::string("network") : e.network) + " (it has " +
              (has.empty() ? "none" : has) + ")";
  }

  e.watts = profile.idle_w + e.cpu_watts + e.network_watts;
  e.wh_per_day = e.watts * 24;
  if (solar) {
    e.has_solar = true;
    e.harvest_wh_per_day = harvest_wh_per_day(*solar, month);
    e.autonomy_h = autonomy_hours(*solar, e.watts);
    e.positive = e.harvest_wh_per_day > e.wh_per_day;
  }
  return e;
}

double link_layer_bytes_per_packet(const std::string& network) {
  if (network == "ethernet") return 38;  // header 14, FCS 4, preamble 8, inter-frame gap 12
  if (network == "wifi") return 38;      // QoS data header 26, LLC/SNAP 8, FCS 4
  if (network == "cellular") return 6;   // PDCP 2, RLC 2, MAC about 2; no header compression
  return 0;
}

WireTraffic estimate_wire(double stream_bytes, double writes, const std::string& network) {
  WireTraffic w;
  if (writes <= 0 || stream_bytes < 0) return w;
  double per_write = stream_bytes / writes;
  double segments = std::max(1.0, std::ceil(per_write / kSegmentBytes));
  double acks = std::ceil(segments / 2);
  double per_packet = kTcpIpHeaderBytes + link_layer_bytes_per_packet(network);
  w.tx_packets = writes * segments;
  w.tx_bytes = stream_bytes + w.tx_packets * per_packet;
  w.rx_packets = writes * acks;
  w.rx_bytes = w.rx_packets * per_packet;
  return w;
}

}  // namespace edgeflow
