// The ACL broker-config writes, and Mosquitto's password line format.
#include "security/broker_config.h"

#include <gtest/gtest.h>

#include "runtime/pipeline.h"
#include "security/mosquitto_passwd.h"

namespace edgeflow::security {
namespace {

PipelineSpec load(const std::string& yaml) {
  LoadResult r = load_pipeline_text(yaml, "test.yaml", ".");
  EXPECT_TRUE(r.pipeline) << r.diags.str();
  return std::move(*r.pipeline);
}

// The block of rules under `user NAME`.
std::string rules_of(const std::string& acl, const std::string& user) {
  size_t at = acl.find("\nuser " + user + "\n");
  if (at == std::string::npos) return "";
  size_t end = acl.find("\nuser ", at + 1);
  return acl.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

TEST(BrokerAcl, EachNodeGetsItsOwnTopicsAndTheLinksItsStagesUse) {
  PipelineSpec p = load(R"(
pipeline: station
nodes: {pi-1: {tier: edge}, pi-2: {tier: edge}, hub: {tier: cloud}}
links: {mqtt: {broker: "mqtts://broker.example:8883"}}
stages:
  - {id: sensors, op: weather.simulate, on: edge}
  - {id: alerts, op: mqtt.publish, on: edge, from: sensors, with: {topic: "alerts/{origin}/t"}}
  - {id: out, op: file.write, on: cloud, from: sensors, with: {path: o.jsonl}}
)");
  const std::string acl = broker_acl(p);
  const std::string pi1 = rules_of(acl, "pi-1"), hub = rules_of(acl, "hub");
  EXPECT_NE(pi1.find("topic write edgeflow/nodes/pi-1/status\n"), std::string::npos) << acl;
  EXPECT_NE(pi1.find("topic read edgeflow/nodes/pi-1/deploy\n"), std::string::npos) << acl;
  EXPECT_NE(pi1.find("topic write edgeflow/station/sensors/out\n"), std::string::npos) << acl;
  EXPECT_NE(pi1.find("topic read edgeflow/station/_ack/sensors/out/pi-1/+\n"), std::string::npos);
  EXPECT_NE(pi1.find("topic write alerts/+/t\n"), std::string::npos) << acl;
  EXPECT_EQ(pi1.find("pi-2"), std::string::npos) << "pi-1 may touch pi-2's topics:\n" << pi1;
  EXPECT_EQ(pi1.find("edgeflow/nodes/+"), std::string::npos) << pi1;
  EXPECT_NE(hub.find("topic read edgeflow/station/sensors/out\n"), std::string::npos) << acl;
  EXPECT_NE(hub.find("topic readwrite edgeflow/nodes/+/status\n"), std::string::npos) << acl;
  EXPECT_NE(hub.find("topic readwrite edgeflow/nodes/+/deploy\n"), std::string::npos) << acl;
  EXPECT_NE(hub.find("topic read alerts/+/t\n"), std::string::npos) << acl;  // the dashboard
  EXPECT_NE(hub.find("topic write edgeflow/station/_ready/sensors/out/hub\n"), std::string::npos);
}

TEST(MosquittoPasswd, LinesHaveMosquittosHashedFormatAndFreshSalts) {
  const std::string a = mosquitto_passwd_line("pi-1", "secret");
  const std::string b = mosquitto_passwd_line("pi-1", "secret");
  EXPECT_EQ(a.rfind("pi-1:$7$101$", 0), 0u) << a;
  EXPECT_NE(a, b) << "the salt must differ";
  EXPECT_EQ(a.find("secret"), std::string::npos);
  EXPECT_EQ(random_password().size(), 24u);
  EXPECT_NE(random_password(), random_password());
}

}  // namespace
}  // namespace edgeflow::security
