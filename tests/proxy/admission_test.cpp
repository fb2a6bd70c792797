// Admission: the shared slot counts and the shared token bucket are exact when several threads
// (workers) use them at once; the counts live in the snapshot and carry over by name on reload.

#include "src/proxy/admission.h"

#include "src/observe/app_metrics.h"
#include "src/routing/snapshot.h"

#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

using namespace passgate;

namespace {

constexpr std::uint64_t ms = 1'000'000;  // nanoseconds

// `threads` threads start together; each makes `attempts` calls of `attempt`; the successes.
template <typename Attempt>
int race(int threads, int attempts, Attempt attempt) {
    std::atomic<int> ready{0};
    std::atomic<int> admitted{0};
    std::vector<std::thread> running;
    for (int thread = 0; thread < threads; ++thread) {
        running.emplace_back([&] {
            ready.fetch_add(1);
            while (ready.load() < threads) {
            }
            for (int i = 0; i < attempts; ++i)
                if (attempt()) admitted.fetch_add(1);
        });
    }
    for (std::thread& thread : running) thread.join();
    return admitted.load();
}

std::shared_ptr<const config::Config> config_with(const std::string& listener_extra,
                                                  const std::string& route_extra,
                                                  const std::string& listener_name = "l",
                                                  const std::string& route_name = "r") {
    return std::make_shared<const config::Config>(test_config::make_config(
        test_config::listener(listener_name, 6443) + listener_extra + "\n" +
            test_config::route(route_name, {listener_name}, {"a.example"}) + route_extra + "\n",
        "admission_test.toml"));
}

}  // namespace

TEST_CASE("take_slot: 4 threads racing for 5 slots take exactly 5, and only released slots again",
          "[admission]") {
    for (int repetition = 0; repetition < 20; ++repetition) {
        ListenerAdmissionCounters counters;
        CHECK(race(4, 1000, [&] { return take_slot(counters.open, 5); }) == 5);
        CHECK(counters.open.load() == 5);
        release_slot(counters.open);
        release_slot(counters.open);
        CHECK(race(4, 1000, [&] { return take_slot(counters.open, 5); }) == 2);
    }
}

TEST_CASE("release_slot never goes below 0; count_slot counts without a limit", "[admission]") {
    RouteAdmissionCounters counters;
    release_slot(counters.open);
    CHECK(counters.open.load() == 0);
    count_slot(counters.open);
    count_slot(counters.open);
    CHECK(counters.open.load() == 2);
    CHECK_FALSE(take_slot(counters.open, 2));
    CHECK(take_slot(counters.open, 3));
}

TEST_CASE("the shared counters each have a cache line of their own", "[admission]") {
    STATIC_REQUIRE(alignof(ListenerAdmissionCounters) == 64);
    STATIC_REQUIRE(sizeof(ListenerAdmissionCounters) == 128);
    STATIC_REQUIRE(sizeof(RouteAdmissionCounters) == 64);
    // And the snapshot's (heap) counters are allocated on a line boundary.
    AppMetrics metrics(2);
    const Snapshot snapshot(config_with("", ""), metrics);
    CHECK(reinterpret_cast<std::uintptr_t>(&snapshot.listener_counters(0)) % 64 == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(&snapshot.route_counters(0)) % 64 == 0);
}

