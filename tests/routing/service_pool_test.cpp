#include "src/routing/service_pool.h"

#include "config/address.h"

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace passgate;

namespace {

struct Spec {
    Spec(std::string address_, std::uint32_t weight_ = 1, bool healthy_ = true,
         std::optional<std::uint32_t> max_connections_ = std::nullopt)
        : address(std::move(address_)), weight(weight_), healthy(healthy_),
          max_connections(max_connections_) {}
    std::string address;
    std::uint32_t weight;
    bool healthy;
    std::optional<std::uint32_t> max_connections;
};

std::uint64_t next_version = 0;

std::shared_ptr<const EndpointSet> make_set(const std::vector<Spec>& specs, bool maglev = false) {
    auto set = std::make_shared<EndpointSet>();
    set->service = "s";
    set->version = ++next_version;
    std::vector<std::string> names;
    std::vector<std::uint32_t> weights;
    for (const Spec& spec : specs) {
        LiveEndpoint endpoint;
        endpoint.address = *config::parse_address(spec.address);
        endpoint.name = endpoint.address.to_string();
        endpoint.weight = spec.weight;
        endpoint.healthy = spec.healthy;
        endpoint.max_connections = spec.max_connections;
        names.push_back(endpoint.name);
        weights.push_back(spec.weight);
        set->endpoints.push_back(std::move(endpoint));
    }
    if (maglev) set->maglev = std::make_shared<const MaglevTable>(names, weights);
    return set;
}

ServicePool make_pool(config::Balance balance, const std::vector<Spec>& specs, unsigned workers = 1) {
    PoolSettings settings;
    settings.balance = balance;
    settings.workers = workers;
    settings.random_seed = 42;
    ServicePool pool(settings);
    pool.update(make_set(specs, balance == config::Balance::maglev));
    return pool;
}

std::string pick_name(ServicePool& pool, std::uint64_t key = 0, std::int64_t now = 0,
                      std::span<const EndpointRef> tried = {}) {
    PickRequest request;
    request.key_hash = key;
    request.now_ms = now;
    request.tried = tried;
    const PickResult result = pool.pick(request);
    return result.endpoint ? result.endpoint->endpoint.name : "none";
}

EndpointRef find(ServicePool& pool, const std::string& name) {
    for (const EndpointRef& endpoint : pool.endpoints())
        if (endpoint->endpoint.name == name) return endpoint;
    return nullptr;
}

}  // namespace

TEST_CASE("round robin follows the endpoint weights", "[service_pool]") {
    ServicePool pool = make_pool(config::Balance::round_robin,
                                 {{"10.0.0.1:1", 3}, {"10.0.0.2:1", 1}, {"10.0.0.3:1", 0}});
    std::map<std::string, int> counts;
    for (int i = 0; i < 400; ++i) ++counts[pick_name(pool)];
    CHECK(counts["10.0.0.1:1"] == 300);
    CHECK(counts["10.0.0.2:1"] == 100);
    CHECK(counts.count("10.0.0.3:1") == 0);
}

TEST_CASE("unhealthy and ejected endpoints are skipped; none healthy panics to all", "[service_pool]") {
    ServicePool pool = make_pool(config::Balance::round_robin,
                                 {{"10.0.0.1:1", 1, false}, {"10.0.0.2:1"}, {"10.0.0.3:1"}});
    std::map<std::string, int> counts;
    for (int i = 0; i < 100; ++i) ++counts[pick_name(pool)];
    CHECK(counts.count("10.0.0.1:1") == 0);
    CHECK(counts["10.0.0.2:1"] == 50);

    pool.update(make_set({{"10.0.0.1:1", 1, false}, {"10.0.0.2:1", 1, false}}));
    PickRequest request;
    const PickResult panic = pool.pick(request);
    CHECK(panic.panic);
    REQUIRE(panic.endpoint);
    pool.update(make_set({{"10.0.0.1:1", 1, false}, {"10.0.0.2:1", 1, true}}));
    const PickResult healthy = pool.pick(request);
    CHECK_FALSE(healthy.panic);
    CHECK(healthy.endpoint->endpoint.name == "10.0.0.2:1");
}

TEST_CASE("tried endpoints are not picked again; nothing left gives none", "[service_pool]") {
    ServicePool pool = make_pool(config::Balance::least_connections, {{"10.0.0.1:1"}, {"10.0.0.2:1"}});
    std::vector<EndpointRef> tried{find(pool, "10.0.0.1:1")};
    for (int i = 0; i < 10; ++i) CHECK(pick_name(pool, 0, 0, tried) == "10.0.0.2:1");
    tried.push_back(find(pool, "10.0.0.2:1"));
    CHECK(pick_name(pool, 0, 0, tried) == "none");
}

