#include "runtime/process_sample.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace edgeflow {

ProcessSample sample_process() {
  ProcessSample p;
  // /proc/self/stat: utime and stime (fields 14, 15) in clock ticks, starttime (22) in ticks
  // since boot; /proc/self/statm: resident pages (field 2); /proc/stat: btime, the boot time.
  std::ifstream stat("/proc/self/stat");
  std::string line;
  std::getline(stat, line);
  const size_t close = line.rfind(')');
  std::istringstream rest(close == std::string::npos ? "" : line.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0, start_ticks = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
    if (i == 22) {
      start_ticks = std::stod(field);
      break;
    }
  }
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  p.cpu_s = (utime + stime) / hz;
  long pages = 0, resident = 0;
  std::ifstream statm("/proc/self/statm");
  statm >> pages >> resident;
  p.rss_bytes = static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  double boot = 0;
  std::ifstream proc_stat("/proc/stat");
  for (std::string l; std::getline(proc_stat, l);)
    if (l.rfind("btime ", 0) == 0) boot = std::stod(l.substr(6));
  p.start_time_s = boot + start_ticks / hz;
  return p;
}

}  // namespace edgeflow
