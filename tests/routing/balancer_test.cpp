#include "src/routing/balancer.h"

#include <catch2/catch.hpp>

#include <map>
#include <vector>

using passgate::SmoothWeightedRoundRobin;

TEST_CASE("smooth weighted round robin follows the weights and interleaves") {
    SmoothWeightedRoundRobin rr({5, 1, 1});
    std::vector<std::size_t> picks;
    for (int i = 0; i < 7; ++i) picks.push_back(*rr.pick());
    // NGINX's documented sequence for weights 5,1,1: a a b a c a a.
    CHECK(picks == std::vector<std::size_t>{0, 0, 1, 0, 2, 0, 0});
}

TEST_CASE("weights hold over many picks; weight 0 is never picked") {
    SmoothWeightedRoundRobin rr({3, 0, 2, 1});
    std::map<std::size_t, int> counts;
    for (int i = 0; i < 6000; ++i) ++counts[*rr.pick()];
    CHECK(counts[0] == 3000);
    CHECK(counts[1] == 0);
    CHECK(counts[2] == 2000);
    CHECK(counts[3] == 1000);
}

TEST_CASE("excluded candidates are skipped; nothing eligible gives nullopt") {
    SmoothWeightedRoundRobin rr({1, 1, 1});
    const std::vector<std::size_t> tried{0, 2};
    for (int i = 0; i < 5; ++i) CHECK(rr.pick(tried) == 1u);
    const std::vector<std::size_t> all{0, 1, 2};
    CHECK_FALSE(rr.pick(all).has_value());
    SmoothWeightedRoundRobin zero({0, 0});
    CHECK_FALSE(zero.pick().has_value());
    SmoothWeightedRoundRobin empty({});
    CHECK_FALSE(empty.pick().has_value());
}