TEST_CASE("outlier detection ejects after consecutive failures, doubling, and a success resets", "[service_pool]") {
    PoolSettings settings;
    settings.outlier_detection.consecutive_failures = 3;
    settings.outlier_detection.base_ejection_time = std::chrono::milliseconds(1000);
    settings.outlier_detection.max_ejection_time = std::chrono::milliseconds(3000);
    ServicePool pool(settings);
    pool.update(make_set({{"10.0.0.1:1"}, {"10.0.0.2:1"}}));
    EndpointState& bad = *find(pool, "10.0.0.1:1");
    CHECK_FALSE(pool.on_connect_failure(bad, 0));
    CHECK_FALSE(pool.on_connect_failure(bad, 0));
    CHECK(pool.on_connect_failure(bad, 0));
    CHECK(bad.ejected_until_ms == 1000);
    for (int i = 0; i < 10; ++i) CHECK(pick_name(pool, 0, 500) == "10.0.0.2:1");
    // Back after the ejection time; failing again doubles it, capped at the max.
    for (int i = 0; i < 3; ++i) pool.on_connect_failure(bad, 1000);
    CHECK(bad.ejected_until_ms == 3000);
    for (int i = 0; i < 3; ++i) pool.on_connect_failure(bad, 3000);
    CHECK(bad.ejected_until_ms == 6000);  // 4000 capped to 3000
    pool.on_connected(bad);
    for (int i = 0; i < 3; ++i) pool.on_connect_failure(bad, 10000);
    CHECK(bad.ejected_until_ms == 11000);  // a success reset the doubling
    // Every endpoint ejected: panic instead of refusing everyone.
    EndpointState& other = *find(pool, "10.0.0.2:1");
    for (int i = 0; i < 3; ++i) pool.on_connect_failure(other, 10000);
    PickRequest request;
    request.now_ms = 10500;
    const PickResult result = pool.pick(request);
    CHECK(result.panic);
    CHECK(result.endpoint);
    // consecutive_failures = 0: never ejects.
    settings.outlier_detection.consecutive_failures = 0;
    pool.configure(settings);
    for (int i = 0; i < 100; ++i) CHECK_FALSE(pool.on_connect_failure(other, 20000));
}

TEST_CASE("least connections picks the fewest open per weight, ties rotate", "[service_pool]") {
    ServicePool pool = make_pool(config::Balance::least_connections,
                                 {{"10.0.0.1:1", 1}, {"10.0.0.2:1", 2}, {"10.0.0.3:1", 1}});
    // Simulate connections that stay open: each pick opens one.
    std::map<std::string, int> open;
    for (int i = 0; i < 400; ++i) {
        PickRequest request;
        const EndpointRef endpoint = pool.pick(request).endpoint;
        ++endpoint->open;
        ++open[endpoint->endpoint.name];
    }
    CHECK(open["10.0.0.1:1"] == 100);
    CHECK(open["10.0.0.2:1"] == 200);
    CHECK(open["10.0.0.3:1"] == 100);
    // Closing many on one endpoint sends the next picks there.
    find(pool, "10.0.0.3:1")->open = 50;
    for (int i = 0; i < 50; ++i) {
        PickRequest request;
        const EndpointRef endpoint = pool.pick(request).endpoint;
        CHECK(endpoint->endpoint.name == "10.0.0.3:1");
        ++endpoint->open;
    }
}

TEST_CASE("random two: every endpoint gets traffic; open counts stay close", "[service_pool]") {
    std::vector<Spec> specs;
    for (int i = 1; i <= 8; ++i) specs.push_back({"10.0.0." + std::to_string(i) + ":1"});
    ServicePool pool = make_pool(config::Balance::random_two, specs);
    for (int i = 0; i < 8000; ++i) {
        PickRequest request;
        ++pool.pick(request).endpoint->open;
    }
    std::uint32_t low = 1u << 30, high = 0;
    for (const EndpointRef& endpoint : pool.endpoints()) {
        low = std::min(low, endpoint->open);
        high = std::max(high, endpoint->open);
    }
    // Two choices keep the maximum load within a few of the mean (1000); one random choice
    // would spread about +-3 sigma = +-90.
    CHECK(low >= 990);
    CHECK(high <= 1010);
}

TEST_CASE("max_connections: a full endpoint is skipped, its share split across workers", "[service_pool]") {
    // 5 for the process over 2 workers: 3 here.
    ServicePool pool = make_pool(config::Balance::round_robin,
                                 {{"10.0.0.1:1", 1, true, 5}, {"10.0.0.2:1", 1, true, std::nullopt}}, 2);
    find(pool, "10.0.0.1:1")->open = 3;
    for (int i = 0; i < 10; ++i) CHECK(pick_name(pool) == "10.0.0.2:1");
    find(pool, "10.0.0.1:1")->open = 2;
    std::map<std::string, int> counts;
    for (int i = 0; i < 10; ++i) ++counts[pick_name(pool)];
    CHECK(counts["10.0.0.1:1"] == 5);
}

