#pragma once
// Small pieces the reactor tests share: loopback addresses, a blocking connect, a timer that ends
// a loop's run() (every test's loop has such a bound).

#include "reactor/fd.h"
#include "reactor/loop.h"
#include "reactor/timer.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

namespace reactor_test {

inline sockaddr_in loopback(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

inline passgate::reactor::Fd connect_blocking(int port) {
    passgate::reactor::Fd socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_in address = loopback(port);
    REQUIRE(::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    return socket;
}

struct StopAfter final : passgate::reactor::Timer {
    passgate::reactor::Loop& loop;
    explicit StopAfter(passgate::reactor::Loop& l) : loop(l) {}
    void on_timer() override { loop.stop(); }
};

}  // namespace reactor_test
