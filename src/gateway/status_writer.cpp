#include "src/gateway/status_writer.h"

#include "src/discovery/kubernetes_collection.h"
#include "src/observe/log.h"
#include "src/wire/kubernetes_objects.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>
#include <utility>

namespace passgate::gateway_api {

using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxLeaseBytes = 1u << 20;
constexpr const char* kLeaseApi = "/apis/coordination.k8s.io/v1";

// ---- JSON helpers -------------------------------------------------------------------------------

// object[key] when object is an object holding it (not null), else nullptr.
const json* member(const json* object, const char* key) {
    if (object == nullptr || !object->is_object()) return nullptr;
    const auto found = object->find(key);
    if (found == object->end() || found->is_null()) return nullptr;
    return &*found;
}

std::string string_member(const json* object, const char* key) {
    const json* value = member(object, key);
    return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

bool empty_value(const json* value) {
    return value == nullptr || value->is_null() || (value->is_array() && value->empty()) ||
           (value->is_object() && value->empty());
}

// `raw` already says everything `desired` says: objects by their keys (extra keys in `raw` are the
// server's business), arrays element by element, values equal. An empty or null `desired` is
// met by an absent, null or empty `raw`.
bool covers(const json* raw, const json& desired) {
    if (empty_value(&desired)) return empty_value(raw);
    if (raw == nullptr) return false;
    if (desired.is_object()) {
        if (!raw->is_object()) return false;
        for (const auto& [key, value] : desired.items()) {
            const auto found = raw->find(key);
            if (!covers(found == raw->end() ? nullptr : &*found, value)) return false;
        }
        return true;
    }
    if (desired.is_array()) {
        if (!raw->is_array() || raw->size() != desired.size()) return false;
        for (std::size_t i = 0; i < desired.size(); ++i)
            if (!covers(&(*raw)[i], desired[i])) return false;
        return true;
    }
    return *raw == desired;
}

// The raw conditions' entry of `type`.
const json* raw_condition(const json* conditions, const std::string& type) {
    if (conditions == nullptr || !conditions->is_array()) return nullptr;
    for (const json& condition : *conditions)
        if (string_member(&condition, "type") == type) return &condition;
    return nullptr;
}

json conditions_json(const std::vector<Condition>& desired, const json* raw_conditions,
                     std::chrono::system_clock::time_point now) {
    json out = json::array();
    for (const Condition& condition : desired) {
        const std::string status = condition.status ? "True" : "False";
        std::string since = rfc3339(now);
        if (const json* raw = raw_condition(raw_conditions, condition.type)) {
            const std::string raw_since = string_member(raw, "lastTransitionTime");
            if (string_member(raw, "status") == status && !raw_since.empty()) since = raw_since;
        }
        out.push_back({{"type", condition.type},
                       {"status", status},
                       {"reason", condition.reason},
                       {"message", condition.message},
                       {"observedGeneration", condition.observed_generation},
                       {"lastTransitionTime", since}});
    }
    return out;
}

json patch_of(const json& raw_object, json status) {
    json patch;
    patch["metadata"]["resourceVersion"] = string_member(member(&raw_object, "metadata"), "resourceVersion");
    patch["status"] = std::move(status);
    return patch;
}

// A raw parentRef (spec.parentRefs[] or status.parents[].parentRef) names `ref` of a route in
// `route_namespace` (the API's defaults applied to both).
bool parent_ref_matches(const json& raw, const ParentReference& ref, const std::string& route_namespace) {
    if (!raw.is_object()) return false;
    const std::string group = raw.contains("group") && raw["group"].is_string() ? raw["group"].get<std::string>() : kGroup;
    const std::string kind = raw.contains("kind") && raw["kind"].is_string() ? raw["kind"].get<std::string>() : "Gateway";
    std::string name_space = string_member(&raw, "namespace");
    if (name_space.empty()) name_space = route_namespace;
    const std::string section = string_member(&raw, "sectionName");
    std::optional<std::uint16_t> port;
    if (const json* value = member(&raw, "port"); value != nullptr && value->is_number_integer())
        port = static_cast<std::uint16_t>(value->get<std::int64_t>());
    return group == ref.group && kind == ref.kind && name_space == ref.namespace_name.value_or(route_namespace) &&
           string_member(&raw, "name") == ref.name && section == ref.section_name.value_or("") && port == ref.port;
}

// The parentRef as the route wrote it (its spec entry), or built from `ref`.
json parent_ref_json(const ParentReference& ref, const json& raw_route, const std::string& route_namespace) {
    if (const json* refs = member(member(&raw_route, "spec"), "parentRefs"); refs != nullptr && refs->is_array())
        for (const json& raw : *refs)
            if (parent_ref_matches(raw, ref, route_namespace)) return raw;
    json out = {{"group", ref.group}, {"kind", ref.kind}, {"name", ref.name}};
    out["namespace"] = ref.namespace_name.value_or(route_namespace);
    if (ref.section_name) out["sectionName"] = *ref.section_name;
    if (ref.port) out["port"] = *ref.port;
    return out;
}

// The status part of a patch without its times: what "the same desired status" means.
json without_times(json value) {
    if (value.is_object()) {
        value.erase("lastTransitionTime");
        for (auto& [key, child] : value.items()) child = without_times(std::move(child));
    } else if (value.is_array()) {
        for (json& child : value) child = without_times(std::move(child));
    }
    return value;
}

std::string local_identity() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
    return std::string(host) + "_" + std::to_string(getpid());
}

std::string lease_path(const config::GatewayApi& settings) {
    return std::string(kLeaseApi) + "/namespaces/" + settings.lease_namespace + "/leases/" + settings.lease_name;
}

long long lease_seconds(const config::GatewayApi& settings) {
    return std::max<long long>(1, (settings.lease_duration.count() + 999) / 1000);
}

}  // namespace

