#pragma once
// Descriptors as a budget: passgate raises its RLIMIT_NOFILE soft limit to the hard limit at
// start, and derives from it how many client connections each worker may hold, so that it runs
// out of connection slots (refused, counted: worker_limit) before it runs out of descriptors (then
// accepts, backend connects, the admin port and health probes would fail for everyone).

#include <cstdint>

namespace passgate {

struct FdLimit {
    std::uint64_t soft_before = 0;  // the soft limit passgate was started with
    std::uint64_t soft = 0;         // the soft limit now
    std::uint64_t hard = 0;
    int error = 0;                  // errno of a failed getrlimit/setrlimit (the limit is unchanged)
};

// Sets the soft RLIMIT_NOFILE to the hard limit (capped at what the kernel allows:
// /proc/sys/fs/nr_open).
FdLimit raise_fd_limit();

// Descriptors kept out of the connection budget: the control thread (admin connections, health
// probes, DNS, rings, signal and event fds, files) and each worker's idle pipe pool.
struct FdReserve {
    std::uint32_t admin_connections = 256;
    std::uint32_t pipe_pool_idle = 64;  // pipes kept per worker, 2 descriptors each
};
inline constexpr std::uint64_t fd_reserve_base = 128;
inline constexpr std::uint32_t min_worker_connections = 16;

// (fd_limit - reserve) / 2 / workers, at least min_worker_connections: each proxied connection
// holds two sockets (client, backend); pipes leased while bytes are in flight come from the rest
// (a connection that cannot get one falls back to copying).
std::uint32_t derived_worker_connections(std::uint64_t fd_limit, unsigned workers, const FdReserve& reserve);

}  // namespace passgate
