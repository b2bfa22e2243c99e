// iexec.run — a local task: runs an iExec app on the device over batches of an upstream
// stream (the seed's "process the data with an iExec app on the worker"), in the same sandbox
// the pool's tasks use, and emits the result with its resultDigest. No scheduler, no consensus:
// the node vouches for its own result. Shares the node's CPU slots with iexec.worker.
//
// Ports: in (record) -> out (one record per run: task, app, status ok | app_error | refused,
// result_digest, output (text of a single-file result), cause, rows, wall_ms).
// The stage's thread waits while the app runs; upstream records queue meanwhile.
//
//   - id: local-forecast
//     op: iexec.run
//     on: edge
//     from: minute
//     with: { app: forecast, apps: ../apps/registry.yaml, batch: 10 }
#include <unistd.h>

#include <map>

#include "iexec/protocol.h"
#include "operators/iexec/iexec_common.h"
#include "runtime/log.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

class IexecRun : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "iexec.run";
    s.summary = "Runs an iExec app in the sandbox on batches of records, on this node.";
    s.example =
        "- id: local-forecast\n  op: iexec.run\n  on: edge\n  from: minute\n"
        "  with: { app: forecast, apps: ../apps/registry.yaml, batch: 10 }";
    s.inputs = {{"in", "record", "records; each batch of one origin is one run's input file"}};
    s.outputs = {{"out", "record",
                  "one per run: task, app, status (ok, app_error, refused), result_digest, "
                  "output, cause, rows, wall_ms"}};
    s.options = {
        opt_string("app", "app name in the registry").require(),
        opt_string("apps", "app registry file").require(),
        opt_list("args", "arguments for the app; default: the registry's"),
        opt_int("batch", "records per run").def("60").at_least(1),
        opt_string("input_name", "name of the input file the app reads").def("input.csv"),
        opt_int("slots", "CPU slots of this node shared with iexec.worker; default: the CPU count")
            .at_least(1),
        opt_string("work_dir", "folder for task folders; {node} expands")
            .def("/tmp/edgeflow-tasks/{node}"),
        opt_bool("isolate_network", "run the app in a network namespace with no interfaces")
            .def("true"),
        opt_list("read_paths",
                 "more folders the app may read (Landlock); by default only system folders "
                 "(/usr, /etc, ...) and its own task folder"),
    };
    for (OptionSpec& spec : iexecop::task_user_options()) s.options.push_back(std::move(spec));
    return s;
  }

  explicit IexecRun(const Options& o)
      : app_name_(o.get_string("app")),
        apps_path_(o.resolve_path("apps")),
        args_(o.has("args") ? o.get_list("args") : std::vector<std::string>{}),
        batch_(static_cast<size_t>(o.get_int("batch"))),
        input_name_(o.get_string("input_name")),
        slots_(o.has("slots") ? static_cast<int>(o.get_int("slots")) : iexecop::default_slots()),
        work_dir_(o.get_string("work_dir")),
        isolate_network_(o.get_bool("isolate_network")),
        read_paths_(o.has("read_paths") ? o.get_list("read_paths") : std::vector<std::string>{}),
        first_task_uid_(static_cast<uid_t>(o.get_int("first_task_uid"))),
        task_uids_(static_cast<int>(o.get_int("task_uids"))) {
    if (!iexec::valid_input_name(input_name_))
      throw OptionError("input_name", "must be a plain file name like input.csv");
  }

  void open(Context& ctx) override {
    registry_ = iexecop::load_registry(apps_path_);
    app_ = registry_.find(app_name_);
    if (!app_)
      throw OperatorError(ctx.stage() + ": app '" + app_name_ + "' is not in " + apps_path_);
    iexec::SandboxOptions so;
    so.work_root = iexecop::expand(work_dir_, ctx, "");
    so.isolate_network = isolate_network_;
    so.first_task_uid = first_task_uid_;
    so.task_uids = task_uids_;
    for (const std::string& path : read_paths_) {
      // Checked here, once, rather than failing every task later.
      if (::access(path.c_str(), F_OK) != 0)
        throw OperatorError(ctx.stage() + ": read_paths entry " + path +
                            " does not exist; give folders or files the apps may read");
    }
    so.read_paths.insert(so.read_paths.end(), read_paths_.begin(), read_paths_.end());
    sandbox_.emplace(so);
    slots_pool_ = &iexecop::Slots::of_node(ctx.node(), slots_);
  }

  void process(int, MessagePtr m, Context& ctx) override {
    auto& pending = pending_[m->origin];
    pending.push_back(std::move(m));
    if (pending.size() >= batch_) run(pending, ctx);
  }

  void close(Context& ctx) override {
    for (auto& [origin, pending] : pending_)
      if (!pending.empty()) run(pending, ctx);
  }

 private:
  void run(std::vector<MessagePtr>& records, Context& ctx) {
    iexec::RunRequest req;
    req.app = app_;
    req.args = args_;
    const std::string csv = iexecop::records_csv(records);
    // A local task id: this node, this stage, this input.
    req.taskid = crypto::Packed()
                     .add_raw(ctx.node().data(), ctx.node().size())
                     .add_raw(ctx.stage().data(), ctx.stage().size())
                     .add(crypto::keccak256(csv))
                     .keccak();
    req.inputs.push_back({input_name_, csv});
    auto out = ctx.make_message(records.back()->event_time_us);
    out->origin = records.back()->origin;
    const size_t rows = records.size();
    records.clear();
    slots_pool_->acquire([] { return false; });  // bounded: every run ends by its timeout
    iexec::RunResult r;
    try {
      r = sandbox_->run(req);
    } catch (const std::exception& e) {  // this node's trouble (disk full, no fork)
      r.outcome = iexec::RunOutcome::kRefused;
      r.cause = std::string("sandbox: ") + e.what();
    }
    slots_pool_->release();
    if (!r.warning.empty()) logger().warn("{}: {}", ctx.stage(), r.warning);  // each said once
    const char* status = r.outcome == iexec::RunOutcome::kOk         ? "ok"
                         : r.outcome == iexec::RunOutcome::kAppError ? "app_error"
                                                                     : "refused";
    set_field(out->fields, "task", req.taskid.hex());
    set_field(out->fields, "app", app_->name);
    set_field(out->fields, "status", status);
    if (r.outcome != iexec::RunOutcome::kRefused)
      set_field(out->fields, "result_digest", r.result_digest.hex());
    if (r.files.size() == 1) {
      const nlohmann::json p = iexec::printable(r.files.front().second);
      if (p.is_string()) set_field(out->fields, "output", p.get<std::string>());
    }
    if (!r.cause.empty()) set_field(out->fields, "cause", r.cause);
    set_field(out->fields, "rows", static_cast<int64_t>(rows));
    set_field(out->fields, "wall_ms", r.wall_us / 1000);
    if (r.outcome != iexec::RunOutcome::kOk)
      ctx.error(nullptr, "app '" + app_->name + "' on " + ctx.node() + ": " + r.cause);
    ctx.emit(0, out);
  }

  std::string app_name_, apps_path_;
  std::vector<std::string> args_;
  size_t batch_;
  std::string input_name_;
  int slots_;
  std::string work_dir_;
  bool isolate_network_;
  std::vector<std::string> read_paths_;
  uid_t first_task_uid_;
  int task_uids_;
  iexec::AppRegistry registry_;
  const iexec::AppSpec* app_ = nullptr;
  std::optional<iexec::Sandbox> sandbox_;
  iexecop::Slots* slots_pool_ = nullptr;
  std::map<std::string, std::vector<MessagePtr>> pending_;
};

EF_REGISTER_OPERATOR(IexecRun)

}  // namespace
}  // namespace edgeflow
