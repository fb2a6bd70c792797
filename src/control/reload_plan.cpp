#include "src/control/reload_plan.h"

#include "config/config_json.h"

#include <algorithm>

namespace passgate {

namespace {

using config::Config;

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

std::string optional_number(const std::optional<std::uint32_t>& value) {
    return value ? std::to_string(*value) : std::string("unset");
}

// A setting ControlPlane reads only at start: the worker count and the bounds derived from it
// (start_up_bounds), the access log it opens (open_access_log), the admin socket and server
// (bind_sockets, start_admin_server). Everything else a reload applies: listeners, routes,
// services, [dns], [kubernetes] without watch, shutdown/upgrade timeouts and
// departed_series_retention (read from the config in use when needed).
struct RestartOnlyKey {
    std::string_view key;
    std::string (*value)(const Config&);
    bool needs_access_log = false;  // format and path matter only when the log is written
};

const RestartOnlyKey restart_only[] = {
    {"runtime.workers", [](const Config& c) { return std::to_string(c.runtime.workers); }},
    {"runtime.max_connections_per_worker",
     [](const Config& c) { return optional_number(c.runtime.max_connections_per_worker); }},
    {"runtime.pause_accepting_at",
     [](const Config& c) { return optional_number(c.runtime.pause_accepting_at); }},
    {"runtime.max_hello_memory", [](const Config& c) { return std::to_string(c.runtime.max_hello_memory); }},
    {"runtime.reuseport_cpu_steering",
     [](const Config& c) { return std::string(c.runtime.reuseport_cpu_steering ? "true" : "false"); }},
    {"runtime.max_quic_flows_per_worker",
     [](const Config& c) { return std::to_string(c.runtime.max_quic_flows_per_worker); }},
    {"access_log.enabled", [](const Config& c) { return std::string(c.access_log.enabled ? "true" : "false"); }},
    {"access_log.format",
     [](const Config& c) {
         return quoted(c.access_log.format == config::AccessLogFormat::json ? "json" : "logfmt");
     },
     true},
    {"access_log.path", [](const Config& c) { return quoted(c.access_log.path); }, true},
    {"admin.address", [](const Config& c) { return quoted(c.admin.address.to_string()); }},
    {"admin.request_timeout", [](const Config& c) { return quoted(config::duration_text(c.admin.request_timeout)); }},
    {"admin.max_connections", [](const Config& c) { return std::to_string(c.admin.max_connections); }},
    {"admin.max_connections_per_source",
     [](const Config& c) { return std::to_string(c.admin.max_connections_per_source); }},
};

// Each item as `GET /config` shows it (config/config_json.h: every key the reader accepts, every
// default filled in, durations canonical), `origin` aside: where an item is written (its line, the
// file of a Gateway API object) is not what it does. A "2000ms" respelt "2s" is no change.
nlohmann::ordered_json settings_of(nlohmann::ordered_json item) {
    item.erase("origin");
    return item;
}

// `running_json` and `next_json`: the items' JSON, in the same order as the items.
template <typename Item>
NameChanges compare_named(const std::vector<Item>& running, const nlohmann::ordered_json& running_json,
                          const std::vector<Item>& next, const nlohmann::ordered_json& next_json) {
    NameChanges changes;
    for (std::size_t index = 0; index < next.size(); ++index) {
        const Item& item = next[index];
        const auto had = std::find_if(running.begin(), running.end(),
                                      [&](const Item& old) { return old.name == item.name; });
        if (had == running.end()) changes.added.push_back(item.name);
        else if (settings_of(running_json.at(static_cast<std::size_t>(had - running.begin()))) !=
                 settings_of(next_json.at(index)))
            changes.changed.push_back(item.name);
    }
    for (const Item& item : running) {
        const bool kept = std::any_of(next.begin(), next.end(), [&](const Item& now) { return now.name == item.name; });
        if (!kept) changes.removed.push_back(item.name);
    }
    return changes;
}

std::string names_or_none(const std::vector<std::string>& names) {
    if (names.empty()) return "none";
    std::string out;
    for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
}

std::string describe_changes(std::string_view kind, const NameChanges& changes) {
    return std::string(kind) + " added: " + names_or_none(changes.added) + "; removed: " +
           names_or_none(changes.removed) + "; changed: " + names_or_none(changes.changed) + "\n";
}

}  // namespace

std::vector<std::string_view> restart_only_keys() {
    std::vector<std::string_view> keys;
    for (const RestartOnlyKey& key : restart_only) keys.push_back(key.key);
    return keys;
}

std::vector<RestartRequired> restart_required(const Config& in_use, const Config& next) {
    std::vector<RestartRequired> changes;
    for (const RestartOnlyKey& key : restart_only) {
        if (key.needs_access_log && !next.access_log.enabled) continue;
        std::string running = key.value(in_use);
        std::string wanted = key.value(next);
        if (running != wanted)
            changes.push_back(RestartRequired{.key = std::string(key.key), .running = std::move(running),
                                              .next = std::move(wanted)});
    }
    return changes;
}

std::string reload_refusal(const Config& running, const Config& next) {
    const bool watching = running.gateway_api.watch;
    if (next.gateway_api.watch == watching &&
        (!watching || (config::same_settings(next.gateway_api, running.gateway_api) &&
                       config::same_settings(next.kubernetes, running.kubernetes))))
        return {};
    return next.source + ":" + std::to_string(next.gateway_api.line) +
           ": gateway_api: changes to [gateway_api] or to [kubernetes] with watch = true need a restart";
}

ReloadPlan plan_reload(const Config& running, const Config& next) {
    ReloadPlan plan;
    plan.unchanged = !running.source_hash.empty() && running.source_hash == next.source_hash;
    if (plan.unchanged) return plan;
    plan.refused = reload_refusal(running, next);
    plan.restart_required = restart_required(running, next);
    const nlohmann::ordered_json running_json = config::effective_config_json(running);
    const nlohmann::ordered_json next_json = config::effective_config_json(next);
    plan.listeners = compare_named(running.listeners, running_json.at("listener"), next.listeners, next_json.at("listener"));
    plan.routes = compare_named(running.routes, running_json.at("route"), next.routes, next_json.at("route"));
    plan.services = compare_named(running.services, running_json.at("service"), next.services, next_json.at("service"));
    return plan;
}

std::string describe_restart_warning(const RestartRequired& change) {
    return change.key + " changed (" + change.running + " -> " + change.next + ") but needs a restart; still using " +
           change.running;
}

std::string describe_reload_plan(const ReloadPlan& plan) {
    if (plan.unchanged) return "unchanged (the same hash): a reload changes nothing\n";
    std::string out;
    if (!plan.refused.empty()) out += "reload refused (a restart applies it): " + plan.refused + "\n";
    for (const RestartRequired& change : plan.restart_required)
        out += "restart needed: " + change.key + " (" + change.running + " -> " + change.next + ")\n";
    if (plan.restart_required.empty()) out += "restart needed: nothing\n";
    out += describe_changes("listeners", plan.listeners);
    out += describe_changes("routes", plan.routes);
    out += describe_changes("services", plan.services);
    return out;
}

}  // namespace passgate
