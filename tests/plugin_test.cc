// Operator plugins end to end: edgeflow installed to a fresh prefix, the example plugin built
// out of tree against it with find_package(edgeflow), and pipelines run with it; a plugin
// that cannot load and an operator no plugin has are clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/process.h"

namespace edgeflow {
namespace {

using namespace edgeflow::testing;
using json = nlohmann::json;

class Plugins : public ::testing::Test {
 protected:
  // One install and one plugin build for the whole suite: they take most of its time.
  static void SetUpTestSuite() {
    prefix_ = new std::string(make_temp_dir());
    plugin_build_ = new std::string(make_temp_dir());
    ProcessResult install =
        run_process({"cmake", "--install", EDGEFLOW_BUILD_TREE, "--prefix", *prefix_}, 120);
    install_ok_ = install.exit_code == 0;
    install_log_ = new std::string(install.out + install.err);
    if (!install_ok_) return;
    ProcessResult configure =
        run_process({"cmake", "-S", source_dir() + "/examples/plugin", "-B", *plugin_build_,
                     "-DCMAKE_PREFIX_PATH=" + *prefix_, "-DCMAKE_BUILD_TYPE=Release"},
                    120);
    ProcessResult build = run_process({"cmake", "--build", *plugin_build_}, 300);
    build_ok_ = configure.exit_code == 0 && build.exit_code == 0;
    *install_log_ += configure.out + configure.err + build.out + build.err;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(*prefix_, ec);
    std::filesystem::remove_all(*plugin_build_, ec);
  }
  void SetUp() override {
    ASSERT_TRUE(install_ok_) << *install_log_;
    ASSERT_TRUE(build_ok_) << *install_log_;
  }
  static std::string installed() { return *prefix_ + "/bin/edgeflow"; }
  static ProcessResult with_path(std::vector<std::string> args, const std::string& path) {
    std::vector<std::string> argv = {"env", "EDGEFLOW_PLUGIN_PATH=" + path, installed()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, 60);
  }

  static inline std::string* prefix_ = nullptr;
  static inline std::string* plugin_build_ = nullptr;
  static inline std::string* install_log_ = nullptr;
  static inline bool install_ok_ = false, build_ok_ = false;
};

TEST_F(Plugins, OutOfTreePluginBuiltAgainstTheInstallRuns) {
  const std::string pipeline = source_dir() + "/examples/plugin/heat-index.yaml";
  ProcessResult r = with_path({"run", pipeline, "--quiet"}, *plugin_build_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  int n = 0, hotter = 0;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    ASSERT_TRUE(j.contains("heat_index")) << line;
    double t = j["temperature"], rh = j["humidity"], hi = j["heat_index"];
    // Humid heat feels hotter than it is; mild air feels about as warm as it is.
    if (t > 27 && rh > 40) {
      EXPECT_GT(hi, t) << line;
      ++hotter;
    }
    EXPECT_GT(hi, t - 3) << line;
    ++n;
  }
  EXPECT_EQ(n, 24);
  EXPECT_GT(hotter, 0) << r.out;
  // `ops` knows it too, and the installed binary finds its own plugins beside it.
  ProcessResult ops = with_path({"ops"}, *plugin_build_);
  EXPECT_NE(ops.out.find("example.heat_index"), std::string::npos) << ops.out;
  EXPECT_NE(ops.out.find("weather.aggregate"), std::string::npos) << ops.out;
}

TEST_F(Plugins, APipelineFileCanNameItsPlugin) {
  std::string dir = make_temp_dir();
  std::string text = read_file(source_dir() + "/examples/plugin/heat-index.yaml");
  text.replace(text.find("stages:"), 7, "plugins: [" + *plugin_build_ + "/heat_index.so]\nstages:");
  write_file(dir + "/p.yaml", text);
  ProcessResult r = run_process({installed(), "run", dir + "/p.yaml", "--quiet"}, 60);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("heat_index"), std::string::npos);
}

TEST_F(Plugins, WithoutThePluginTheOperatorIsUnknown) {
  ProcessResult r =
      run_process({installed(), "validate", source_dir() + "/examples/plugin/heat-index.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown operator 'example.heat_index'"), std::string::npos) << r.err;
}

TEST_F(Plugins, APluginThatCannotLoadIsNamedWithTheCause) {
  std::string dir = make_temp_dir();
  write_file(dir + "/edgeflow-broken.so", "not an ELF file");
  write_file(dir + "/edgeflow-broken.so.ops", "broken.op\tan operator whose plugin is damaged\n");
  write_file(dir + "/p.yaml",
             "pipeline: p\nstages:\n  - {id: a, op: weather.simulate, with: {count: 1}}\n"
             "  - {id: b, op: broken.op, from: a}\n");
  ProcessResult r = with_path({"validate", dir + "/p.yaml"}, dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("p.yaml:4:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("operator 'broken.op' is in the plugin " + dir + "/edgeflow-broken.so"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("cannot be loaded"), std::string::npos) << r.err;
  // Listing still works and says nothing is wrong with the others.
  ProcessResult ops = with_path({"ops"}, dir);
  EXPECT_EQ(ops.exit_code, 0) << ops.err;
  EXPECT_NE(ops.out.find("broken.op"), std::string::npos);
}

// The out-of-tree plugin carries the ABI of the headers it was built against; the same plugin
// claiming other headers (its tag edited) is refused before any of its code runs, where a
// stale plugin used to crash the process in its initialisers.
TEST_F(Plugins, APluginBuiltAgainstOtherHeadersIsRefusedNotRun) {
  std::string so = read_file(*plugin_build_ + "/heat_index.so");
  const std::string key = "edgeflow-plugin-abi:";
  const size_t at = so.find(key);
  ASSERT_NE(at, std::string::npos) << "the plugin carries no ABI tag";
  const size_t end = so.find(';', at);
  ASSERT_NE(end, std::string::npos);
  const std::string abi = so.substr(at + key.size(), end - at - key.size());
  EXPECT_EQ(abi.size(), 16u);
  // The installed binary carries the same (it compares against its own).
  EXPECT_NE(read_file(installed()).find(abi), std::string::npos);

  std::string dir = make_temp_dir();
  std::string stale = so;
  stale.replace(at + key.size(), abi.size(), std::string(abi.size(), '0'));
  write_file(dir + "/heat_index.so", stale);
  ProcessResult r = with_path({"run", source_dir() + "/examples/plugin/heat-index.yaml"}, dir);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("built against other edgeflow headers (plugin ABI 0000000000000000, this "
                       "edgeflow " +
                       abi + "); rebuild it against this edgeflow"),
            std::string::npos)
      << r.err;
}

// A command that runs no camera stage maps no OpenCV, and one without ZeroMQ no libzmq.
TEST_F(Plugins, OnlyTheVisionPluginMapsOpenCV) {
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml",
             "pipeline: p\nstages:\n  - {id: a, op: weather.simulate, with: {period: 100ms}}\n"
             "  - {id: b, op: log, from: a}\n");
  ProcessResult maps = run_process(
      {"sh", "-c",
       "\"$0\" run \"$1\" --quiet --for 2s >/dev/null & sleep 1; cat /proc/$!/maps; wait",
       installed(), dir + "/p.yaml"},
      30);
  EXPECT_NE(maps.out.find("edgeflow-weather.so"), std::string::npos) << maps.out;
  EXPECT_EQ(maps.out.find("libopencv"), std::string::npos);
  EXPECT_EQ(maps.out.find("edgeflow-vision.so"), std::string::npos);
  EXPECT_EQ(maps.out.find("libzmq"), std::string::npos);
}

}  // namespace
}  // namespace edgeflow
