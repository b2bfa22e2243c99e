#include "edge/part_runner.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "brokers/link/spooled_link.h"
#include "brokers/link/transport.h"
#include "runtime/durability.h"

namespace edgeflow {
namespace {

// Durable state of one stage copy, kept in the service's spool and data_dir.
class SpoolDurability final : public StageDurability {
 public:
  SpoolDurability(Spool* spool, std::string pipeline, std::string stage, std::string node,
                  std::vector<std::string> link_keys, std::string dir)
      : spool_(spool),
        key_(pipeline + "/" + stage + "@" + node),
        stage_(std::move(stage)),
        link_keys_(std::move(link_keys)),
        dir_(std::move(dir)) {}

  // The lowest mark of this stage among the spooled links that carry its messages as they
  // are; without one (a window sits between), the last position read.
  uint64_t resume_after() override {
    uint64_t low = UINT64_MAX;
    for (const std::string& k : link_keys_) {
      auto marks = spool_->stream_marks(k);
      auto it = marks.find(stage_);
      if (it != marks.end()) low = std::min(low, it->second);
    }
    return low != UINT64_MAX ? low : spool_->position(key_);
  }
  void emitted(uint64_t seq) override { spool_->set_position(key_, seq); }
  const std::string& state_dir() override {
    if (!made_) {
      std::error_code ec;
      std::filesystem::create_directories(dir_, ec);
      made_ = true;
    }
    return dir_;
  }

 private:
  Spool* spool_;
  std::string key_, stage_;
  std::vector<std::string> link_keys_;
  std::string dir_;
  bool made_ = false;
};

}  // namespace

PartRunner::PartRunner(const fleet::Deployment& d, const PartSettings& s) : d_(d), s_(s) {
  std::vector<OptionOverride> overrides;
  for (const std::string& text : d.sets) {
    auto o = parse_override(text);
    if (!o) throw std::runtime_error("deployment has a malformed --set '" + text + "'");
    overrides.push_back(*o);
  }
  const std::string base = !s.files_dir.empty() ? s.files_dir : d.base_dir;
  LoadResult r = load_pipeline_text(d.file_text, d.file_name, base, overrides);
  if (!r.pipeline) throw std::runtime_error("the deployed pipeline is invalid:\n" + r.diags.str());
  pipeline_ = std::make_unique<PipelineSpec>(std::move(*r.pipeline));
  for (const StageSpec& st : pipeline_->stages)
    if (st.replicas > 1)
      throw std::runtime_error("stage '" + st.id +
                               "' has replicas:, which the edge and cloud services do not run "
                               "yet: run that node with `edgeflow run FILE --node NODE`");
  if (!pipeline_->node(s.node)) {
    throw std::runtime_error("pipeline '" + pipeline_->name + "' has no node '" + s.node +
                             "': name it under nodes:, or set node: in this service's config");
  }
  // The fleet shares the service's broker; a device at boot keeps retrying it.
  pipeline_->links.mqtt_broker = s.broker;
  pipeline_->links.mqtt_security = s.security;
  pipeline_->links.mqtt_retry = true;
  plan_ = place(*pipeline_);
  transport_ = make_link_transport(*pipeline_, plan_, s.spool);

  ExecutorOptions eo;
  eo.links = transport_.get();
  eo.only_node = s.node;
  Spool* spool = s.spool;
  const PipelineSpec* p = pipeline_.get();
  const Plan* plan = &plan_;
  const std::string state_root = s.data_dir + "/state/" + pipeline_->name;
  eo.durability = [spool, p, plan, state_root](
                      const std::string& stage,
                      const std::string& node) -> std::shared_ptr<StageDurability> {
    if (!spool) return nullptr;
    // Spooled links this node sends on that carry `stage`'s messages: its own output, or
    // passed on by stages that keep the stream name (filter, map, log).
    std::vector<std::string> keys;
    for (const LinkPlan& l : plan->links) {
      if (std::find(l.senders.begin(), l.senders.end(), node) == l.senders.end()) continue;
      if (!link_spools(*p, l)) continue;
      keys.push_back(spool_key(p->name, l.name));
    }
    return std::make_shared<SpoolDurability>(spool, p->name, stage, node, keys,
                                             state_root + "/" + stage + "@" + node);
  };
  eo.energy = s.energy;
  if (s.before_start) s.before_start(*pipeline_);
  executor_ = std::make_unique<Executor>(*pipeline_, plan_, eo);
  executor_->start();  // throws OperatorError naming the stage
}

PartRunner::~PartRunner() {
  if (!drained_) drain(15000);
}

bool PartRunner::drain(int64_t timeout_ms) {
  drained_ = true;
  executor_->request_stop();
  bool done = executor_->wait(timeout_ms * 1000);
  if (done && s_.spool) {
    // Everything received was processed and committed: the inbox need not replay it.
    for (const LinkPlan& l : plan_.links) {
      if (std::find(l.receivers.begin(), l.receivers.end(), s_.node) == l.receivers.end()) continue;
      try {
        s_.spool->prune_inbox(spool_key(pipeline_->name, l.name), 0, true);
      } catch (const SpoolError&) {
      }
    }
  }
  return done;
}

}  // namespace edgeflow
