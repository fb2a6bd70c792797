// Endpoint discovery and health with real processes: a real dnsmasq for `dns`, an endpoints file
// rewritten by atomic rename, and backends stopped and restarted under active health checks.
// Identifying backends tell which endpoints passgate uses.

#include "tests/support/backends.h"
#include "tests/support/dnsmasq.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

using namespace integration;

namespace {

const std::vector<std::uint8_t>& hello() { return captured_hello("curl-h2.bin").bytes; }

std::string pool_config(std::uint16_t port, const std::string& service_lines, const std::string& extra = "") {
    return "[admin]\naddress = \"@ADMIN@\"\n\n" + extra +
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n"
           "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nhostnames = [\"curl-h2.corpus.test\"]\n"
           "backends = [ { service = \"pool\" } ]\n\n"
           "[[service]]\nname = \"pool\"\n" + service_lines + "\n";
}

// Ids answered by `count` connections; "" counts failures.
IdCounts ask_many(std::uint16_t port, int count) {
    IdCounts counts;
    for (int i = 0; i < count; ++i) ++counts[ask_backend(port, hello())];
    return counts;
}

std::set<std::string> ids_of(const IdCounts& counts) {
    std::set<std::string> ids;
    for (const auto& [id, count] : counts)
        if (count > 0) ids.insert(id);
    return ids;
}

std::string healthy_series(const std::string& endpoint) {
    return "passgate_endpoint_healthy{service=\"pool\",endpoint=\"" + endpoint + "\"}";
}

// Atomic replace, as the README tells operators to do it.
void replace_file(const std::string& path, const std::string& text) {
    write_file(path + ".tmp", text);
    REQUIRE(std::rename((path + ".tmp").c_str(), path.c_str()) == 0);
}

}  // namespace

TEST_CASE("dns discovery follows a real DNS server; a failed resolution keeps the last set",
          "[integration][discovery][dns]") {
    TempDir dir;
    // One port, several loopback addresses: what a headless Service looks like.
    const std::uint16_t backend_port = free_port();
    IdentBackend b2("b2", backend_port, "127.0.0.2"), b3("b3", backend_port, "127.0.0.3"),
        b4("b4", backend_port, "127.0.0.4");
    Dnsmasq dnsmasq("127.0.0.2 pool.test\n127.0.0.3 pool.test\n", {}, 1);
    const std::uint16_t port = free_port();
    const std::string config = pool_config(
        port, "dns = \"pool.test\"\nport = " + std::to_string(backend_port) +
                  "\ndns_min_ttl = \"100ms\"\ndns_max_ttl = \"1s\"",
        "[dns]\nservers = [\"" + dnsmasq.server() + "\"]\ntimeout = \"200ms\"\ntries = 1\n\n");
    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());  // ready only after the first answer

    CHECK(ids_of(ask_many(port, 20)) == std::set<std::string>{"b2", "b3"});
    CHECK(passgate.metric({"passgate_service_endpoints"}) == 2.0);

    // The pool changes: b2 leaves, b4 joins. dnsmasq's TTL is 1 s: seen within about that.
    dnsmasq.rewrite_hosts("127.0.0.3 pool.test\n127.0.0.4 pool.test\n");
    const bool followed = wait_until([&] {
        return metric_sample(passgate, healthy_series("127.0.0.4:" + std::to_string(backend_port))) == 1.0 &&
               !metric_sample(passgate, healthy_series("127.0.0.2:" + std::to_string(backend_port)));
    }, Millis(5000));
    INFO(passgate.stderr_text());
    REQUIRE(followed);
    const IdCounts after = ask_many(port, 20);
    CHECK(ids_of(after) == std::set<std::string>{"b3", "b4"});
    const std::size_t b2_before = b2.accepted();

    // The DNS server goes away: resolution fails, is counted, and the last set keeps serving.
    dnsmasq.stop();
    REQUIRE(wait_until([&] {
        return metric_sample(passgate, "passgate_discovery_updates_total{service=\"pool\",result=\"failure\"}")
                   .value_or(0) >= 2;
    }, Millis(5000)));
    CHECK(ids_of(ask_many(port, 20)) == std::set<std::string>{"b3", "b4"});
    CHECK(b2.accepted() == b2_before);
    CHECK(passgate.wait_for_log("keeping the last 2 endpoints"));
    CHECK(passgate.failed_connection_lines().empty());
    stop_and_check(passgate);
}

