// Balancing across a service's endpoints with real processes: identifying backends answer each
// connection with their id, so the test sees every pick passgate made.

#include "tests/support/backends.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace integration;

namespace {

const std::string kSni = "curl-h2.corpus.test";

std::string endpoint(const IdentBackend& backend, const std::string& extra = "") {
    return "{ address = \"127.0.0.1:" + std::to_string(backend.port()) + "\"" + extra + " }";
}

// One listener, one route for kSni, one service "pool" with `service_lines`.
std::string pool_config(std::uint16_t port, const std::string& service_lines) {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n"
           "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nhostnames = [\"" + kSni + "\"]\n"
           "backends = [ { service = \"pool\" } ]\n\n"
           "[[service]]\nname = \"pool\"\n" + service_lines + "\n";
}

const std::vector<std::uint8_t>& hello() { return captured_hello("curl-h2.bin").bytes; }

}  // namespace

TEST_CASE("round_robin follows endpoint weights across workers", "[integration][balancing]") {
    TempDir dir;
    IdentBackend a("a"), b("b"), c("c");
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {pool_config(port, "balance = \"round_robin\"\nendpoints = [" +
                                                  endpoint(a, ", weight = 1") + ", " +
                                                  endpoint(b, ", weight = 2") + ", " +
                                                  endpoint(c, ", weight = 3") + "]"),
                            {}, 2});
    REQUIRE(passgate.wait_ready());
    IdCounts counts;
    for (int i = 0; i < 600; ++i) ++counts[ask_backend(port, hello())];
    INFO("a=" << counts["a"] << " b=" << counts["b"] << " c=" << counts["c"] << " failed=" << counts[""]);
    CHECK(counts[""] == 0);
    // Each worker interleaves exactly by weight over every 6 picks; two workers can each be
    // part-way through a cycle: at most 2 x 6 off the exact 100 / 200 / 300.
    CHECK(std::abs(counts["a"] - 100) <= 12);
    CHECK(std::abs(counts["b"] - 200) <= 12);
    CHECK(std::abs(counts["c"] - 300) <= 12);
    stop_and_check(passgate);
}

TEST_CASE("least_connections spreads open connections and refills the emptiest endpoint",
          "[integration][balancing]") {
    TempDir dir;
    IdentBackend a("a"), b("b"), c("c");
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {pool_config(port, "balance = \"least_connections\"\nendpoints = [" +
                                                  endpoint(a) + ", " + endpoint(b) + ", " + endpoint(c) + "]"),
                            {}, 2});
    REQUIRE(passgate.wait_ready());
    std::map<std::string, std::vector<Socket>> held;
    for (int i = 0; i < 30; ++i) {
        Socket client = connect_to(port);
        REQUIRE(client);
        const std::string id = read_backend_id(client.get(), hello());
        REQUIRE(id != "");
        held[id].push_back(std::move(client));
    }
    INFO("a=" << held["a"].size() << " b=" << held["b"].size() << " c=" << held["c"].size());
    // Each worker evens out its own connections to within one per endpoint: within 2 overall.
    for (const std::string id : {"a", "b", "c"}) {
        CHECK(held[id].size() >= 8);
        CHECK(held[id].size() <= 12);
    }
    // Close every connection to "a": the next ones go to "a" until it catches up. Per worker the
    // deficit depends on how the kernel spread the closed ones, so allow a few elsewhere.
    const std::size_t closed = held["a"].size();
    held["a"].clear();
    REQUIRE(wait_until([&] { return passgate.metric({"passgate_downstream_connections_active"}) ==
                                    static_cast<double>(30 - closed); },
                       Millis(3000)));
    int to_a = 0;
    for (std::size_t i = 0; i < closed; ++i) {
        Socket client = connect_to(port);
        REQUIRE(client);
        const std::string id = read_backend_id(client.get(), hello());
        if (id == "a") ++to_a;
        held[id].push_back(std::move(client));
    }
    CHECK(to_a >= static_cast<int>(closed) - 3);
    held.clear();
    stop_and_check(passgate);
}

TEST_CASE("random_two gives every endpoint a fair share", "[integration][balancing]") {
    TempDir dir;
    IdentBackend a("a"), b("b"), c("c");
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {pool_config(port, "balance = \"random_two\"\nendpoints = [" + endpoint(a) +
                                                  ", " + endpoint(b) + ", " + endpoint(c) + "]"),
                            {}, 2});
    REQUIRE(passgate.wait_ready());
    IdCounts counts;
    for (int i = 0; i < 300; ++i) ++counts[ask_backend(port, hello())];
    INFO("a=" << counts["a"] << " b=" << counts["b"] << " c=" << counts["c"]);
    CHECK(counts[""] == 0);
    // Sequential short connections leave every count at 0, so each pick is a uniform draw:
    // 100 each with sigma about 8; 60..140 is 5 sigma.
    for (const std::string id : {"a", "b", "c"}) {
        CHECK(counts[id] >= 60);
        CHECK(counts[id] <= 140);
    }
    stop_and_check(passgate);
}

