// iexec.worker — an iExec worker on an edge device: lends its idle CPU slots to the pool's
// scheduler. For each task it checks the scheduler's authorization signature, runs the app in
// the sandbox (iexec/app.h), computes resultDigest, resultHash and resultSeal (IEXEC.md),
// sends a signed contribution, reveals and uploads the result when asked, and reports the
// replicate statuses in order and a heartbeat. At most one task per free CPU slot, shared with
// the node's iexec.run stages. An energy mode that pauses the stage (runtime/energy_rules.h)
// makes it refuse new tasks while those running finish.
//
// Ports: none -> replicates (one record per replicate that ended: task, app, status, cause,
// result_digest, wall_ms, cpu_ms).
//
//   - id: worker
//     op: iexec.worker
//     on: edge
//     with: { wallet: "state/{node}.key", create_wallet: true, apps: ../apps/registry.yaml }
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "iexec/poco.h"
#include "iexec/protocol.h"
#include "operators/iexec/iexec_common.h"
#include "runtime/log.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

using iexec::ReplicateStatus;
using nlohmann::json;

struct Replicate {
  crypto::Hash32 task;
  std::string app;
  crypto::Signature auth;  // the scheduler's authorization, sent back with the contribution
  std::atomic<bool> cancel{false};
  std::thread thread;
  // Held while a thread sends this replicate's messages, so the statuses stay in order when
  // the reveal request (trust 1: right after the contribution) races the runner thread.
  std::mutex send_mu;
  // Guarded by the worker's mu_.
  ReplicateStatus status = ReplicateStatus::kStarting;
  std::string contribution;  // the sealed message, resent when the scheduler asks again
  iexec::RunResult result;
  bool contributed = false, finished = false;
};

