#include "src/proxy/worker_set.h"

#include "reactor/socket.h"
#include "src/observe/app_metrics.h"
#include "src/routing/endpoint_set.h"
#include "src/routing/snapshot.h"

#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

using namespace passgate;

namespace {

constexpr unsigned workers = 2;

// One listener, one route, its service: all a worker needs to start (the comment makes each
// config's text, and so the snapshot, distinct).
std::shared_ptr<const config::Config> small_config(const std::string& comment) {
    return std::make_shared<const config::Config>(test_config::make_config(
        "# " + comment + "\n" + test_config::listener("l", 16443) + test_config::route("r", {"l"}, {"a.example"}),
        "worker_set_test.toml"));
}

EndpointSets empty_sets() {
    auto set = std::make_shared<EndpointSet>();
    set->service = "s";
    return {set};
}

// Per worker, one listening socket on an ephemeral loopback port (nothing connects to it).
std::vector<std::vector<ListenerSocket>> listen_sockets() {
    std::vector<std::vector<ListenerSocket>> sockets(workers);
    for (auto& per_worker : sockets) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        per_worker.push_back(ListenerSocket{
            .listener = 0, .fd = reactor::listen_tcp(reinterpret_cast<const sockaddr*>(&address), sizeof address)});
    }
    return sockets;
}

// Polls `done` (a bound of 5 s; every worker test is over in well under a second).
template <class Done>
bool wait_for(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

}  // namespace

TEST_CASE("worker set: every worker starts, a stop to all ends them, join returns", "[worker_set]") {
    AppMetrics metrics(workers);
    auto snapshot = std::make_shared<const Snapshot>(small_config("start"), metrics);
    WorkerSet set(workers);
    bool failed = false;
    set.start(WorkerOptions{}, snapshot, empty_sets(), listen_sockets(), [&](unsigned) { failed = true; });
    REQUIRE(wait_for([&] { return set.all_ready(); }));
    CHECK_FALSE(set.all_finished());
    set.send_to_all(StopMessage{});
    REQUIRE(wait_for([&] { return set.all_finished(); }));
    set.join();
    CHECK_FALSE(failed);
    CHECK_FALSE(set.failed());
}

TEST_CASE("worker set: with every inbox full, a reload and a drain wait in their slot, a newer reload "
          "replaces the older, and both arrive once the workers run", "[worker_set]") {
    AppMetrics metrics(workers);
    auto first = std::make_shared<const Snapshot>(small_config("first"), metrics);
    WorkerSet set(workers);
    // No worker runs yet, so nothing empties the inboxes: 64 endpoint updates fill each one.
    for (int update = 0; update < 64; ++update) {
        set.queue_endpoints(empty_sets());
        set.flush();
    }
    auto second = std::make_shared<const Snapshot>(small_config("second"), metrics, first.get());
    for (unsigned worker = 0; worker < workers; ++worker)
        set.send_reload(worker, ReloadMessage{.snapshot = second, .new_sockets = {}, .endpoint_sets = empty_sets()});
    CHECK(set.pending_reloads() == workers);
    // A newer reload replaces the pending one: still one per worker.
    auto third = std::make_shared<const Snapshot>(small_config("third"), metrics, second.get());
    for (unsigned worker = 0; worker < workers; ++worker)
        set.send_reload(worker, ReloadMessage{.snapshot = third, .new_sockets = {}, .endpoint_sets = empty_sets()});
    CHECK(set.pending_reloads() == workers);
    CHECK(second.use_count() == 1);  // the replaced reload let go of its snapshot
    // The drain waits in its slot too.
    set.send_to_all(DrainMessage{.timeout = 0});
    set.flush();
    CHECK(set.pending_reloads() == workers);

    set.start(WorkerOptions{}, first, empty_sets(), listen_sockets(), [](unsigned) {});
    // As the control plane does every 100 ms: flush until the reload went out. The drain follows
    // it; a worker with no connection then ends by itself.
    REQUIRE(wait_for([&] {
        set.flush();
        return set.pending_reloads() == 0 && set.all_finished();
    }));
    set.join();
    CHECK_FALSE(set.failed());
    // The workers took the third snapshot and let go of it when they ended.
    CHECK(third.use_count() == 1);
}
