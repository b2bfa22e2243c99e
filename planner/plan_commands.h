// `edgeflow profile` and `edgeflow plan`: the planner's commands (cli/main.cc only parses the
// arguments). Exit codes as the CLI's: 0 fine, 1 a run-time failure, 2 bad input.
#pragma once

#include <string>
#include <vector>

namespace edgeflow {

struct ProfileArgs {
  std::string file;
  std::string out;  // "" = FILE.profile.json beside the pipeline
  std::string seconds = "10s";
  std::string broker;
  std::vector<std::string> sets;
  int threads = 2;
};
int cmd_profile(const ProfileArgs& args);

struct PlanArgs {
  std::string file;
  std::string profile;  // "" = FILE.profile.json
  std::vector<std::string> sets;
  std::vector<std::string> rates;  // STAGE=MESSAGES_PER_S
  int month = 0;
  bool json = false;
  std::string svg;
  std::string compare;  // a report of `run --report`
  bool explore = false;
  std::string objective = "bytes";  // --explore: bytes | energy | autonomy
};
int cmd_plan(const PlanArgs& args);

}  // namespace edgeflow
