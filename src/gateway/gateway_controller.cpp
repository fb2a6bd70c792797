#include "src/gateway/gateway_controller.h"

#include "src/discovery/http_client.h"
#include "src/discovery/kubernetes_credentials.h"
#include "src/gateway/gateway_watch.h"
#include "src/gateway/status_writer.h"
#include "src/gateway/translate.h"
#include "src/observe/log.h"

#include <algorithm>
#include <vector>

namespace passgate::gateway_api {

namespace {

// What identifies the objects' content: per object its kind, name and version, sorted. For the
// kinds passgate writes status to, the version is the object without its status and metadata
// bookkeeping: passgate's own status writes change their resourceVersion, and must not make a
// new configuration (nor a reinstall per write). For the others, the resourceVersion.
template <typename T>
void add_versions(std::vector<std::string>& out, const std::string& kind, const std::vector<Sourced<T>>& objects,
                  const GatewayWatch* watch) {
    for (const Sourced<T>& item : objects) {
        const auto& meta = item.object.metadata;
        std::string version = meta.resource_version;
        if (watch != nullptr) {
            if (const nlohmann::json* raw = watch->raw_object(kind, meta.namespace_name, meta.name)) {
                nlohmann::json content = *raw;
                content.erase("status");
                if (content.contains("metadata") && content["metadata"].is_object()) {
                    content["metadata"].erase("resourceVersion");
                    content["metadata"].erase("managedFields");
                }
                version = config::config_hash(content.dump());
            }
        }
        out.push_back(kind + "/" + meta.namespace_name + "/" + meta.name + "@" + version);
    }
}

std::string objects_fingerprint(const ObjectSet& objects, const GatewayWatch& watch) {
    std::vector<std::string> versions;
    add_versions(versions, "GatewayClass", objects.gateway_classes, &watch);
    add_versions(versions, "Gateway", objects.gateways, &watch);
    add_versions(versions, "TLSRoute", objects.tls_routes, &watch);
    add_versions(versions, "ReferenceGrant", objects.reference_grants, nullptr);
    add_versions(versions, "Service", objects.services, nullptr);
    add_versions(versions, "Namespace", objects.namespaces, nullptr);
    std::sort(versions.begin(), versions.end());
    std::string out;
    for (const std::string& version : versions) out += version + "\n";
    return out;
}

}  // namespace

struct GatewayController::Parts {
    config::GatewayApi settings;
    KubernetesCredentials credentials;
    // Declared in this order so that the writer and the watch, which hold requests of the
    // client, go before it.
    std::unique_ptr<HttpClient> client;
    std::unique_ptr<GatewayWatch> watch;
    std::unique_ptr<StatusWriter> writer;
    Statuses last_statuses;            // of the last merged()
    std::vector<std::string> logged;   // the problems logged last (logged again when they change)
};

GatewayController::GatewayController(reactor::Loop& loop, const config::Config& config, AppMetrics& metrics,
                                     Changed changed)
    : parts_(std::make_unique<Parts>()) {
    Parts& p = *parts_;
    p.settings = config.gateway_api;
    p.credentials = load_kubernetes_credentials(config.kubernetes);
    p.client = std::make_unique<HttpClient>(loop);
    log_line(LogLevel::info, "gateway_api: watching the Gateway API objects of " + p.credentials.description +
                                 " for GatewayClass " + p.settings.gateway_classes.front() +
                                 (p.settings.gateway_classes.size() > 1 ? " and others" : ""));
    p.watch = std::make_unique<GatewayWatch>(loop, *p.client, p.credentials, config.kubernetes, metrics,
                                             std::move(changed));
    p.writer = std::make_unique<StatusWriter>(loop, *p.client, p.credentials, config.kubernetes, p.settings, metrics);
}

GatewayController::~GatewayController() = default;

bool GatewayController::synced() const { return parts_->watch->synced(); }
const std::string& GatewayController::last_error() const { return parts_->watch->last_error(); }

config::Config GatewayController::merged(const config::Config& base) {
    Parts& p = *parts_;
    const ObjectSet objects = p.watch->objects();
    Translation translation = translate(base, objects);
    std::vector<std::string> problems = p.watch->invalid_objects();
    problems.insert(problems.end(), translation.errors.begin(), translation.errors.end());
    if (problems != p.logged) {
        for (const std::string& problem : problems)
            log_line(LogLevel::warning, "gateway_api: left out: " + problem);
        p.logged = problems;
    }
    // Watch mode serves what is valid; the invalid objects' statuses say why they are left out.
    translation.errors.clear();
    p.last_statuses = translation.statuses;
    config::Config merged = merge_gateway_config(base, translation);
    merged.source_hash = config::config_hash(base.source_hash + "\n" + objects_fingerprint(objects, *p.watch));
    return merged;
}

void GatewayController::installed() {
    if (!applied_) log_line(LogLevel::info, "gateway_api: the cluster's objects are applied");
    applied_ = true;
    parts_->writer->publish(parts_->last_statuses, *parts_->watch);
}

}  // namespace passgate::gateway_api
