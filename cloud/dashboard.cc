#include "cloud/dashboard.h"

#include "runtime/clock.h"
#include "runtime/log.h"

namespace edgeflow {
namespace {

using json = nlohmann::json;
using Route = NodeServiceHooks::HttpRoute;

metrics::Response json_response(const json& j) {
  // Names and origins come from topics, which need not be UTF-8: replaced, never a throw.
  return {200, "application/json", j.dump(-1, ' ', false, json::error_handler_t::replace)};
}
metrics::Response not_found(const std::string& what) { return {404, "", what}; }

// "/api/nodes/pi-1" below "/api/nodes" -> "pi-1"; "" for the folder itself.
std::string below(const std::string& path, const std::string& folder) {
  return path.size() > folder.size() + 1 ? path.substr(folder.size() + 1) : "";
}

// A list's route: the whole list, or (`name` given) the item whose `key` is `name`.
metrics::Response list_or_one(const json& list, const char* key, const std::string& name,
                              const std::string& missing) {
  if (name.empty()) return json_response(list);
  for (const json& item : list)
    if (auto it = item.find(key); it != item.end() && *it == name) return json_response(item);
  return not_found(std::string("no ") + key + " '" + name + "' " + missing);
}

Route reading(std::string path, Route::Kind kind,
              std::function<metrics::Response(const std::string&)> handle) {
  Route r;
  r.path = std::move(path);
  r.kind = kind;
  r.handle = std::move(handle);
  return r;
}

}  // namespace

std::vector<Route> dashboard_routes(std::shared_ptr<NodeRegistry> registry,
                                    std::shared_ptr<FleetView> view) {
  std::vector<Route> routes;
  routes.push_back(reading("/", Route::kTree, [](const std::string& path) {
    const std::string file = path == "/" ? "/index.html" : path;
    for (const DashboardAsset& a : dashboard_assets())
      if (file == a.path)
        return metrics::Response{200, a.content_type,
                                 std::string(reinterpret_cast<const char*>(a.data), a.size)};
    return not_found("no " + path + " here: the dashboard is at /");
  }));
  routes.push_back(reading("/api/state", Route::kExact, [registry, view](const std::string&) {
    return json_response(view->state_json(*registry, wall_ms()));
  }));
  routes.push_back(reading("/api/events", Route::kEvents, [registry, view](const std::string&) {
    // Without the time: a state is sent again only when something in it changed.
    json state = view->state_json(*registry, wall_ms());
    state.erase("now_ms");
    return json_response(state);
  }));
  routes.push_back(reading("/api/nodes", Route::kTree, [registry, view](const std::string& path) {
    return list_or_one(view->nodes_json(*registry), "node", below(path, "/api/nodes"),
                       "has reported to this cloud");
  }));
  routes.push_back(
      reading("/api/pipelines", Route::kTree, [registry, view](const std::string& path) {
        return list_or_one(view->pipelines_json(*registry), "pipeline",
                           below(path, "/api/pipelines"), "is deployed");
      }));
  routes.push_back(reading("/api/motion", Route::kTree, [view](const std::string& path) {
    const std::string rest = below(path, "/api/motion");
    if (rest.empty()) return json_response(view->motion_json());
    const std::string ext = ".jpg";
    if (rest.size() > ext.size() && rest.compare(rest.size() - ext.size(), ext.size(), ext) == 0) {
      if (const std::string* jpeg = view->snapshot(rest.substr(0, rest.size() - ext.size())))
        return metrics::Response{200, "image/jpeg", *jpeg};
    }
    return not_found("no snapshot " + rest + " (only the latest events' are kept)");
  }));
  routes.push_back(reading("/api/tasks", Route::kExact, [view](const std::string&) {
    return json_response(view->tasks_json());
  }));
  // What an operator may do, once logged in (HTTP digest against the operators file).
  Route actions;
  actions.path = "/api/nodes/";
  actions.kind = Route::kAction;
  actions.act = [registry, view](const std::string& path, const std::string& user) {
    if (path == "/api/login") return json_response({{"operator", user}});
    const std::string forget = "/forget";
    const std::string node = below(path, "/api/nodes");
    if (!node.empty() && node.size() > forget.size() &&
        node.compare(node.size() - forget.size(), forget.size(), forget) == 0) {
      const std::string name = node.substr(0, node.size() - forget.size());
      if (!registry->nodes().count(name)) return not_found("no node '" + name + "' is known");
      const std::string why = registry->forget(name);
      if (!why.empty()) return metrics::Response{409, "", why};
      view->forget(name);
      logger().info("operator '{}' forgot node '{}' (dashboard)", user, name);
      return json_response({{"forgotten", name}, {"operator", user}});
    }
    return not_found("no action " + path + " (POST /api/login, /api/nodes/NODE/forget)");
  };
  Route login = actions;
  login.path = "/api/login";
  routes.push_back(std::move(login));
  routes.push_back(std::move(actions));
  return routes;
}

}  // namespace edgeflow
