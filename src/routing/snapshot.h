#pragma once
// Everything a worker needs to route, built once from a validated config off the hot path and
// then shared read-only by every worker: per listener its route table, per route its backends as
// service indexes. Immutable; freed when the last worker and connection let go of it.

#include "config/config.h"
#include "src/observe/app_metrics.h"
#include "src/routing/routing.h"

#include <cstddef>
#include <memory>
#include <vector>

namespace passgate {

struct WeightedService {
    std::size_t service = 0;  // index into Config::services
    std::uint32_t weight = 1;
};

struct ListenerPlan {
    const config::Listener* listener = nullptr;
    ListenerRoutes routes;
};

class Snapshot {
public:
    // Creates (or revives) the metric series this config needs, on the calling (control) thread.
    Snapshot(std::shared_ptr<const config::Config> config, AppMetrics& metrics);
    ~Snapshot();
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;

    const config::Config& config() const { return *config_; }
    const std::vector<ListenerPlan>& listeners() const { return listeners_; }
    std::size_t route_index(const config::Route* route) const {
        return static_cast<std::size_t>(route - config_->routes.data());
    }
    const std::vector<WeightedService>& backends_of(std::size_t route) const {
        return route_backends_[route];
    }
    const SnapshotMetrics& metrics() const { return metrics_; }

private:
    std::shared_ptr<const config::Config> config_;
    std::vector<ListenerPlan> listeners_;
    std::vector<std::vector<WeightedService>> route_backends_;  // by route index
    SnapshotMetrics metrics_;
    std::atomic<std::int64_t>& live_count_;  // AppMetrics::snapshots_live
};

}  // namespace passgate
