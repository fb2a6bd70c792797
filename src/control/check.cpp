#include "src/control/check.h"

#include "config/hostname.h"
#include "src/discovery/kubernetes_credentials.h"
#include "src/routing/routing.h"

#include <stdexcept>

namespace passgate {

namespace {
std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) {
        if (!out.empty()) out += ", ";
        out += item;
    }
    return out;
}
}  // namespace

std::string describe_config(const config::Config& config) {
    std::string out = config.source + ": OK\n";
    out += "listeners: " + std::to_string(config.listeners.size()) + "\n";
    for (const config::Listener& listener : config.listeners) {
        out += "  " + listener.name + " " + listener.address.to_string();
        if (listener.hostname) out += " hostname=" + *listener.hostname;
        if (listener.default_route) out += " default_route=" + *listener.default_route;
        if (!listener.origin.empty()) out += " (from " + listener.origin + ")";
        out += "\n";
        const ListenerRoutes routes(config, listener);
        for (const ListenerRoutes::Attached& attached : routes.attached()) {
            out += "    route " + attached.route->name + ": ";
            if (attached.effective_hostnames.empty()) out += "(default route only)";
            else if (attached.effective_hostnames.front() == config::match_all_hostnames)
                out += "* (every hostname, lowest precedence)";
            else out += join(attached.effective_hostnames);
            if (!attached.route->alpn.empty()) out += " alpn=" + join(attached.route->alpn);
            if (!attached.route->origin.empty()) out += " (from " + attached.route->origin + ")";
            out += "\n";
        }
    }
    out += "routes: " + std::to_string(config.routes.size()) + "\n";
    out += "services: " + std::to_string(config.services.size()) + "\n";
    for (const config::Service& service : config.services) {
        std::vector<std::string> endpoints;
        for (const config::Endpoint& endpoint : service.endpoints)
            endpoints.push_back(endpoint.address.to_string() +
                                (endpoint.weight != 1 ? " weight=" + std::to_string(endpoint.weight) : ""));
        out += "  " + service.name + ": " +
               (service.discovery == config::Discovery::static_list ? join(endpoints)
                                                                    : config::describe_discovery(service)) +
               "\n";
    }
    return out;
}

bool check_kubernetes(const config::Config& config, std::ostream& out, std::ostream& errors) {
    if (!config.kubernetes.configured) return true;
    try {
        const KubernetesCredentials credentials = load_kubernetes_credentials(config.kubernetes);
        out << "kubernetes: " << credentials.description
            << ": credentials OK (the API server was not contacted)\n";
        return true;
    } catch (const std::runtime_error& error) {
        errors << config.source << ":" << config.kubernetes.line << ": kubernetes: " << error.what() << '\n';
        return false;
    }
}

}  // namespace passgate
