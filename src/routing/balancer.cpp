#include "src/routing/balancer.h"

#include <algorithm>

namespace passgate {

SmoothWeightedRoundRobin::SmoothWeightedRoundRobin(std::vector<std::uint32_t> weights)
    : weights_(std::move(weights)), scores_(weights_.size(), 0) {}

std::optional<std::size_t> SmoothWeightedRoundRobin::pick(std::span<const std::size_t> exclude) {
    std::int64_t total = 0;
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
        if (weights_[i] == 0) continue;
        if (std::find(exclude.begin(), exclude.end(), i) != exclude.end()) continue;
        scores_[i] += weights_[i];
        total += weights_[i];
        if (!best || scores_[i] > scores_[*best]) best = i;
    }
    if (best) scores_[*best] -= total;
    return best;
}

Balancer::Balancer(const Snapshot& snapshot) : snapshot_(snapshot) {
    const config::Config& config = snapshot.config();
    for (std::size_t route = 0; route < config.routes.size(); ++route) {
        std::vector<std::uint32_t> weights;
        for (const WeightedService& backend : snapshot.backends_of(route))
            weights.push_back(backend.weight);
        routes_.emplace_back(std::move(weights));
    }
}

std::optional<std::size_t> Balancer::pick_service(std::size_t route) {
    const std::optional<std::size_t> backend = routes_[route].pick();
    if (!backend) return std::nullopt;
    return snapshot_.backends_of(route)[*backend].service;
}

}  // namespace passgate
