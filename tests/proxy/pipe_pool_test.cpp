#include "src/proxy/pipe_pool.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

using passgate::PipeLease;
using passgate::PipePool;

TEST_CASE("pipes are sized, reused when empty, destroyed when not, and bounded when idle") {
    PipePool pool(256 * 1024, 2);
    {
        PipeLease a, b, c;
        REQUIRE(a.acquire(pool) == 0);
        REQUIRE(b.acquire(pool) == 0);
        REQUIRE(c.acquire(pool) == 0);
        // Root without CAP_SYS_RESOURCE is still under fs.pipe-user-pages-soft; a fresh test
        // process is far below it, so the resize succeeds.
        CHECK(a.capacity() == 256 * 1024);
        CHECK(pool.stats().in_use == 3);
        CHECK(pool.stats().resize_refused == 0);
        // Put a byte in b: it must not come back to the pool.
        REQUIRE(::write(b.pipe().write_end.get(), "x", 1) == 1);
        b.bytes_inside = 1;
    }
    CHECK(pool.stats().in_use == 0);
    CHECK(pool.stats().idle == 2);  // a and c; b destroyed
    CHECK(pool.stats().created == 3);
    CHECK(pool.stats().destroyed == 1);
    PipeLease again;
    REQUIRE(again.acquire(pool) == 0);
    CHECK(pool.stats().created == 3);  // reused
    char byte;
    CHECK(::read(again.pipe().read_end.get(), &byte, 1) == -1);  // empty (non-blocking)
}
