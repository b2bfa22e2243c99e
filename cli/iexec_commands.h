#pragma once

#include <string>
#include <vector>

namespace edgeflow {

int cmd_wallet_new(const std::string& file);
int cmd_wallet_address(const std::string& file);

struct TaskSubmitArgs {
  std::string pipeline_file, app, broker, credentials, pool, wallet, wait, id, time_ref, scheduler;
  std::vector<std::string> args, inputs;
  int trust = 1;
};
// Exit 0 when the request was taken (and, with --wait, the task COMPLETED); 1 when it failed,
// timed out or no scheduler answers; 2 for bad arguments.
int cmd_task_submit(const TaskSubmitArgs& a);

}  // namespace edgeflow
