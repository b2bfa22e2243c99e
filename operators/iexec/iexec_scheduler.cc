// iexec.scheduler — the workerpool's scheduler (iExec's "core"), usually in the cloud: accepts
// task requests (`edgeflow task submit`, or an iexec.request stage), hands replicates to its
// registered workers by the replication rule, keeps the PoCo ledger (iexec/poco.h) with every
// signature checked, and publishes each finalized result on
// edgeflow/<pipeline>/iexec/<pool>/results/<taskid> (retained JSON) and on its output.
//
// Ports: none -> results (one record per task that completed or failed).
// The ledger's journal survives a restart: tasks in flight carry on where they were.
//
//   - id: scheduler
//     op: iexec.scheduler
//     on: cloud
//     with: { wallet: state/scheduler.key, create_wallet: true, apps: ../apps/registry.yaml,
//             journal: state/poco.journal, time_ref: 10s, workers: ["0x…", "0x…"],
//             requesters: ["0x…"] }
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>

#include "iexec/poco.h"
#include "iexec/protocol.h"
#include "operators/iexec/iexec_common.h"
#include "runtime/log.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

constexpr size_t kEnvelopeSlack = 64 * 1024;  // names, args, signatures around the inputs

using iexec::LedgerEvent;
using nlohmann::json;

// The keys of a closed list option (`list`: workers, requesters), or none when its
// `open_option` says, in so many words, that anyone is admitted. `needed`: the error when
// neither is given.
std::set<crypto::Address> admitted_keys(const Options& o, const std::string& list,
                                        const std::string& open_option, const std::string& needed) {
  const bool open = o.get_bool(open_option);
  std::set<crypto::Address> keys;
  if (o.has(list)) {
    if (open)
      throw OptionError(open_option, "cannot be true with a " + list + ": list; choose one");
    for (const std::string& a : o.get_list(list)) {
      auto addr = crypto::parse_address(a);
      if (!addr) throw OptionError(list, "'" + a + "' is not an address (0x + 40 hex)");
      keys.insert(*addr);
    }
  }
  if (keys.empty() && !open) throw OptionError(list, needed);
  return keys;
}