// ---- Times --------------------------------------------------------------------------------------

std::string rfc3339(std::chrono::system_clock::time_point time) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

std::string rfc3339_micro(std::chrono::system_clock::time_point time) {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
    const std::time_t seconds = static_cast<std::time_t>(micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0));
    const long long fraction = ((micros % 1000000) + 1000000) % 1000000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%06lldZ", text, fraction);
    return out;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& text) {
    std::tm utc{};
    int consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &utc.tm_year, &utc.tm_mon, &utc.tm_mday, &utc.tm_hour,
                    &utc.tm_min, &utc.tm_sec, &consumed) != 6 || consumed != 19)
        return std::nullopt;
    utc.tm_year -= 1900;
    utc.tm_mon -= 1;
    std::size_t at = 19;
    long long micros = 0;
    if (at < text.size() && text[at] == '.') {
        ++at;
        int digits = 0;
        while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
            if (digits < 6) {
                micros = micros * 10 + (text[at] - '0');
                ++digits;
            }
            ++at;
        }
        if (digits == 0) return std::nullopt;
        for (; digits < 6; ++digits) micros *= 10;
    }
    if (at + 1 != text.size() || (text[at] != 'Z' && text[at] != 'z')) return std::nullopt;
    const std::time_t seconds = timegm(&utc);
    if (seconds == static_cast<std::time_t>(-1)) return std::nullopt;
    return std::chrono::system_clock::from_time_t(seconds) + std::chrono::microseconds(micros);
}

bool lease_expired(const json& lease, std::chrono::system_clock::time_point now) {
    const json* spec = member(&lease, "spec");
    if (string_member(spec, "holderIdentity").empty()) return true;
    const std::optional<std::chrono::system_clock::time_point> renewed = parse_rfc3339(string_member(spec, "renewTime"));
    if (!renewed) return true;
    long long seconds = 0;
    if (const json* duration = member(spec, "leaseDurationSeconds"); duration != nullptr && duration->is_number_integer())
        seconds = duration->get<long long>();
    return *renewed + std::chrono::seconds(seconds) < now;
}

// ---- Status patches -----------------------------------------------------------------------------

