#pragma once
// Everything a worker needs to route, built once from a validated config off the hot path and
// then shared read-only by every worker: per listener its route table, per route its backends as
// service indexes. Immutable, except for the admission counters it holds for every worker (see
// AdmissionCounters); freed when the last worker and connection let go of it.

#include "config/config.h"
#include "src/observe/app_metrics.h"
#include "src/routing/routing.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace passgate {

struct WeightedService {
    // A Gateway API backendRef that cannot be used (config::BackendRef::invalid): it takes its
    // share of connections and closes them.
    static constexpr std::size_t invalid = static_cast<std::size_t>(-1);
    std::size_t service = 0;  // index into Config::services, or `invalid`
    std::uint32_t weight = 1;
};

struct ListenerPlan {
    const config::Listener* listener = nullptr;
    ListenerRoutes routes;
};

// Counts shared by all workers for the exact listener and route limits (max_connections,
// max_connection_rate), decided in src/proxy/admission.h. Each atomic on its own cache line:
// workers on different cores update them, and nothing else may share their line.
struct ListenerAdmissionCounters {
    alignas(64) std::atomic<std::uint32_t> open{0};  // admitted and not yet closed
    // max_connection_rate: the token bucket as one "theoretical arrival time" (GCRA), in
    // nanoseconds of the loops' monotonic clock; 0 = never used (a full bucket).
    alignas(64) std::atomic<std::uint64_t> rate_next_ns{0};
};
struct RouteAdmissionCounters {
    alignas(64) std::atomic<std::uint32_t> open{0};  // admitted and not yet closed
};

// Every listener's and route's counters, by index of the snapshot's config. A listener or route
// that keeps its name across a reload keeps its counters (the same objects, shared by both
// snapshots), so that connections still open on the old snapshot keep counting.
struct AdmissionCounters {
    std::vector<std::shared_ptr<ListenerAdmissionCounters>> listeners;
    std::vector<std::shared_ptr<RouteAdmissionCounters>> routes;
};

class Snapshot {
public:
    // Creates (or revives) the metric series this config needs, on the calling (control) thread.
    // `previous`: the snapshot this one replaces (nullptr at start), whose admission counters
    // carry over to the listeners and routes of the same name.
    // `files`: the names of the routes' hostnames_file, by route index (nullptr: none read).
    Snapshot(std::shared_ptr<const config::Config> config, AppMetrics& metrics,
             const Snapshot* previous = nullptr, const HostnameFiles* files = nullptr);
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
    // Written by every worker (atomics); the vectors themselves never change.
    ListenerAdmissionCounters& listener_counters(std::size_t listener) const {
        return *admission_.listeners[listener];
    }
    RouteAdmissionCounters& route_counters(std::size_t route) const { return *admission_.routes[route]; }
    const AdmissionCounters& admission_counters() const { return admission_; }

private:
    std::shared_ptr<const config::Config> config_;
    std::vector<ListenerPlan> listeners_;
    std::vector<std::vector<WeightedService>> route_backends_;  // by route index
    SnapshotMetrics metrics_;
    AdmissionCounters admission_;
    std::atomic<std::int64_t>& live_count_;  // AppMetrics::snapshots_live
};

}  // namespace passgate