TEST_CASE("endpoints_file: atomic rewrites are followed; a malformed version keeps the last set",
          "[integration][discovery][file]") {
    TempDir dir;
    IdentBackend a("a"), b("b"), c("c");
    const auto line = [](const IdentBackend& backend, const std::string& options = "") {
        return "127.0.0.1:" + std::to_string(backend.port()) + options + "\n";
    };
    const std::string pool = dir.file("pool.endpoints");
    write_file(pool, "# written by the test\n" + line(a) + line(b));
    const std::uint16_t port = free_port();
    // A relative path: next to the config file.
    Passgate passgate(dir, {pool_config(port, "endpoints_file = \"pool.endpoints\""), {}, 2});
    REQUIRE(passgate.wait_ready());
    CHECK(ids_of(ask_many(port, 20)) == std::set<std::string>{"a", "b"});

    replace_file(pool, line(c) + line(b, " weight=0"));
    REQUIRE(wait_until([&] { return passgate.metric({"passgate_service_endpoints"}) == 2.0 &&
                                    !metric_sample(passgate, healthy_series("127.0.0.1:" + std::to_string(a.port()))); },
                       Millis(3000)));
    CHECK(ids_of(ask_many(port, 20)) == std::set<std::string>{"c"});  // b drained by weight 0

    // A broken version: logged with its line, counted, and c keeps serving.
    replace_file(pool, line(a) + "not-an-address\n");
    REQUIRE(wait_until([&] {
        return metric_sample(passgate, "passgate_discovery_updates_total{service=\"pool\",result=\"failure\"}")
                   .value_or(0) >= 1;
    }, Millis(3000)));
    CHECK(passgate.wait_for_log("pool.endpoints:2: invalid address"));
    CHECK(ids_of(ask_many(port, 20)) == std::set<std::string>{"c"});

    // Fixed again: followed.
    replace_file(pool, line(a));
    REQUIRE(wait_until([&] { return ids_of(ask_many(port, 4)) == std::set<std::string>{"a"}; }, Millis(3000)));
    CHECK(passgate.failed_connection_lines().empty());
    stop_and_check(passgate);

    // At start-up a missing file is an error naming it: there is no last good set.
    std::remove(pool.c_str());
    Passgate broken(dir, {pool_config(free_port(), "endpoints_file = \"pool.endpoints\""), {}, 2}, "broken");
    CHECK_FALSE(broken.wait_ready(Millis(3000)));
    CHECK(broken.wait_for_log("pool.endpoints: cannot open"));
}

TEST_CASE("health checks: a stopped backend gets no connections after detection, none fail, and "
          "it is used again once back", "[integration][discovery][health]") {
    TempDir dir;
    IdentBackend a("a"), b("b"), c("c");
    const std::uint16_t port = free_port();
    const auto address = [](const IdentBackend& backend) {
        return "127.0.0.1:" + std::to_string(backend.port());
    };
    // Outlier detection off: only the active check takes b out.
    const std::string config = pool_config(port,
        "endpoints = [\"" + address(a) + "\", \"" + address(b) + "\", \"" + address(c) + "\"]\n"
        "[service.health_check]\ninterval = \"100ms\"\ntimeout = \"200ms\"\n"
        "unhealthy_threshold = 2\nhealthy_threshold = 1\n"
        "[service.outlier_detection]\nconsecutive_failures = 0");
    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());
    CHECK(metric_sample(passgate, healthy_series(address(b))) == 1.0);
    CHECK(ids_of(ask_many(port, 30)) == std::set<std::string>{"a", "b", "c"});

    // b stops: clients keep being served (connect retry) while the check notices.
    b.stop();
    int failed = 0;
    const bool detected = wait_until([&] {
        if (ask_backend(port, hello()) == "") ++failed;
        return metric_sample(passgate, healthy_series(address(b))) == 0.0;
    }, Millis(5000));
    REQUIRE(detected);
    CHECK(failed == 0);
    CHECK(passgate.wait_for_log("endpoint " + address(b) + " is now unhealthy"));
    // From now on b gets nothing, and no connect is even attempted to it.
    const double refused_before =
        passgate.metric({"passgate_upstream_connect_failures_total"}).value_or(0);
    const IdCounts during = ask_many(port, 40);
    CHECK(during.count("") == 0);
    CHECK(ids_of(during) == std::set<std::string>{"a", "c"});
    CHECK(passgate.metric({"passgate_upstream_connect_failures_total"}).value_or(0) == refused_before);

    // Back on its port: healthy after one pass, and used again.
    b.restart();
    REQUIRE(wait_until([&] { return metric_sample(passgate, healthy_series(address(b))) == 1.0; },
                       Millis(5000)));
    const IdCounts after = ask_many(port, 30);
    CHECK(after.count("b") == 1);
    CHECK(after.at("b") >= 5);
    CHECK(passgate.failed_connection_lines().empty());
    stop_and_check(passgate);
}

TEST_CASE("dns_srv discovery: SRV ports and weights from a real DNS server", "[integration][discovery][dns]") {
    TempDir dir;
    IdentBackend light("light"), heavy("heavy");
    // Two targets on 127.0.0.1, told apart by the SRV records' ports; weights 1 and 3.
    Dnsmasq dnsmasq("127.0.0.1 light.test\n127.0.0.1 heavy.test\n",
                    {"_tls._tcp.pool.test,light.test," + std::to_string(light.port()) + ",0,1",
                     "_tls._tcp.pool.test,heavy.test," + std::to_string(heavy.port()) + ",0,3"},
                    1);
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {pool_config(port, "dns_srv = \"_tls._tcp.pool.test\"",
                                        "[dns]\nservers = [\"" + dnsmasq.server() + "\"]\n\n"),
                            {}, 2});
    REQUIRE(passgate.wait_ready());
    CHECK(passgate.metric({"passgate_service_endpoints"}) == 2.0);
    const IdCounts counts = ask_many(port, 80);
    INFO("light=" << (counts.count("light") ? counts.at("light") : 0)
                  << " heavy=" << (counts.count("heavy") ? counts.at("heavy") : 0));
    CHECK(counts.count("") == 0);
    // Smooth weighted round robin per worker: 20 / 60 within 2 workers x 4 (one cycle each).
    REQUIRE(counts.count("light") == 1);
    CHECK(std::abs(counts.at("light") - 20) <= 8);
    CHECK(std::abs(counts.at("heavy") - 60) <= 8);
    stop_and_check(passgate);
}
