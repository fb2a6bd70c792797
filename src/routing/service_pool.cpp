#include "src/routing/service_pool.h"

#include <algorithm>
#include <unordered_map>

namespace passgate {

void publish_live(const EndpointState& endpoint, std::size_t shard) {
    const metrics::ShardedCells* live = endpoint.endpoint.live.get();
    if (live == nullptr || shard >= live->shards()) return;
    live->store(shard, EndpointLiveCell::open, endpoint.open);
    live->store(shard, EndpointLiveCell::ejected_until_ms, static_cast<std::uint64_t>(std::max<std::int64_t>(
                                                                endpoint.ejected_until_ms, 0)));
}

void add_open(EndpointState& endpoint, std::size_t shard) {
    ++endpoint.open;
    publish_live(endpoint, shard);
}

void release_open(EndpointState& endpoint, std::size_t shard) {
    --endpoint.open;
    publish_live(endpoint, shard);
}

ServicePool::ServicePool(PoolSettings settings)
    : settings_(settings), random_state_(settings.random_seed | 1) {}

void ServicePool::configure(const PoolSettings& settings) {
    const std::uint64_t state = random_state_;
    settings_ = settings;
    random_state_ = state;  // keep the sequence going; the seed only starts it
}

void ServicePool::update(std::shared_ptr<const EndpointSet> set) {
    if (set_ && set->version < set_->version) return;  // a late, superseded set
    std::unordered_map<std::string_view, EndpointRef> previous;
    for (EndpointRef& endpoint : endpoints_) previous.emplace(endpoint->endpoint.name, std::move(endpoint));
    std::vector<EndpointRef> next;
    next.reserve(set->endpoints.size());
    for (const LiveEndpoint& live : set->endpoints) {
        const auto kept = previous.find(live.name);
        const bool fresh = kept == previous.end();
        EndpointRef state = fresh ? std::make_shared<EndpointState>() : kept->second;
        // New cells (a reload that restarted the service's discovery) get this worker's state.
        const bool new_cells = fresh || state->endpoint.live != live.live;
        state->endpoint = live;
        if (new_cells) publish_live(*state, settings_.shard);
        next.push_back(std::move(state));
    }
    endpoints_ = std::move(next);
    set_ = std::move(set);
}

namespace {
bool contains(std::span<const EndpointRef> tried, const EndpointState& endpoint) {
    return std::any_of(tried.begin(), tried.end(),
                       [&](const EndpointRef& ref) { return ref.get() == &endpoint; });
}

// a.open / a.weight < b.open / b.weight, without division (weights are > 0 here).
bool fewer_per_weight(const EndpointState& a, const EndpointState& b) {
    return std::uint64_t{a.open} * b.endpoint.weight < std::uint64_t{b.open} * a.endpoint.weight;
}
}  // namespace

bool ServicePool::usable(const EndpointState& endpoint, const PickRequest& request,
                         bool ignore_health) const {
    if (endpoint.endpoint.weight == 0) return false;
    if (endpoint.endpoint.max_connections &&
        endpoint.open >= worker_share(*endpoint.endpoint.max_connections, settings_.workers))
        return false;
    if (!ignore_health && (!endpoint.endpoint.healthy || endpoint.ejected_until_ms > request.now_ms))
        return false;
    return !contains(request.tried, endpoint);
}

PickResult ServicePool::pick(const PickRequest& request) {
    PickResult result;
    bool any_weight = false;
    bool any_healthy = false;
    for (const EndpointRef& endpoint : endpoints_) {
        if (endpoint->endpoint.weight == 0) continue;
        any_weight = true;
        if (endpoint->endpoint.healthy && endpoint->ejected_until_ms <= request.now_ms) {
            any_healthy = true;
            break;
        }
    }
    if (!any_weight) return result;
    result.panic = !any_healthy;
    switch (settings_.balance) {
        case config::Balance::round_robin:
            result.endpoint = pick_round_robin(request, result.panic);
            break;
        case config::Balance::least_connections:
            result.endpoint = pick_least_connections(request, result.panic);
            break;
        case config::Balance::random_two:
            result.endpoint = pick_random_two(request, result.panic);
            break;
        case config::Balance::maglev:
            result.endpoint = pick_maglev(request, result.panic);
            break;
    }
    return result;
}

// Smooth weighted round robin: every usable endpoint gains its weight, the highest score wins
// and pays the total back.
EndpointRef ServicePool::pick_round_robin(const PickRequest& request, bool ignore_health) {
    std::int64_t total = 0;
    EndpointState* best = nullptr;
    std::size_t best_index = 0;
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
        EndpointState& endpoint = *endpoints_[i];
        if (!usable(endpoint, request, ignore_health)) continue;
        endpoint.score += endpoint.endpoint.weight;
        total += endpoint.endpoint.weight;
        if (best == nullptr || endpoint.score > best->score) {
            best = &endpoint;
            best_index = i;
        }
    }
    if (best == nullptr) return nullptr;
    best->score -= total;
    return endpoints_[best_index];
}

