// The admin port under idle and slow clients (issue 13, item 8): /healthz must answer whatever
// other clients hold, and a request head that does not arrive is closed at request_timeout.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace integration;

namespace {

// One listener to a service nobody connects to: these tests talk to the admin port only.
std::string admin_config(const std::string& admin_extra = "") {
    return "[admin]\naddress = \"@ADMIN@\"\n" + admin_extra +
           "\n[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(free_port()) + "\"\n"
           "\n[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [ { service = \"s\" } ]\n"
           "\n[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:" + std::to_string(free_port()) + "\"]\n";
}

// The sample of `series` (labels included, as exposed) in /metrics; nullopt when absent.
std::optional<double> sample(const Passgate& passgate, const std::string& series) {
    return metric_sample(passgate, series);
}

// Connects to the admin port from `source` and sends `head` (possibly nothing).
Socket hold_connection(const Passgate& passgate, const char* source, const std::string& head = "") {
    Socket socket = connect_bound_to(source, passgate.admin_port());
    REQUIRE(socket);
    if (!head.empty()) REQUIRE(send_all(socket.get(), head.data(), head.size(), deadline_in(Millis(1000))));
    return socket;
}

// How long until passgate closes `socket` (EOF or reset), sending one more header byte every
// 200 ms meanwhile (a slowloris head); nullopt if it is still open after `limit`.
std::optional<Millis> closed_after(int socket, Millis limit) {
    const Clock::time_point start = Clock::now();
    for (int round = 0; round < 1000 && Clock::now() - start < limit; ++round) {
        const char byte = 'x';
        ::send(socket, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        char buffer[256];
        const auto got = recv_some(socket, buffer, sizeof buffer, deadline_in(Millis(200)));
        if ((got && *got == 0) || (!got && errno != ETIMEDOUT))
            return std::chrono::duration_cast<Millis>(Clock::now() - start);
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("admin: 300 idle and slow connections from several sources and from one do not keep "
          "/healthz and /readyz from answering at once", "[integration][admin]") {
    TempDir dir;
    Passgate passgate(dir, {admin_config(), {}, 1});
    REQUIRE(passgate.wait_ready());

    // 300 idle from twenty other addresses (15 each, under the per-source limit of 16: together
    // over the total of 256), 150 idle from 127.0.0.1 (the probes' own address) and 20 from
    // 127.0.0.1 that send half a request head.
    std::vector<Socket> held;
    for (int source = 2; source < 22; ++source) {
        const std::string address = "127.0.0." + std::to_string(source);
        for (int i = 0; i < 15; ++i) held.push_back(hold_connection(passgate, address.c_str()));
    }
    for (int i = 0; i < 150; ++i) held.push_back(hold_connection(passgate, "127.0.0.1"));
    for (int i = 0; i < 20; ++i) held.push_back(hold_connection(passgate, "127.0.0.1", "GET /healthz HTTP/1.1\r\n"));
    std::this_thread::sleep_for(Millis(200));

    // Probes answer at once, every time, while the others hold their connections.
    for (int probe = 0; probe < 10; ++probe) {
        const Clock::time_point start = Clock::now();
        const auto health = http_get(passgate.admin_port(), probe % 2 == 0 ? "/healthz" : "/readyz", Millis(1000));
        const Millis took = std::chrono::duration_cast<Millis>(Clock::now() - start);
        INFO("probe " << probe << " took " << took.count() << " ms");
        REQUIRE(health);
        CHECK(health->status == 200);
    }
    // The room came from the oldest idle connections (the per-source limit and the total).
    CHECK(sample(passgate, "passgate_admin_connections_closed_total{reason=\"evicted\"}").value_or(0) >= 300 - 256);
    held.clear();
    stop_and_check(passgate);
}

TEST_CASE("admin: a request head that never completes is closed at request_timeout", "[integration][admin]") {
    TempDir dir;
    SECTION("request_timeout = \"1s\"") {
        Passgate passgate(dir, {admin_config("request_timeout = \"1s\"\n"), {}, 1});
        REQUIRE(passgate.wait_ready());
        Socket slow = hold_connection(passgate, "127.0.0.1", "GET /metrics HTTP/1.1\r\nX-Slow: ");
        const std::optional<Millis> after = closed_after(slow.get(), Millis(6000));
        REQUIRE(after);
        INFO("closed after " << after->count() << " ms");
        CHECK(*after >= Millis(800));
        CHECK(*after < Millis(2500));
        CHECK(sample(passgate, "passgate_admin_connections_closed_total{reason=\"timeout\"}") == 1);
        stop_and_check(passgate);
    }
    SECTION("by default (2 s)") {
        Passgate passgate(dir, {admin_config(), {}, 1});
        REQUIRE(passgate.wait_ready());
        Socket slow = hold_connection(passgate, "127.0.0.1", "GET /metrics HTTP/1.1\r\nX-Slow: ");
        const std::optional<Millis> after = closed_after(slow.get(), Millis(8000));
        REQUIRE(after);
        INFO("closed after " << after->count() << " ms");
        CHECK(*after >= Millis(1800));
        CHECK(*after < Millis(3500));
        stop_and_check(passgate);
    }
}