json status_patch(const GatewayClassStatus& desired, const json& raw_object, std::chrono::system_clock::time_point now,
                  const std::string& controller_name) {
    if (string_member(member(&raw_object, "spec"), "controllerName") != controller_name) return nullptr;
    const json* raw_status = member(&raw_object, "status");
    json status;
    status["conditions"] = conditions_json(desired.conditions, member(raw_status, "conditions"), now);
    if (covers(raw_status, status)) return nullptr;
    return patch_of(raw_object, std::move(status));
}

json status_patch(const GatewayStatus& desired, const json& raw_object, std::chrono::system_clock::time_point now,
                  const std::string& /*controller_name*/) {
    const json* raw_status = member(&raw_object, "status");
    json status;
    json addresses = json::array();
    for (const std::string& address : desired.addresses) addresses.push_back({{"type", "IPAddress"}, {"value", address}});
    // null removes addresses written before (a merge patch's way to delete).
    status["addresses"] = addresses.empty() ? json(nullptr) : addresses;
    status["conditions"] = conditions_json(desired.conditions, member(raw_status, "conditions"), now);
    json listeners = json::array();
    const json* raw_listeners = member(raw_status, "listeners");
    for (const ListenerStatus& listener : desired.listeners) {
        const json* raw_listener = nullptr;
        if (raw_listeners != nullptr && raw_listeners->is_array())
            for (const json& each : *raw_listeners)
                if (string_member(&each, "name") == listener.name) raw_listener = &each;
        json kinds = json::array();
        for (const RouteGroupKind& kind : listener.supported_kinds) kinds.push_back({{"group", kind.group}, {"kind", kind.kind}});
        listeners.push_back({{"name", listener.name},
                             {"supportedKinds", kinds},
                             {"attachedRoutes", listener.attached_routes},
                             {"conditions", conditions_json(listener.conditions, member(raw_listener, "conditions"), now)}});
    }
    status["listeners"] = listeners;
    if (covers(raw_status, status)) return nullptr;
    return patch_of(raw_object, std::move(status));
}

json status_patch(const TLSRouteStatus& desired, const json& raw_object, std::chrono::system_clock::time_point now,
                  const std::string& controller_name) {
    const json* raw_status = member(&raw_object, "status");
    const json* raw_parents = member(raw_status, "parents");
    const std::string route_namespace = string_member(member(&raw_object, "metadata"), "namespace");
    json parents = json::array();
    // Other controllers' entries stay as they are, in their order.
    if (raw_parents != nullptr && raw_parents->is_array())
        for (const json& entry : *raw_parents)
            if (string_member(&entry, "controllerName") != controller_name) parents.push_back(entry);
    for (const RouteParentStatus& parent : desired.parents) {
        const json* raw_entry = nullptr;
        if (raw_parents != nullptr && raw_parents->is_array())
            for (const json& entry : *raw_parents)
                if (string_member(&entry, "controllerName") == controller_name && entry.contains("parentRef") &&
                    parent_ref_matches(entry["parentRef"], parent.parent_ref, route_namespace))
                    raw_entry = &entry;
        parents.push_back({{"parentRef", parent_ref_json(parent.parent_ref, raw_object, route_namespace)},
                           {"controllerName", controller_name},
                           {"conditions", conditions_json(parent.conditions, member(raw_entry, "conditions"), now)}});
    }
    json status;
    status["parents"] = parents;
    if (covers(raw_status, status)) return nullptr;
    return patch_of(raw_object, std::move(status));
}

// ---- The writer ---------------------------------------------------------------------------------

StatusWriter::StatusWriter(reactor::Loop& loop, HttpClient& client, const KubernetesCredentials& credentials,
                           const config::Kubernetes& kubernetes, const config::GatewayApi& gateway_api,
                           AppMetrics& metrics, std::string identity)
    : loop_(loop),
      client_(client),
      credentials_(credentials),
      kubernetes_(kubernetes),
      settings_(gateway_api),
      metrics_(metrics),
      identity_(identity.empty() ? local_identity() : std::move(identity)),
      random_(std::random_device{}()) {
    for (const char* kind : {"GatewayClass", "Gateway", "TLSRoute"})
        for (const char* result : {"ok", "conflict", "error"}) metrics_.gateway_api_status_writes.with({kind, result});
    set_leader(false);
    read_lease();
}

