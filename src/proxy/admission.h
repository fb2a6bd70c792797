#pragma once
// Admission: the one place where a worker decides whether a connection may start (worker_limit,
// listener_limit, rate_limit), may be routed (route_limit) and may grow its hello buffer
// (hello_memory_limit), and where what it holds while open is given back.
//
// The listener and route limits (max_connections, max_connection_rate) are exact across workers:
// their counts are atomics shared by every worker, each on its own cache line, owned by the
// snapshots (Snapshot::listener_counters / route_counters) and carried over by name when a reload
// keeps the listener or route. The worker's own caps (max_connections_per_worker, its share of
// max_hello_memory) are plain per-worker counts.

#include "reactor/loop.h"
#include "src/observe/connection_summary.h"
#include "src/routing/snapshot.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace passgate {

// ---- Shared counts, lock-free (any thread) ------------------------------------------------------

// Takes one of `limit` slots: true when fewer than `limit` were taken (then give it back with
// release_slot). A compare-and-swap loop rather than add-then-undo: a refused attempt never shows
// as taken, so another worker is never refused below the limit because of it.
bool take_slot(std::atomic<std::uint32_t>& open, std::uint32_t limit);
// Counts one more, with no limit (a listener or route without max_connections still counts, so
// that a reload adding a limit starts from the connections already open).
void count_slot(std::atomic<std::uint32_t>& open);
// Gives one back; never below 0 (a count a reload started afresh may see more releases than takes).
void release_slot(std::atomic<std::uint32_t>& open);

// max_connection_rate: a token bucket of `per_second` tokens refilled at `per_second` a second,
// kept as a single "theoretical arrival time" `next_ns` (the generic cell rate algorithm), so that
// one compare-and-swap of one word takes a token for every worker at once: no lock, no torn
// tokens/timestamp pair. Each admission moves next_ns on by 1 s / per_second; a connection is
// admitted while next_ns is at most (burst - 1) intervals ahead of `now_ns`. A caller with a
// slightly older `now_ns` (another loop's cached time) only errs on the side of refusing.
bool take_rate_token(std::atomic<std::uint64_t>& next_ns, std::uint32_t per_second, std::uint64_t now_ns);

// ---- One worker's admission ---------------------------------------------------------------------

// Owned by a worker and used on its thread only. Listener and route limits are read from the
// worker's current snapshot (`current`), and apply by name: a connection that started under an
// older snapshot (`started_under`) counts against the listener or route of the same name now,
// and a listener or route the current config no longer has limits nothing.
class Admission {
public:
    // `max_connections`: [runtime] max_connections_per_worker (or derived from the descriptor
    // limit); `hello_memory_budget`: this worker's share of [runtime] max_hello_memory.
    Admission(std::uint32_t max_connections, std::uint64_t hello_memory_budget)
        : max_connections_(max_connections), hello_memory_budget_(hello_memory_budget) {}

    // A new connection on `listener`: nullopt when admitted (then it counts as open until
    // release_listener), else the refusal (worker_limit, listener_limit or rate_limit).
    std::optional<CloseReason> admit_listener(const Snapshot& current, const Snapshot& started_under,
                                              std::size_t listener, reactor::Millis now);
    void release_listener(const Snapshot& current, const Snapshot& started_under, std::size_t listener);
    // A connection routed to `route`: true when admitted (`counted`: it counts as open until
    // release_route); false when the route is at its max_connections (route_limit).
    bool admit_route(const Snapshot& current, const Snapshot& started_under, std::size_t route,
                     bool& counted);
    void release_route(const Snapshot& current, const Snapshot& started_under, std::size_t route);

    // Hello buffers, against hello_memory_budget: `growth` more bytes for a buffer that then
    // holds `buffer_after` bytes. True when charged; false: the hello must be refused
    // (hello_memory_limit).
    bool charge_hello_memory(std::size_t growth, std::size_t buffer_after);
    void release_hello_memory(std::size_t bytes);
    void add_hello_memory(std::size_t bytes) { hello_memory_ += bytes; }  // charged, budget or not
    std::uint64_t hello_memory() const { return hello_memory_; }  // bytes charged now

private:
    std::uint32_t max_connections_;
    std::uint64_t hello_memory_budget_;
    std::uint32_t open_connections_ = 0;  // admitted and not yet closed (max_connections_)
    std::uint64_t hello_memory_ = 0;      // bytes charged by hello buffers
};

// Hello buffers up to this size may also use a reserve of budget / 8 beyond the budget: when
// large pending hellos (slow or hostile clients) have spent the budget, ordinary hellos (a few
// KiB, post-quantum ones included) still get through.
inline constexpr std::size_t small_hello_bytes = 16 * 1024;

}  // namespace passgate
