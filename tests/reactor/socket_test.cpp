// reactor/socket.h's reuseport CPU steering, on real sockets: a SYN sent from a thread pinned to
// CPU c is processed on c (loopback delivers in the sender's softirq, with RPS off as it is by
// default), so the group's socket for c must get every connection of that thread.

#include "reactor/socket.h"
#include "reactor/threads.h"

#include "tests/reactor/helpers.h"
#include "tests/support/pinned_thread.h"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

using namespace passgate::reactor;
using reactor_test::connect_blocking;
using reactor_test::loopback;

namespace {

constexpr int connections_per_cpu = 20;

// Listening sockets of one SO_REUSEPORT group on 127.0.0.1, in the order they started listening.
std::vector<Fd> reuseport_group(std::size_t size, int& port) {
    std::vector<Fd> group;
    sockaddr_in address = loopback(0);
    group.push_back(listen_tcp(reinterpret_cast<const sockaddr*>(&address), sizeof address));
    port = local_port(group.front().get());
    address = loopback(port);
    while (group.size() < size)
        group.push_back(listen_tcp(reinterpret_cast<const sockaddr*>(&address), sizeof address));
    return group;
}

// Opens `connections_per_cpu` connections from a thread pinned to `cpu` (kept open until the
// accepts are counted, so no port is reused).
std::vector<Fd> connect_from_cpu(int cpu, int port) {
    std::vector<Fd> clients;
    REQUIRE(test_support::run_pinned(cpu, [&] {
        for (int i = 0; i < connections_per_cpu; ++i) clients.push_back(connect_blocking(port));
    }));
    return clients;
}

// Accepts everything queued on each socket (non-blocking listeners): the count per socket.
std::vector<int> accepted_per_socket(const std::vector<Fd>& group) {
    std::vector<int> counts;
    for (const Fd& listener : group) {
        int count = 0;
        for (int fd; (fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
            Fd accepted(fd);
            ++count;
        }
        REQUIRE((errno == EAGAIN || errno == EWOULDBLOCK));
        counts.push_back(count);
    }
    return counts;
}

}  // namespace

TEST_CASE("reuseport CPU steering: each CPU's connections go to its socket of the group", "[reactor][steering]") {
    const std::vector<int> cpus = pinned_cpus(usable_cpus());
    REQUIRE(!cpus.empty());
    if (cpus.size() < 2) {
        WARN("one CPU only: steering cannot be told apart from the hash here");
        return;
    }
    int port = 0;
    const std::vector<Fd> group = reuseport_group(cpus.size(), port);
    attach_reuseport_cpu_steering(group.front().get(), cpus);

    for (std::size_t index = 0; index < cpus.size(); ++index) {
        INFO("clients pinned to CPU " << cpus[index] << ", socket " << index);
        const std::vector<Fd> clients = connect_from_cpu(cpus[index], port);
        std::vector<int> expected(group.size(), 0);
        expected[index] = connections_per_cpu;
        CHECK(accepted_per_socket(group) == expected);
    }
}

TEST_CASE("reuseport CPU steering: a CPU without a socket falls back to the hash, nothing is lost",
          "[reactor][steering]") {
    const std::vector<int> cpus = pinned_cpus(usable_cpus());
    if (cpus.size() < 2) {
        WARN("one CPU only");
        return;
    }
    int port = 0;
    const std::vector<Fd> group = reuseport_group(2, port);
    attach_reuseport_cpu_steering(group.front().get(), {cpus[0]});  // the second CPU is not mapped
    const std::vector<Fd> clients = connect_from_cpu(cpus[1], port);
    const std::vector<int> counts = accepted_per_socket(group);
    CHECK(counts[0] + counts[1] == connections_per_cpu);
}

TEST_CASE("reuseport CPU steering: detaching restores the hash, and detaching nothing is not an error",
          "[reactor][steering]") {
    const std::vector<int> cpus = pinned_cpus(usable_cpus());
    int port = 0;
    const std::vector<Fd> group = reuseport_group(2, port);
    CHECK_NOTHROW(detach_reuseport_program(group.front().get()));  // none attached
    sockaddr_in any_port = loopback(0);
    const Fd alone = listen_tcp(reinterpret_cast<const sockaddr*>(&any_port), sizeof any_port,
                                ListenOptions{.reuse_port = false});
    CHECK_NOTHROW(detach_reuseport_program(alone.get()));  // in no group (systemd's sockets)
    attach_reuseport_cpu_steering(group.front().get(), {cpus[0], cpus[0]});  // CPU 0 -> socket 0
    CHECK_NOTHROW(detach_reuseport_program(group.back().get()));   // any socket of the group
    // With the program gone, 80 connections from one CPU land on both sockets (by the hash of
    // their source ports: all on one socket has probability 2^-79).
    std::vector<int> counts{0, 0};
    for (int round = 0; round < 4; ++round) {
        const std::vector<Fd> clients = connect_from_cpu(cpus[0], port);
        const std::vector<int> accepted = accepted_per_socket(group);
        counts[0] += accepted[0];
        counts[1] += accepted[1];
    }
    CHECK(counts[0] > 0);
    CHECK(counts[1] > 0);
}

// A host with net.ipv6.bindv6only = 1 makes "[::]" sockets IPv6 only unless the socket says
// otherwise: listen_tcp on [::] must still come out dual stack there.
TEST_CASE("listen_tcp on [::] is dual stack even where net.ipv6.bindv6only is 1", "[reactor][socket]") {
    const sockaddr_in6 any = reactor_test::ipv6_any();
    CHECK(reactor_test::v6only_where_bindv6only_is_1(
              [&] { return listen_tcp(reinterpret_cast<const sockaddr*>(&any), sizeof any); }) == 0);
}