TEST_CASE("per-endpoint max_connections: a full endpoint is skipped until it has room",
          "[integration][balancing]") {
    TempDir dir;
    IdentBackend small("small"), big("big");
    const std::uint16_t port = free_port();
    // 2 for the process over 2 workers: at most 1 per worker.
    Passgate passgate(dir, {pool_config(port, "endpoints = [" + endpoint(small, ", max_connections = 2") +
                                                  ", " + endpoint(big) + "]"),
                            {}, 2});
    REQUIRE(passgate.wait_ready());
    std::vector<Socket> held;
    IdCounts counts;
    for (int i = 0; i < 12; ++i) {
        Socket client = connect_to(port);
        REQUIRE(client);
        ++counts[read_backend_id(client.get(), hello())];
        held.push_back(std::move(client));
    }
    CHECK(counts[""] == 0);
    CHECK(counts["small"] >= 1);
    CHECK(counts["small"] <= 2);
    CHECK(counts["big"] == 12 - counts["small"]);
    held.clear();
    // Room again once those are closed.
    REQUIRE(wait_until([&] { return passgate.metric({"passgate_downstream_connections_active"}) == 0.0; },
                       Millis(3000)));
    // One at a time, each closed in passgate before the next: a connection still closing holds
    // its endpoint's slot (counted until its end), which would make the next pick skip `small`.
    IdCounts later;
    for (int i = 0; i < 10; ++i) {
        ++later[ask_backend(port, hello())];
        REQUIRE(wait_until([&] { return passgate.metric({"passgate_downstream_connections_active"}) == 0.0; },
                           Millis(3000)));
    }
    INFO("later: small=" << later["small"] << " big=" << later["big"]);
    CHECK(later["small"] >= 4);
    stop_and_check(passgate);
}

TEST_CASE("maglev keeps each source on one endpoint; a dead endpoint moves only its sources",
          "[integration][balancing]") {
    TempDir dir;
    IdentBackend a("a"), b("b"), c("c"), d("d");
    const std::uint16_t port = free_port();
    const std::string all = endpoint(a) + ", " + endpoint(b) + ", " + endpoint(c) + ", " + endpoint(d);
    Passgate passgate(dir, {pool_config(port, "balance = \"maglev\"\nendpoints = [" + all + "]"), {}, 2});
    REQUIRE(passgate.wait_ready());

    // 40 sources, 3 connections each: always the same endpoint, whichever worker accepts.
    std::vector<std::string> sources;
    for (int i = 10; i < 50; ++i) sources.push_back("127.0.0." + std::to_string(i));
    std::map<std::string, std::string> home;
    IdCounts per_endpoint;
    for (const std::string& source : sources) {
        const std::string first = ask_backend(port, hello(), source);
        REQUIRE(first != "");
        for (int i = 0; i < 2; ++i) CHECK(ask_backend(port, hello(), source) == first);
        home[source] = first;
        ++per_endpoint[first];
    }
    CHECK(per_endpoint.size() >= 3);  // 40 keys over 4 endpoints: each takes about 10

    // Kill the endpoint with the most sources: its sources move (connect refused, then retried
    // further along the table, the same way on every worker); nobody else moves.
    std::string victim = "a";
    for (const auto& [id, count] : per_endpoint)
        if (count > per_endpoint[victim]) victim = id;
    IdentBackend* backends[] = {&a, &b, &c, &d};
    for (IdentBackend* backend : backends)
        if (backend->id() == victim) backend->stop();
    std::map<std::string, std::string> moved_to;
    for (const std::string& source : sources) {
        for (int i = 0; i < 3; ++i) {
            const std::string now = ask_backend(port, hello(), source);
            REQUIRE(now != "");  // the client never sees the dead endpoint
            if (home[source] == victim) {
                CHECK(now != victim);
                if (moved_to.count(source) == 0) moved_to[source] = now;
                CHECK(now == moved_to[source]);
            } else {
                CHECK(now == home[source]);
            }
        }
    }
    // Its refusals ejected it (outlier detection, 5 in a row per worker).
    CHECK(passgate.metric({"passgate_endpoint_ejections_total"}).value_or(0) >= 1);
    CHECK(passgate.failed_connection_lines().empty());

    // Removing an endpoint from the config rebuilds the table: its sources move, and Maglev moves
    // only a small fraction of the others (about 1-2% at this table size; unit-tested).
    std::string removed = victim == "a" ? "b" : "a";
    std::string kept_endpoints;
    for (IdentBackend* backend : backends) {
        if (backend->id() == removed) continue;
        if (!kept_endpoints.empty()) kept_endpoints += ", ";
        kept_endpoints += endpoint(*backend);
    }
    reload_with(passgate, pool_config(port, "balance = \"maglev\"\nendpoints = [" + kept_endpoints + "]"));
    REQUIRE(wait_for_reloads(passgate, 1));
    int others = 0, others_moved = 0;
    for (const std::string& source : sources) {
        const std::string now = ask_backend(port, hello(), source);
        REQUIRE(now != "");
        CHECK(now != removed);
        const std::string before = home[source] == victim ? moved_to[source] : home[source];
        if (before == removed) continue;
        ++others;
        if (now != before) ++others_moved;
    }
    INFO(others_moved << " of " << others << " sources of remaining endpoints moved");
    CHECK(others_moved * 10 <= others);
    stop_and_check(passgate);
}

