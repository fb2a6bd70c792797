// [[listener]] defer_accept (on by default): passgate takes a connection once its first bytes
// arrived, so a client that only connects is not accepted (not counted, holds no descriptor) until
// the kernel gives up waiting for it (about a second), while one that sends its hello is served
// at once. A reload turns it off and on for the running listener's sockets.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <thread>

using namespace integration;

namespace {

std::string config_with(std::uint16_t port, std::uint16_t backend_port, const std::string& listener_extra,
                        const std::string& route_extra = "") {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n" +
           "client_hello_timeout = \"3s\"\n" + listener_extra +
           "\n[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [ { service = \"echo\" } ]\n" + route_extra + "\n"
           "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n";
}

const std::vector<std::uint8_t>& any_hello() { return captured_hello("curl-h2.bin").bytes; }

// The echo backend sends the hello back first, then the text: both, byte for byte.
std::string served(int fd, const std::string& text) {
    if (!send_all(fd, any_hello(), deadline_in(Millis(2000)))) return "hello not sent";
    std::vector<std::uint8_t> echoed(any_hello().size());
    if (!recv_exact(fd, echoed.data(), echoed.size(), deadline_in(Millis(3000)))) return "no hello echoed";
    if (echoed != any_hello()) return "hello echo differs";
    return echo_check(fd, text);
}

double reload_successes(const Passgate& passgate) {
    return metric_sample(passgate, "passgate_config_reloads_total{result=\"success\"}").value_or(-1);
}

}  // namespace

// The shipped default with a check at accept: a denied client that sends its hello is refused as
// soon as the hello arrives, before passgate reads a byte of it.
TEST_CASE("defer_accept: a denied client is refused as soon as its bytes arrive", "[integration][defer_accept]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {config_with(port, backend.port(), "deny = [\"127.0.0.0/8\"]\n"), {}, 1});
    REQUIRE(passgate.wait_ready());
    Socket denied = connect_to(port);
    REQUIRE(denied);
    REQUIRE(send_all(denied.get(), any_hello(), deadline_in(Millis(2000))));
    const CloseObservation seen = wait_closed(denied.get(), Millis(3000));
    CHECK(seen.closed);
    CHECK(seen.bytes == 0);
    CHECK(seen.after < Millis(500));
    CHECK(labelled_sum(passgate, "passgate_downstream_connections_refused_total", {"reason=\"denied\""}) == 1);
    CHECK(backend.accepted() == 0);
    stop_and_check(passgate);
}

TEST_CASE("defer_accept: a silent connection is not accepted until its bytes come; a reload turns it off",
          "[integration][defer_accept]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {config_with(port, backend.port(), ""), {}, 1});
    REQUIRE(passgate.wait_ready());
    auto accepted = [&] { return passgate.metric({"passgate_worker_accepted_total"}).value_or(-1); };
    REQUIRE(accepted() == 0);
    // Reloads to the listener with `extra` (the `count`th reload), then connects and says nothing.
    auto reload_then_connect = [&](const std::string& extra, int count) {
        reload_with(passgate, config_with(port, backend.port(), extra));
        REQUIRE(wait_for_reloads(passgate, count));
        REQUIRE(reload_successes(passgate) == count);
        Socket client = connect_to(port);
        REQUIRE(client);
        return client;
    };

    // Default (on): the handshake completes in the kernel, and passgate sees nothing. A bounded
    // look (300 ms, well inside the kernel's one second) at something that must not happen.
    Socket silent = connect_to(port);
    REQUIRE(silent);
    std::this_thread::sleep_for(Millis(300));
    CHECK(accepted() == 0);
    // Its hello arrives: accepted and served at once, byte for byte.
    CHECK(served(silent.get(), "on").empty());
    CHECK(accepted() == 1);
    silent.reset();

    // Off by reload: the listener's running sockets accept at the handshake, before any byte.
    Socket early = reload_then_connect("defer_accept = false\n", 1);
    // Within 600 ms: a deferred one waits for the kernel's SYN-ACK timer (1 s) at the least.
    CHECK(wait_until([&] { return accepted() == 2; }, Millis(600)));
    CHECK(served(early.get(), "off").empty());
    early.reset();

    // On again by reload.
    Socket deferred = reload_then_connect("defer_accept = true\n", 2);
    std::this_thread::sleep_for(Millis(300));
    CHECK(accepted() == 2);
    // Still silent: the kernel hands it over after about a second, and the hello deadline
    // (client_hello_timeout 3 s) closes it and counts it.
    CHECK(wait_until([&] { return accepted() == 3; }, Millis(5000)));
    CHECK(wait_closed(deferred.get(), Millis(6000)).closed);
    CHECK(labelled_sum(passgate, "passgate_client_hello_rejected_total", {"reason=\"timeout\""}) == 1);
    stop_and_check(passgate);
}

// A reload rejected after its listeners were looked at (here: a hostnames_file that is missing,
// found when the reload is installed) changes nothing on the running sockets.
TEST_CASE("defer_accept: a rejected reload leaves the running sockets as they were", "[integration][defer_accept]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {config_with(port, backend.port(), ""), {}, 1});
    REQUIRE(passgate.wait_ready());
    reload_with(passgate, config_with(port, backend.port(), "defer_accept = false\n", "hostnames_file = \"missing.txt\"\n"));
    REQUIRE(wait_for_reloads(passgate, 1));
    REQUIRE(metric_sample(passgate, "passgate_config_reloads_total{result=\"failure\"}") == 1.0);
    Socket silent = connect_to(port);
    REQUIRE(silent);
    std::this_thread::sleep_for(Millis(300));
    CHECK(passgate.metric({"passgate_worker_accepted_total"}) == 0.0);
    CHECK(served(silent.get(), "still deferred").empty());
    silent.reset();  // closed before the stop, which would otherwise drain it for 30 s
    stop_and_check(passgate);
}
