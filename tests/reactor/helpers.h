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

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <thread>

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

// IPV6_V6ONLY of the socket `make_socket` returns, made by a thread in a fresh network namespace
// whose net.ipv6.bindv6only is 1 (the sysctl is per namespace, and a thread may have its own).
// -1: the namespace or the sysctl could not be set up (REQUIREd here).
inline int v6only_where_bindv6only_is_1(const std::function<passgate::reactor::Fd()>& make_socket) {
    int unshared = -1, sysctl_written = -1, v6only = -1;
    std::thread in_namespace([&] {
        unshared = ::unshare(CLONE_NEWNET);
        if (unshared != 0) return;
        const int sysctl = ::open("/proc/sys/net/ipv6/bindv6only", O_WRONLY | O_CLOEXEC);
        sysctl_written = sysctl >= 0 && ::write(sysctl, "1", 1) == 1 ? 0 : -1;
        if (sysctl >= 0) ::close(sysctl);
        if (sysctl_written != 0) return;
        passgate::reactor::Fd socket = make_socket();
        socklen_t length = sizeof v6only;
        if (::getsockopt(socket.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &length) != 0) v6only = -2;
    });
    in_namespace.join();
    REQUIRE(unshared == 0);
    REQUIRE(sysctl_written == 0);
    return v6only;
}

inline sockaddr_in6 ipv6_any() {
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_addr = in6addr_any;
    return any;
}

}  // namespace reactor_test