StatusWriter::~StatusWriter() {
    if (lease_request_ != 0) client_.cancel(lease_request_);
    for (const auto& [key, id] : in_flight_) client_.cancel(id);
    loop_.cancel_timer(lease_timer_);
    loop_.cancel_timer(retry_timer_);
    if (leader_) metrics_.gateway_api_status_leader.with({}).set(metrics_.control_shard(), 0);
}

HttpRequest StatusWriter::request_for(const std::string& path) {
    HttpRequest http;
    http.url = credentials_.server + path;
    http.tls = credentials_.tls;
    http.bearer_token = current_bearer_token(credentials_);  // may throw: callers catch
    http.headers.push_back("Accept: application/json");
    http.timeout = kubernetes_.request_timeout;
    // Answers to writes are the object written: bounded like a watched object.
    http.max_body_bytes = kubernetes::kMaxDocumentBytes;
    return http;
}

void StatusWriter::set_leader(bool leader) {
    if (leader != leader_)
        log_line(LogLevel::info, "gateway api status: " + identity_ +
                                     (leader ? " holds the Lease " : " does not hold the Lease ") +
                                     settings_.lease_namespace + "/" + settings_.lease_name +
                                     (leader ? ": writing status" : ": another node writes status"));
    leader_ = leader;
    metrics_.gateway_api_status_leader.with({}).set(metrics_.control_shard(), leader ? 1 : 0);
}

// ---- The Lease ----------------------------------------------------------------------------------

void StatusWriter::lease_timer() { read_lease(); }

void StatusWriter::read_lease() {
    HttpRequest http;
    try {
        http = request_for(lease_path(settings_));
    } catch (const std::exception& error) {
        HttpResponse failed;
        failed.error = error.what();
        return on_lease_read(std::move(failed));
    }
    http.max_body_bytes = kMaxLeaseBytes;
    lease_request_ = client_.get(std::move(http), [this](HttpResponse response) { on_lease_read(std::move(response)); });
}

void StatusWriter::on_lease_read(HttpResponse response) {
    lease_request_ = 0;
    const auto renew_period = std::max<reactor::Millis>(1, settings_.lease_duration.count() / 3);
    if (response.status == 404 && response.error.empty()) return write_lease(false, nullptr);
    std::string error;
    json lease;
    if (!response.ok()) {
        error = response.error.empty() ? "HTTP " + std::to_string(response.status) : response.error;
    } else {
        kubernetes::Decoded<kubernetes::JsonObject> decoded = kubernetes::decode_json_object(response.body);
        if (decoded.ok()) lease = std::move(decoded.value->json);
        else error = "the Lease does not decode: " + decoded.error;
    }
    if (!error.empty()) {
        ++lease_failures_;
        if (error != lease_logged_error_) {
            lease_logged_error_ = error;
            log_line(LogLevel::error, "gateway api status: Lease " + settings_.lease_namespace + "/" +
                                          settings_.lease_name + ": " + error + " (retrying)");
        }
        if (leader_ && std::chrono::steady_clock::now() - renewed_at_ > settings_.lease_duration) set_leader(false);
        loop_.arm_timer_after(lease_timer_, renew_period);
        return;
    }
    lease_failures_ = 0;
    lease_logged_error_.clear();
    const std::string holder = string_member(member(&lease, "spec"), "holderIdentity");
    if (holder == identity_) return write_lease(false, &lease);  // renew
    if (lease_expired(lease, std::chrono::system_clock::now())) return write_lease(true, &lease);
    set_leader(false);
    loop_.arm_timer_after(lease_timer_, renew_period);
}

