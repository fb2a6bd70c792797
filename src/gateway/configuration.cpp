#include "src/gateway/configuration.h"

#include "src/gateway/manifests.h"
#include "src/gateway/translate.h"

namespace passgate::gateway_api {

config::Config load_configuration(const std::string& path, std::string* summary) {
    config::Config base = config::load_config_file(path);
    if (!base.gateway_api.configured || base.gateway_api.watch) return base;
    LoadedManifests manifests;
    try {
        manifests = load_manifests(base.gateway_api.manifests);
    } catch (const ManifestError& error) {
        throw config::ConfigError(error.what());
    }
    const std::string hash = config::config_hash(base.source_hash + manifests.hash);
    const Translation translation = translate(base, manifests.objects);
    if (summary != nullptr) {
        const ObjectSet& o = manifests.objects;
        *summary = "gateway_api: " + std::to_string(manifests.files.size()) + " manifest file(s): " +
                   std::to_string(o.gateway_classes.size()) + " GatewayClass, " +
                   std::to_string(o.gateways.size()) + " Gateway, " + std::to_string(o.tls_routes.size()) +
                   " TLSRoute, " + std::to_string(o.reference_grants.size()) + " ReferenceGrant, " +
                   std::to_string(o.services.size()) + " Service, " + std::to_string(o.namespaces.size()) +
                   " Namespace; " + std::to_string(manifests.ignored) + " document(s) of other kinds ignored";
    }
    config::Config merged = merge_gateway_config(std::move(base), translation);
    merged.source_hash = hash;
    return merged;
}

}  // namespace passgate::gateway_api
