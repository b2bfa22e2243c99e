// Links on a NATS JetStream cluster (links: {via: nats}) with real parts: clusters of real
// nats-server processes on free loopback ports (scripts/nats-cluster.sh), the edgeflow binary
// as one process per node, servers and replicas killed mid-run. Every run is checked against
// the same pipeline with in-process queues: each window exactly once.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <thread>

#include "tests/support/nats_cluster.h"
#include "tests/support/process.h"
#include "tests/support/weather_links.h"

namespace edgeflow {
namespace {

using namespace edgeflow::testing;  // tests/support: processes, files, the weather pipeline

// ---- NATS JetStream (links: {via: nats}), servers from scripts/nats-cluster.sh ----

const Transport kNats{"Nats", "nats", ""};

// `servers`: the YAML list of servers to name (default: every server of the cluster).
std::string nats_links(const NatsCluster& c, int replicas, const std::string& servers = "") {
  return ", nats: {servers: " + (servers.empty() ? c.servers_yaml() : servers) +
         ", replicas: " + std::to_string(replicas) + ", ack_wait: 5s}";
}

// The windows move to the cloud, in `replicas` processes: raw readings cross the link.
std::string windows_in_the_cloud(std::string yaml, int replicas) {
  yaml.replace(yaml.find("    on: edge\n    from: sensors"), 12, "    on: cloud");
  yaml.replace(yaml.find("    from: sensors\n"), 18,
               "    from: sensors\n    replicas: " + std::to_string(replicas) + "\n");
  return yaml;
}

TEST(NatsLinks, OneProcessAggregatesEveryReadingExactlyOnce) {
  NatsCluster nats(1);
  ASSERT_TRUE(nats.ok()) << nats.error();
  const int kCount = 3000;
  std::string yaml = weather_pipeline(kNats, nats_links(nats, 1), kCount, 0);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  ProcessResult r = run_process(
      {edgeflow_binary(), "run", dir + "/p.yaml", "--report", dir + "/report.json"}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* node : {"pi-1", "pi-2"}) EXPECT_EQ(total_count(got[node]), kCount) << node;
  EXPECT_EQ(got, by_origin(reference_run(yaml)));
  json report = json::parse(read_file(dir + "/report.json"));
  uint64_t sent = 0, received = 0, wire = 0, payload = 0;
  for (const json& l : report["links"]) {
    EXPECT_EQ(l["via"], "nats");
    if (l["direction"] == "send") {
      sent += l["messages"].get<uint64_t>();
      wire += l["wire_bytes_estimate"].get<uint64_t>();
      payload += l["payload_bytes"].get<uint64_t>();
      EXPECT_EQ(l["unacknowledged"], 0);
    } else {
      received += l["messages"].get<uint64_t>();
    }
  }
  EXPECT_EQ(sent, 2u * kCount / 60);
  EXPECT_EQ(received, sent);
  EXPECT_GT(wire, payload);
}

// JetStream keeps the frames: the edges run to their end and exit before the cloud starts,
// and the cloud still gets every aggregate.
TEST(NatsLinks, EdgesFinishBeforeTheCloudStartsAndNothingIsLost) {
  NatsCluster nats(1);
  ASSERT_TRUE(nats.ok()) << nats.error();
  const int kCount = 1200;
  std::string yaml = weather_pipeline(kNats, nats_links(nats, 1), kCount, 0);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  auto node = [&](const std::string& name) { return run_node(dir, name); };
  auto pi1 = node("pi-1");
  auto pi2 = node("pi-2");
  ASSERT_TRUE(pi1->wait(60)) << pi1->err();
  ASSERT_TRUE(pi2->wait(60)) << pi2->err();
  EXPECT_EQ(pi1->exit_code(), 0) << pi1->err();
  EXPECT_EQ(pi2->exit_code(), 0) << pi2->err();
  auto cloud = node("cloud");
  ASSERT_TRUE(cloud->wait(60)) << cloud->err();
  EXPECT_EQ(cloud->exit_code(), 0) << cloud->err();
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-2"}) EXPECT_EQ(total_count(got[n]), kCount) << n;
  EXPECT_EQ(got, by_origin(reference_run(yaml)));
}

// Three servers, the stream replicated on all three; the one server every process was told
// of is killed while the edges send: the clients move to the others (learnt from the
// cluster), a new leader takes over, frames not acknowledged are published or delivered
// again, and every aggregate still arrives exactly once.
TEST(NatsLinks, AClusterServerKilledMidRunLosesNothingAndDuplicatesNothing) {
  NatsCluster nats(3);
  ASSERT_TRUE(nats.ok()) << nats.error();
  const int kCount = 3600;  // per edge, 600 readings a second: six seconds of sending
  const std::string first = nats.servers().substr(0, nats.servers().find(','));
  std::string yaml =
      weather_pipeline(kNats, nats_links(nats, 3, "[\"" + first + "\"]"), kCount, 600);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  auto node = [&](const std::string& name) { return run_node(dir, name); };
  auto cloud = node("cloud");
  ASSERT_TRUE(cloud->wait_for_err("running 'links-test'", 60)) << cloud->err();
  auto pi1 = node("pi-1");
  auto pi2 = node("pi-2");
  for (int i = 0; i < 300 && read_file(dir + "/out.jsonl").empty() && cloud->running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_FALSE(read_file(dir + "/out.jsonl").empty()) << cloud->err();
  nats.kill(1);
  ASSERT_TRUE(pi1->wait(90)) << pi1->err();
  ASSERT_TRUE(pi2->wait(90)) << pi2->err();
  ASSERT_TRUE(cloud->wait(90)) << cloud->err();
  EXPECT_EQ(pi1->exit_code(), 0) << pi1->err();
  EXPECT_EQ(pi2->exit_code(), 0) << pi2->err();
  EXPECT_EQ(cloud->exit_code(), 0) << cloud->err();
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-2"}) {
    EXPECT_EQ(got[n].size(), static_cast<size_t>(kCount / 60)) << n;
    EXPECT_EQ(total_count(got[n]), kCount) << n;
  }
  EXPECT_EQ(got, by_origin(reference_run(yaml)));
  // Every process had to move: the kill was felt.
  for (const char* n : {"pi-1", "cloud"}) {
    const json report = json::parse(read_file(dir + "/" + n + ".json"));
    uint64_t reconnects = 0;
    for (const json& l : report["links"]) reconnects += l["reconnects"].get<uint64_t>();
    EXPECT_GE(reconnects, 1u) << n << ": " << report.dump();
  }
}

// `links: {nats: {retry: true}}`: servers that are down when the pipeline starts are waited
// for, and everything is delivered once they come up.
TEST(NatsLinks, RetryWaitsForServersThatStartLater) {
  NatsCluster nats(1);
  ASSERT_TRUE(nats.ok()) << nats.error();
  nats.stop();  // its ports are kept: restart() brings it back where the file points
  const int kCount = 600;
  std::string links = nats_links(nats, 1);
  links.insert(links.size() - 1, ", retry: true");
  std::string yaml = weather_pipeline(kNats, links, kCount, 0);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  Process run({edgeflow_binary(), "run", dir + "/p.yaml", "--quiet"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(run.running()) << run.err();
  ASSERT_TRUE(nats.restart(1));
  ASSERT_TRUE(run.wait(90)) << run.err();
  EXPECT_EQ(run.exit_code(), 0) << run.err();
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-2"}) EXPECT_EQ(total_count(got[n]), kCount) << n;
}

// Servers that want TLS and a user: links.nats.tls and .credentials carry every reading; each
// wrong setting is a clear error naming what to fix, promptly.
TEST(NatsLinks, TlsAndAUserCarryTheLinkAndEachWrongSettingIsAClearError) {
  const std::string ca = make_temp_dir();
  ASSERT_EQ(
      run_process({"bash", edgeflow::testing::source_dir() + "/scripts/make-test-ca.sh", ca}, 60)
          .exit_code,
      0);
  NatsCluster nats(1, {"--tls", ca, "--user", "edge:s3cret-pw"});
  ASSERT_TRUE(nats.ok()) << nats.error();
  ASSERT_EQ(nats.servers().rfind("tls://localhost:", 0), 0u) << nats.servers();
  std::string dir = make_temp_dir();
  auto creds = [&](const std::string& name, const std::string& password) {
    write_file(dir + "/" + name, "username: edge\npassword: " + password + "\n");
    chmod((dir + "/" + name).c_str(), 0600);
  };
  creds("good.yaml", "s3cret-pw");
  creds("wrong.yaml", "guess");
  const int kCount = 600;
  // `servers` and `security` of links.nats, one run, its result.
  auto run = [&](const std::string& servers, const std::string& security) {
    write_file(dir + "/p.yaml",
               weather_pipeline(kNats, ", nats: {servers: " + servers + security + "}", kCount, 0));
    return run_process({edgeflow_binary(), "run", dir + "/p.yaml", "--quiet"}, 90);
  };
  const std::string servers = nats.servers_yaml();
  const std::string tls = ", tls: {ca_file: " + ca + "/ca.crt}";
  ProcessResult ok = run(servers, tls + ", credentials: good.yaml");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-2"}) EXPECT_EQ(total_count(got[n]), kCount) << n;

  struct Bad {
    std::string what, servers, security, expect;
  };
  std::string plain = servers;
  plain.replace(plain.find("tls://"), 6, "nats://");
  std::string by_address = servers;
  by_address.replace(by_address.find("localhost"), 9, "127.0.0.1");
  const std::vector<Bad> bad = {
      {"no user", servers, tls, "links.nats.credentials"},
      {"wrong password", servers, tls + ", credentials: wrong.yaml", "refused the user 'edge'"},
      {"untrusted CA", servers, ", tls: {ca_file: " + ca + "/other-ca.crt}, credentials: good.yaml",
       "ca_file must hold the CA"},
      {"plaintext", plain, ", credentials: good.yaml", "the servers require TLS"},
      {"address", by_address, tls + ", credentials: good.yaml", "names an address"},
  };
  for (const Bad& b : bad) {
    ProcessResult r = run(b.servers, b.security);
    EXPECT_FALSE(r.timed_out) << b.what;
    EXPECT_NE(r.exit_code, 0) << b.what;
    EXPECT_NE(r.err.find(b.expect), std::string::npos) << b.what << ": " << r.err;
  }
  // A credentials file others may read is refused, naming the chmod that fixes it.
  chmod((dir + "/good.yaml").c_str(), 0644);
  ProcessResult open_file = run(servers, tls + ", credentials: good.yaml");
  EXPECT_NE(open_file.exit_code, 0);
  EXPECT_NE(open_file.err.find("chmod 600"), std::string::npos) << open_file.err;
}

// Edges pi-1, pi-3 and pi-7 (their names hash to partitions 0, 1 and 2), `count` readings
// each at `rate` a second, into one-minute windows with `replicas: 3` on `nats`, the file
// naming its first server only (the one the tests kill). The windows wait an hour of event
// time for stragglers.
std::string three_edges_into_replicas(const NatsCluster& nats, int count, int rate) {
  const std::string first = nats.servers().substr(0, nats.servers().find(','));
  std::string yaml =
      weather_pipeline(kNats, nats_links(nats, 3, "[\"" + first + "\"]"), count, rate);
  yaml.replace(yaml.find("pi-2: {tier: edge"), 4, "pi-3");
  yaml.replace(yaml.find("  cloud: {tier: cloud"), 0, "  pi-7: {tier: edge, address: 127.0.0.1}\n");
  yaml = windows_in_the_cloud(yaml, 3);
  yaml.replace(yaml.find("stats: [min, mean, max]}"), 24,
               "stats: [min, mean, max], allowed_lateness: 1h}");
  return yaml;
}

// The child process of `parent` whose command line holds `arg`; -1 when none.
pid_t child_with_arg(pid_t parent, const std::string& arg) {
  const std::string p = std::to_string(parent);
  std::istringstream children(read_file("/proc/" + p + "/task/" + p + "/children"));
  for (pid_t child = 0; children >> child;) {
    std::string cmdline = read_file("/proc/" + std::to_string(child) + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(arg) != std::string::npos) return child;
  }
  return -1;
}

// Three edges, a cloud stage with `replicas: 3`: `run --node cloud` starts the three
// replicas as child processes, each reading the partition of the origins its number owns
// (pi-1, pi-3 and pi-7 hash to partitions 0, 1 and 2). Mid-run the one NATS server the file
// names is killed, and so is replica 2 (SIGKILL): the run goes on, a survivor takes its
// partition over, and every window still comes exactly once, equal to an in-process run.
TEST(NatsLinks, ThreeReplicasShareTheOriginsAndAggregateEachReadingOnce) {
  NatsCluster nats(3);
  ASSERT_TRUE(nats.ok()) << nats.error();
  const int kCount = 3600;  // per edge, 600 readings a second: six seconds of sending
  // Frames the killed server held come again after ack_wait (5 s of wall time, 3,000 s of
  // event time at speed 600), after newer ones: the windows wait an hour of event time.
  const std::string yaml = three_edges_into_replicas(nats, kCount, 600);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  auto node = [&](const std::string& name) { return run_node(dir, name); };
  auto cloud = node("cloud");
  for (int i = 1; i <= 3; ++i)
    ASSERT_TRUE(cloud->wait_for_err("node 'cloud:minute replica " + std::to_string(i) + "/3'", 60))
        << cloud->err();
  std::vector<std::unique_ptr<Process>> edges;
  for (const char* n : {"pi-1", "pi-3", "pi-7"}) edges.push_back(node(n));
  // Mid-run: the windows wait for stragglers past the end of the data, so no output can say
  // when; the edges send for six seconds, and must still be sending.
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  for (auto& e : edges) ASSERT_TRUE(e->running()) << e->err();
  const pid_t second = child_with_arg(cloud->pid(), "--replica 2/3");
  ASSERT_GT(second, 0) << cloud->err();
  nats.kill(1);
  ASSERT_EQ(kill(second, SIGKILL), 0);
  for (auto& e : edges) {
    ASSERT_TRUE(e->wait(90)) << e->err();
    EXPECT_EQ(e->exit_code(), 0) << e->err();
  }
  ASSERT_TRUE(cloud->wait(90)) << cloud->err();
  EXPECT_EQ(cloud->exit_code(), 0) << cloud->err();
  EXPECT_NE(cloud->err().find("replica 2 ended with exit code 137; another replica takes"),
            std::string::npos)
      << cloud->err();
  EXPECT_NE(cloud->err().find("took partition 1"), std::string::npos) << cloud->err();
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-3", "pi-7"}) {
    EXPECT_EQ(got[n].size(), static_cast<size_t>(kCount / 60)) << n;
    EXPECT_EQ(total_count(got[n]), kCount) << n;
  }
  expect_same_windows(got, by_origin(reference_run(yaml)));
  // The survivors read their own origin's readings, and the one that took partition 1 over
  // also what replica 2 had not settled: the partitions were shared out, not copied.
  uint64_t least = UINT64_MAX, most = 0;
  for (int i : {1, 3}) {
    const json report = json::parse(read_file(dir + "/cloud.json.replica-" + std::to_string(i)));
    uint64_t received = 0;
    for (const json& l : report["links"])
      if (l["direction"] == "receive") received += l["messages"].get<uint64_t>();
    least = std::min(least, received);
    most = std::max(most, received);
  }
  EXPECT_EQ(least, static_cast<uint64_t>(kCount));
  EXPECT_GT(most, static_cast<uint64_t>(kCount));
  EXPECT_LE(most, static_cast<uint64_t>(2 * kCount));
}

// The test: three edges, three replicas started one by one (`--replica I/3`) and the
// node's file writer on its own (`--replica none`), on a three-server cluster. Mid-run the
// one server the file names is killed, and replica 2 is killed with SIGKILL. Its lease lapses,
// a survivor takes its partition and reads again every frame replica 2 had not settled
// (acknowledged only once the windows it fed were emitted and confirmed); the file drops the
// windows made twice. Every window arrives exactly once, equal to an in-process run.
TEST(NatsLinks, AReplicaKilledMidRunHandsItsPartitionOnAndEveryWindowComesOnce) {
  NatsCluster nats(3);
  ASSERT_TRUE(nats.ok()) << nats.error();
  // Per edge, 300 readings a second: 24 s of sending. The windows wait an hour of event time
  // (12 s) for stragglers, so the first come out halfway; replica 2 dies then, and a
  // survivor takes its partition 12 s (the lease) later, as the edges finish.
  const int kCount = 7200;
  const std::string yaml = three_edges_into_replicas(nats, kCount, 300);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  auto start = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {edgeflow_binary(), "run", dir + "/p.yaml"});
    return std::make_unique<Process>(args);
  };
  auto writer = start({"--node", "cloud", "--replica", "none"});
  std::vector<std::unique_ptr<Process>> replicas;
  for (int i = 1; i <= 3; ++i) {
    replicas.push_back(start({"--node", "cloud", "--replica", std::to_string(i) + "/3"}));
    ASSERT_TRUE(replicas.back()->wait_for_err("running 'links-test'", 60))
        << replicas.back()->err();
  }
  std::vector<std::unique_ptr<Process>> edges;
  for (const char* n : {"pi-1", "pi-3", "pi-7"}) edges.push_back(start({"--node", n}));
  // Once windows came out (some frames settled and acknowledged), while the edges still send.
  for (int i = 0; i < 600 && read_file(dir + "/out.jsonl").empty() && writer->running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_FALSE(read_file(dir + "/out.jsonl").empty()) << writer->err();
  for (auto& e : edges) ASSERT_TRUE(e->running()) << e->err();
  nats.kill(1);
  replicas[1]->signal(SIGKILL);
  for (auto& e : edges) {
    ASSERT_TRUE(e->wait(90)) << e->err();
    EXPECT_EQ(e->exit_code(), 0) << e->err();
  }
  for (int i : {0, 2}) {
    ASSERT_TRUE(replicas[i]->wait(120)) << replicas[i]->err();
    EXPECT_EQ(replicas[i]->exit_code(), 0) << replicas[i]->err();
  }
  ASSERT_TRUE(writer->wait(90)) << writer->err() << replicas[0]->err() << replicas[2]->err();
  EXPECT_EQ(writer->exit_code(), 0) << writer->err();
  EXPECT_NE((replicas[0]->err() + replicas[2]->err()).find("took partition 1"), std::string::npos)
      << replicas[0]->err() << replicas[2]->err();
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-3", "pi-7"}) {
    EXPECT_EQ(got[n].size(), static_cast<size_t>(kCount / 60)) << n;
    EXPECT_EQ(total_count(got[n]), kCount) << n;
  }
  expect_same_windows(got, by_origin(reference_run(yaml)));
}

// The same pipeline in one process over NATS: the stage with replicas runs whole there,
// reading every partition and ending for every replica.
TEST(NatsLinks, AStageWithReplicasRunsWholeInOneProcess) {
  NatsCluster nats(1);
  ASSERT_TRUE(nats.ok()) << nats.error();
  const int kCount = 1200;
  std::string yaml = weather_pipeline(kNats, nats_links(nats, 1), kCount, 0);
  yaml = windows_in_the_cloud(yaml, 3);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  ProcessResult r = run_process({edgeflow_binary(), "run", dir + "/p.yaml"}, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  for (const char* n : {"pi-1", "pi-2"}) EXPECT_EQ(total_count(got[n]), kCount) << n;
  EXPECT_EQ(got, by_origin(reference_run(yaml)));
}

// Ctrl-C to `run --node cloud` reaches its replicas once, through it (they have a process
// group of their own): they finish what they accepted and nothing is left running.
TEST(NatsLinks, ASignalToTheNodeStopsItsReplicasOnce) {
  NatsCluster nats(1);
  ASSERT_TRUE(nats.ok()) << nats.error();
  std::string yaml = weather_pipeline(kNats, nats_links(nats, 1), 1'000'000, 60);
  yaml = windows_in_the_cloud(yaml, 2);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  auto cloud = run_node(dir, "cloud");
  for (int i = 1; i <= 2; ++i)
    ASSERT_TRUE(cloud->wait_for_err("node 'cloud:minute replica " + std::to_string(i) + "/2'", 60))
        << cloud->err();
  auto pi1 = run_node(dir, "pi-1");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  cloud->signal(SIGINT);
  ASSERT_TRUE(cloud->wait(60)) << cloud->err();
  EXPECT_EQ(cloud->exit_code(), 130) << cloud->err();
  EXPECT_EQ(cloud->err().find("second signal"), std::string::npos) << cloud->err();
  for (int i = 1; i <= 2; ++i)
    EXPECT_NE(cloud->err().find("node 'cloud:minute replica " + std::to_string(i) +
                                "/2' finished (SIGINT)"),
              std::string::npos)
        << cloud->err();
  ProcessResult left = run_process({"pgrep", "-f", dir + "/p.yaml --node cloud --replica"}, 10);
  EXPECT_NE(left.exit_code, 0) << "replicas still running: " << left.out;
  // What the replicas took in is in the file: their last windows, closed by the stop, were
  // read by the node before it ended.
  uint64_t received = 0;
  for (int i = 1; i <= 2; ++i) {
    const json report = json::parse(read_file(dir + "/cloud.json.replica-" + std::to_string(i)));
    for (const json& l : report["links"])
      if (l["direction"] == "receive") received += l["messages"].get<uint64_t>();
  }
  EXPECT_GT(received, 0u);
  auto got = by_origin(json_lines(read_file(dir + "/out.jsonl")));
  EXPECT_EQ(static_cast<uint64_t>(total_count(got["pi-1"])), received);
}

// --replica names one replica of the node's stage with replicas; anything else is refused
// before a connection is made, naming the fix.
TEST(NatsLinks, ReplicaChoicesThatDoNotFitAreClearErrors) {
  std::string yaml = weather_pipeline(kNats, ", nats: {servers: [\"nats://127.0.0.1:9\"]}", 60, 0);
  yaml = windows_in_the_cloud(yaml, 3);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--replica", "1/3"}, "--replica needs --node"},
      {{"--node", "pi-1", "--replica", "1/3"}, "node 'pi-1' runs no stage with replicas"},
      {{"--node", "cloud", "--replica", "4/3"}, "--replica takes I/3 with I from 1 to 3"},
      {{"--node", "cloud", "--replica", "1/2"}, "stage 'minute' has replicas: 3"},
      {{"--node", "pi-1", "--replica", "none"}, "node 'pi-1' runs no stage with replicas"},
      {{"--node", "cloud:minute"}, "run one with --node cloud --replica I/N"},
  };
  for (const auto& [args, expect] : bad) {
    std::vector<std::string> argv = {edgeflow_binary(), "run", dir + "/p.yaml"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = run_process(argv, 30);
    EXPECT_EQ(r.exit_code, 2) << expect << ": " << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
  }
}

TEST(NatsLinks, ServersDownIsAClearErrorNamingThemAndTheFix) {
  const int port = edgeflow::testing::free_tcp_port();
  std::string yaml = weather_pipeline(
      kNats, ", nats: {servers: [\"nats://127.0.0.1:" + std::to_string(port) + "\"]}", 60, 0);
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", yaml);
  ProcessResult r = run_process({edgeflow_binary(), "run", dir + "/p.yaml"}, 60);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cannot reach the NATS servers nats://127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("scripts/nats-cluster.sh"), std::string::npos) << r.err;
}

TEST(NatsLinks, ViaNatsWithoutServersIsALoadErrorWithTheFix) {
  std::string dir = make_temp_dir();
  write_file(dir + "/p.yaml", weather_pipeline(kNats, "", 60, 0));
  ProcessResult r = run_process({edgeflow_binary(), "validate", dir + "/p.yaml"}, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("links via nats needs the servers"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace edgeflow
