// The ClientHello as it arrives over a real socket: split byte by byte, re-framed across TLS
// records, malformed, truncated, without SNI.

#include "tests/integration/net.h"
#include "tests/integration/passgate.h"
#include "tests/integration/process.h"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <thread>

using namespace integration;

namespace {

// Two listeners in front of two echo backends:
//   "strict"  : client_hello_timeout 300ms, no default route
//   "lenient" : default_route = "fallback" (service "spare", the second backend)
// Route "corpus" (*.corpus.test) on both leads to service "main" (the first backend).
struct HelloSetup {
    TempDir dir;
    EchoBackend main_backend;
    EchoBackend spare_backend;
    std::uint16_t strict_port = free_port();
    std::uint16_t lenient_port = free_port();
    std::unique_ptr<Passgate> passgate;

    HelloSetup() {
        const std::string config =
            "[admin]\naddress = \"@ADMIN@\"\n\n"
            "[[listener]]\nname = \"strict\"\naddress = \"127.0.0.1:" + std::to_string(strict_port) + "\"\n"
            "client_hello_timeout = \"300ms\"\n\n"
            "[[listener]]\nname = \"lenient\"\naddress = \"127.0.0.1:" + std::to_string(lenient_port) + "\"\n"
            "default_route = \"fallback\"\n\n"
            "[[route]]\nname = \"corpus\"\nlisteners = [\"strict\", \"lenient\"]\n"
            "hostnames = [\"*.corpus.test\"]\nbackends = [ { service = \"main\" } ]\n\n"
            "[[route]]\nname = \"fallback\"\nlisteners = [\"lenient\"]\n"
            "backends = [ { service = \"spare\" } ]\n\n"
            "[[service]]\nname = \"main\"\nendpoints = [\"127.0.0.1:" + std::to_string(main_backend.port()) + "\"]\n\n"
            "[[service]]\nname = \"spare\"\nendpoints = [\"127.0.0.1:" + std::to_string(spare_backend.port()) + "\"]\n";
        passgate = std::make_unique<Passgate>(dir, PassgateOptions{config, {}, 2});
        REQUIRE(passgate->wait_ready());
    }

    // passgate logged a line for the connection from `client` containing `needle`.
    bool logged(const std::string& client, const std::string& needle) const {
        return passgate->wait_for_client_log(client, needle);
    }
};

// Sends nothing more, reads back exactly `expected.size()` bytes (the echo), then closes.
void expect_echo(int fd, const std::vector<std::uint8_t>& expected) {
    std::vector<std::uint8_t> echoed(expected.size());
    const bool got = recv_exact(fd, echoed.data(), echoed.size(), deadline_in(Millis(5000)));
    REQUIRE(got);
    CHECK(byte_difference(echoed, expected) == "");
}

// chromium.bin re-framed: the handshake message cut into records of `piece` bytes, each with its
// own header (type 22, version 3.1).
std::vector<std::uint8_t> reframe(const std::vector<std::uint8_t>& hello, std::size_t piece) {
    REQUIRE(hello.size() > 5);
    REQUIRE(hello[0] == 0x16);
    const std::size_t record = (std::size_t{hello[3]} << 8) | hello[4];
    REQUIRE(hello.size() == 5 + record);  // the capture is one record
    std::vector<std::uint8_t> out;
    for (std::size_t at = 5; at < hello.size(); at += piece) {
        const std::size_t size = std::min(piece, hello.size() - at);
        out.insert(out.end(), {0x16, 0x03, 0x01, static_cast<std::uint8_t>(size >> 8),
                               static_cast<std::uint8_t>(size & 0xff)});
        out.insert(out.end(), hello.begin() + static_cast<std::ptrdiff_t>(at),
                   hello.begin() + static_cast<std::ptrdiff_t>(at + size));
    }
    return out;
}

}  // namespace

