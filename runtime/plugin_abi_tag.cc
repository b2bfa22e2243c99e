// Compiled into every operator plugin (ours, and a user's through edgeflow_add_plugin): the
// plugin ABI it was built for, as a string edgeflow finds by reading the file, before dlopen
// runs any of the plugin's code (runtime/plugins.cc).
#include "plugin_abi.h"

// `retain` keeps it through the linker's --gc-sections too (nothing references it).
extern "C" __attribute__((used, retain, visibility("hidden")))
const char edgeflow_plugin_abi_tag[] = "edgeflow-plugin-abi:" EDGEFLOW_PLUGIN_ABI ";";
