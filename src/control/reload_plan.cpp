#include "src/control/reload_plan.h"

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
    {"runtime.max_hello_memory", [](const Config& c) { return std::to_string(c.runtime.max_hello_memory); }},
    {"access_log.enabled", [](const Config& c) { return std::string(c.access_log.enabled ? "true" : "false"); }},
    {"access_log.format",
     [](const Config& c) {
         return quoted(c.access_log.format == config::AccessLogFormat::json ? "json" : "logfmt");
     },
     true},
    {"access_log.path", [](const Config& c) { return quoted(c.access_log.path); }, true},
    {"admin.address", [](const Config& c) { return quoted(c.admin.address.to_string()); }},
    {"admin.request_timeout", [](const Config& c) { return quoted(duration_text(c.admin.request_timeout)); }},
    {"admin.max_connections", [](const Config& c) { return std::to_string(c.admin.max_connections); }},
    {"admin.max_connections_per_source",
     [](const Config& c) { return std::to_string(c.admin.max_connections_per_source); }},
};

// Field by field, `line` and `origin` aside (where an item is written is not what it does).
// A field added to config::Listener, Route or Service must be added here.
bool same_access(const config::AccessList& a, const config::AccessList& b) {
    return a.allow == b.allow && a.deny == b.deny;
}

bool same_settings(const config::Listener& a, const config::Listener& b) {
    return a.name == b.name && a.address == b.address && a.hostname == b.hostname &&
           a.client_hello_timeout == b.client_hello_timeout && a.max_client_hello_size == b.max_client_hello_size &&
           a.idle_timeout == b.idle_timeout && a.default_route == b.default_route && same_access(a.access, b.access) &&
           a.accept_proxy_protocol == b.accept_proxy_protocol && a.trusted_proxies == b.trusted_proxies &&
           a.max_connections == b.max_connections && a.max_connection_rate == b.max_connection_rate;
}

bool same_backend(const config::BackendRef& a, const config::BackendRef& b) {
    return a.service == b.service && a.weight == b.weight && a.invalid == b.invalid;
}

bool same_settings(const config::Route& a, const config::Route& b) {
    return a.name == b.name && a.listeners == b.listeners && a.hostnames == b.hostnames && a.alpn == b.alpn &&
           std::equal(a.backends.begin(), a.backends.end(), b.backends.begin(), b.backends.end(), same_backend) &&
           a.drain_timeout == b.drain_timeout && same_access(a.access, b.access) &&
           a.max_connections == b.max_connections && a.max_connection_duration == b.max_connection_duration;
}

bool same_endpoint(const config::Endpoint& a, const config::Endpoint& b) {
    return a.address == b.address && a.weight == b.weight && a.max_connections == b.max_connections;
}

bool same_outlier_detection(const config::OutlierDetection& a, const config::OutlierDetection& b) {
    return a.consecutive_failures == b.consecutive_failures && a.base_ejection_time == b.base_ejection_time &&
           a.max_ejection_time == b.max_ejection_time;
}

bool same_settings(const config::Service& a, const config::Service& b) {
    return a.name == b.name && a.discovery == b.discovery &&
           std::equal(a.endpoints.begin(), a.endpoints.end(), b.endpoints.begin(), b.endpoints.end(),
                      same_endpoint) &&
           a.dns_name == b.dns_name && a.port == b.port && a.dns_min_ttl == b.dns_min_ttl &&
           a.dns_max_ttl == b.dns_max_ttl && a.endpoints_file == b.endpoints_file && a.kubernetes == b.kubernetes &&
           a.endpoint_max_connections == b.endpoint_max_connections && a.balance == b.balance &&
           a.hash_key == b.hash_key && a.health_check == b.health_check &&
           same_outlier_detection(a.outlier_detection, b.outlier_detection) &&
           a.connect_timeout == b.connect_timeout && a.connect_attempts == b.connect_attempts &&
           a.send_proxy_protocol == b.send_proxy_protocol;
}

template <typename Item>
NameChanges compare_named(const std::vector<Item>& running, const std::vector<Item>& next) {
    NameChanges changes;
    for (const Item& item : next) {
        const auto had = std::find_if(running.begin(), running.end(),
                                      [&](const Item& old) { return old.name == item.name; });
        if (had == running.end()) changes.added.push_back(item.name);
        else if (!same_settings(*had, item)) changes.changed.push_back(item.name);
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

std::string duration_text(config::Duration duration) {
    const long long ms = duration.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms != 0 && ms % 1'000 == 0) return std::to_string(ms / 1'000) + "s";
    return std::to_string(ms) + "ms";
}

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
    plan.listeners = compare_named(running.listeners, next.listeners);
    plan.routes = compare_named(running.routes, next.routes);
    plan.services = compare_named(running.services, next.services);
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