// Creates the Lease (`current` null), renews ours, or takes an expired one over; the update
// carries the read resourceVersion.
void StatusWriter::write_lease(bool take_over, const json* current) {
    const std::string now = rfc3339_micro(std::chrono::system_clock::now());
    json lease;
    if (current == nullptr) {
        lease = {{"apiVersion", "coordination.k8s.io/v1"},
                 {"kind", "Lease"},
                 {"metadata", {{"name", settings_.lease_name}, {"namespace", settings_.lease_namespace}}},
                 {"spec",
                  {{"holderIdentity", identity_},
                   {"leaseDurationSeconds", lease_seconds(settings_)},
                   {"acquireTime", now},
                   {"renewTime", now},
                   {"leaseTransitions", 0}}}};
    } else {
        lease = *current;
        json& spec = lease["spec"];
        if (!spec.is_object()) spec = json::object();
        if (take_over) {
            long long transitions = 0;
            if (const json* value = member(&spec, "leaseTransitions"); value != nullptr && value->is_number_integer())
                transitions = value->get<long long>();
            spec["leaseTransitions"] = transitions + 1;
            spec["acquireTime"] = now;
            spec["holderIdentity"] = identity_;
        }
        spec["leaseDurationSeconds"] = lease_seconds(settings_);
        spec["renewTime"] = now;
        lease.erase("status");
    }
    HttpRequest http;
    try {
        http = request_for(current == nullptr ? std::string(kLeaseApi) + "/namespaces/" + settings_.lease_namespace + "/leases"
                                              : lease_path(settings_));
    } catch (const std::exception& error) {
        HttpResponse failed;
        failed.error = error.what();
        return on_lease_read(std::move(failed));
    }
    http.method = current == nullptr ? "POST" : "PUT";
    http.body = lease.dump();
    http.headers.push_back("Content-Type: application/json");
    lease_request_ = client_.send(std::move(http), [this](HttpResponse response) { on_lease_written(std::move(response)); });
}

void StatusWriter::on_lease_written(HttpResponse response) {
    lease_request_ = 0;
    const auto renew_period = std::max<reactor::Millis>(1, settings_.lease_duration.count() / 3);
    if (response.ok()) {
        renewed_at_ = std::chrono::steady_clock::now();
        const bool was_leader = leader_;
        set_leader(true);
        loop_.arm_timer_after(lease_timer_, renew_period);
        if (!was_leader) write_all();
        return;
    }
    // 409: someone else wrote it meanwhile (or created it): read it again now.
    if (response.status == 409 && response.error.empty()) return read_lease();
    HttpResponse failed = std::move(response);
    if (failed.error.empty()) failed.error = "update: HTTP " + std::to_string(failed.status);
    failed.status = 0;
    on_lease_read(std::move(failed));
}

// ---- Status writes ------------------------------------------------------------------------------

void StatusWriter::publish(const Statuses& statuses, const GatewayWatch& watch) {
    desired_ = statuses;
    watch_ = &watch;
    write_all();
}

