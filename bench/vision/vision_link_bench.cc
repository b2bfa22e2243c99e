// Bytes per minute on the edge-to-cloud link for the two placements of the surveillance
// pipeline, at 10 fps: pipelines/surveillance-camera.yaml (motion on the edge: events and
// snapshots cross) and pipelines/surveillance-camera-cloud.yaml (motion on the cloud: every
// frame crosses as JPEG). Each file runs as `edgeflow run` would (an embedded mosquitto, real
// MQTT links), for one minute of camera time: cam.count = 60 s x fps frames, produced as fast
// as the stages take them (cam.speed = 0) with every queue set to block, so no frame is
// dropped and both placements see exactly the same frames. Also prints the CPU seconds each
// node spent per minute of video (the camera source apart), the other half of the edge's
// energy budget.
//
//   build/bench/vision/vision_link_bench [--fps F] [--width W --height H]
//                                        [PIPELINE_DIR]   (default: the source tree's)
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "brokers/link/transport.h"
#include "brokers/mqtt/embedded_broker.h"
#include "runtime/executor.h"
#include "runtime/pipeline.h"
#include "runtime/placement.h"

#ifndef EDGEFLOW_SOURCE_TREE
#define EDGEFLOW_SOURCE_TREE "."
#endif

namespace edgeflow {
namespace {

struct Measured {
  uint64_t messages = 0, payload_bytes = 0, wire_bytes = 0;
  std::map<std::string, double> cpu_by_node;  // without the camera stage
  double camera_cpu = 0;                      // the synthetic camera's rendering
  uint64_t dropped = 0, errors = 0, events = 0;
};

bool measure(const std::string& file, const std::vector<OptionOverride>& overrides,
             const std::string& broker, Measured& out) {
  LoadResult r = load_pipeline_file(file, overrides);
  if (!r.pipeline) {
    std::fprintf(stderr, "%s", r.diags.str().c_str());
    return false;
  }
  PipelineSpec p = std::move(*r.pipeline);
  for (StageSpec& s : p.stages) s.overflow = Overflow::kBlock;  // count every frame
  p.links.mqtt_broker = broker;
  Plan plan = place(p);
  std::unique_ptr<LinkTransport> transport = make_link_transport(p, plan);
  ExecutorOptions eo;
  eo.links = transport.get();
  std::vector<StageMetrics> stages;
  {
    Executor ex(p, plan, eo);
    try {
      ex.start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", file.c_str(), e.what());
      return false;
    }
    if (!ex.wait(600'000'000)) {
      std::fprintf(stderr, "%s: did not finish within 10 minutes\n", file.c_str());
      return false;
    }
    stages = ex.metrics();
  }
  for (const LinkMetrics& l : transport->metrics()) {
    if (l.direction != "send") continue;
    out.messages += l.messages;
    out.payload_bytes += l.payload_bytes;
    out.wire_bytes += l.wire_bytes;
  }
  for (const StageMetrics& s : stages) {
    // The synthetic camera's rendering stands in for a real camera's capture: kept apart.
    if (s.stage == "cam") {
      out.camera_cpu += s.cpu_seconds;
    } else {
      out.cpu_by_node[s.node] += s.cpu_seconds;
    }
    out.dropped += s.dropped;
    out.errors += s.errors;
    if (s.stage == "events") out.events += s.in;
  }
  return true;
}

}  // namespace
}  // namespace edgeflow

int main(int argc, char** argv) {
  using namespace edgeflow;
  double fps = 10;
  std::string width = "640", height = "480";
  const std::string quality = "80";  // the JPEG quality links use for frames (operators/image)
  std::string dir = std::string(EDGEFLOW_SOURCE_TREE) + "/pipelines";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--fps" && i + 1 < argc) {
      fps = std::atof(argv[++i]);
    } else if (a == "--width" && i + 1 < argc) {
      width = argv[++i];
    } else if (a == "--height" && i + 1 < argc) {
      height = argv[++i];
    } else if (!a.empty() && a[0] != '-') {
      dir = a;
    } else {
      std::fprintf(stderr,
                   "usage: vision_link_bench [--fps F] [--width W --height H] "
                   "[PIPELINE_DIR]\n");
      return 2;
    }
  }
  long frames = static_cast<long>(60 * fps + 0.5);
  std::vector<OptionOverride> common = {{"cam", "count", std::to_string(frames)},
                                        {"cam", "speed", "0"},
                                        {"cam", "fps", std::to_string(fps)},
                                        {"cam", "width", width},
                                        {"cam", "height", height}};
  mqtt::EmbeddedBroker broker;
  try {
    broker.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::printf(
      "one minute of %sx%s video at %.0f fps (%ld frames), MQTT QoS 1 links, JPEG quality %s\n",
      width.c_str(), height.c_str(), fps, frames, quality.c_str());
  std::printf("%-22s %9s %14s %14s %11s %11s %11s %7s\n", "placement", "messages", "payload B/min",
              "wire B/min", "edge CPU s", "cloud CPU s", "camera CPU", "events");
  struct Variant {
    const char* name;
    const char* file;
  };
  std::vector<Measured> results;
  for (Variant v : {Variant{"motion on the edge", "surveillance-camera.yaml"},
                    Variant{"motion on the cloud", "surveillance-camera-cloud.yaml"}}) {
    std::vector<OptionOverride> o = common;
    Measured m;
    if (!measure(dir + "/" + v.file, o, broker.uri(), m)) return 1;
    std::printf("%-22s %9llu %14llu %14llu %11.2f %11.2f %11.2f %7llu\n", v.name,
                static_cast<unsigned long long>(m.messages),
                static_cast<unsigned long long>(m.payload_bytes),
                static_cast<unsigned long long>(m.wire_bytes), m.cpu_by_node["cam-1"],
                m.cpu_by_node["cloud"], m.camera_cpu, static_cast<unsigned long long>(m.events));
    if (m.dropped || m.errors) {
      std::fprintf(stderr, "%s: %llu dropped, %llu errors\n", v.file,
                   static_cast<unsigned long long>(m.dropped),
                   static_cast<unsigned long long>(m.errors));
      return 1;
    }
    results.push_back(m);
  }
  std::printf("the cloud placement sends %.1fx the bytes of the edge placement\n",
              static_cast<double>(results[1].wire_bytes) /
                  static_cast<double>(std::max<uint64_t>(results[0].wire_bytes, 1)));
  return 0;
}
