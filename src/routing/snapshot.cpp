#include "src/routing/snapshot.h"

#include <stdexcept>

namespace passgate {

Snapshot::Snapshot(std::shared_ptr<const config::Config> config, AppMetrics& metrics)
    : config_(std::move(config)), metrics_(metrics, *config_), live_count_(metrics.snapshots_live) {
    const config::Config& cfg = *config_;
    listeners_.reserve(cfg.listeners.size());
    for (const config::Listener& listener : cfg.listeners)
        listeners_.push_back(ListenerPlan{&listener, ListenerRoutes(cfg, listener)});
    route_backends_.resize(cfg.routes.size());
    for (std::size_t route = 0; route < cfg.routes.size(); ++route) {
        for (const config::BackendRef& backend : cfg.routes[route].backends) {
            const config::Service* service = cfg.find_service(backend.service);
            // Config validation guarantees the service exists; a miss here is a programming error.
            if (service == nullptr) throw std::logic_error("unvalidated backend " + backend.service);
            route_backends_[route].push_back(WeightedService{
                static_cast<std::size_t>(service - cfg.services.data()), backend.weight});
        }
    }
    live_count_.fetch_add(1, std::memory_order_relaxed);
}

Snapshot::~Snapshot() { live_count_.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace passgate
