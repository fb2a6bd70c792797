// reactor/socket.h's two packet savings, seen from the other end of a real loopback connection:
// - set_defer_accept: the listening side hands a connection over once data arrived;
// - ConnectOptions::ack_with_first_data: the connecting side holds the handshake's last ACK back
//   until its first write, so the listening side (without deferral) sees the connection only then.
// Both are timed by the kernel (a deferred accept waits about 1 s for silent clients, a held-back
// ACK at most 200 ms): "not yet" checks look well inside those windows, and a run whose thread was
// held up past the window is retried instead of read as a failure.

#include "reactor/socket.h"

#include "tests/reactor/helpers.h"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

using namespace passgate::reactor;
using reactor_test::connect_blocking;
using reactor_test::loopback;

namespace {

using Clock = std::chrono::steady_clock;

Fd listen_on_loopback(int& port) {
    const sockaddr_in address = loopback(0);
    Fd listening = listen_tcp(reinterpret_cast<const sockaddr*>(&address), sizeof address);
    port = local_port(listening.get());
    return listening;
}

// True once `fd` is readable within `timeout_ms` (a listening socket: a connection to accept).
bool readable_within(int fd, int timeout_ms) {
    pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
    return ::poll(&entry, 1, timeout_ms) == 1;
}

void send_byte(int fd) { REQUIRE(::send(fd, "x", 1, MSG_NOSIGNAL) == 1); }

// Accepts the waiting connection and reads what it has right now (non-blocking).
std::string accept_and_read_now(int listening) {
    Fd accepted(::accept4(listening, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    REQUIRE(accepted);
    char buffer[16];
    const ssize_t got = ::recv(accepted.get(), buffer, sizeof buffer, 0);
    return got > 0 ? std::string(buffer, static_cast<std::size_t>(got)) : std::string();
}

// A non-blocking connect with `options`, waited for until connected.
Fd connect_with(int port, const ConnectOptions& options) {
    const sockaddr_in address = loopback(port);
    ConnectStart start = start_connect(reinterpret_cast<const sockaddr*>(&address), sizeof address, options);
    REQUIRE(start.socket);
    REQUIRE((start.error == 0 || start.error == EINPROGRESS));
    pollfd entry{.fd = start.socket.get(), .events = POLLOUT, .revents = 0};
    REQUIRE(::poll(&entry, 1, 5000) == 1);
    REQUIRE(socket_error(start.socket.get()) == 0);
    return std::move(start.socket);
}

}  // namespace

TEST_CASE("set_defer_accept: a connection is accepted with its first bytes, not at the handshake",
          "[reactor][socket]") {
    int port = 0;
    Fd listening = listen_on_loopback(port);
    set_defer_accept(listening.get(), true);
    for (int attempt = 0;; ++attempt) {
        Fd client = connect_blocking(port);  // the handshake is complete on the client's side
        const auto connected = Clock::now();
        const bool early = readable_within(listening.get(), 200);
        if (Clock::now() - connected > std::chrono::milliseconds(800) && attempt < 3) {
            if (early) accept_and_read_now(listening.get());
            continue;  // held up near the kernel's own 1 s: says nothing
        }
        CHECK_FALSE(early);
        send_byte(client.get());
        REQUIRE(readable_within(listening.get(), 5000));
        CHECK(accept_and_read_now(listening.get()) == "x");  // the data came with the connection
        break;
    }

    // Off again (a reload turning the key off): accepted at the handshake, before any data.
    set_defer_accept(listening.get(), false);
    Fd silent = connect_blocking(port);
    REQUIRE(readable_within(listening.get(), 5000));
    CHECK(accept_and_read_now(listening.get()).empty());
}

TEST_CASE("set_defer_accept: a client that says nothing is still accepted, about a second later",
          "[reactor][socket]") {
    int port = 0;
    Fd listening = listen_on_loopback(port);
    set_defer_accept(listening.get(), true);
    Fd silent = connect_blocking(port);
    const auto connected = Clock::now();
    REQUIRE(readable_within(listening.get(), 10000));  // so its hello deadline can run
    CHECK(Clock::now() - connected >= std::chrono::milliseconds(500));
    CHECK(accept_and_read_now(listening.get()).empty());
}

TEST_CASE("start_connect ack_with_first_data: the peer gets the connection with the first bytes",
          "[reactor][socket]") {
    int port = 0;
    Fd listening = listen_on_loopback(port);  // no deferral: it accepts at the handshake's last ACK
    for (int attempt = 0;; ++attempt) {
        Fd client = connect_with(port, ConnectOptions{.ack_with_first_data = true});
        const auto connected = Clock::now();
        const bool early = readable_within(listening.get(), 50);
        if (Clock::now() - connected > std::chrono::milliseconds(150) && attempt < 3) {
            if (early) accept_and_read_now(listening.get());
            continue;  // held up near the kernel's 200 ms: says nothing
        }
        CHECK_FALSE(early);  // the ACK is held back: the listener has nothing to accept yet
        send_byte(client.get());
        REQUIRE(readable_within(listening.get(), 5000));
        CHECK(accept_and_read_now(listening.get()) == "x");
        break;
    }

    // Nothing written: the kernel sends the ACK alone after 200 ms, and the connection is there.
    Fd quiet = connect_with(port, ConnectOptions{.ack_with_first_data = true});
    const auto quiet_connected = Clock::now();
    REQUIRE(readable_within(listening.get(), 5000));
    CHECK(Clock::now() - quiet_connected >= std::chrono::milliseconds(100));
    CHECK(accept_and_read_now(listening.get()).empty());

    // Without the option the last ACK goes at once: the connection is there before any data.
    Fd plain = connect_with(port, ConnectOptions{});
    REQUIRE(readable_within(listening.get(), 5000));
    CHECK(accept_and_read_now(listening.get()).empty());
}