EndpointRef ServicePool::pick_least_connections(const PickRequest& request, bool ignore_health) {
    const std::size_t count = endpoints_.size();
    if (count == 0) return nullptr;
    // Start the scan at a rotating position so that ties spread instead of all going to the first.
    const std::size_t start = rotation_++ % count;
    std::size_t best = count;
    for (std::size_t step = 0; step < count; ++step) {
        const std::size_t i = (start + step) % count;
        if (!usable(*endpoints_[i], request, ignore_health)) continue;
        if (best == count || fewer_per_weight(*endpoints_[i], *endpoints_[best])) best = i;
    }
    return best == count ? nullptr : endpoints_[best];
}

std::uint64_t ServicePool::next_random() {
    // xorshift64*: fast, good enough to spread picks, and per worker (no shared state).
    random_state_ ^= random_state_ >> 12;
    random_state_ ^= random_state_ << 25;
    random_state_ ^= random_state_ >> 27;
    return random_state_ * 0x2545F4914F6CDD1Dull;
}

EndpointRef ServicePool::pick_random_two(const PickRequest& request, bool ignore_health) {
    std::uint64_t total = 0;
    std::size_t usable_count = 0;
    for (const EndpointRef& endpoint : endpoints_) {
        if (!usable(*endpoint, request, ignore_health)) continue;
        total += endpoint->endpoint.weight;
        ++usable_count;
    }
    if (usable_count == 0) return nullptr;
    // A draw by weight; the second excludes the first when there is another choice.
    auto draw = [&](const EndpointState* exclude) -> std::size_t {
        const std::uint64_t excluded = exclude != nullptr ? exclude->endpoint.weight : 0;
        std::uint64_t ticket = next_random() % (total - excluded);
        for (std::size_t i = 0; i < endpoints_.size(); ++i) {
            const EndpointState& endpoint = *endpoints_[i];
            if (&endpoint == exclude || !usable(endpoint, request, ignore_health)) continue;
            if (ticket < endpoint.endpoint.weight) return i;
            ticket -= endpoint.endpoint.weight;
        }
        return endpoints_.size();  // not reached: the tickets add up to the total
    };
    const std::size_t first = draw(nullptr);
    if (first == endpoints_.size()) return nullptr;
    if (usable_count == 1) return endpoints_[first];
    const std::size_t second = draw(endpoints_[first].get());
    if (second == endpoints_.size()) return endpoints_[first];
    return fewer_per_weight(*endpoints_[second], *endpoints_[first]) ? endpoints_[second]
                                                                      : endpoints_[first];
}

EndpointRef ServicePool::pick_maglev(const PickRequest& request, bool ignore_health) {
    if (!set_ || !set_->maglev) return pick_round_robin(request, ignore_health);
    if (std::none_of(endpoints_.begin(), endpoints_.end(), [&](const EndpointRef& endpoint) {
            return usable(*endpoint, request, ignore_health);
        }))
        return nullptr;
    const MaglevTable& table = *set_->maglev;
    std::uint32_t slot = table.slot_of(request.key_hash);
    // Walk on from the key's slot: the next owners are a fixed sequence per key, the same on
    // every worker. Bounded by the table size (a usable endpoint with no slot ends the walk).
    for (std::uint32_t step = 0; step < table.size(); ++step) {
        const std::int32_t owner = table.owner(slot);
        if (owner >= 0 && static_cast<std::size_t>(owner) < endpoints_.size() &&
            usable(*endpoints_[static_cast<std::size_t>(owner)], request, ignore_health))
            return endpoints_[static_cast<std::size_t>(owner)];
        slot = slot + 1 == table.size() ? 0 : slot + 1;
    }
    return nullptr;
}

void ServicePool::on_connected(EndpointState& endpoint) {
    endpoint.consecutive_failures = 0;
    endpoint.ejections_in_row = 0;
}

bool ServicePool::on_connect_failure(EndpointState& endpoint, std::int64_t now_ms) {
    const config::OutlierDetection& outlier = settings_.outlier_detection;
    if (outlier.consecutive_failures == 0) return false;
    if (++endpoint.consecutive_failures < outlier.consecutive_failures) return false;
    endpoint.consecutive_failures = 0;
    // base * 2^(ejections in a row), at most max; the shift is bounded so it cannot overflow.
    const unsigned doublings = std::min(endpoint.ejections_in_row, 30u);
    const std::int64_t base = outlier.base_ejection_time.count();
    const std::int64_t max = outlier.max_ejection_time.count();
    const std::int64_t time = base > (max >> doublings) ? max : std::min(max, base << doublings);
    endpoint.ejected_until_ms = now_ms + time;
    ++endpoint.ejections_in_row;
    publish_live(endpoint, settings_.shard);
    return true;
}

}  // namespace passgate
