// Operator plugins: each operator family (core, csv, weather, mqtt, zmq, camera, vision, image,
// iexec, or a user's own) is a shared module that registers its operators when loaded, so a
// process maps OpenCV only when a pipeline runs a camera or vision stage.
//
// Plugins are found in, in order: the folders of EDGEFLOW_PLUGIN_PATH (colon-separated), the
// folder `../lib/edgeflow/plugins` beside the running binary (the build tree and an installed
// prefix both have that layout), and the install prefix's plugin folder. A plugin FILE.so may
// have a manifest FILE.so.ops beside it, one "name<TAB>summary" line per operator, written at
// build time: then listing operators and finding which plugin holds one loads nothing. A
// plugin without a manifest (a user's, built out of tree) is loaded when an operator is not
// found anywhere else. A pipeline file can also name plugins (`plugins: [my_ops.so]`).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace edgeflow {

// Loads a plugin file and writes its manifest: one "name<TAB>summary" line per operator it
// registered. False with `why` set when it cannot be loaded or registers nothing.
bool write_plugin_manifest(const std::string& plugin, const std::string& out, std::string* why);

class PluginCatalog {
 public:
  static PluginCatalog& global();

  // Loads the plugin that holds `op`. False with `why` set when no plugin has it or the one
  // that has it cannot be loaded (the message names the file and the cause).
  bool load_for(const std::string& op, std::string* why);
  // Loads a plugin file; false with `why` set (dlopen's reason) when it cannot.
  bool load_file(const std::string& path, std::string* why);
  // Loads the plugins without a manifest (a user's): what they have is then registered.
  void load_unindexed();
  // Every operator the manifests name, with its summary.
  std::map<std::string, std::string> indexed_ops();
  // Loads every plugin found (documentation, `ops --markdown`); the reasons of failures.
  std::vector<std::string> load_all();
  // The folders searched, for messages.
  std::vector<std::string> search_path();

 private:
  struct Plugin {
    std::string path;
    std::vector<std::pair<std::string, std::string>> ops;  // from the manifest
    bool indexed = false;                                  // has a manifest
    bool loaded = false;
    std::string error;  // why it could not be loaded
  };
  void scan_locked();
  bool load_locked(Plugin& p);

  std::recursive_mutex mu_;  // a plugin's registrars may look operators up while it loads
  bool scanned_ = false;
  std::vector<Plugin> plugins_;
  std::map<std::string, size_t> by_op_;  // operator -> index in plugins_
};

}  // namespace edgeflow