class IexecWorker : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "iexec.worker";
    s.summary = "iExec worker: runs the pool's tasks in a sandbox and proves its results (PoCo).";
    s.example =
        "- id: worker\n  op: iexec.worker\n  on: edge\n"
        "  with: { wallet: \"state/{node}.key\", create_wallet: true, apps: "
        "../apps/registry.yaml }";
    s.outputs = {{"replicates", "record",
                  "one per replicate that ended: task, app, status, cause, result_digest, "
                  "wall_ms, cpu_ms"}};
    s.energy_pause =
        "refuses new tasks (FAILED, cause 'paused', so the scheduler gives them to another "
        "worker); tasks already running finish";
    s.options = {
        opt_string("pool", "workerpool name; must match the scheduler's").def("default"),
        opt_string("wallet", "key file of this worker; {node} expands, so each node has its own")
            .require(),
        opt_bool("create_wallet", "create the key file at start when it is missing").def("false"),
        opt_string("apps", "app registry file: the apps this worker may run").require(),
        opt_string("scheduler",
                   "address of the scheduler whose tasks this worker runs; default: the one "
                   "announced on the broker (trust on first use, with a warning)"),
        opt_int("slots", "tasks run at once; default: the CPU count").at_least(1),
        opt_duration("heartbeat", "how often the worker says it is alive").def("10s"),
        opt_string("work_dir", "folder for task folders; {node} expands")
            .def("/tmp/edgeflow-tasks/{node}"),
        opt_bool("keep_work_dirs", "keep each task's folder after it ran (debugging)").def("false"),
        opt_bool("isolate_network", "run apps in a network namespace with no interfaces")
            .def("true"),
        opt_list("read_paths",
                 "more folders apps may read (Landlock); by default only system folders "
                 "(/usr, /etc, ...) and their own task folder"),
        opt_duration("announce_wait", "how long to wait for the scheduler's announcement at start")
            .def("10s"),
        opt_string("broker", "broker URI; default: links.mqtt.broker"),
        opt_enum("client", {"mosquitto", "paho"}, "MQTT client; default: links.mqtt.client"),
    };
    for (OptionSpec& spec : iexecop::task_user_options()) s.options.push_back(std::move(spec));
    return s;
  }

  explicit IexecWorker(const Options& o)
      : pool_(o.get_string("pool")),
        wallet_path_(o.resolve_path("wallet")),
        create_wallet_(o.get_bool("create_wallet")),
        apps_path_(o.resolve_path("apps")),
        slots_(o.has("slots") ? static_cast<int>(o.get_int("slots")) : iexecop::default_slots()),
        heartbeat_us_(o.get_duration_us("heartbeat")),
        work_dir_(o.get_string("work_dir")),
        keep_work_dirs_(o.get_bool("keep_work_dirs")),
        isolate_network_(o.get_bool("isolate_network")),
        read_paths_(o.has("read_paths") ? o.get_list("read_paths") : std::vector<std::string>{}),
        first_task_uid_(static_cast<uid_t>(o.get_int("first_task_uid"))),
        task_uids_(static_cast<int>(o.get_int("task_uids"))),
        announce_wait_us_(o.get_duration_us("announce_wait")),
        broker_(o.has("broker") ? o.get_string("broker") : ""),
        client_kind_(o.has("client") ? o.get_string("client") : "") {
    if (o.has("scheduler")) {
      auto a = crypto::parse_address(o.get_string("scheduler"));
      if (!a) throw OptionError("scheduler", "is not an address (0x and 40 hex digits)");
      scheduler_ = *a;
      pinned_ = true;
    }
    if (heartbeat_us_ <= 0) throw OptionError("heartbeat", "must be positive");
  }

  ~IexecWorker() override { stop_all(); }

  void open(Context& ctx) override {
    wallet_.emplace(
        iexecop::load_wallet(iexecop::expand(wallet_path_, ctx, pool_), create_wallet_, ctx));
    registry_ = iexecop::load_registry(apps_path_);
    topics_.emplace(ctx.pipeline(), pool_);
    slots_pool_ = &iexecop::Slots::of_node(ctx.node(), slots_);
    iexec::SandboxOptions so;
    so.work_root = iexecop::expand(work_dir_, ctx, pool_);
    so.keep_work_dirs = keep_work_dirs_;
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
    state_dir_ = so.work_root + "/contributed";
    stage_ = ctx.stage();
    load_contributed(ctx);
    boot_ = ctx.now_us();
    inbox_.set_waker(ctx.make_waker());
    waker_ = ctx.make_waker();
    client_ = iexecop::connect_client(
        ctx, broker_, client_kind_, "worker",
        [this](mqtt::Received&& r) { inbox_.push(std::move(r)); },
        topics_->worker_online(wallet_->address()), "false");
    client_->subscribe(topics_->announce(), 1);
    if (!pinned_) {
      // The retained announcement arrives right after the subscription; wait for it so the
      // first task is not refused for want of a scheduler.
      // Real time, not ctx.now_us(): under a test harness that clock stands still.
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::microseconds(announce_wait_us_);
      while (!scheduler_known() && std::chrono::steady_clock::now() < until) {
        for (mqtt::Received& r : inbox_.take()) on_message(r, ctx);
        if (!scheduler_known()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!scheduler_known())
        logger().warn("{} on {}: no scheduler announced on {} yet; waiting for one", ctx.stage(),
                      ctx.node(), topics_->announce());
    }
    client_->subscribe(topics_->worker(wallet_->address()), 1);
    const std::string online = "true";
    client_->publish(topics_->worker_online(wallet_->address()), online.data(), online.size(), 1,
                     true, 5000);
    hello();
    next_heartbeat_us_ = ctx.now_us() + heartbeat_us_;
    logger().info("{} on {}: worker {} of pool '{}', {} slot(s), apps: {}", ctx.stage(), ctx.node(),
                  wallet_->address().hex(), pool_, slots_, app_names());
  }

  SourceStep generate(Context& ctx) override {
    for (mqtt::Received& r : inbox_.take()) on_message(r, ctx);
    const int64_t now = ctx.now_us();
    if (now >= next_heartbeat_us_) {
      hello();
      next_heartbeat_us_ = now + heartbeat_us_;
    }
    emit_finished(ctx);
    return SourceStep::wait_until(std::min(next_heartbeat_us_, now + 500'000));
  }

  void close(Context& ctx) override {
    stop_all();
    emit_finished(ctx);
    if (client_) {
      const std::string offline = "false";
      client_->publish(topics_->worker_online(wallet_->address()), offline.data(), offline.size(),
                       1, true, 1000);
      client_->flush(2000);
      client_->disconnect();
    }
  }

 private:
  bool scheduler_known() const { return pinned_ || !scheduler_.is_zero(); }

  std::string app_names() const {
    std::string s;
    for (const std::string& n : registry_.names()) s += (s.empty() ? "" : ", ") + n;
    return s;
  }

  void hello() {
    json apps = json::array();
    for (const iexec::AppSpec& a : registry_.apps())
      apps.push_back({{"name", a.name}, {"sha256", iexec::bin(a.sha256)}});
    // `boot` changes when this process restarts: the scheduler then sends again the tasks it
    // still counts this worker as computing, which died with the old process.
    publish_to_scheduler({{"type", "hello"}, {"slots", slots_}, {"apps", apps}, {"boot", boot_}});
  }

  void publish_to_scheduler(json body) {
    const std::string m = iexec::seal_message(*wallet_, std::move(body));
    client_->publish(topics_->scheduler(), m.data(), m.size(), 1, false, 5000);
  }

  // Statuses go out in order: each replicate's are sent from one thread at a time.
  void status(Replicate& r, ReplicateStatus s, const std::string& cause = "") {
    {
      std::lock_guard<std::mutex> lock(mu_);
      r.status = s;
    }
    json body = {{"type", "status"}, {"task", iexec::bin(r.task)}, {"status", iexec::to_string(s)}};
    if (!cause.empty()) body["cause"] = cause;
    publish_to_scheduler(std::move(body));
  }

  void on_message(const mqtt::Received& r, Context& ctx) {
    if (r.topic == topics_->announce()) return on_announce(r, ctx);
    std::string why;
    auto msg = iexec::open_message(r.payload, &why);
    if (!msg) return ctx.error(nullptr, "refused a message on " + r.topic + ": " + why);
    const std::string type = msg->body["type"].get<std::string>();
    if (!scheduler_known())
      return ctx.error(nullptr, "refused '" + type + "': no scheduler known yet (set scheduler:)");
    if (!msg->signed_ || msg->from != scheduler_)
      return ctx.error(nullptr, "refused '" + type + "' signed by " + msg->from.hex() +
                                    ": this worker takes orders from scheduler " +
                                    scheduler_.hex() + " only");
    try {
      const crypto::Hash32 task = iexec::get_hash(msg->body, "task");
      if (type == "task") return on_task(msg->body, task, ctx);
      if (type == "reveal_request") return on_reveal_request(task, ctx);
      if (type == "abort") return on_abort(task, msg->body.value("reason", std::string("aborted")));
      throw std::runtime_error("unknown message type");
    } catch (const std::exception& e) {
      ctx.error(nullptr, "refused '" + type + "' from the scheduler: " + e.what());
    }
  }

  void on_announce(const mqtt::Received& r, Context& ctx) {
    std::optional<crypto::Address> a;
    try {
      a = crypto::parse_address(json::parse(r.payload).at("scheduler").get<std::string>());
    } catch (const std::exception&) {
    }
    if (!a) return ctx.error(nullptr, "ignored a malformed announcement on " + r.topic);
    if (pinned_) {
      if (*a != scheduler_)
        logger().warn("{}: the broker announces scheduler {}, but this worker is pinned to {}",
                      ctx.stage(), a->hex(), scheduler_.hex());
      return;
    }
    if (scheduler_.is_zero()) {
      scheduler_ = *a;
      logger().warn(
          "{} on {}: trusting scheduler {} announced on the broker; pin it with scheduler: {}",
          ctx.stage(), ctx.node(), a->hex(), a->hex());
    } else if (*a != scheduler_) {
      ctx.error(nullptr, "a new scheduler " + a->hex() + " was announced; still trusting " +
                             scheduler_.hex() + " (restart the worker, or pin scheduler:)");
    }
  }

  void on_task(const json& b, const crypto::Hash32& task, Context& ctx) {
    std::string again;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = reps_.find(task);
      if (it != reps_.end())
        again = it->second->contribution.empty() ? "-" : it->second->contribution;
      else if (done_.count(task))
        again = "-";
    }
    if (!again.empty()) {
      // The scheduler sent it again (it restarted): repeat the contribution if there is one.
      if (again != "-")
        client_->publish(topics_->scheduler(), again.data(), again.size(), 1, false, 5000);
      return;
    }
    if (ctx.energy().paused(ctx.stage())) {
      // An energy mode sheds this stage (runtime/energy_rules.h): no new work, while what
      // runs finishes. FAILED with the reason, so the scheduler gives the task to another.
      const std::string mode = ctx.energy().mode();
      if (mode != refused_in_mode_) {
        refused_in_mode_ = mode;
        logger().info("{} on {}: energy mode '{}': refusing new tasks until it lifts", ctx.stage(),
                      ctx.node(), mode);
      }
      publish_to_scheduler({{"type", "status"},
                            {"task", iexec::bin(task)},
                            {"status", iexec::to_string(ReplicateStatus::kFailed)},
                            {"cause", "paused: the node is in energy mode '" + mode + "'"}});
      return;
    }
    refused_in_mode_.clear();
    int computing = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, r] : reps_) computing += !r->finished && !r->contributed;
    }
    if (computing >= slots_) {
      // The scheduler never sends more than `slots`; a replayed old task must not start
      // threads without bound. Say so, so that a real one goes to another worker.
      publish_to_scheduler({{"type", "status"},
                            {"task", iexec::bin(task)},
                            {"status", iexec::to_string(ReplicateStatus::kFailed)},
                            {"cause", "all " + std::to_string(slots_) + " slots taken"}});
      return;
    }
    auto signer = crypto::recover_eip191(iexec::authorization_hash(wallet_->address(), task),
                                         iexec::get_signature(b, "auth"));
    if (!signer || *signer != scheduler_)
      throw std::runtime_error("task " + task.hex() + " carries no valid authorization of " +
                               scheduler_.hex() + " for this worker");
    auto rep = std::make_shared<Replicate>();
    rep->task = task;
    rep->app = iexec::get_string(b, "app");
    rep->auth = iexec::get_signature(b, "auth");
    const crypto::Hash32 sha = iexec::get_hash(b, "sha256");
    iexec::RunRequest req;
    req.taskid = task;
    for (const json& a : b.at("args")) req.args.push_back(a.get<std::string>());
    for (const json& in : b.at("inputs"))
      req.inputs.push_back({iexec::get_string(in, "name"), iexec::get_bytes(in, "bytes")});
    {
      std::lock_guard<std::mutex> lock(mu_);
      reps_[task] = rep;
    }
    status(*rep, ReplicateStatus::kStarting);
    const iexec::AppSpec* app = registry_.find(rep->app);
    if (!app || app->sha256 != sha) {
      return fail(
          *rep, app ? "app '" + rep->app + "' is registered here with sha256 " + app->sha256.hex() +
                          ", the task wants " + sha.hex()
                    : "app '" + rep->app + "' is not in this worker's registry " + apps_path_);
    }
    req.app = app;
    rep->thread = std::thread([this, rep, req = std::move(req)]() mutable { run(rep, req); });
  }

  void fail(Replicate& r, const std::string& cause) {
    status(r, ReplicateStatus::kFailed, cause);
    std::lock_guard<std::mutex> lock(mu_);
    r.result.cause = cause;
    r.finished = true;
    finished_.push_back(r.task);
    if (waker_) waker_();
  }

  // One replicate, on its own thread: from STARTED to CONTRIBUTED.
  void run(const std::shared_ptr<Replicate>& rep, iexec::RunRequest req) {
    Replicate& r = *rep;
    // A node's slots are shared with its iexec.run stages: wait for one (the scheduler never
    // sends more tasks than this worker has slots, so the wait is one local run at most).
    if (!slots_pool_->acquire([&r] { return r.cancel.load(); })) {
      status(r, ReplicateStatus::kAborted, "aborted before it started");
      std::lock_guard<std::mutex> lock(mu_);
      r.result.cause = "aborted before it started";
      r.finished = true;
      finished_.push_back(r.task);
      if (waker_) waker_();
      return;
    }
    status(r, ReplicateStatus::kStarted);
    status(r, ReplicateStatus::kAppDownloading);
    // The app is local; "downloading" is checking it is the registered one. The sandbox checks
    // again on the copy it runs, so a file changed between the two is still caught.
    crypto::Hash32 on_disk;
    try {
      on_disk = crypto::sha256_file(req.app->path);
    } catch (const crypto::CryptoError& e) {
      slots_pool_->release();
      return fail(r, e.what());
    }
    if (on_disk != req.app->sha256) {
      slots_pool_->release();
      return fail(r, "sha256 mismatch for app '" + req.app->name + "' (" + req.app->path +
                         "): registered " + req.app->sha256.hex() + ", file has " + on_disk.hex() +
                         "; refusing to run it");
    }
    status(r, ReplicateStatus::kAppDownloaded);
    status(r, ReplicateStatus::kDataDownloading);
    status(r, ReplicateStatus::kDataDownloaded);
    status(r, ReplicateStatus::kComputing);
    iexec::RunResult res;
    try {
      res = sandbox_->run(req, &r.cancel);
    } catch (const std::exception& e) {  // this node's trouble (disk full, no fork), not the app's
      slots_pool_->release();
      return fail(r, std::string("sandbox: ") + e.what());
    }
    slots_pool_->release();
    if (!res.warning.empty()) logger().warn("{}: {}", stage_, res.warning);  // each said once
    if (r.cancel.load()) {
      status(r, ReplicateStatus::kAborted, "aborted by the scheduler");
      std::lock_guard<std::mutex> lock(mu_);
      r.result = std::move(res);
      r.result.cause = "aborted by the scheduler";
      r.finished = true;
      finished_.push_back(r.task);
      if (waker_) waker_();
      return;
    }
    if (res.outcome == iexec::RunOutcome::kRefused) return fail(r, res.cause);
    status(r, ReplicateStatus::kComputed);
    status(r, ReplicateStatus::kContributing);
    const crypto::Address& me = wallet_->address();
    json body = {{"type", "contribute"},
                 {"task", iexec::bin(r.task)},
                 {"hash", iexec::bin(iexec::result_hash(r.task, res.result_digest))},
                 {"seal", iexec::bin(iexec::result_seal(me, r.task, res.result_digest))},
                 {"enclave", iexec::bin(crypto::Address{})},
                 {"auth", iexec::bin(r.auth)}};  // as the scheduler signed it
    const std::string m = iexec::seal_message(*wallet_, std::move(body));
    std::lock_guard<std::mutex> send(r.send_mu);
    {
      std::lock_guard<std::mutex> lock(mu_);
      r.contribution = m;
      r.result = std::move(res);
      r.contributed = true;
    }
    save_contributed(r);  // before it leaves: a restart must still be able to reveal it
    client_->publish(topics_->scheduler(), m.data(), m.size(), 1, false, 5000);
    status(r, ReplicateStatus::kContributed);
  }

  void on_reveal_request(const crypto::Hash32& task, Context&) {
    std::shared_ptr<Replicate> rep;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = reps_.find(task);
      if (it == reps_.end() || !it->second->contributed)
        throw std::runtime_error("asked to reveal task " + task.hex() +
                                 ", which this worker has not contributed to");
      rep = it->second;
    }
    Replicate& r = *rep;
    std::lock_guard<std::mutex> send(r.send_mu);
    bool again;
    {
      std::lock_guard<std::mutex> lock(mu_);
      again = r.status >= ReplicateStatus::kRevealing;
    }
    if (!again) status(r, ReplicateStatus::kRevealing);
    publish_to_scheduler({{"type", "reveal"},
                          {"task", iexec::bin(task)},
                          {"digest", iexec::bin(r.result.result_digest)}});
    if (!again) status(r, ReplicateStatus::kRevealed);
    if (!again) status(r, ReplicateStatus::kResultUploading);
    json files = json::array();
    for (const auto& [name, bytes] : r.result.files)
      files.push_back({{"name", name}, {"bytes", iexec::bin(bytes)}});
    json up = {{"type", "upload"},
               {"task", iexec::bin(task)},
               {"files", files},
               {"folder", r.result.output_is_folder}};
    if (r.result.callback_data) up["callback"] = iexec::bin(*r.result.callback_data);
    publish_to_scheduler(std::move(up));
    if (again) return;
    status(r, ReplicateStatus::kResultUploaded);
    status(r, ReplicateStatus::kCompleting);
    status(r, ReplicateStatus::kCompleted);
    std::lock_guard<std::mutex> lock(mu_);
    r.finished = true;
    r.result.files.clear();  // the scheduler has them now; keep the digest for duplicates
    finished_.push_back(task);
  }

  void on_abort(const crypto::Hash32& task, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = reps_.find(task);
    if (it == reps_.end()) return;
    Replicate& r = *it->second;
    if (!r.contributed) {
      r.cancel = true;  // the runner reports ABORTED
    } else if (!r.finished && r.status < ReplicateStatus::kRevealing) {
      // Contributed but not asked to reveal: not among the winners, or too late.
      r.finished = true;
      r.result.cause = "not among the winners: " + reason;
      r.result.files.clear();
      finished_.push_back(task);
    }
  }

  void emit_finished(Context& ctx) {
    std::vector<std::shared_ptr<Replicate>> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const crypto::Hash32& t : finished_) {
        auto it = reps_.find(t);
        if (it != reps_.end() && std::find(done.begin(), done.end(), it->second) == done.end())
          done.push_back(it->second);
      }
      finished_.clear();
    }
    for (const auto& rep : done) {
      if (rep->thread.joinable()) rep->thread.join();
      auto m = ctx.make_message(ctx.now_us());
      std::lock_guard<std::mutex> lock(mu_);
      set_field(m->fields, "task", rep->task.hex());
      set_field(m->fields, "app", rep->app);
      set_field(m->fields, "status", iexec::to_string(rep->status));
      if (!rep->result.cause.empty()) set_field(m->fields, "cause", rep->result.cause);
      if (rep->contributed) set_field(m->fields, "result_digest", rep->result.result_digest.hex());
      set_field(m->fields, "wall_ms", rep->result.wall_us / 1000);
      set_field(m->fields, "cpu_ms", rep->result.cpu_us / 1000);
      ctx.emit(0, m);
      // Keep only the id (a task sent again is ignored), not the replicate and its files.
      std::error_code ec;
      std::filesystem::remove(state_file(rep->task), ec);
      reps_.erase(rep->task);
      done_.insert(rep->task);
      done_order_.push_back(rep->task);
      if (done_order_.size() > kRememberDone) {
        done_.erase(done_order_.front());
        done_order_.pop_front();
      }
    }
  }

  // A contributed replicate is kept on disk until it ends, so a worker restarted between its
  // contribution and the reveal request can still reveal and upload (its digest and output
  // exist nowhere else). One JSON file per task, written whole then renamed.
  std::string state_file(const crypto::Hash32& task) const {
    return state_dir_ + "/" + task.hex() + ".json";
  }

  void save_contributed(const Replicate& r) {
    json files = json::array();
    for (const auto& [name, bytes] : r.result.files)
      files.push_back({{"name", name}, {"hex", crypto::to_hex(bytes.data(), bytes.size())}});
    json j = {{"task", r.task.hex()},
              {"app", r.app},
              {"digest", r.result.result_digest.hex()},
              {"folder", r.result.output_is_folder},
              {"files", files},
              {"contribution", crypto::to_hex(r.contribution.data(), r.contribution.size())}};
    if (r.result.callback_data)
      j["callback"] =
          crypto::to_hex(r.result.callback_data->data(), r.result.callback_data->size());
    std::error_code ec;
    std::filesystem::create_directories(state_dir_, ec);
    const std::string path = state_file(r.task), tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << j.dump();
      if (!out) {
        logger().warn(
            "{}: cannot keep contribution state in {}: a restart before the reveal "
            "will lose it",
            stage_, tmp);
        return;
      }
    }
    std::filesystem::rename(tmp, path, ec);
  }

  void load_contributed(Context& ctx) {
    std::error_code ec;
    if (!std::filesystem::is_directory(state_dir_, ec)) return;
    size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(state_dir_, ec)) {
      if (entry.path().extension() != ".json") continue;
      try {
        std::ifstream in(entry.path());
        const json j = json::parse(in);
        auto rep = std::make_shared<Replicate>();
        auto task = crypto::parse_hash32(j.at("task").get<std::string>());
        auto digest = crypto::parse_hash32(j.at("digest").get<std::string>());
        auto contribution = crypto::from_hex(j.at("contribution").get<std::string>());
        if (!task || !digest || !contribution) throw std::runtime_error("bad field");
        rep->task = *task;
        rep->app = j.at("app").get<std::string>();
        rep->result.result_digest = *digest;
        rep->result.output_is_folder = j.at("folder").get<bool>();
        for (const json& f : j.at("files")) {
          auto bytes = crypto::from_hex(f.at("hex").get<std::string>());
          if (!bytes) throw std::runtime_error("bad file");
          rep->result.files.emplace_back(f.at("name").get<std::string>(),
                                         std::string(bytes->begin(), bytes->end()));
        }
        if (j.contains("callback")) {
          auto cb = crypto::from_hex(j["callback"].get<std::string>());
          if (cb) rep->result.callback_data = std::string(cb->begin(), cb->end());
        }
        rep->contribution.assign(contribution->begin(), contribution->end());
        rep->contributed = true;
        rep->status = ReplicateStatus::kContributed;
        reps_[rep->task] = rep;
        ++n;
      } catch (const std::exception& e) {
        ctx.error(nullptr, "ignored unreadable contribution state " + entry.path().string() + ": " +
                               e.what());
      }
    }
    if (n)
      logger().info(
          "{} on {}: {} contributed task(s) from before the restart wait for their reveal",
          ctx.stage(), ctx.node(), n);
  }

  void stop_all() {
    std::vector<std::shared_ptr<Replicate>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [t, r] : reps_) {
        r->cancel = true;
        all.push_back(r);
      }
    }
    for (auto& r : all)
      if (r->thread.joinable()) r->thread.join();
  }

  std::string pool_, wallet_path_;
  bool create_wallet_;
  std::string apps_path_;
  int slots_;
  int64_t heartbeat_us_;
  std::string work_dir_;
  bool keep_work_dirs_, isolate_network_;
  std::vector<std::string> read_paths_;
  uid_t first_task_uid_;
  int task_uids_;
  int64_t announce_wait_us_;
  std::string broker_, client_kind_;
  crypto::Address scheduler_;
  bool pinned_ = false;

  std::string stage_, state_dir_;
  std::optional<crypto::Wallet> wallet_;
  iexec::AppRegistry registry_;
  std::optional<iexec::Topics> topics_;
  std::optional<iexec::Sandbox> sandbox_;
  iexecop::Slots* slots_pool_ = nullptr;
  int64_t next_heartbeat_us_ = 0;
  int64_t boot_ = 0;
  std::function<void()> waker_;

  std::mutex mu_;
  std::map<crypto::Hash32, std::shared_ptr<Replicate>> reps_;
  std::vector<crypto::Hash32> finished_;
  static constexpr size_t kRememberDone = 10000;
  std::set<crypto::Hash32> done_;  // tasks this worker finished, the latest kRememberDone
  std::deque<crypto::Hash32> done_order_;
  std::string refused_in_mode_;  // the energy mode last logged as refusing tasks

  iexecop::Inbox inbox_;
  std::unique_ptr<mqtt::Client> client_;  // last: its thread stops first
};

EF_REGISTER_OPERATOR(IexecWorker)

}  // namespace
}  // namespace edgeflow
