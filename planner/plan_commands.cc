#include "planner/plan_commands.h"

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "planner/explore.h"
#include "planner/measure.h"
#include "planner/plan_output.h"
#include "planner/predict.h"
#include "planner/profile.h"
#include "runtime/duration.h"
#include "runtime/log.h"
#include "runtime/placement.h"

namespace edgeflow {

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitInvalid = 2;

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

// Loads FILE with its --set overrides; prints the problems and returns nullopt when it fails.
std::optional<PipelineSpec> load(const std::string& cmd, const std::string& file,
                                 const std::vector<std::string>& sets) {
  std::vector<OptionOverride> overrides;
  for (const std::string& s : sets) {
    auto o = parse_override(s);
    if (!o) {
      std::cerr << "edgeflow " << cmd
                << ": --set takes STAGE.OPTION=VALUE, like minute.on=cloud (got '" << s << "')\n";
      return std::nullopt;
    }
    overrides.push_back(*o);
  }
  LoadResult r = load_pipeline_file(file, overrides);
  if (!r.pipeline) {
    std::cerr << r.diags.str();
    return std::nullopt;
  }
  return std::move(*r.pipeline);
}

}  // namespace

int cmd_profile(const ProfileArgs& args) {
  auto pipeline = load("profile", args.file, args.sets);
  if (!pipeline) return kExitInvalid;
  auto us = parse_duration_us(args.seconds);
  if (!us || *us <= 0) {
    std::cerr << "edgeflow profile: --for must be a positive duration like 10s (got '"
              << args.seconds << "')\n";
    return kExitInvalid;
  }
  ProfileOptions o;
  o.seconds = static_cast<double>(*us) / 1e6;
  o.threads = args.threads;
  o.broker = args.broker;
  logger().info("profiling '{}' for {} (its own sources, as placed in {})", pipeline->name,
                args.seconds, args.file);
  PipelineProfile profile;
  try {
    profile = profile_pipeline(*pipeline, o);
  } catch (const std::exception& e) {
    logger().error("{}", e.what());
    return kExitFailure;
  }
  const std::string out = args.out.empty() ? default_profile_path(args.file) : args.out;
  std::ofstream f(out);
  f << profile_to_json(profile);
  f.close();
  if (!f) {
    std::cerr << "edgeflow profile: cannot write " << out << "\n";
    return kExitFailure;
  }
  std::printf("%-16s %-18s %10s %12s %10s %12s\n", "stage", "op", "messages", "CPU ns/msg",
              "out/in", "bytes/msg");
  for (const StageProfile& s : profile.stages) {
    std::printf("%-16s %-18s %10llu %12.0f %10.4f %12.1f\n", s.stage.c_str(), s.op.c_str(),
                static_cast<unsigned long long>(s.source ? s.out : s.in), s.cpu_per_message() * 1e9,
                s.out_per_in("out"), s.bytes_per_message("out"));
  }
  for (const StageProfile& s : profile.stages) {
    if (s.errors > 0)
      std::printf(
          "warning: stage '%s' reported %llu errors: its figures describe a failing stage "
          "(edgeflow run %s shows them)\n",
          s.stage.c_str(), static_cast<unsigned long long>(s.errors), args.file.c_str());
    else if (s.source && s.out == 0)
      std::printf(
          "warning: source '%s' produced nothing in the profile: the stages after it have "
          "no figures (is its input there? edgeflow run %s)\n",
          s.stage.c_str(), args.file.c_str());
  }
  if (profile.links.measured)
    std::printf("link ends: %.0f ns CPU per frame sent, %.0f per frame received (%llu frames)\n",
                profile.links.send_cpu_per_frame * 1e9, profile.links.receive_cpu_per_frame * 1e9,
                static_cast<unsigned long long>(profile.links.frames));
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

int cmd_plan(const PlanArgs& args) {
  auto pipeline = load("plan", args.file, args.sets);
  if (!pipeline) return kExitInvalid;
  const std::string profile_path =
      args.profile.empty() ? default_profile_path(args.file) : args.profile;
  std::string text, error;
  if (!read_file(profile_path, text)) {
    std::cerr << "edgeflow plan: no profile at " << profile_path
              << "; make one first: edgeflow profile " << args.file << "\n";
    return kExitInvalid;
  }
  auto profile = profile_from_json(text, profile_path, &error);
  if (!profile) {
    std::cerr << "edgeflow plan: " << error << "\n";
    return kExitInvalid;
  }
  if (profile->pipeline != pipeline->name) {
    std::cerr << "edgeflow plan: " << profile_path << " profiles pipeline '" << profile->pipeline
              << "', not '" << pipeline->name << "'; make one: edgeflow profile " << args.file
              << "\n";
    return kExitInvalid;
  }
  PredictOptions po;
  po.month = args.month;
  for (const std::string& r : args.rates) {
    auto eq = r.find('=');
    double v = 0;
    bool ok = eq != std::string::npos && eq > 0;
    if (ok) {
      try {
        size_t used = 0;
        v = std::stod(r.substr(eq + 1), &used);
        ok = used == r.size() - eq - 1 && v >= 0;
      } catch (...) {
        ok = false;
      }
    }
    const StageProfile* sp = ok ? profile->stage(r.substr(0, eq)) : nullptr;
    if (!ok || !sp || !sp->source) {
      std::cerr << "edgeflow plan: --rate takes SOURCE_STAGE=MESSAGES_PER_SECOND, like "
                   "sensors=1 (got '"
                << r << "')\n";
      return kExitInvalid;
    }
    po.source_rates[r.substr(0, eq)] = v;
  }
  const Plan plan = place(*pipeline);

  if (args.explore) {
    auto objective = parse_objective(args.objective);
    if (!objective) {
      std::cerr << "edgeflow plan: --objective is bytes, energy or autonomy (got '"
                << args.objective << "')\n";
      return kExitInvalid;
    }
    std::vector<SkippedCandidate> skipped;
    std::vector<Candidate> found = explore(*pipeline, *profile, po, *objective, &error, &skipped);
    if (found.empty()) {
      std::cerr << "edgeflow plan --explore: " << error << "\n";
      return kExitInvalid;
    }
    if (args.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const Candidate& c : found) {
        nlohmann::json placement = nlohmann::json::object();
        for (const auto& [stage, on] : c.placement) placement[stage] = on;
        out.push_back({{"rank", c.rank},
                       {"placement", placement},
                       {"bytes_per_day", c.bytes_per_day},
                       {"wire_bytes_per_day", c.wire_bytes_per_day},
                       {"edge_wh_per_day", c.edge_wh_per_day},
                       {"min_autonomy_h", c.has_autonomy ? nlohmann::json(c.min_autonomy_h)
                                                         : nlohmann::json(nullptr)},
                       {"all_positive", c.all_positive},
                       {"frontier", c.frontier},
                       {"plan", plan_json(c.prediction)}});
      }
      std::cout << nlohmann::json{{"objective", args.objective}, {"candidates", out}}.dump(2)
                << "\n";
    } else {
      std::cout << explore_table(found, *objective, 20);
      for (const SkippedCandidate& s : skipped) {
        std::string where;
        for (const auto& [stage, on] : s.placement)
          where += (where.empty() ? "" : " ") + stage + "@" + on;
        std::cout << "skipped " << where << ": " << s.reason << "\n";
      }
    }
    if (!args.svg.empty()) {
      // The best placement, drawn.
      PipelineSpec best = apply_placement(*pipeline, found.front().placement);
      std::ofstream f(args.svg);
      f << plan_svg(best, place(best), found.front().prediction);
      f.close();
      if (!f) {
        std::cerr << "edgeflow plan: cannot write " << args.svg << "\n";
        return kExitFailure;
      }
    }
    return 0;
  }

  if (!args.compare.empty()) {
    if (!read_file(args.compare, text)) {
      std::cerr << "edgeflow plan: cannot read the report " << args.compare
                << " (write one with edgeflow run FILE --report REPORT.json)\n";
      return kExitInvalid;
    }
    auto measured = measured_from_report(text, args.compare, *pipeline, plan, po, &error);
    if (!measured) {
      std::cerr << "edgeflow plan: " << error << "\n";
      return kExitInvalid;
    }
    // Predicted at the rates the run's sources produced: the model is checked, not the clock.
    PredictOptions at_run_rates = po;
    for (const auto& [stage, rate] : measured->source_rates)
      at_run_rates.source_rates.insert_or_assign(stage, rate);
    Prediction p = predict(*pipeline, plan, *profile, at_run_rates);
    if (args.json)
      std::cout << compare_json(p, *measured).dump(2) << "\n";
    else
      std::cout << compare_table(p, *measured);
    return 0;
  }

  Prediction p = predict(*pipeline, plan, *profile, po);
  if (args.json)
    std::cout << plan_json(p).dump(2) << "\n";
  else
    std::cout << plan_table(p);
  if (!args.svg.empty()) {
    std::ofstream f(args.svg);
    f << plan_svg(*pipeline, plan, p);
    f.close();
    if (!f) {
      std::cerr << "edgeflow plan: cannot write " << args.svg << "\n";
      return kExitFailure;
    }
  }
  return 0;
}

}  // namespace edgeflow
