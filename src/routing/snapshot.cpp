#include "src/routing/snapshot.h"

#include <stdexcept>

namespace passgate {

namespace {
// The counters of the listener / route named `name` in `previous`, else fresh ones.
std::shared_ptr<ListenerAdmissionCounters> listener_counters_for(const Snapshot* previous,
                                                                 const std::string& name) {
    if (previous != nullptr)
        if (const config::Listener* had = previous->config().find_listener(name))
            return previous->admission_counters().listeners[static_cast<std::size_t>(
                had - previous->config().listeners.data())];
    return std::make_shared<ListenerAdmissionCounters>();
}
std::shared_ptr<RouteAdmissionCounters> route_counters_for(const Snapshot* previous,
                                                           const std::string& name) {
    if (previous != nullptr)
        if (const config::Route* had = previous->config().find_route(name))
            return previous->admission_counters().routes[previous->route_index(had)];
    return std::make_shared<RouteAdmissionCounters>();
}
}  // namespace

Snapshot::Snapshot(std::shared_ptr<const config::Config> config, AppMetrics& metrics,
                   const Snapshot* previous, const HostnameFiles* files)
    : config_(std::move(config)), metrics_(metrics, *config_), live_count_(metrics.snapshots_live) {
    const config::Config& cfg = *config_;
    listeners_.reserve(cfg.listeners.size());
    for (const config::Listener& listener : cfg.listeners)
        listeners_.push_back(ListenerPlan{&listener, ListenerRoutes(cfg, listener, files)});
    route_backends_.resize(cfg.routes.size());
    for (std::size_t route = 0; route < cfg.routes.size(); ++route) {
        for (const config::BackendRef& backend : cfg.routes[route].backends) {
            if (!backend.invalid.empty()) {
                route_backends_[route].push_back(WeightedService{WeightedService::invalid, backend.weight});
                continue;
            }
            const config::Service* service = cfg.find_service(backend.service);
            // Config validation guarantees the service exists; a miss here is a programming error.
            if (service == nullptr) throw std::logic_error("unvalidated backend " + backend.service);
            route_backends_[route].push_back(WeightedService{
                static_cast<std::size_t>(service - cfg.services.data()), backend.weight});
        }
    }
    for (const config::Listener& listener : cfg.listeners)
        admission_.listeners.push_back(listener_counters_for(previous, listener.name));
    for (const config::Route& route : cfg.routes)
        admission_.routes.push_back(route_counters_for(previous, route.name));
    live_count_.fetch_add(1, std::memory_order_relaxed);
}

Snapshot::~Snapshot() { live_count_.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace passgate
