// IioDevice — one Linux Industrial I/O device read through sysfs, as the kernel's ABI
// (Documentation/ABI/testing/sysfs-bus-iio) lays it out: a folder
// <sysfs_root>/bus/iio/devices/iio:deviceN holding a `name` file and one small text file per
// channel attribute (in_temp_raw, in_temp_scale, ...). A plain class with no runtime
// dependency: weather.sensehat is a thin operator around it, and tests drive it with a fake
// tree under a temporary folder.
//
// Every read opens the file anew: a sysfs attribute is read once per open, and a raw file
// makes the driver take a fresh sample.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace edgeflow {

struct IioChannel {
  std::string name;        // "in_temp": the files are in_temp_raw, in_temp_scale, ...
  bool processed = false;  // <name>_input only: a value the driver has scaled already
  // Both optional in the ABI: offset 0 and scale 1 when absent.
  bool has_offset = false;
  bool has_scale = false;
};

class IioDevice {
 public:
  IioDevice(std::string path, std::string name) : path_(std::move(path)), name_(std::move(name)) {}

  // <sysfs_root>/bus/iio/devices
  static std::string devices_dir(const std::string& sysfs_root);
  // The devices there, in device-number order; a device whose name cannot be read is left out.
  static std::vector<IioDevice> list(const std::string& sysfs_root);
  // The lowest-numbered device named `name`, or one named `name` plus a "-suffix"
  // ("lps25h-press"): some kernels name a device-tree-probed ST sensor after its compatible
  // string rather than its driver's chip name.
  static std::optional<IioDevice> find(const std::string& sysfs_root, const std::string& name);

  const std::string& path() const { return path_; }  // the iio:deviceN folder
  const std::string& name() const { return name_; }  // its `name` file, as read

  bool has(const std::string& attribute) const;  // the file exists

  // The files that carry a channel ("in_temp"), as the driver laid them out: nullopt when it
  // has neither a <channel>_raw nor a <channel>_input.
  std::optional<IioChannel> channel(const std::string& name) const;

  // One attribute as a number; nullopt with `error` naming the file when it cannot be read
  // or holds anything but one finite number.
  std::optional<double> read_number(const std::string& attribute, std::string& error) const;

  // A channel's value in the ABI's unit for its type: (raw + offset) * scale, or the input
  // file, which the driver has already scaled. A file the channel had that has gone since
  // is an error, never a silent offset of 0 or scale of 1.
  std::optional<double> read(const IioChannel& channel, std::string& error) const;

 private:
  std::string attribute_path(const std::string& attribute) const;

  std::string path_;
  std::string name_;
};

}  // namespace edgeflow
