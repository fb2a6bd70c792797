#pragma once
// One service's endpoints as one worker balances over them: the published EndpointSet plus this
// worker's own state per endpoint (open connections, passive-health ejection, round-robin score).
// Nothing here is shared between workers. Pure (no I/O; times are passed in).
//
// Algorithms (config key `balance`), and what per-worker state means for each:
// - round_robin: smooth weighted round robin (NGINX's): each worker interleaves by weight on its
//   own; since every worker's sequence follows the weights, so does their sum.
// - least_connections: the endpoint with the fewest open connections per unit of weight, counted
//   by this worker only (no cross-core counters on the hot path). Workers get connections in
//   about equal shares (SO_REUSEPORT hashing) and each balances its own share, so each endpoint's
//   total is about workers x its per-worker count; what a worker cannot see is a skew that
//   another worker created, which its own picks do not correct. Ties rotate.
// - random_two: two endpoints drawn at random by weight, the one with fewer open connections per
//   weight wins (power of two choices); the same per-worker counts. Cheaper than a full scan with
//   many endpoints, and does not herd onto one endpoint when counts are stale.
// - maglev: the key (client IP or SNI) hashed into the Maglev table (src/routing/maglev.h); identical on
//   every worker, so a key lands on the same endpoint whichever worker accepts it. When that
//   endpoint cannot be used (unhealthy, ejected, full, already tried), the next slots of the table
//   are tried in order: only that endpoint's keys move, and they move to the same place on
//   every worker.
//
// Eligibility: weight > 0, not already tried by this connection, below its max_connections share,
// actively healthy and not passively ejected. When no endpoint is healthy and not ejected (the
// whole service looks down), health is ignored for the pick ("panic", as Envoy does at its panic
// threshold): a wrong health verdict must not take the service down, and connect retries still
// skip endpoints that refuse. Panics are counted (passgate_upstream_panic_total).

#include "config/config.h"
#include "src/routing/endpoint_set.h"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace passgate {

// This worker's share of a process-wide connection limit: the limit split evenly over the
// workers, rounded up (listener, route and endpoint max_connections all split this way).
inline std::uint32_t worker_share(std::uint32_t limit, unsigned workers) {
    const std::uint64_t n = workers == 0 ? 1 : workers;
    return static_cast<std::uint32_t>((limit + n - 1) / n);
}

// One endpoint as one worker sees it. Connections hold it (shared_ptr) from pick to close, so it
// outlives a set update that removes the endpoint.
struct EndpointState {
    LiveEndpoint endpoint;
    std::uint32_t open = 0;             // this worker's connections to it (connecting or forwarding)
    unsigned consecutive_failures = 0;  // connect failures in a row (outlier detection)
    unsigned ejections_in_row = 0;      // ejections without a success since: doubles the time
    std::int64_t ejected_until_ms = 0;  // passive ejection: not picked before this time
    std::int64_t score = 0;             // smooth weighted round robin
};
using EndpointRef = std::shared_ptr<EndpointState>;

// This worker's open count of an endpoint, changed only through these: they mirror it (and the
// ejection) into the endpoint's live cells for the admin views.
void add_open(EndpointState& endpoint, std::size_t shard);
void release_open(EndpointState& endpoint, std::size_t shard);
void publish_live(const EndpointState& endpoint, std::size_t shard);

struct PickRequest {
    std::uint64_t key_hash = 0;  // maglev: hash of the client IP or the SNI
    std::int64_t now_ms = 0;
    std::span<const EndpointRef> tried;  // endpoints this connection already tried
};

struct PickResult {
    EndpointRef endpoint;  // null: nothing eligible
    bool panic = false;    // no healthy endpoint: picked ignoring health
};

// The settings of a service that balancing uses (copied: the pool outlives config snapshots).
struct PoolSettings {
    config::Balance balance = config::Balance::round_robin;
    config::HashKey hash_key = config::HashKey::source_ip;
    config::OutlierDetection outlier_detection;
    unsigned workers = 1;  // max_connections is split across them
    std::size_t shard = 0;  // this worker's index: its shard of each endpoint's live cells
    std::uint64_t random_seed = 1;
};

class ServicePool {
public:
    explicit ServicePool(PoolSettings settings);

    // A new config's settings for this service (a reload); endpoint state is kept.
    void configure(const PoolSettings& settings);
    // A newly published set: endpoints that stay keep their state (open counts, ejection).
    void update(std::shared_ptr<const EndpointSet> set);

    PickResult pick(const PickRequest& request);
    // Connect outcomes for outlier detection. on_connect_failure returns true when this failure
    // ejected the endpoint (for counting and logging).
    void on_connected(EndpointState& endpoint);
    bool on_connect_failure(EndpointState& endpoint, std::int64_t now_ms);

    const PoolSettings& settings() const { return settings_; }
    const std::vector<EndpointRef>& endpoints() const { return endpoints_; }
    const EndpointSet* set() const { return set_.get(); }

private:
    bool usable(const EndpointState& endpoint, const PickRequest& request, bool ignore_health) const;
    EndpointRef pick_round_robin(const PickRequest& request, bool ignore_health);
    EndpointRef pick_least_connections(const PickRequest& request, bool ignore_health);
    EndpointRef pick_random_two(const PickRequest& request, bool ignore_health);
    EndpointRef pick_maglev(const PickRequest& request, bool ignore_health);
    std::uint64_t next_random();

    PoolSettings settings_;
    std::shared_ptr<const EndpointSet> set_;
    std::vector<EndpointRef> endpoints_;  // in the set's order
    std::size_t rotation_ = 0;            // least_connections tie-break
    std::uint64_t random_state_;
};

}  // namespace passgate