TEST_CASE("hello: split one byte per write still routes, bytes unchanged", "[integration][hello]") {
    HelloSetup setup;
    const CapturedHello& hello = captured_hello("chromium.bin");
    Socket client = connect_to(setup.lenient_port);
    REQUIRE(client);
    set_nodelay(client.get());
    const Deadline deadline = deadline_in(Millis(20000));
    for (std::size_t i = 0; i < hello.bytes.size(); ++i) {
        REQUIRE(send_all(client.get(), &hello.bytes[i], 1, deadline));
        if (i < 100) std::this_thread::sleep_for(Millis(1));
    }
    expect_echo(client.get(), hello.bytes);
    CHECK(setup.main_backend.accepted() == 1);
    CHECK(setup.spare_backend.accepted() == 0);
    CHECK(byte_difference(setup.main_backend.received(0), hello.bytes) == "");
    client.reset();
    stop_and_check(*setup.passgate);
}

TEST_CASE("hello: re-framed across 200-byte TLS records routes, bytes unchanged",
          "[integration][hello]") {
    HelloSetup setup;
    const std::vector<std::uint8_t> reframed = reframe(captured_hello("chromium.bin").bytes, 200);
    REQUIRE(reframed.size() > 10 * 200);  // 10 records

    SECTION("in one write") {
        Socket client = connect_to(setup.strict_port);
        REQUIRE(client);
        REQUIRE(send_all(client.get(), reframed, deadline_in(Millis(5000))));
        expect_echo(client.get(), reframed);
    }
    SECTION("one record per write") {
        Socket client = connect_to(setup.strict_port);
        REQUIRE(client);
        set_nodelay(client.get());
        for (std::size_t at = 0; at < reframed.size(); at += 205) {
            const std::size_t size = std::min<std::size_t>(205, reframed.size() - at);
            REQUIRE(send_all(client.get(), reframed.data() + at, size, deadline_in(Millis(5000))));
            std::this_thread::sleep_for(Millis(2));
        }
        expect_echo(client.get(), reframed);
    }
    CHECK(setup.main_backend.accepted() == 1);
    CHECK(byte_difference(setup.main_backend.received(0), reframed) == "");
    CHECK(setup.spare_backend.accepted() == 0);
    stop_and_check(*setup.passgate);
}

TEST_CASE("hello: plain HTTP is closed at once with hello_error=not_tls", "[integration][hello]") {
    HelloSetup setup;
    Socket client = connect_to(setup.strict_port);
    REQUIRE(client);
    const std::string client_name = local_name(client.get());
    const std::string request = "GET / HTTP/1.1\r\n\r\n";
    REQUIRE(send_all(client.get(), request.data(), request.size(), deadline_in(Millis(2000))));
    const CloseObservation close = wait_closed(client.get(), Millis(2000));
    CHECK(close.closed);
    CHECK(close.bytes == 0);
    INFO("passgate stderr:\n" << setup.passgate->stderr_text());
    CHECK(setup.logged(client_name, "hello_error=not_tls"));
    CHECK(setup.main_backend.accepted() == 0);
    CHECK(setup.spare_backend.accepted() == 0);
    stop_and_check(*setup.passgate);
}

TEST_CASE("hello: a truncated hello is closed after client_hello_timeout (300ms)",
          "[integration][hello]") {
    HelloSetup setup;
    const CapturedHello& hello = captured_hello("curl-h2.bin");
    const Clock::time_point start = Clock::now();
    Socket client = connect_to(setup.strict_port);
    REQUIRE(client);
    const std::string client_name = local_name(client.get());
    REQUIRE(send_all(client.get(), hello.bytes.data(), hello.bytes.size() / 2, deadline_in(Millis(2000))));
    const CloseObservation close = wait_closed(client.get(), Millis(3000));
    const auto after = std::chrono::duration_cast<Millis>(Clock::now() - start);
    INFO("closed after " << after.count() << " ms");
    CHECK(close.closed);
    CHECK(after >= Millis(200));
    CHECK(after < Millis(3000));
    INFO("passgate stderr:\n" << setup.passgate->stderr_text());
    CHECK(setup.logged(client_name, "reason=hello_timeout"));
    CHECK(setup.main_backend.accepted() == 0);
    stop_and_check(*setup.passgate);
}

