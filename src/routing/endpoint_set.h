#pragma once
// A service's endpoints at one moment, as the control thread publishes them to every worker:
// what discovery found (static list, DNS, endpoints file), with each endpoint's active health
// verdict and metric handles, and the Maglev table when the service hashes. Immutable: a change
// (new DNS answer, file rewritten, an endpoint turning unhealthy) publishes a new set; connections
// already established are untouched by it.

#include "config/address.h"
#include "metrics/sharded_cells.h"
#include "src/observe/app_metrics.h"
#include "src/routing/maglev.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace passgate {

// The cells of LiveEndpoint::live, per worker (shard = worker index): what that worker's own state
// of the endpoint is now, for the admin views (GET /endpoints). Only the owning worker writes its
// shard; the control thread reads each shard with a relaxed load. Never rendered in /metrics.
struct EndpointLiveCell {
    static constexpr std::size_t open = 0;              // the worker's open connections to it
    static constexpr std::size_t ejected_until_ms = 1;  // monotonic ms its outlier ejection ends (0: never)
    static constexpr std::size_t count = 2;
};

struct LiveEndpoint {
    config::Address address;
    std::string name;  // address text: metric label, access log
    std::uint32_t weight = 1;
    std::optional<std::uint32_t> max_connections;  // for the whole process; split across workers
    bool healthy = true;  // the active health check's verdict (true when the service has none)
    EndpointMetrics metrics;
    // Per-worker live state (EndpointLiveCell), one object per endpoint while it stays in its
    // service's sets; null in sets not built by the directory (tests).
    std::shared_ptr<const metrics::ShardedCells> live;
    // Unix seconds: when the endpoint appeared, or its weight, max_connections or health last changed.
    double last_change = 0;
};

struct EndpointSet {
    std::string service;  // the service's name: workers find their pool by it
    std::vector<LiveEndpoint> endpoints;  // sorted by address text: stable order
    // Built over every endpoint of weight > 0 (healthy or not: unhealthy ones are skipped at pick
    // time, so health flapping moves only the keys of the endpoint that flapped).
    std::shared_ptr<const MaglevTable> maglev;
    // Increases with every set the directory builds (over all services): a worker never replaces
    // a set with an older one.
    std::uint64_t version = 0;
    // When the control thread first saw the change this set carries (Kubernetes: the first watch
    // event of the burst; other sources: when the set was built). Workers observe now minus this
    // as passgate_endpoint_update_delay_seconds when they install the set.
    std::chrono::steady_clock::time_point changed_at{};
};

}  // namespace passgate