void StatusWriter::write_all() {
    if (!leader_ || !desired_ || watch_ == nullptr || !watch_->synced()) return;
    const auto now = std::chrono::system_clock::now();
    const std::string& controller = settings_.controller_name;
    std::set<std::string> seen;  // the objects considered now: the others' states are dropped
    auto consider = [&](const char* kind, const std::string& namespace_name, const std::string& name, const json& raw,
                        const json& patch) {
        const std::string key = std::string(kind) + " " + (namespace_name.empty() ? name : namespace_name + "/" + name);
        seen.insert(key);
        ObjectState& state = objects_[key];
        if (patch.is_null()) {
            state = ObjectState{};
            return;
        }
        if (in_flight_.count(key) != 0) return;  // its answer runs write_all again
        const std::string version = string_member(member(&raw, "metadata"), "resourceVersion");
        if (state.written_against == version) return;  // the watch has not shown the result yet
        const std::string fingerprint = without_times(patch["status"]).dump();
        if (state.conflicts >= kMaxConflicts && state.failed_patch == fingerprint) return;
        if (state.failed_patch != fingerprint) state.conflicts = 0;
        state.failed_patch = fingerprint;
        write_object(kind, namespace_name, name, patch, version);
    };
    for (const GatewayClassStatus& status : desired_->gateway_classes) {
        const json* raw = watch_->raw_object("GatewayClass", "", status.name);
        if (raw != nullptr) consider("GatewayClass", "", status.name, *raw, status_patch(status, *raw, now, controller));
    }
    for (const GatewayStatus& status : desired_->gateways) {
        const json* raw = watch_->raw_object("Gateway", status.namespace_name, status.name);
        if (raw == nullptr) continue;
        // Another controller's class: its Gateways' status is not ours to write.
        const json* raw_class =
            watch_->raw_object("GatewayClass", "", string_member(member(raw, "spec"), "gatewayClassName"));
        if (raw_class == nullptr || string_member(member(raw_class, "spec"), "controllerName") != controller) continue;
        consider("Gateway", status.namespace_name, status.name, *raw, status_patch(status, *raw, now, controller));
    }
    std::map<std::string, const TLSRouteStatus*> routes;
    for (const TLSRouteStatus& status : desired_->tls_routes) routes[status.namespace_name + "/" + status.name] = &status;
    // Every route held: those without a desired status lose our entries (no longer our parents).
    const ObjectSet objects = watch_->objects();
    for (const Sourced<TLSRoute>& route : objects.tls_routes) {
        const std::string& name_space = route.object.metadata.namespace_name;
        const std::string& name = route.object.metadata.name;
        const json* raw = watch_->raw_object("TLSRoute", name_space, name);
        if (raw == nullptr) continue;
        const auto found = routes.find(name_space + "/" + name);
        TLSRouteStatus none{name_space, name, {}};
        const TLSRouteStatus& status = found == routes.end() ? none : *found->second;
        consider("TLSRoute", name_space, name, *raw, status_patch(status, *raw, now, controller));
    }
    for (auto it = objects_.begin(); it != objects_.end();) {
        if (seen.count(it->first) == 0 && in_flight_.count(it->first) == 0) it = objects_.erase(it);
        else ++it;
    }
}

void StatusWriter::write_object(const std::string& kind, const std::string& namespace_name, const std::string& name,
                                const json& patch, const std::string& resource_version) {
    const std::string key = kind + " " + (namespace_name.empty() ? name : namespace_name + "/" + name);
    const std::string path = watch_->object_path(kind, namespace_name, name);
    if (path.empty()) return;
    HttpRequest http;
    try {
        http = request_for(path + "/status");
    } catch (const std::exception& error) {
        metrics_.gateway_api_status_writes.with({kind, "error"}).inc(metrics_.control_shard());
        log_line(LogLevel::error, "gateway api status: " + key + ": " + error.what());
        return;
    }
    http.method = "PATCH";
    http.body = patch.dump();
    http.headers.push_back("Content-Type: application/merge-patch+json");
    in_flight_[key] = client_.send(std::move(http), [this, key, kind, resource_version](HttpResponse response) {
        in_flight_.erase(key);
        ObjectState& state = objects_[key];
        if (response.ok()) {
            metrics_.gateway_api_status_writes.with({kind, "ok"}).inc(metrics_.control_shard());
            state.written_against = resource_version;
            state.conflicts = 0;
        } else if (response.status == 409 && response.error.empty()) {
            // Changed meanwhile: wait for the watch's newer object, then compute again.
            metrics_.gateway_api_status_writes.with({kind, "conflict"}).inc(metrics_.control_shard());
            state.written_against = resource_version;
            if (++state.conflicts == kMaxConflicts)
                log_line(LogLevel::warning, "gateway api status: " + key + ": " + std::to_string(kMaxConflicts) +
                                                " conflicts in a row; waiting for a new status to write");
        } else {
            metrics_.gateway_api_status_writes.with({kind, "error"}).inc(metrics_.control_shard());
            state.written_against.clear();
            log_line(LogLevel::error, "gateway api status: " + key + ": " +
                                          (response.error.empty() ? "HTTP " + std::to_string(response.status)
                                                                  : response.error) +
                                          " (retrying)");
            if (response.status != 404 && !retry_timer_.armed())
                loop_.arm_timer_after(retry_timer_, std::max<reactor::Millis>(1, kubernetes_.retry_initial_delay.count()));
            return;
        }
        write_all();
    });
}

}  // namespace passgate::gateway_api
