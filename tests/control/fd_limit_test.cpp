// The per-worker connection cap derived from the descriptor limit (src/control/fd_limit.h), and raising
// the soft limit.

#include "src/control/fd_limit.h"

#include <catch2/catch.hpp>

#include <sys/resource.h>

using namespace passgate;

TEST_CASE("fd limit: the cap leaves the reserve and two descriptors per connection", "[fd_limit]") {
    const FdReserve reserve{.admin_connections = 256, .pipe_pool_idle = 64};
    // 20000 - 128 - 256 - 128 = 19488 usable; / 2 per connection.
    CHECK(derived_worker_connections(20000, 1, reserve) == 9744);
    // Two workers: 20000 - 128 - 256 - 256 = 19360; / 2 / 2.
    CHECK(derived_worker_connections(20000, 2, reserve) == 4840);
    CHECK(derived_worker_connections(1024, 1, reserve) == 256);
    // Fewer descriptors than the reserve: the floor, not zero (and not an underflow).
    CHECK(derived_worker_connections(64, 1, reserve) == min_worker_connections);
    CHECK(derived_worker_connections(0, 0, reserve) == min_worker_connections);
    // A smaller admin bound leaves more for connections.
    CHECK(derived_worker_connections(20000, 1, FdReserve{.admin_connections = 16, .pipe_pool_idle = 64}) == 9864);
}

TEST_CASE("fd limit: raise_fd_limit sets the soft limit to the hard limit", "[fd_limit]") {
    rlimit original{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
    REQUIRE(original.rlim_max != RLIM_INFINITY);
    rlimit lowered = original;
    lowered.rlim_cur = std::min<rlim_t>(256, original.rlim_max);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    const FdLimit raised = raise_fd_limit();
    rlimit now{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &original) == 0);
    CHECK(raised.error == 0);
    CHECK(raised.soft_before == lowered.rlim_cur);
    CHECK(raised.soft == original.rlim_max);
    CHECK(raised.hard == original.rlim_max);
    CHECK(now.rlim_cur == original.rlim_max);
}
