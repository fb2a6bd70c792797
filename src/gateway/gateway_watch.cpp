#include "src/gateway/gateway_watch.h"

#include "src/observe/log.h"

#include <algorithm>
#include <map>
#include <utility>

namespace passgate::gateway_api {

namespace {

constexpr std::size_t kMaxDiscoveryBytes = 4u << 20;  // an APIGroup or APIResourceList answer

// What is known of one kind before the server is asked.
struct KindSpec {
    const char* kind;
    const char* resource;
    bool namespaced;
    bool gateway_group;  // gateway.networking.k8s.io (else core v1)
    bool keep_raw;       // the status writer merges into these
    std::vector<std::string> versions;  // preferred first (gateway group only)
};

const std::vector<KindSpec>& kind_specs() {
    static const std::vector<KindSpec> specs = {
        {"GatewayClass", "gatewayclasses", false, true, true, {"v1", "v1beta1"}},
        {"Gateway", "gateways", true, true, true, {"v1", "v1beta1"}},
        {"TLSRoute", "tlsroutes", true, true, true, {"v1", "v1alpha3", "v1alpha2"}},
        {"ReferenceGrant", "referencegrants", true, true, false, {"v1", "v1beta1"}},
        {"Service", "services", true, false, false, {"v1"}},
        {"Namespace", "namespaces", false, false, false, {"v1"}},
    };
    return specs;
}

// Every version any kind may use, in the order asked.
const std::vector<std::string>& wanted_versions() {
    static const std::vector<std::string> versions = {"v1", "v1beta1", "v1alpha3", "v1alpha2"};
    return versions;
}

std::string describe_response(const HttpResponse& response) {
    if (!response.error.empty()) return response.error;
    return "HTTP " + std::to_string(response.status);
}

// "TLSRoute ns/name: spec.hostnames[0]: message"
std::string invalid_text(const DecodedObject& decoded, const std::string& kind, const std::string& key) {
    std::string text = (decoded.kind.empty() ? kind : decoded.kind) + " " + (decoded.name.empty() ? key : decoded.name) + ": ";
    if (!decoded.field.empty()) text += decoded.field + ": ";
    return text + decoded.error;
}

}  // namespace

std::string pick_version(const std::vector<std::string>& preferred, const std::vector<std::string>& served) {
    for (const std::string& version : preferred)
        if (std::find(served.begin(), served.end(), version) != served.end()) return version;
    return {};
}

// One followed kind: its collection once its version is known.
struct GatewayWatch::Kind {
    const KindSpec& spec;
    std::string version;  // served version; "" while unknown or when not served
    std::vector<std::string> served_versions;  // of the group's, those whose resources list it
    bool not_served = false;
    std::unique_ptr<KubernetesCollection<DecodedObject>> collection;
    // The last version of each object that decoded, by key: an object changed into one that does
    // not decode keeps serving as it was (as a bad reload keeps the running config), until it is
    // fixed or deleted. Refreshed before each `changed` call.
    std::map<std::string, Object> last_good;