TEST_CASE("hello: no SNI is closed (no_sni) without a default route, and routed with one",
          "[integration][hello]") {
    HelloSetup setup;
    const CapturedHello& hello = captured_hello("openssl-noservername.bin");
    REQUIRE_FALSE(hello.sni.has_value());

    {
        Socket client = connect_to(setup.strict_port);
        REQUIRE(client);
        const std::string client_name = local_name(client.get());
        REQUIRE(send_all(client.get(), hello.bytes, deadline_in(Millis(2000))));
        const CloseObservation close = wait_closed(client.get(), Millis(2000));
        CHECK(close.closed);
        CHECK(close.bytes == 0);
        INFO("passgate stderr:\n" << setup.passgate->stderr_text());
        CHECK(setup.logged(client_name, "reason=no_sni"));
        CHECK(setup.main_backend.accepted() == 0);
        CHECK(setup.spare_backend.accepted() == 0);
    }
    {
        Socket client = connect_to(setup.lenient_port);
        REQUIRE(client);
        REQUIRE(send_all(client.get(), hello.bytes, deadline_in(Millis(2000))));
        expect_echo(client.get(), hello.bytes);
        CHECK(setup.spare_backend.accepted() == 1);
        CHECK(byte_difference(setup.spare_backend.received(0), hello.bytes) == "");
        CHECK(setup.main_backend.accepted() == 0);
    }
    {
        // A routed name on the same listener still goes to its own route, not the default.
        const CapturedHello& named = captured_hello("go-crypto-tls.bin");
        Socket client = connect_to(setup.lenient_port);
        REQUIRE(client);
        REQUIRE(send_all(client.get(), named.bytes, deadline_in(Millis(2000))));
        expect_echo(client.get(), named.bytes);
        CHECK(setup.main_backend.accepted() == 1);
        CHECK(setup.spare_backend.accepted() == 1);
    }
    stop_and_check(*setup.passgate);
}

TEST_CASE("hello: a client that half-closes right after its hello is still routed; the FIN passes",
          "[integration][hello][halfclose]") {
    HelloSetup setup;
    const CapturedHello& hello = captured_hello("firefox-esr.bin");
    const std::string extra = "client data after the hello";
    std::vector<std::uint8_t> sent = hello.bytes;
    sent.insert(sent.end(), extra.begin(), extra.end());

    Socket client = connect_to(setup.lenient_port);
    REQUIRE(client);
    const std::string client_name = local_name(client.get());
    // The FIN travels in the same segment as the last bytes (TCP_CORK holds them until shutdown),
    // so passgate reads the end of a complete hello and the EOF in one go. A complete hello
    // followed by a half-close is a valid stream: it must be routed, and the FIN passed on.
    const int one = 1;
    REQUIRE(::setsockopt(client.get(), IPPROTO_TCP, TCP_CORK, &one, sizeof one) == 0);
    SECTION("hello, data and FIN in one segment") {
        REQUIRE(send_all(client.get(), sent, deadline_in(Millis(2000))));
    }
    SECTION("half the hello first; the rest, data and FIN later in one segment") {
        const std::size_t half = hello.bytes.size() / 2;
        const int zero = 0;
        REQUIRE(send_all(client.get(), sent.data(), half, deadline_in(Millis(2000))));
        REQUIRE(::setsockopt(client.get(), IPPROTO_TCP, TCP_CORK, &zero, sizeof zero) == 0);  // flush
        std::this_thread::sleep_for(Millis(100));  // passgate has read the first half by now
        REQUIRE(::setsockopt(client.get(), IPPROTO_TCP, TCP_CORK, &one, sizeof one) == 0);
        REQUIRE(send_all(client.get(), sent.data() + half, sent.size() - half, deadline_in(Millis(2000))));
    }
    REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);

    std::vector<std::uint8_t> echoed(sent.size());
    const bool got = recv_exact(client.get(), echoed.data(), echoed.size(), deadline_in(Millis(5000)));
    INFO("passgate stderr:\n" << setup.passgate->stderr_text());
    CHECK(got);
    CHECK(byte_difference(echoed, sent) == "");
    // The echo backend closes its side only after it has seen the FIN: the stream ends cleanly.
    const CloseObservation close = wait_closed(client.get(), Millis(3000));
    CHECK(close.closed);
    CHECK_FALSE(close.reset);
    CHECK(setup.main_backend.accepted() == 1);
    CHECK(byte_difference(setup.main_backend.received(0), sent) == "");
    // Its access-log line says it completed normally.
    CHECK(setup.passgate->wait_for_client_log(client_name, "reason=completed"));
    CHECK(setup.passgate->failed_connection_lines().empty());
    stop_and_check(*setup.passgate);
}
