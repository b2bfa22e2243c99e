// iexec.request — turns an upstream stream (weather aggregates, say) into iExec task requests
// for a pool's scheduler: every `batch` records of one origin become one task whose input file
// is those records as CSV. Runs on any node; the requests travel over the pipeline's broker.
//
// Ports: in (record) -> requests (one record per request sent: request, origin, rows, app).
// At end of input the records of an unfinished batch are sent too, so none is lost.
//
//   - id: forecast
//     op: iexec.request
//     from: minute
//     with: { app: forecast, args: ["3"], trust: 3, batch: 10 }
#include <map>

#include "iexec/protocol.h"
#include "operators/iexec/iexec_common.h"
#include "runtime/log.h"
#include "runtime/registry.h"

namespace edgeflow {
namespace {

using nlohmann::json;

class IexecRequest : public Operator {
 public:
  static OperatorSpec spec() {
    OperatorSpec s;
    s.name = "iexec.request";
    s.summary = "Sends batches of records as iExec task requests to a pool's scheduler.";
    s.example =
        "- id: forecast\n  op: iexec.request\n  from: minute\n"
        "  with: { app: forecast, args: [\"3\"], trust: 3, batch: 10 }";
    s.inputs = {{"in", "record", "records; each batch of one origin becomes a task's input"}};
    s.outputs = {{"requests", "record", "one per request sent: request, origin, rows, app"}};
    s.options = {
        opt_string("pool", "workerpool name; must match the scheduler's").def("default"),
        opt_string("app", "app name in the scheduler's registry").require(),
        opt_list("args", "arguments for the app; default: the registry's"),
        opt_int("trust", "PoCo trust: how sure the result must be (1: one worker suffices)")
            .def("1")
            .at_least(1),
        opt_int("batch", "records per task").def("60").at_least(1),
        opt_string("input_name", "name of the input file the app reads").def("input.csv"),
        opt_duration("time_ref", "the task's time reference; default: the scheduler's"),
        opt_string("wallet", "key file to sign requests with; default: unsigned"),
        opt_string("broker", "broker URI; default: links.mqtt.broker"),
        opt_enum("client", {"mosquitto", "paho"}, "MQTT client; default: links.mqtt.client"),
    };
    return s;
  }

  explicit IexecRequest(const Options& o)
      : pool_(o.get_string("pool")),
        app_(o.get_string("app")),
        args_(o.has("args") ? o.get_list("args") : std::vector<std::string>{}),
        trust_(o.get_int("trust")),
        batch_(static_cast<size_t>(o.get_int("batch"))),
        input_name_(o.get_string("input_name")),
        time_ref_us_(o.has("time_ref") ? o.get_duration_us("time_ref") : 0),
        wallet_path_(o.has("wallet") ? o.resolve_path("wallet") : ""),
        broker_(o.has("broker") ? o.get_string("broker") : ""),
        client_kind_(o.has("client") ? o.get_string("client") : "") {
    if (!iexec::valid_input_name(input_name_))
      throw OptionError("input_name", "must be a plain file name like input.csv");
  }

  void open(Context& ctx) override {
    if (!wallet_path_.empty())
      wallet_.emplace(iexecop::load_wallet(iexecop::expand(wallet_path_, ctx, pool_), false, ctx));
    topics_.emplace(ctx.pipeline(), pool_);
    client_ =
        iexecop::connect_client(ctx, broker_, client_kind_, "requester", [](mqtt::Received&&) {});
  }

  void process(int, MessagePtr m, Context& ctx) override {
    auto& pending = pending_[m->origin];
    pending.push_back(std::move(m));
    if (pending.size() >= batch_) send(pending, ctx);
  }

  void close(Context& ctx) override {
    for (auto& [origin, pending] : pending_)
      if (!pending.empty()) send(pending, ctx);
    if (client_) {
      client_->flush(5000);
      client_->disconnect();
    }
  }

 private:
  void send(std::vector<MessagePtr>& records, Context& ctx) {
    const std::string csv = iexecop::records_csv(records);
    // The same records always make the same request id, so a request repeated after a
    // restart is one task, not two.
    const crypto::Hash32 id = crypto::Packed()
                                  .add_raw(ctx.pipeline().data(), ctx.pipeline().size())
                                  .add_raw(ctx.stage().data(), ctx.stage().size())
                                  .add(crypto::keccak256(csv))
                                  .keccak();
    json body = {{"type", "request"},
                 {"id", iexec::bin(id)},
                 {"app", app_},
                 {"args", args_},
                 {"trust", trust_},
                 {"requester", ctx.stage() + "@" + ctx.node()},
                 {"inputs", json::array({{{"name", input_name_}, {"bytes", iexec::bin(csv)}}})}};
    if (time_ref_us_ > 0) body["time_ref_us"] = time_ref_us_;
    body["to"] = topics_->requests();  // binds the signature to this pool (no replay elsewhere)
    const std::string msg =
        wallet_ ? iexec::seal_message(*wallet_, std::move(body)) : iexec::seal_unsigned(body);
    const std::string origin = records.front()->origin;
    const int64_t t = records.back()->event_time_us;
    const size_t rows = records.size();
    records.clear();
    // Wait for the broker (back-pressure) in slices, so a stop is never stuck here; after a
    // stop, give it 5 s more.
    bool sent = false;
    for (int64_t stop_wait = 0; !sent && stop_wait < 5;) {
      sent = client_->publish(topics_->requests(), msg.data(), msg.size(), 1, false, 1000);
      if (ctx.stopping()) ++stop_wait;
    }
    if (!sent) {
      ctx.error(nullptr, "could not send a request of " + std::to_string(rows) + " rows from " +
                             origin + ": the broker did not accept it before the stop");
      return;
    }
    auto out = ctx.make_message(t);
    out->origin = origin;
    set_field(out->fields, "request", id.hex());
    set_field(out->fields, "app", app_);
    set_field(out->fields, "rows", static_cast<int64_t>(rows));
    set_field(out->fields, "trust", trust_);
    ctx.emit(0, out);
  }

  std::string pool_, app_;
  std::vector<std::string> args_;
  int64_t trust_;
  size_t batch_;
  std::string input_name_;
  int64_t time_ref_us_;
  std::string wallet_path_, broker_, client_kind_;
  std::optional<crypto::Wallet> wallet_;
  std::optional<iexec::Topics> topics_;
  std::map<std::string, std::vector<MessagePtr>> pending_;
  std::unique_ptr<mqtt::Client> client_;
};

EF_REGISTER_OPERATOR(IexecRequest)

}  // namespace
}  // namespace edgeflow