TEST_CASE("maglev: processes with the same endpoint set pick the same endpoint for every client, whatever "
          "their worker count, endpoint order or start order",
          "[integration][balancing][maglev]") {
    // Three passgate processes stand for three nodes of a fleet behind one router: a client must
    // reach the same endpoint through whichever node the router sends it to.
    TempDir dir;
    IdentBackend a("a"), b("b"), c("c"), d("d"), e("e");
    const std::vector<std::string> declared{endpoint(a, ", weight = 1"), endpoint(b, ", weight = 2"),
                                            endpoint(c, ", weight = 1"), endpoint(d, ", weight = 3"),
                                            endpoint(e, ", weight = 1")};
    const auto listed = [&](std::initializer_list<int> order) {
        std::string text;
        for (const int index : order) text += (text.empty() ? "" : ", ") + declared[static_cast<std::size_t>(index)];
        return "balance = \"maglev\"\nhash_key = \"source_ip\"\nendpoints = [" + text + "]";
    };
    struct Node {
        std::string name;
        unsigned workers;
        std::string endpoints;
        std::uint16_t port = 0;
        std::unique_ptr<Passgate> process;
    };
    std::vector<Node> nodes;
    nodes.push_back({"node-1", 1, listed({0, 1, 2, 3, 4}), 0, nullptr});
    nodes.push_back({"node-2", 2, listed({4, 3, 2, 1, 0}), 0, nullptr});
    nodes.push_back({"node-3", 2, listed({2, 4, 0, 3, 1}), 0, nullptr});
    // Started in another order than numbered (node 3 first), each waited for in turn.
    for (const std::size_t index : {std::size_t{2}, std::size_t{0}, std::size_t{1}}) {
        Node& node = nodes[index];
        node.port = free_port();
        node.process = std::make_unique<Passgate>(
            dir, PassgateOptions{pool_config(node.port, node.endpoints), {}, node.workers}, node.name);
        REQUIRE(node.process->wait_ready());
    }

    // 60 client addresses, 2 connections each through every node (with 2 workers the kernel's
    // SO_REUSEPORT hash of the source port spreads them over the workers).
    std::map<std::string, std::string> reached;  // source -> endpoint id, from node 1
    IdCounts per_endpoint;
    int disagreements = 0;
    for (int i = 10; i < 70; ++i) {
        const std::string source = "127.0.0." + std::to_string(i);
        for (const Node& node : nodes) {
            for (int round = 0; round < 2; ++round) {
                const std::string id = ask_backend(node.port, hello(), source);
                REQUIRE(id != "");
                const auto [first, inserted] = reached.emplace(source, id);
                if (inserted) ++per_endpoint[id];
                if (first->second != id) {
                    ++disagreements;
                    UNSCOPED_INFO(source << ": " << first->second << " via node-1, " << id << " via " << node.name);
                }
            }
        }
    }
    INFO("sources per endpoint: a=" << per_endpoint["a"] << " b=" << per_endpoint["b"] << " c=" << per_endpoint["c"]
                                    << " d=" << per_endpoint["d"] << " e=" << per_endpoint["e"]);
    CHECK(disagreements == 0);
    CHECK(reached.size() == 60);
    // The keys really spread (the agreement is not that of one endpoint taking everything).
    CHECK(per_endpoint.size() >= 4);
    for (Node& node : nodes) stop_and_check(*node.process);
}
