#include "config/warnings.h"

#include "config/hostname.h"
#include "config/toml_reader.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace passgate::config::detail {

namespace {

class Collector {
public:
    explicit Collector(const Config& config) : config_(config) {}

    // About a listener, route or service: at its TOML line, or at the object it was made from.
    template <typename Item>
    void add(const Item& item, const std::string& message) {
        if (!item.origin.empty()) out_.push_back(item.origin + ": " + message);
        else out_.push_back(config_.source + ":" + std::to_string(item.line) + ": " + message);
    }
    std::vector<std::string> take() { return std::move(out_); }

private:
    const Config& config_;
    std::vector<std::string> out_;
};

}  // namespace

std::vector<std::string> collect_warnings(const Config& config) {
    Collector warnings(config);

    // Routes that attach nowhere (or not everywhere they say).
    std::vector<bool> listener_has_routes(config.listeners.size(), false);
    for (const Route& route : config.routes) {
        for (const std::string& listener_name : route.listeners) {
            const auto it = std::find_if(config.listeners.begin(), config.listeners.end(),
                                         [&](const Listener& l) { return l.name == listener_name; });
            if (it == config.listeners.end()) continue;  // not validated; nothing to say
            const Listener& listener = *it;
            const bool is_default = listener.default_route == route.name;
            const auto effective = attached_hostnames(listener, route);
            // A hostnames_file's names are not known here (src/routing reads them): may attach.
            if (is_default || !effective.empty() || !route.hostnames_file.empty()) {
                listener_has_routes[static_cast<std::size_t>(it - config.listeners.begin())] = true;
            }
            if (!route.hostnames.empty() && effective.empty() && !is_default &&
                listener.hostname) {
                warnings.add(route, "route " + quote(route.name) +
                                             " has no hostname that intersects listener " +
                                             quote(listener.name) + " hostname " +
                                             quote(*listener.hostname) + "; not attached to " +
                                             quote(listener.name));
            }
        }
    }

    // Hostnames shadowed by an earlier route on the same listener: with the same effective
    // hostname and neither route having an `alpn` list, the route defined first always wins
    // (src/routing/routing.h), so the later one never gets that hostname there. Per listener, the first
    // route without `alpn` that has each effective hostname.
    std::vector<std::vector<std::pair<std::string, const Route*>>> first_without_alpn(
        config.listeners.size());
    for (const Route& route : config.routes) {
        if (!route.alpn.empty()) continue;
        for (const std::string& listener_name : route.listeners) {
            const auto it = std::find_if(config.listeners.begin(), config.listeners.end(),
                                         [&](const Listener& l) { return l.name == listener_name; });
            if (it == config.listeners.end()) continue;
            auto& claimed = first_without_alpn[static_cast<std::size_t>(it - config.listeners.begin())];
            for (const std::string& hostname : attached_hostnames(*it, route)) {
                const auto first = std::find_if(claimed.begin(), claimed.end(),
                                                [&](const auto& entry) { return entry.first == hostname; });
                if (first == claimed.end()) {
                    claimed.emplace_back(hostname, &route);
                    continue;
                }
                warnings.add(route, "route " + quote(route.name) + " hostname " + quote(hostname) +
                                             " on listener " + quote(it->name) +
                                             " is shadowed by route " + quote(first->second->name) +
                                             " (defined first, same hostname); it never matches there");
            }
        }
    }

    for (std::size_t i = 0; i < config.listeners.size(); ++i) {
        if (listener_has_routes[i]) continue;
        const Listener& listener = config.listeners[i];
        warnings.add(listener, "listener " + quote(listener.name) +
                                        " has no routes attached and no default_route; every "
                                        "connection to it is closed");
    }

    for (const Service& service : config.services) {
        const bool used =
            std::any_of(config.routes.begin(), config.routes.end(), [&](const Route& route) {
                return std::any_of(route.backends.begin(), route.backends.end(),
                                   [&](const BackendRef& b) { return b.service == service.name; });
            });
        if (!used) {
            warnings.add(service, "service " + quote(service.name) + " is not used by any route");
        }
        if (service.discovery == Discovery::static_list &&
            std::all_of(service.endpoints.begin(), service.endpoints.end(),
                        [](const Endpoint& e) { return e.weight == 0; })) {
            warnings.add(service, "service " + quote(service.name) +
                                           ": every endpoint has weight 0; connections routed to "
                                           "it are rejected");
        }
    }
    return warnings.take();
}

}  // namespace passgate::config::detail

namespace passgate::config {
std::vector<std::string> config_warnings(const Config& config) { return detail::collect_warnings(config); }
}  // namespace passgate::config