TEST_CASE("take_rate_token: a full bucket of `rate`, refilled at `rate` a second", "[admission]") {
    std::atomic<std::uint64_t> next{0};
    const std::uint64_t start = 5'000 * ms;
    int admitted = 0;
    for (int i = 0; i < 10; ++i) admitted += take_rate_token(next, 5, start) ? 1 : 0;
    CHECK(admitted == 5);
    // One token every 200 ms.
    CHECK_FALSE(take_rate_token(next, 5, start + 199 * ms));
    CHECK(take_rate_token(next, 5, start + 200 * ms));
    CHECK_FALSE(take_rate_token(next, 5, start + 200 * ms));
    // A second idle refills the bucket, never beyond its size.
    admitted = 0;
    for (int i = 0; i < 10; ++i) admitted += take_rate_token(next, 5, start + 5'000 * ms) ? 1 : 0;
    CHECK(admitted == 5);
    // A rate of 1: a bucket of 1.
    std::atomic<std::uint64_t> one{0};
    CHECK(take_rate_token(one, 1, start));
    CHECK_FALSE(take_rate_token(one, 1, start + 999 * ms));
    CHECK(take_rate_token(one, 1, start + 1'000 * ms));
}

TEST_CASE("take_rate_token: 4 threads sharing one bucket take exactly its size at once",
          "[admission]") {
    for (int repetition = 0; repetition < 20; ++repetition) {
        std::atomic<std::uint64_t> next{0};
        const std::uint64_t now = 1'000 * ms;
        CHECK(race(4, 100, [&] { return take_rate_token(next, 5, now); }) == 5);
        CHECK(race(4, 100, [&] { return take_rate_token(next, 1000, now); }) == 0);
    }
}

TEST_CASE("Admission: listener max_connections and max_connection_rate over all workers",
          "[admission]") {
    AppMetrics metrics(4);
    const Snapshot snapshot(config_with("max_connections = 5\nmax_connection_rate = 7", ""), metrics);
    std::vector<Admission> workers(4, Admission(1000, 1 << 20));
    int admitted = 0;
    int listener_limit = 0;
    for (int i = 0; i < 12; ++i) {
        const std::optional<CloseReason> refused =
            workers[i % 4].admit_listener(snapshot, snapshot, 0, 1000);
        if (!refused) ++admitted;
        if (refused == CloseReason::listener_limit) ++listener_limit;
    }
    CHECK(admitted == 5);
    CHECK(listener_limit == 7);
    // Two close: two more are admitted (tokens 6 and 7), the next is over the rate.
    workers[0].release_listener(snapshot, snapshot, 0);
    workers[1].release_listener(snapshot, snapshot, 0);
    CHECK_FALSE(workers[2].admit_listener(snapshot, snapshot, 0, 1000));
    CHECK_FALSE(workers[3].admit_listener(snapshot, snapshot, 0, 1000));
    workers[3].release_listener(snapshot, snapshot, 0);
    CHECK(workers[2].admit_listener(snapshot, snapshot, 0, 1000) == CloseReason::rate_limit);
    // The refused one gave its slot back.
    CHECK(snapshot.listener_counters(0).open.load() == 4);
}

TEST_CASE("Admission: the worker's own cap comes first and is per worker", "[admission]") {
    AppMetrics metrics(2);
    const Snapshot snapshot(config_with("max_connections = 5", ""), metrics);
    Admission first(2, 1 << 20);
    Admission second(2, 1 << 20);
    CHECK_FALSE(first.admit_listener(snapshot, snapshot, 0, 1000));
    CHECK_FALSE(first.admit_listener(snapshot, snapshot, 0, 1000));
    CHECK(first.admit_listener(snapshot, snapshot, 0, 1000) == CloseReason::worker_limit);
    CHECK_FALSE(second.admit_listener(snapshot, snapshot, 0, 1000));
    CHECK(snapshot.listener_counters(0).open.load() == 3);
}

TEST_CASE("Admission: counts of connections open on the old snapshot survive a reload by name",
          "[admission]") {
    AppMetrics metrics(2);
    const auto before = std::make_shared<const Snapshot>(config_with("max_connections = 3", "max_connections = 2"), metrics);
    Admission worker(1000, 1 << 20);
    bool counted = false;
    CHECK_FALSE(worker.admit_listener(*before, *before, 0, 1000));
    CHECK_FALSE(worker.admit_listener(*before, *before, 0, 1000));
    CHECK(worker.admit_route(*before, *before, 0, counted));
    CHECK(counted);
    CHECK(worker.admit_route(*before, *before, 0, counted));

    // Same names (limits changed): the same counters.
    const auto after = std::make_shared<const Snapshot>(
        config_with("max_connections = 3", "max_connections = 3"), metrics, before.get());
    CHECK(&after->listener_counters(0) == &before->listener_counters(0));
    CHECK(&after->route_counters(0) == &before->route_counters(0));
    CHECK_FALSE(worker.admit_listener(*after, *after, 0, 1000));
    CHECK(worker.admit_listener(*after, *after, 0, 1000) == CloseReason::listener_limit);
    CHECK(worker.admit_route(*after, *after, 0, counted));
    CHECK_FALSE(worker.admit_route(*after, *after, 0, counted));
    // A connection of the old snapshot routed now counts against the route of the same name.
    worker.release_route(*after, *before, 0);
    CHECK(worker.admit_route(*after, *before, 0, counted));
    CHECK(counted);
    CHECK_FALSE(worker.admit_route(*after, *before, 0, counted));
    // Releases of old-snapshot connections free slots of the current listener.
    worker.release_listener(*after, *before, 0);
    CHECK_FALSE(worker.admit_listener(*after, *after, 0, 1000));

    // Renamed: fresh counters; the old connections no longer count (and limit nothing).
    const auto renamed = std::make_shared<const Snapshot>(
        config_with("max_connections = 1", "max_connections = 1", "l2", "r2"), metrics, after.get());
    CHECK(renamed->listener_counters(0).open.load() == 0);
    CHECK(renamed->route_counters(0).open.load() == 0);
    CHECK(worker.admit_route(*renamed, *before, 0, counted));
    CHECK_FALSE(counted);
}

TEST_CASE("Admission: hello memory against the worker's budget, with the small-hello reserve",
          "[admission]") {
    Admission worker(1000, 64 * 1024);
    CHECK(worker.charge_hello_memory(64 * 1024, 64 * 1024));
    CHECK_FALSE(worker.charge_hello_memory(32 * 1024, 32 * 1024));
    CHECK(worker.charge_hello_memory(4 * 1024, 4 * 1024));  // from the reserve (budget / 8)
    CHECK_FALSE(worker.charge_hello_memory(8 * 1024, 8 * 1024));
    worker.release_hello_memory(64 * 1024);
    CHECK(worker.charge_hello_memory(32 * 1024, 32 * 1024));
}