TEST_CASE("maglev: a key sticks to one endpoint; only a removed endpoint's keys move", "[service_pool]") {
    std::vector<Spec> specs;
    for (int i = 1; i <= 5; ++i) specs.push_back({"10.0.0." + std::to_string(i) + ":1"});
    ServicePool pool = make_pool(config::Balance::maglev, specs);
    std::map<std::uint64_t, std::string> first;
    for (std::uint64_t key = 0; key < 2000; ++key) {
        const std::uint64_t hash = stable_hash(std::to_string(key));
        first[hash] = pick_name(pool, hash);
        CHECK(pick_name(pool, hash) == first[hash]);
    }
    // Unhealthy 10.0.0.3: its keys move, everyone else's stay.
    specs[2].healthy = false;
    pool.update(make_set(specs, true));
    int moved = 0;
    for (const auto& [hash, name] : first) {
        const std::string now = pick_name(pool, hash);
        if (name == "10.0.0.3:1") {
            CHECK(now != name);
            ++moved;
        } else {
            CHECK(now == name);
        }
    }
    CHECK(moved > 300);  // about a fifth of 2000
    // Removed from the set (a rebuilt table): few of the others' keys move.
    specs.erase(specs.begin() + 2);
    pool.update(make_set(specs, true));
    int others_moved = 0;
    for (const auto& [hash, name] : first)
        if (name != "10.0.0.3:1" && pick_name(pool, hash) != name) ++others_moved;
    CHECK(others_moved < 60);  // < 3% of the 1600 or so that stayed
}

TEST_CASE("an update keeps the state of endpoints that stay; older sets are ignored", "[service_pool]") {
    ServicePool pool = make_pool(config::Balance::round_robin, {{"10.0.0.1:1"}, {"10.0.0.2:1"}});
    const EndpointRef kept = find(pool, "10.0.0.1:1");
    kept->open = 7;
    const auto older = make_set({{"10.0.0.9:1"}});
    pool.update(make_set({{"10.0.0.1:1", 1, false}, {"10.0.0.3:1"}}));
    CHECK(find(pool, "10.0.0.1:1") == kept);
    CHECK(kept->open == 7);
    CHECK_FALSE(kept->endpoint.healthy);
    CHECK(find(pool, "10.0.0.2:1") == nullptr);
    pool.update(older);  // built before the one in use: ignored
    CHECK(find(pool, "10.0.0.9:1") == nullptr);
    CHECK(pool.endpoints().size() == 2);
}

TEST_CASE("live cells: a worker mirrors its open count and ejection into its own shard", "[service_pool][live]") {
    auto set = std::make_shared<EndpointSet>(*make_set({{"10.0.0.1:443"}, {"10.0.0.2:443"}}));
    for (LiveEndpoint& endpoint : set->endpoints)
        endpoint.live = std::make_shared<const metrics::ShardedCells>(3, EndpointLiveCell::count);
    PoolSettings settings;
    settings.outlier_detection.consecutive_failures = 2;
    settings.outlier_detection.base_ejection_time = std::chrono::milliseconds(5000);
    settings.shard = 1;  // this pool is worker 1's
    ServicePool pool(settings);
    pool.update(set);
    const EndpointRef first = pool.endpoints()[0];
    const metrics::ShardedCells& cells = *first->endpoint.live;

    add_open(*first, 1);
    add_open(*first, 1);
    CHECK(cells.load(1, EndpointLiveCell::open) == 2);
    CHECK(cells.load(0, EndpointLiveCell::open) == 0);  // other workers' shards untouched
    CHECK(cells.load(2, EndpointLiveCell::open) == 0);
    release_open(*first, 1);
    CHECK(cells.load(1, EndpointLiveCell::open) == 1);

    CHECK_FALSE(pool.on_connect_failure(*first, 1000));
    CHECK(cells.load(1, EndpointLiveCell::ejected_until_ms) == 0);
    CHECK(pool.on_connect_failure(*first, 1000));
    CHECK(cells.load(1, EndpointLiveCell::ejected_until_ms) == 6000);

    // A reload that restarted the service's discovery hands over new cells: the worker's state
    // (kept by name) is written into them at once.
    auto next = std::make_shared<EndpointSet>(*set);
    next->version = ++next_version;
    for (LiveEndpoint& endpoint : next->endpoints)
        endpoint.live = std::make_shared<const metrics::ShardedCells>(3, EndpointLiveCell::count);
    pool.update(next);
    const metrics::ShardedCells& fresh = *pool.endpoints()[0]->endpoint.live;
    CHECK(&fresh != &cells);
    CHECK(fresh.load(1, EndpointLiveCell::open) == 1);
    CHECK(fresh.load(1, EndpointLiveCell::ejected_until_ms) == 6000);
    release_open(*first, 1);
    CHECK(fresh.load(1, EndpointLiveCell::open) == 0);
}
