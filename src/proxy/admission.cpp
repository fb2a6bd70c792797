#include "src/proxy/admission.h"

#include <algorithm>

namespace passgate {

// Relaxed ordering throughout: the counts publish no other data, and each count is one atomic
// whose modification order alone keeps it exact.

bool take_slot(std::atomic<std::uint32_t>& open, std::uint32_t limit) {
    std::uint32_t taken = open.load(std::memory_order_relaxed);
    do {
        if (taken >= limit) return false;
    } while (!open.compare_exchange_weak(taken, taken + 1, std::memory_order_relaxed));
    return true;
}

void count_slot(std::atomic<std::uint32_t>& open) { open.fetch_add(1, std::memory_order_relaxed); }

void release_slot(std::atomic<std::uint32_t>& open) {
    std::uint32_t taken = open.load(std::memory_order_relaxed);
    while (taken > 0 && !open.compare_exchange_weak(taken, taken - 1, std::memory_order_relaxed)) {
    }
}

bool take_rate_token(std::atomic<std::uint64_t>& next_ns, std::uint32_t per_second, std::uint64_t now_ns) {
    if (per_second == 0) return false;  // config validation keeps it at 1 or more
    const std::uint64_t interval = 1'000'000'000ull / per_second;
    // A burst of per_second connections at once (the bucket's size), as before the limits
    // became exact: the per_second-th one is admitted (per_second - 1) intervals ahead.
    const std::uint64_t tolerance = interval * (per_second - 1);
    std::uint64_t next = next_ns.load(std::memory_order_relaxed);
    for (;;) {
        const std::uint64_t start = std::max(next, now_ns);  // an idle bucket refills up to full
        if (start - now_ns > tolerance) return false;
        if (next_ns.compare_exchange_weak(next, start + interval, std::memory_order_relaxed)) return true;
    }
}

namespace {

// Index in `current` of the listener / route of `started_under` with the same name, if any.
// Snapshot listeners are in config order, so this is also the index into Snapshot::listeners().
std::optional<std::size_t> current_listener(const Snapshot& current, const Snapshot& started_under,
                                            std::size_t listener) {
    if (&current == &started_under) return listener;
    const config::Listener* found =
        current.config().find_listener(started_under.config().listeners[listener].name);
    if (found == nullptr) return std::nullopt;
    return static_cast<std::size_t>(found - current.config().listeners.data());
}

std::optional<std::size_t> current_route(const Snapshot& current, const Snapshot& started_under,
                                         std::size_t route) {
    if (&current == &started_under) return route;
    const config::Route* found = current.config().find_route(started_under.config().routes[route].name);
    if (found == nullptr) return std::nullopt;
    return current.route_index(found);
}

std::uint64_t millis_to_nanos(reactor::Millis millis) {
    return static_cast<std::uint64_t>(std::max<reactor::Millis>(millis, 0)) * 1'000'000ull;
}

}  // namespace

std::optional<CloseReason> Admission::admit_listener(const Snapshot& current, const Snapshot& started_under,
                                                     std::size_t listener, reactor::Millis now) {
    if (open_connections_ >= max_connections_) return CloseReason::worker_limit;
    const std::optional<std::size_t> index = current_listener(current, started_under, listener);
    if (index) {
        const config::Listener& config = *current.listeners()[*index].listener;
        ListenerAdmissionCounters& counters = current.listener_counters(*index);
        if (!config.max_connections) {
            count_slot(counters.open);
        } else if (!take_slot(counters.open, *config.max_connections)) {
            return CloseReason::listener_limit;
        }
        // After the slot: a listener at its max_connections spends no token.
        if (config.max_connection_rate &&
            !take_rate_token(counters.rate_next_ns, *config.max_connection_rate, millis_to_nanos(now))) {
            release_slot(counters.open);
            return CloseReason::rate_limit;
        }
    }
    ++open_connections_;
    return std::nullopt;
}

void Admission::release_listener(const Snapshot& current, const Snapshot& started_under, std::size_t listener) {
    if (open_connections_ > 0) --open_connections_;
    if (const std::optional<std::size_t> index = current_listener(current, started_under, listener))
        release_slot(current.listener_counters(*index).open);
}

bool Admission::admit_route(const Snapshot& current, const Snapshot& started_under, std::size_t route,
                            bool& counted) {
    counted = false;
    const std::optional<std::size_t> index = current_route(current, started_under, route);
    if (!index) return true;  // a route the current config no longer has: no limit
    const config::Route& config = current.config().routes[*index];
    RouteAdmissionCounters& counters = current.route_counters(*index);
    if (!config.max_connections) {
        count_slot(counters.open);
    } else if (!take_slot(counters.open, *config.max_connections)) {
        return false;
    }
    counted = true;
    return true;
}

void Admission::release_route(const Snapshot& current, const Snapshot& started_under, std::size_t route) {
    if (const std::optional<std::size_t> index = current_route(current, started_under, route))
        release_slot(current.route_counters(*index).open);
}

bool Admission::charge_hello_memory(std::size_t growth, std::size_t buffer_after) {
    const std::uint64_t budget = hello_memory_budget_;
    const std::uint64_t limit = buffer_after <= small_hello_bytes ? budget + budget / 8 : budget;
    if (hello_memory_ + growth > limit) return false;
    hello_memory_ += growth;
    return true;
}

void Admission::release_hello_memory(std::size_t bytes) {
    hello_memory_ -= std::min<std::uint64_t>(hello_memory_, bytes);
}

}  // namespace passgate
