// Connect retry: an endpoint that refuses is skipped (nothing was sent yet), so clients never see it.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

using namespace integration;

TEST_CASE("connect: a dead endpoint is retried on the live one; every client succeeds",
          "[integration][connect]") {
    TempDir dir;
    EchoBackend live;
    const std::uint16_t dead = free_port();  // nothing listens here
    const std::uint16_t dead_too = free_port();
    REQUIRE(dead != dead_too);
    const std::uint16_t port = free_port();
    // connect_attempts is left at its default (3).
    const std::string config =
        "[admin]\naddress = \"@ADMIN@\"\n\n"
        "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n"
        "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"curl-h2.corpus.test\"]\n"
        "backends = [ { service = \"half-dead\" } ]\n\n"
        "[[route]]\nname = \"hopeless\"\nlisteners = [\"tls\"]\nhostnames = [\"go.corpus.test\"]\n"
        "backends = [ { service = \"all-dead\" } ]\n\n"
        "[[service]]\nname = \"half-dead\"\n"
        "endpoints = [\"127.0.0.1:" + std::to_string(dead) + "\", \"127.0.0.1:" + std::to_string(live.port()) + "\"]\n\n"
        "[[service]]\nname = \"all-dead\"\n"
        "endpoints = [\"127.0.0.1:" + std::to_string(dead_too) + "\"]\n";
    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());

    const CapturedHello& hello = captured_hello("curl-h2.bin");
    constexpr int connections = 20;
    int succeeded = 0;
    for (int i = 0; i < connections; ++i) {
        Socket client = connect_to(port);
        REQUIRE(client);
        const Deadline deadline = deadline_in(Millis(5000));
        REQUIRE(send_all(client.get(), hello.bytes, deadline));
        std::vector<std::uint8_t> echoed(hello.bytes.size());
        if (recv_exact(client.get(), echoed.data(), echoed.size(), deadline) && echoed == hello.bytes)
            ++succeeded;
        // The client closes; the echo backend then closes its side.
        ::shutdown(client.get(), SHUT_WR);
        CHECK(wait_closed(client.get(), Millis(3000)).closed);
    }
    CHECK(succeeded == connections);
    CHECK(live.accepted() == static_cast<std::size_t>(connections));
    {
        INFO("passgate stderr:\n" << passgate.stderr_text());
        CHECK(passgate.failed_connection_lines().empty());
    }

    // With only dead endpoints, the client is closed and the reason is logged.
    {
        const CapturedHello& go = captured_hello("go-crypto-tls.bin");
        Socket client = connect_to(port);
        REQUIRE(client);
        const std::string name = local_name(client.get());
        REQUIRE(send_all(client.get(), go.bytes, deadline_in(Millis(2000))));
        const CloseObservation close = wait_closed(client.get(), Millis(5000));
        CHECK(close.closed);
        CHECK(close.bytes == 0);
        INFO("passgate stderr:\n" << passgate.stderr_text());
        CHECK(passgate.wait_for_client_log(name, "reason=connect_failed"));
    }
    stop_and_check(passgate);
}