    bool listed() const { return not_served || (collection && collection->listed()); }
    std::string group_version() const {
        return spec.gateway_group ? std::string(kGroup) + "/" + version : version;
    }
    std::string collection_path() const {
        return (spec.gateway_group ? "/apis/" + std::string(kGroup) + "/" : std::string("/api/")) + version + "/" +
               spec.resource;
    }
};

GatewayWatch::GatewayWatch(reactor::Loop& loop, HttpClient& client, const KubernetesCredentials& credentials,
                           const config::Kubernetes& settings, AppMetrics& metrics, Changed changed)
    : loop_(loop),
      client_(client),
      credentials_(credentials),
      settings_(settings),
      metrics_(metrics),
      changed_(std::move(changed)),
      random_(std::random_device{}()) {
    for (const KindSpec& spec : kind_specs()) {
        auto kind = std::make_unique<Kind>(Kind{spec, {}, {}, false, nullptr, {}});
        if (!spec.gateway_group) kind->version = "v1";
        kinds_.push_back(std::move(kind));
    }
    update_metrics();
    discover();
}

GatewayWatch::~GatewayWatch() {
    if (discovery_request_ != 0) client_.cancel(discovery_request_);
    for (auto& kind : kinds_) kind->collection.reset();
    loop_.cancel_timer(discovery_timer_);
    loop_.cancel_timer(notify_timer_);
}

// ---- Version discovery --------------------------------------------------------------------------

// GET `path` (a discovery document of the group) with `done`; a token file that cannot be read is
// reported as a discovery failure instead.
void GatewayWatch::get_discovery(const std::string& path, HttpClient::Done done) {
    HttpRequest http;
    http.url = credentials_.server + path;
    http.tls = credentials_.tls;
    try {
        http.bearer_token = current_bearer_token(credentials_);
    } catch (const std::exception& error) {
        return discovery_failed("token_file", error.what());
    }
    http.headers.push_back("Accept: application/json");
    http.timeout = settings_.request_timeout;
    http.max_body_bytes = kMaxDiscoveryBytes;
    // Moved, as every request is: the client owns it (and wipes the token) from here on.
    discovery_request_ = client_.get(std::move(http), std::move(done));
}

void GatewayWatch::discover() {
    versions_to_read_.clear();
    get_discovery("/apis/" + std::string(kGroup), [this](HttpResponse response) { on_group(std::move(response)); });
}

void GatewayWatch::on_group(HttpResponse response) {
    discovery_request_ = 0;
    std::vector<std::string> served;
    if (response.status == 404 && response.error.empty()) {
        // No Gateway API in this cluster: every kind of the group is empty (not retried).
    } else if (!response.ok()) {
        return discovery_failed(kubernetes_failure_reason(response), "GET /apis/" + std::string(kGroup) + ": " +
                                                                         describe_response(response));
    } else {
        kubernetes::Decoded<std::vector<std::string>> versions = kubernetes::decode_api_group_versions(response.body);
        if (!versions.ok())
            return discovery_failed("bad_response", "GET /apis/" + std::string(kGroup) + ": " + versions.error);
        served = std::move(*versions.value);
    }
    for (const std::string& version : wanted_versions())
        if (std::find(served.begin(), served.end(), version) != served.end()) versions_to_read_.push_back(version);
    // A version's resource list that has a kind adds it to the kind's served versions.
    for (auto& kind : kinds_) kind->served_versions.clear();
    if (versions_to_read_.empty()) return start_collections();
    on_version("", HttpResponse{});
}

// Reads the group's versions' resource lists one after the other (`version` "" starts).
void GatewayWatch::on_version(const std::string& version, HttpResponse response) {
    discovery_request_ = 0;
    if (!version.empty()) {
        if (!response.ok())
            return discovery_failed(kubernetes_failure_reason(response), "GET /apis/" + std::string(kGroup) + "/" +
                                                                             version + ": " + describe_response(response));
        kubernetes::Decoded<std::vector<std::string>> resources = kubernetes::decode_api_resource_names(response.body);
        if (!resources.ok())
            return discovery_failed("bad_response",
                                    "GET /apis/" + std::string(kGroup) + "/" + version + ": " + resources.error);
        for (auto& kind : kinds_) {
            const std::vector<std::string>& names = *resources.value;
            if (kind->spec.gateway_group && std::find(names.begin(), names.end(), kind->spec.resource) != names.end())
                kind->served_versions.push_back(version);
        }
        versions_to_read_.erase(versions_to_read_.begin());
    }
    if (versions_to_read_.empty()) return start_collections();
    const std::string next = versions_to_read_.front();
    get_discovery("/apis/" + std::string(kGroup) + "/" + next,
                  [this, next](HttpResponse answer) { on_version(next, std::move(answer)); });
}

void GatewayWatch::discovery_failed(const std::string& reason, const std::string& error) {
    const reactor::Millis delay = kubernetes_retry_delay(settings_.retry_initial_delay.count(),
                                                         settings_.retry_max_delay.count(), discovery_failures_,
                                                         std::uniform_real_distribution<double>(0.0, 1.0)(random_));
    ++discovery_failures_;
    metrics_.kubernetes_request_failures.with({"", "", "apigroups", reason}).inc(metrics_.control_shard());
    last_error_ = "gateway api discovery: " + error;
    if (error != discovery_logged_error_) {
        discovery_logged_error_ = error;
        log_line(LogLevel::error, "kubernetes gateway api: " + error + "; retrying in " + std::to_string(delay) + " ms");
    }
    loop_.arm_timer_after(discovery_timer_, delay);
}

void GatewayWatch::start_collections() {
    discovered_ = true;
    discovery_failures_ = 0;
    if (!discovery_logged_error_.empty()) {
        discovery_logged_error_.clear();
        last_error_.clear();
        log_line(LogLevel::info, "kubernetes gateway api: the API server answers again");
    }
    const KubernetesCollectionBase::Hooks hooks{[this] { collection_changed(); },
                                                [this](const std::string& error) { collection_failed(error); },
                                                [this] { collection_recovered(); }};
    for (auto& kind : kinds_)
        if (kind->spec.gateway_group) kind->version = pick_version(kind->spec.versions, kind->served_versions);
    for (auto& kind : kinds_) {
        if (kind->version.empty()) {
            kind->not_served = true;
            metrics_.kubernetes_request_failures.with({"", "", kind->spec.resource, "not_served"})
                .inc(metrics_.control_shard());
            log_line(LogLevel::warning, "kubernetes gateway api: the API server does not serve " +
                                            std::string(kind->spec.kind) + " (" + kGroup + " " +
                                            [&] {
                                                std::string list;
                                                for (const std::string& v : kind->spec.versions)
                                                    list += (list.empty() ? "" : ", ") + v;
                                                return list;
                                            }() +
                                            "): treated as none");
            continue;
        }
        KubernetesCollectionTarget target;
        target.resource = kind->spec.resource;
        target.path = kind->collection_path();
        target.log_name = "kubernetes gateway api";
        target.keep_raw = kind->spec.keep_raw;
        target.api_version = kind->group_version();
        target.kind = kind->spec.kind;
        const std::string kind_name = kind->spec.kind;
        kind->collection = std::make_unique<KubernetesCollection<DecodedObject>>(
            loop_, client_, credentials_, settings_, metrics_, std::move(target),
            [](const nlohmann::json& object) {
                // Never a bad list: an invalid object is kept as such (left out, reported).
                kubernetes::Decoded<DecodedObject> decoded;
                decoded.value = decode_object(object);
                return decoded;
            },
            hooks);
    }
    for (auto& kind : kinds_)
        if (kind->collection) kind->collection->start();
    if (synced()) collection_changed();  // nothing to list at all
}

// ---- State --------------------------------------------------------------------------------------

bool GatewayWatch::synced() const {
    if (!discovered_) return false;
    return std::all_of(kinds_.begin(), kinds_.end(), [](const auto& kind) { return kind->listed(); });
}

GatewayWatch::Kind* GatewayWatch::find_kind(const std::string& kind) const {
    for (const auto& each : kinds_)
        if (kind == each->spec.kind) return each.get();
    return nullptr;
}

ObjectSet GatewayWatch::objects() const {
    ObjectSet set;
    set.complete = true;
    for (const auto& kind : kinds_) {
        if (!kind->collection) continue;
        for (const auto& [key, decoded] : kind->collection->objects()) {
            const auto last_good = kind->last_good.find(key);
            if (!decoded.ok() && last_good == kind->last_good.end()) continue;
            const Object& object = decoded.ok() ? *decoded.value : last_good->second;
            if (const auto* value = std::get_if<GatewayClass>(&object)) set.gateway_classes.push_back({*value, {}});
            else if (const auto* value = std::get_if<Gateway>(&object)) set.gateways.push_back({*value, {}});
            else if (const auto* value = std::get_if<TLSRoute>(&object)) set.tls_routes.push_back({*value, {}});
            else if (const auto* value = std::get_if<ReferenceGrant>(&object)) set.reference_grants.push_back({*value, {}});
            else if (const auto* value = std::get_if<kubernetes::Service>(&object)) set.services.push_back({*value, {}});
            else if (const auto* value = std::get_if<Namespace>(&object)) set.namespaces.push_back({*value, {}});
        }
    }
    return set;
}

std::vector<std::string> GatewayWatch::invalid_objects() const {
    std::vector<std::string> out;
    for (const auto& kind : kinds_) {
        if (!kind->collection) continue;
        for (const auto& [key, decoded] : kind->collection->objects()) {
            if (decoded.ok() && !std::holds_alternative<Ignored>(*decoded.value)) continue;
            if (decoded.ok()) {
                // Another kind in this collection (it should not happen): not ours to use.
                out.push_back(std::string(kind->spec.kind) + " " + key + ": kind: not " + kind->spec.kind);
                continue;
            }
            out.push_back(invalid_text(decoded, kind->spec.kind, key) +
                          (kind->last_good.count(key) != 0 ? " (its last valid version keeps serving)" : ""));
        }
    }
    return out;
}

const nlohmann::json* GatewayWatch::raw_object(const std::string& kind, const std::string& namespace_name,
                                               const std::string& name) const {
    const Kind* found = find_kind(kind);
    if (found == nullptr || !found->collection) return nullptr;
    return found->collection->raw(namespace_name.empty() ? name : namespace_name + "/" + name);
}

std::string GatewayWatch::object_path(const std::string& kind, const std::string& namespace_name,
                                      const std::string& name) const {
    const Kind* found = find_kind(kind);
    if (found == nullptr || found->version.empty()) return {};
    const std::string base = found->spec.gateway_group ? "/apis/" + std::string(kGroup) + "/" + found->version
                                                       : "/api/" + found->version;
    if (found->spec.namespaced)
        return base + "/namespaces/" + namespace_name + "/" + found->spec.resource + "/" + name;
    return base + "/" + found->spec.resource + "/" + name;
}

std::string GatewayWatch::served_version(const std::string& kind) const {
    const Kind* found = find_kind(kind);
    return found == nullptr ? std::string() : found->version;
}

void GatewayWatch::collection_changed() {
    if (!synced()) return;  // the first complete view goes out when every list is in
    if (!pending_since_) pending_since_ = std::chrono::steady_clock::now();
    loop_.arm_timer_after(notify_timer_, 0);
}

void GatewayWatch::notify() {
    changed_at_ = pending_since_.value_or(std::chrono::steady_clock::now());
    pending_since_.reset();
    for (const auto& kind : kinds_) {
        if (!kind->collection) continue;
        std::map<std::string, Object> good;
        for (const auto& [key, decoded] : kind->collection->objects()) {
            if (decoded.ok()) good.emplace(key, *decoded.value);
            else if (auto had = kind->last_good.find(key); had != kind->last_good.end()) good.emplace(key, had->second);
        }
        kind->last_good = std::move(good);
    }
    update_metrics();
    changed_();
}

void GatewayWatch::collection_failed(const std::string& error) { last_error_ = error; }

void GatewayWatch::collection_recovered() {
    for (const auto& kind : kinds_)
        if (kind->collection && !kind->collection->error().empty()) return;
    last_error_.clear();
}

void GatewayWatch::update_metrics() {
    for (const auto& kind : kinds_) {
        std::size_t valid = 0;
        std::size_t invalid = 0;
        if (kind->collection) {
            for (const auto& [key, decoded] : kind->collection->objects()) {
                if (decoded.ok() && !std::holds_alternative<Ignored>(*decoded.value)) ++valid;
                else ++invalid;
            }
        }
        metrics_.gateway_api_objects.with({kind->spec.kind}).set(metrics_.control_shard(), static_cast<double>(valid));
        metrics_.gateway_api_invalid_objects.with({kind->spec.kind})
            .set(metrics_.control_shard(), static_cast<double>(invalid));
    }
}

}  // namespace passgate::gateway_api