class IexecScheduler : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "iexec.scheduler";
    s.summary =
        "iExec scheduler: hands tasks to workers, reaches PoCo consensus, publishes results.";
    s.example =
        "- id: scheduler\n  op: iexec.scheduler\n  on: cloud\n"
        "  with: { wallet: state/scheduler.key, create_wallet: true, apps: "
        "../apps/registry.yaml, journal: state/poco.journal,\n"
        "          workers: [\"0x2c7536e3605d9c16a7a3d7b1898e529396a65c23\"],\n"
        "          requesters: [\"0x8d5a6c3f1b7e2d9a4c0f6e1b3a5d7c9e2f4a6b8d\"] }";
    s.outputs = {{"results", "record",
                  "one per task that ended: task, status (COMPLETED or FAILED), app, trust, "
                  "result_digest, output, winners, contributors, cause"}};
    s.options = {
        opt_string("pool", "workerpool name; topics live under edgeflow/PIPELINE/iexec/POOL")
            .def("default"),
        opt_string("wallet",
                   "key file of the scheduler (edgeflow wallet new FILE); {node} "
                   "expands; relative to the pipeline file's folder")
            .require(),
        opt_bool("create_wallet", "create the key file at start when it is missing").def("false"),
        opt_string("apps", "app registry file (name, path, sha256, args, limits)").require(),
        opt_string("journal",
                   "the ledger's append-only journal; replayed at start, so tasks survive a "
                   "restart; {pool} and {node} expand")
            .require(),
        opt_duration("time_ref",
                     "time reference of a task: contribution deadline 7x, reveal 2x after "
                     "consensus, final deadline 10x")
            .def("60s"),
        opt_duration("lost_after", "a worker silent this long is lost; its tasks go elsewhere")
            .def("60s"),
        opt_duration("tick", "how often deadlines are checked").def("100ms"),
        opt_bool("fsync", "fdatasync the journal after each record").def("true"),
        opt_list("workers",
                 "addresses of the workers allowed to join (a closed pool, the default); "
                 "edgeflow wallet new prints a worker's address"),
        opt_bool("open_pool",
                 "let any key that says hello join and vote (anyone on the broker); warned "
                 "at start; instead of workers")
            .def("false"),
        opt_list("requesters",
                 "addresses whose signed task requests are accepted (the default: none, "
                 "every request refused); edgeflow wallet new prints a requester's address"),
        opt_bool("open_requests",
                 "accept every request, signed or not (anyone on the broker may make the "
                 "pool work); warned at start; instead of requesters")
            .def("false"),
        opt_int("stake",
                "locked from a worker's balance by each contribution: returned when proved, "
                "seized when not; a worker with less is given no task (0: no stakes)")
            .def("0")
            .at_least(0),
        opt_map("accounts",
                "opening balances, {address: amount}, credited once to an address the ledger "
                "has never credited (journaled); app prices are in the registry (price:)"),
        opt_int("max_input_bytes", "largest request (all input files) accepted")
            .def("1048576")
            .at_least(0),
        opt_string("broker", "broker URI; default: links.mqtt.broker"),
        opt_enum("client", {"mosquitto", "paho"}, "MQTT client; default: links.mqtt.client"),
    };
    return s;
  }

  explicit IexecScheduler(const Options& o)
      : pool_(o.get_string("pool")),
        wallet_path_(o.resolve_path("wallet")),
        create_wallet_(o.get_bool("create_wallet")),
        apps_path_(o.resolve_path("apps")),
        journal_path_(o.resolve_path("journal")),
        time_ref_us_(o.get_duration_us("time_ref")),
        lost_after_us_(o.get_duration_us("lost_after")),
        tick_us_(o.get_duration_us("tick")),
        fsync_(o.get_bool("fsync")),
        max_input_bytes_(o.get_int("max_input_bytes")),
        broker_(o.has("broker") ? o.get_string("broker") : ""),
        client_kind_(o.has("client") ? o.get_string("client") : "") {
    if (time_ref_us_ <= 0) throw OptionError("time_ref", "must be positive");
    open_pool_ = o.get_bool("open_pool");
    allowed_ = admitted_keys(o, "workers", "open_pool",
                             "is needed: the pool is closed by default. List the addresses of "
                             "the workers allowed to join (edgeflow wallet new prints one), or "
                             "set open_pool: true to let any key on the broker join and vote");
    open_requests_ = o.get_bool("open_requests");
    requesters_ = admitted_keys(o, "requesters", "open_requests",
                                "is needed: requests are refused unless signed by a listed key. "
                                "List the requesters' addresses (edgeflow wallet new prints one; "
                                "they sign with task submit --wallet or iexec.request's wallet), "
                                "or set open_requests: true to let anyone on the broker submit "
                                "tasks");
    if (tick_us_ <= 0) throw OptionError("tick", "must be positive");
    stake_ = o.get_int("stake");
    if (o.has("accounts")) {
      for (const auto& [key, value] : o.get_map("accounts")) {
        auto addr = crypto::parse_address(key);
        if (!addr) throw OptionError("accounts", "'" + key + "' is not an address (0x + 40 hex)");
        char* end = nullptr;
        errno = 0;
        const long long amount = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || errno == ERANGE || amount <= 0)
          throw OptionError("accounts", "the balance of " + key +
                                            " must be a whole number > 0, got '" + value + "'");
        accounts_.emplace_back(*addr, amount);
      }
    }
  }

  ~IexecScheduler() override { client_.reset(); }

  void open(Context& ctx) override {
    wallet_.emplace(
        iexecop::load_wallet(iexecop::expand(wallet_path_, ctx, pool_), create_wallet_, ctx));
    registry_ = iexecop::load_registry(apps_path_);
    topics_.emplace(ctx.pipeline(), pool_);
    iexec::LedgerOptions lo;
    lo.journal_path = iexecop::expand(journal_path_, ctx, pool_);
    lo.fsync = fsync_;
    iexecop::ensure_parent_dir(lo.journal_path);
    lo.lost_after_us = lost_after_us_;
    lo.stake = stake_;
    try {
      ledger_ = std::make_unique<iexec::Ledger>(wallet_->address(), lo);
      for (const auto& [address, amount] : accounts_)
        if (!ledger_->account(address)) ledger_->deposit(address, amount, ctx.now_us());
    } catch (const iexec::LedgerError& e) {
      throw OperatorError(ctx.stage() + ": " + e.what());
    }
    if (!ledger_->recovered_warning().empty())
      logger().warn("{}: {}", ctx.stage(), ledger_->recovered_warning());
    inbox_.set_waker(ctx.make_waker());
    client_ = iexecop::connect_client(ctx, broker_, client_kind_, "scheduler",
                                      [this](mqtt::Received&& r) { inbox_.push(std::move(r)); });
    client_->subscribe(topics_->scheduler(), 1);
    client_->subscribe(topics_->requests(), 1);
    const json announce = {{"scheduler", wallet_->address().hex()}, {"pool", pool_}};
    const std::string a = iexec::dump_json(announce);
    client_->publish(topics_->announce(), a.data(), a.size(), 1, true, 5000);
    size_t open_tasks = 0;
    for (const auto& [id, t] : ledger_->tasks()) open_tasks += !iexec::is_final(t.status);
    if (open_pool_) {
      logger().warn(
          "{}: pool '{}' is open: any key that reaches the broker may join and vote "
          "on results; list workers: [...] to close it",
          ctx.stage(), pool_);
    }
    if (open_requests_) {
      logger().warn(
          "{}: pool '{}' takes requests from anyone who reaches the broker, signed or not; "
          "list requesters: [...] to accept only theirs",
          ctx.stage(), pool_);
    }
    logger().info("{}: scheduler {} of pool '{}', {} worker(s) and {} open task(s) in {}",
                  ctx.stage(), wallet_->address().hex(), pool_, ledger_->workers().size(),
                  open_tasks, lo.journal_path);
    // Downtime is not silence: workers count as seen now, so none is declared lost before
    // its next heartbeat can arrive.
    const int64_t now = ctx.now_us();
    std::vector<crypto::Address> expelled;
    for (const auto& [address, w] : ledger_->workers()) {
      if (w.lost) continue;
      if (open_pool_ || allowed_.count(address)) {
        ledger_->heartbeat(address, now);
      } else {
        expelled.push_back(address);
      }
    }
    for (const crypto::Address& a : expelled) {
      ledger_->expel(a, now);
      logger().info(
          "{}: worker {} of the journal is not in workers: any more; its replicates "
          "go to others",
          ctx.stage(), a.hex());
    }
    for (const LedgerEvent& e : ledger_->resume_events()) handle_event(e, ctx);
  }

  SourceStep generate(Context& ctx) override {
    for (mqtt::Received& r : inbox_.take()) on_message(r, ctx);
    for (const crypto::Hash32& id : std::set<crypto::Hash32>(unpublished_))
      if (const iexec::Task* t = ledger_->task(id)) finish(*t, ctx);
    const int64_t now = ctx.now_us();
    ledger_->assign(now);
    ledger_->tick(now);
    for (const LedgerEvent& e : ledger_->take_events()) handle_event(e, ctx);
    return SourceStep::wait_until(now + tick_us_);
  }

  void close(Context&) override {
    if (client_) {
      client_->flush(2000);
      client_->disconnect();
    }
  }

 private:
  void refuse(Context& ctx, const std::string& what) {
    ctx.error(nullptr, what);
    publish_event({{"kind", "refused"}, {"text", what}});
  }

  // Events are for watching, at QoS 0: a broker outage must not slow the ledger down.
  void publish_event(const json& j) {
    const std::string s = iexec::dump_json(j);
    client_->publish(topics_->events(), s.data(), s.size(), 0, false, 0);
  }

  bool publish_json(const std::string& topic, const json& j, bool retain) {
    const std::string s = iexec::dump_json(j);
    return client_->publish(topic, s.data(), s.size(), 1, retain, 5000);
  }

  void send(const crypto::Address& worker, json body) {
    const std::string m = iexec::seal_message(*wallet_, std::move(body));
    client_->publish(topics_->worker(worker), m.data(), m.size(), 1, false, 5000);
  }

  void on_message(const mqtt::Received& r, Context& ctx) {
    std::string why;
    auto msg = iexec::open_message(r.payload, &why);
    if (!msg) return refuse(ctx, "refused a message on " + r.topic + ": " + why);
    const std::string type = msg->body["type"].get<std::string>();
    try {
      if (r.payload.size() > static_cast<size_t>(max_input_bytes_) + kEnvelopeSlack)
        throw std::runtime_error(std::to_string(r.payload.size()) +
                                 " bytes, more than max_input_bytes allows");
      if (r.topic == topics_->requests()) {
        if (type != "request") throw std::runtime_error("expected a request, got '" + type + "'");
        return on_request(*msg, ctx);
      }
      if (!msg->signed_)
        throw std::runtime_error("an unsigned '" + type + "': workers must sign what they send");
      on_worker_message(type, *msg, ctx);
    } catch (const iexec::LedgerError&) {
      throw;  // the journal cannot be written: stop rather than run without a record
    } catch (const std::exception& e) {
      refuse(ctx, "refused '" + type + "' from " + msg->from.hex() + ": " + e.what());
    }
  }

  void on_request(const iexec::Opened& msg, Context& ctx) {
    const json& b = msg.body;
    iexec::TaskRequest req;
    req.request_id = iexec::get_hash(b, "id");
    req.app = iexec::get_string(b, "app");
    if (b.contains("args"))
      for (const json& a : b["args"]) req.args.push_back(a.get<std::string>());
    int64_t bytes = 0;
    if (b.contains("inputs")) {
      for (const json& in : b["inputs"]) {
        iexec::TaskInput ti{iexec::get_string(in, "name"), iexec::get_bytes(in, "bytes")};
        bytes += static_cast<int64_t>(ti.bytes.size());
        req.inputs.push_back(std::move(ti));
      }
    }
    req.trust = static_cast<uint32_t>(
        std::clamp<int64_t>(b.contains("trust") ? iexec::get_int(b, "trust") : 1, 1, 1000000));
    req.time_ref_us = b.contains("time_ref_us") ? iexec::get_int(b, "time_ref_us") : time_ref_us_;
    // A signed request names its signer; an unsigned one may say who it is, for people.
    req.requester = msg.signed_               ? msg.from.hex()
                    : b.contains("requester") ? iexec::get_string(b, "requester")
                                              : std::string("anonymous");
    const crypto::Hash32 taskid =
        iexec::task_id(iexec::deal_id(wallet_->address(), req.request_id));
    // A request id seen before is that task: never overwrite its published result.
    if (ledger_->task(taskid)) return;
    auto fail = [&](const std::string& cause, bool retain = true) {
      refuse(ctx, "refused request " + req.request_id.hex() + ": " + cause);
      publish_json(topics_->result(taskid),
                   {{"task", taskid.hex()},
                    {"status", "FAILED"},
                    {"app", req.app},
                    {"cause", cause},
                    {"scheduler", wallet_->address().hex()}},
                   retain);
    };
    // Before anything else is looked at: a stranger learns nothing of the registry, and
    // leaves nothing retained on the broker (a requester waiting is subscribed already).
    if (msg.signed_) {
      if (std::string why = iexec::request_target_error(b, topics_->requests()); !why.empty())
        return fail(why, false);
    }
    if (!open_requests_) {
      if (!msg.signed_)
        return fail(
            "an unsigned request: this scheduler accepts requests signed by its requesters "
            "only (task submit --wallet FILE, iexec.request's wallet)",
            false);
      if (!requesters_.count(msg.from))
        return fail("requester " + msg.from.hex() + " is not in this scheduler's requesters: list",
                    false);
    }
    const iexec::AppSpec* app = registry_.find(req.app);
    if (!app) {
      std::string names;
      for (const std::string& n : registry_.names()) names += (names.empty() ? "" : ", ") + n;
      return fail("app '" + req.app + "' is not in the scheduler's registry " + apps_path_ +
                  " (apps: " + names + ")");
    }
    if (bytes > max_input_bytes_)
      return fail("inputs hold " + std::to_string(bytes) + " bytes, more than max_input_bytes " +
                  std::to_string(max_input_bytes_));
    constexpr int64_t kMaxTimeRefUs = 30ll * 24 * 3600 * 1000000;  // deadlines stay in range
    if (req.time_ref_us < 1000 || req.time_ref_us > kMaxTimeRefUs)
      return fail("time_ref_us must be between 1 ms and 30 days");
    for (const iexec::TaskInput& in : req.inputs)
      if (!iexec::valid_input_name(in.name))
        return fail("input file name '" + in.name + "' is not a plain file name");
    req.app_sha256 = app->sha256;
    req.price = app->price;
    if (msg.signed_) req.payer = msg.from;
    if (std::string why = ledger_->can_pay(req); !why.empty()) return fail(why);
    bool created = false;
    ledger_->submit(req, ctx.now_us(), &created);
  }

  void on_worker_message(const std::string& type, const iexec::Opened& msg, Context& ctx) {
    const json& b = msg.body;
    const crypto::Address& w = msg.from;
    const int64_t now = ctx.now_us();
    std::string refused;
    // Every message, not only hello: a key the journal remembers from an open pool (or one
    // taken off the list) must not be heard either.
    if (!open_pool_ && !allowed_.count(w))
      throw std::runtime_error("not in this scheduler's workers: list");
    if (type == "hello") {
      std::vector<std::pair<std::string, crypto::Hash32>> apps;
      for (const json& a : b.at("apps"))
        apps.emplace_back(iexec::get_string(a, "name"), iexec::get_hash(a, "sha256"));
      const int slots = static_cast<int>(std::clamp<int64_t>(iexec::get_int(b, "slots"), 1, 256));
      const iexec::WorkerInfo* known = ledger_->worker(w);
      if (!known || known->slots != slots || known->apps != apps || known->lost) {
        if (!known)
          logger().info("{}: worker {} joined with {} slot(s)", ctx.stage(), w.hex(), slots);
        ledger_->register_worker(w, slots, std::move(apps), now);
      }
      ledger_->heartbeat(w, now);
      const int64_t boot = b.value("boot", int64_t{0});
      auto [it, first] = boots_.emplace(w, boot);
      if (!first && it->second != boot) {
        it->second = boot;
        resend_computing(w, ctx);
      }
      return;
    }
    if (!ledger_->worker(w)) throw std::runtime_error("not a registered worker (no hello yet)");
    ledger_->heartbeat(w, now);
    const crypto::Hash32 task = iexec::get_hash(b, "task");
    if (type == "status") {
      auto st = iexec::parse_replicate_status(iexec::get_string(b, "status"));
      if (!st) throw std::runtime_error("unknown status '" + iexec::get_string(b, "status") + "'");
      refused = ledger_->replicate_status(w, task, *st, b.value("cause", std::string()), now);
    } else if (type == "contribute") {
      // The scheduler's own authorization, as the contract checks it: this worker, this task.
      auto signer = crypto::recover_eip191(iexec::authorization_hash(w, task),
                                           iexec::get_signature(b, "auth"));
      if (!signer || *signer != wallet_->address())
        throw std::runtime_error("the contribution's authorization for task " + task.hex() +
                                 " was not signed by this scheduler for this worker");
      refused =
          ledger_->contribute(w, task, iexec::get_hash(b, "hash"), iexec::get_hash(b, "seal"), now);
    } else if (type == "reveal") {
      refused = ledger_->reveal(w, task, iexec::get_hash(b, "digest"), now);
    } else if (type == "upload") {
      std::vector<std::pair<std::string, std::string>> files;
      for (const json& f : b.at("files"))
        files.emplace_back(iexec::get_string(f, "name"), iexec::get_bytes(f, "bytes"));
      std::optional<std::string> callback;
      if (b.contains("callback")) callback = iexec::get_bytes(b, "callback");
      refused = ledger_->upload(w, task, std::move(files), b.value("folder", false),
                                std::move(callback), now);
    } else {
      throw std::runtime_error("unknown message type");
    }
    if (!refused.empty()) throw std::runtime_error(refused);
  }

  void handle_event(const LedgerEvent& e, Context& ctx) {
    const iexec::Task* t = e.taskid.is_zero() ? nullptr : ledger_->task(e.taskid);
    json ev = {{"kind", iexec::to_string(e.kind)}, {"time", ctx.now_us()}};
    if (t) ev["task"] = t->taskid.hex();
    if (!e.worker.is_zero()) ev["worker"] = e.worker.hex();
    if (!e.text.empty()) ev["text"] = e.text;
    if (t) ev["status"] = iexec::to_string(t->status);
    publish_event(ev);
    switch (e.kind) {
      case LedgerEvent::kAssigned:
        if (t) send_task(*t, e.worker);
        break;
      case LedgerEvent::kConsensus:
        if (!t) break;
        logger().info("{}: task {} reached consensus ({} winner(s))", ctx.stage(), t->taskid.hex(),
                      t->winner_count);
        for (const iexec::Replicate& r : t->replicates) {
          // After a restart, a winner that revealed but whose upload was lost is asked again
          // (it repeats its reveal and upload; the ledger keeps the first of each).
          const bool again = t->status == iexec::TaskStatus::kAtLeastOneRevealed &&
                             r.contribution == iexec::ContributionStatus::kProved;
          if ((r.contribution == iexec::ContributionStatus::kContributed || again) &&
              r.result_hash == t->consensus)
            send(r.worker, {{"type", "reveal_request"}, {"task", iexec::bin(t->taskid)}});
        }
        break;
      case LedgerEvent::kFinalized:
        if (t) finish(*t, ctx);
        break;
      case LedgerEvent::kFailed:
        if (t) finish(*t, ctx);
        break;
      case LedgerEvent::kScore:
        logger().info("{}: worker {} score {}", ctx.stage(), e.worker.hex(), e.text);
        break;
      case LedgerEvent::kBalance:
        logger().info("{}: account {}{}: {}", ctx.stage(), e.worker.hex(),
                      t ? ", task " + t->taskid.hex() : std::string(), e.text);
        break;
      case LedgerEvent::kWorkerLost:
        logger().warn("{}: worker {} is lost (silent for {} s)", ctx.stage(), e.worker.hex(),
                      lost_after_us_ / 1000000);
        break;
      default:
        break;
    }
  }

  // A worker that restarted lost the tasks it was computing: hand them to it again.
  void resend_computing(const crypto::Address& w, Context& ctx) {
    for (const auto& [id, t] : ledger_->tasks()) {
      if (iexec::is_final(t.status)) continue;
      const iexec::Replicate* r = t.replicate(w);
      if (r && r->contribution == iexec::ContributionStatus::kUnset &&
          r->status < iexec::ReplicateStatus::kContributed) {
        logger().info("{}: worker {} restarted; sending task {} again", ctx.stage(), w.hex(),
                      t.taskid.hex());
        send_task(t, w);
      }
    }
  }

  void send_task(const iexec::Task& t, const crypto::Address& worker) {
    json inputs = json::array();
    for (const iexec::TaskInput& in : t.request.inputs)
      inputs.push_back({{"name", in.name}, {"bytes", iexec::bin(in.bytes)}});
    const crypto::Signature auth =
        wallet_->sign_eip191(iexec::authorization_hash(worker, t.taskid));
    send(worker, {{"type", "task"},
                  {"task", iexec::bin(t.taskid)},
                  {"deal", iexec::bin(t.dealid)},
                  {"index", t.index},
                  {"app", t.request.app},
                  {"sha256", iexec::bin(t.request.app_sha256)},
                  {"args", t.request.args},
                  {"inputs", inputs},
                  {"trust", t.request.trust},
                  {"deadline_us", t.contribution_deadline_us},
                  {"auth", iexec::bin(auth)}});
  }

  void finish(const iexec::Task& t, Context& ctx) {
    const bool ok = t.status == iexec::TaskStatus::kFinalized;
    json result = {{"task", t.taskid.hex()},
                   {"deal", t.dealid.hex()},
                   {"status", ok ? "COMPLETED" : "FAILED"},
                   {"app", t.request.app},
                   {"args", t.request.args},
                   {"trust", t.request.trust},
                   {"requester", t.request.requester},
                   {"scheduler", wallet_->address().hex()}};
    json winners = json::array(), contributors = json::array();
    for (const iexec::Replicate& r : t.replicates) {
      if (r.contribution == iexec::ContributionStatus::kUnset) continue;
      contributors.push_back({{"worker", r.worker.hex()},
                              {"result_hash", r.result_hash.hex()},
                              {"contribution", iexec::to_string(r.contribution)},
                              {"weight", r.weight}});
      if (r.contribution == iexec::ContributionStatus::kProved) winners.push_back(r.worker.hex());
    }
    result["winners"] = winners;
    result["contributors"] = contributors;
    if (ok) {
      result["result_digest"] = t.result_digest.hex();
      // Anyone holding the scheduler's address can check the result it vouches for.
      result["result_signature"] =
          wallet_->sign_eip191(iexec::result_hash(t.taskid, t.result_digest)).hex();
      if (t.callback_data) {
        result["callback_data"] = crypto::to_hex(t.callback_data->data(), t.callback_data->size());
      } else {
        json out = json::object();
        for (const auto& [name, bytes] : t.result_files) out[name] = iexec::printable(bytes);
        result["output"] = out;
        result["output_is_folder"] = t.result_is_folder;
      }
    } else {
      result["cause"] = t.cause;
    }
    if (!publish_json(topics_->result(t.taskid), result, true)) {
      // The broker did not take it: try again on the next tick, mark completed only then.
      unpublished_.insert(t.taskid);
      return;
    }
    unpublished_.erase(t.taskid);
    // Workers still computing this task can stop, and those whose result did not win (or
    // came too late) can let it go.
    for (const iexec::Replicate& r : t.replicates) {
      if (r.contribution != iexec::ContributionStatus::kProved &&
          r.status < iexec::ReplicateStatus::kRevealing)
        send(r.worker, {{"type", "abort"},
                        {"task", iexec::bin(t.taskid)},
                        {"reason", std::string("task ") + (ok ? "completed" : "failed")}});
    }
    if (ok) {
      ledger_->mark_completed(t.taskid, ctx.now_us());
      logger().info("{}: task {} COMPLETED, result {}", ctx.stage(), t.taskid.hex(),
                    t.result_digest.hex());
    } else {
      logger().warn("{}: task {} FAILED: {}", ctx.stage(), t.taskid.hex(), t.cause);
    }
    auto m = ctx.make_message(ctx.now_us());
    set_field(m->fields, "task", t.taskid.hex());
    set_field(m->fields, "status", ok ? "COMPLETED" : "FAILED");
    set_field(m->fields, "app", t.request.app);
    set_field(m->fields, "trust", static_cast<int64_t>(t.request.trust));
    if (ok) {
      set_field(m->fields, "result_digest", t.result_digest.hex());
      if (t.result_files.size() == 1) {
        const json p = iexec::printable(t.result_files.front().second);
        if (p.is_string()) set_field(m->fields, "output", p.get<std::string>());
      }
    } else {
      set_field(m->fields, "cause", t.cause);
    }
    Array w;
    for (const json& x : winners) w.emplace_back(x.get<std::string>());
    set_field(m->fields, "winners", Value(std::move(w)));
    set_field(m->fields, "contributors", static_cast<int64_t>(contributors.size()));
    ctx.emit(0, m);
  }

  std::string pool_, wallet_path_;
  bool create_wallet_;
  std::string apps_path_, journal_path_;
  int64_t time_ref_us_, lost_after_us_, tick_us_;
  bool fsync_;
  int64_t max_input_bytes_;
  std::string broker_, client_kind_;

  std::optional<crypto::Wallet> wallet_;
  iexec::AppRegistry registry_;
  std::optional<iexec::Topics> topics_;
  std::unique_ptr<iexec::Ledger> ledger_;
  std::set<crypto::Address> allowed_;  // the workers: list
  bool open_pool_ = false;             // any worker may join (allowed_ empty)
  int64_t stake_ = 0;
  std::vector<std::pair<crypto::Address, int64_t>> accounts_;  // opening balances
  std::set<crypto::Address> requesters_;                       // the requesters: list
  bool open_requests_ = false;                // any request is accepted (requesters_ empty)
  std::set<crypto::Hash32> unpublished_;      // ended tasks whose result the broker refused
  std::map<crypto::Address, int64_t> boots_;  // each worker's process start, from its hello
  iexecop::Inbox inbox_;
  std::unique_ptr<mqtt::Client> client_;
};

EF_REGISTER_OPERATOR(IexecScheduler)

}  // namespace
}  // namespace edgeflow
