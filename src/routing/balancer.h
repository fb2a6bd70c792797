#pragma once
// Per-worker route balancing state for one snapshot. Each worker keeps its own state (no sharing
// between cores), so smooth weighted round robin interleaves per worker: over all workers the
// split still follows the weights, since each worker's sequence does.
//
// Smooth weighted round robin (as in NGINX): every pick adds each candidate's weight to its
// running score, takes the highest, and subtracts the total from the winner. Weight 0 is never
// picked.

#include "src/routing/snapshot.h"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace passgate {

class SmoothWeightedRoundRobin {
public:
    explicit SmoothWeightedRoundRobin(std::vector<std::uint32_t> weights);
    // Index of the next pick, skipping those in `exclude`; nullopt if none is eligible.
    std::optional<std::size_t> pick(std::span<const std::size_t> exclude = {});
    std::size_t size() const { return weights_.size(); }

private:
    std::vector<std::uint32_t> weights_;
    std::vector<std::int64_t> scores_;
};

// Which service of a route takes a connection, by the route's backend weights (one smooth
// weighted round robin per route, per worker). Endpoints are picked by the service's ServicePool.
class Balancer {
public:
    explicit Balancer(const Snapshot& snapshot);
    // The service index, WeightedService::invalid (an invalid backendRef's share), or nullopt
    // when every backend has weight 0.
    std::optional<std::size_t> pick_service(std::size_t route);

private:
    const Snapshot& snapshot_;
    std::vector<SmoothWeightedRoundRobin> routes_;  // by route index
};

}  // namespace passgate
