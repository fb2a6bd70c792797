#pragma once
// The admin address's read-only JSON views (README "Live view"): GET /config (the effective
// configuration), GET /listeners (each listener with its open connections and limits) and
// GET /endpoints (each service's endpoints with health, ejections and open connections summed
// over the workers). Built on the control thread at request time from immutable snapshots and
// the workers' live cells (relaxed reads, no lock); the work is bounded by the config's size.

#include "config/config.h"
#include "src/routing/endpoint_set.h"
#include "src/routing/snapshot.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace passgate {

// GET /config: {"source", "hash", "loaded_at", "config"}.
nlohmann::ordered_json config_view(const config::Config& config, double loaded_at);

// GET /listeners. `snapshot`: the newest (its admission counters count every open connection of
// a listener, on whichever snapshot it was accepted).
nlohmann::ordered_json listeners_view(const Snapshot& snapshot, unsigned workers,
                                      std::uint32_t max_connections_per_worker);

// One service as the endpoint directory has it now.
struct ServiceEndpoints {
    const config::Service* service = nullptr;
    std::shared_ptr<const EndpointSet> set;  // null: none yet (a DNS name not answered yet)
    std::optional<double> last_update;
};

// GET /endpoints. `now_ms`: the monotonic clock of the workers' loops (an ejection counts while
// its end is later than this).
nlohmann::ordered_json endpoints_view(const std::vector<ServiceEndpoints>& services, unsigned workers,
                                      std::int64_t now_ms);

}  // namespace passgate
