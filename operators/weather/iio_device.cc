#include "operators/weather/iio_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDevicePrefix = "iio:device";
constexpr size_t kMaxAttributeBytes = 4096;  // sysfs hands out at most a page per attribute

std::string_view trim(std::string_view s) {
  constexpr std::string_view kBlanks = " \t\r\n";
  size_t begin = s.find_first_not_of(kBlanks);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kBlanks) - begin + 1);
}

// POSIX rather than a stream, to keep errno: a driver's EIO or EBUSY says more than "failed".
bool read_text(const std::string& path, std::string& text, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot read '" + path + "': " + std::strerror(errno);
    return false;
  }
  text.clear();
  char buffer[256];
  while (text.size() < kMaxAttributeBytes) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = "cannot read '" + path + "': " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

// The N of iio:deviceN, for ordering; -1 for anything else in the folder (triggers, buffers).
long device_number(std::string_view folder) {
  if (folder.substr(0, kDevicePrefix.size()) != kDevicePrefix) return -1;
  std::string_view digits = folder.substr(kDevicePrefix.size());
  long n = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) return -1;
  return n;
}

}  // namespace

std::string IioDevice::devices_dir(const std::string& sysfs_root) {
  return (fs::path(sysfs_root) / "bus" / "iio" / "devices").string();
}

std::vector<IioDevice> IioDevice::list(const std::string& sysfs_root) {
  std::vector<std::pair<long, IioDevice>> numbered;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(devices_dir(sysfs_root), ec)) {
    long n = device_number(entry.path().filename().string());
    if (n < 0) continue;
    std::string text, error;
    if (!read_text((entry.path() / "name").string(), text, error)) continue;
    numbered.emplace_back(n, IioDevice(entry.path().string(), std::string(trim(text))));
  }
  std::sort(numbered.begin(), numbered.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<IioDevice> devices;
  for (auto& [n, device] : numbered) devices.push_back(std::move(device));
  return devices;
}

std::optional<IioDevice> IioDevice::find(const std::string& sysfs_root, const std::string& name) {
  for (IioDevice& device : list(sysfs_root)) {
    const std::string& found = device.name();
    if (found == name || (found.size() > name.size() && found.compare(0, name.size(), name) == 0 &&
                          found[name.size()] == '-')) {
      return std::move(device);
    }
  }
  return std::nullopt;
}

std::string IioDevice::attribute_path(const std::string& attribute) const {
  return path_ + "/" + attribute;
}

bool IioDevice::has(const std::string& attribute) const {
  std::error_code ec;
  return fs::exists(attribute_path(attribute), ec);
}

std::optional<IioChannel> IioDevice::channel(const std::string& name) const {
  IioChannel c;
  c.name = name;
  if (!has(name + "_raw")) {
    if (!has(name + "_input")) return std::nullopt;
    c.processed = true;
    return c;
  }
  c.has_offset = has(name + "_offset");
  c.has_scale = has(name + "_scale");
  return c;
}

std::optional<double> IioDevice::read_number(const std::string& attribute,
                                             std::string& error) const {
  const std::string path = attribute_path(attribute);
  std::string text;
  if (!read_text(path, text, error)) return std::nullopt;
  std::string_view number = trim(text);
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
      !std::isfinite(value)) {
    std::string shown(number.substr(0, 40));
    error =
        "'" + path + "' holds '" + shown + (number.size() > 40 ? "...'" : "'") + ", not a number";
    return std::nullopt;
  }
  return value;
}

std::optional<double> IioDevice::read(const IioChannel& channel, std::string& error) const {
  if (channel.processed) return read_number(channel.name + "_input", error);
  std::optional<double> raw = read_number(channel.name + "_raw", error);
  if (!raw) return std::nullopt;
  double offset = 0, scale = 1;
  if (channel.has_offset) {
    std::optional<double> v = read_number(channel.name + "_offset", error);
    if (!v) return std::nullopt;
    offset = *v;
  }
  if (channel.has_scale) {
    std::optional<double> v = read_number(channel.name + "_scale", error);
    if (!v) return std::nullopt;
    scale = *v;
  }
  return (*raw + offset) * scale;
}

}  // namespace edgeflow
