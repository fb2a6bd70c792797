// reactor/datagram.h: batched UDP receive and send, and replies from the address a peer used on a
// wildcard socket (packet info).

#include "reactor/datagram.h"
#include "reactor/socket.h"

#include "tests/reactor/helpers.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <string>

using namespace passgate::reactor;

namespace {

sockaddr_in ipv4(const char* ip, int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    REQUIRE(inet_pton(AF_INET, ip, &address.sin_addr) == 1);
    return address;
}

bool readable(int fd) {
    pollfd entry{fd, POLLIN, 0};
    return ::poll(&entry, 1, 2000) == 1;
}

}  // namespace

TEST_CASE("datagram: a wildcard socket learns each datagram's destination, and replies leave from it",
          "[reactor][datagram]") {
    const sockaddr_in any = ipv4("0.0.0.0", 0);
    Fd server = bind_udp(reinterpret_cast<const sockaddr*>(&any), sizeof any);
    const int port = local_port(server.get());
    // A client on 127.0.0.1 sends three datagrams to 127.0.0.2 (the server's wildcard covers it).
    const sockaddr_in target = ipv4("127.0.0.2", port);
    UdpConnect client = connect_udp(reinterpret_cast<const sockaddr*>(&target), sizeof target);
    REQUIRE(client.socket);
    for (const std::string text : {"one", "two", "three"})
        REQUIRE(::send(client.socket.get(), text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));
    REQUIRE(readable(server.get()));

    DatagramBatch batch(8, 2048);
    const int received = batch.receive(server.get());
    REQUIRE(received == 3);
    DatagramSender sender(2);  // smaller than the batch: add() flushes on its own when full
    for (int i = 0; i < received; ++i) {
        const DatagramBatch::Received datagram = batch.at(static_cast<std::size_t>(i));
        CHECK_FALSE(datagram.truncated);
        REQUIRE(datagram.has_local);
        char text[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, &datagram.local.v4.sin_addr, text, sizeof text);
        CHECK(std::string(text) == "127.0.0.2");
        sender.add(server.get(), datagram.data, *datagram.peer, &datagram.local);
    }
    CHECK(sender.flush() == 0);
    CHECK(batch.receive(server.get()) == 0);  // nothing more waiting: 0, not an error

    // The connected client accepts only datagrams from 127.0.0.2:port: the echoes prove the source.
    std::string echoed;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(readable(client.socket.get()));
        char buffer[64];
        const ssize_t got = ::recv(client.socket.get(), buffer, sizeof buffer, 0);
        REQUIRE(got > 0);
        echoed += std::string(buffer, static_cast<std::size_t>(got)) + " ";
    }
    CHECK(echoed == "one two three ");
}

TEST_CASE("datagram: a datagram larger than the buffer is marked truncated", "[reactor][datagram]") {
    const sockaddr_in loopback = ipv4("127.0.0.1", 0);
    Fd server = bind_udp(reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback);
    const sockaddr_in target = ipv4("127.0.0.1", local_port(server.get()));
    UdpConnect client = connect_udp(reinterpret_cast<const sockaddr*>(&target), sizeof target);
    REQUIRE(client.socket);
    const std::string big(100, 'x');
    REQUIRE(::send(client.socket.get(), big.data(), big.size(), 0) == 100);
    REQUIRE(readable(server.get()));
    DatagramBatch batch(4, 64);
    REQUIRE(batch.receive(server.get()) == 1);
    const DatagramBatch::Received datagram = batch.at(0);
    CHECK(datagram.truncated);
    CHECK_FALSE(datagram.has_local);  // a socket bound to one address asks for no packet info
}

TEST_CASE("datagram: a GSO burst arrives as one GRO buffer with its segment size, and leaves as "
          "the same datagrams", "[reactor][datagram]") {
    const sockaddr_in loopback = ipv4("127.0.0.1", 0);
    Fd far_end = bind_udp(reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback);
    const sockaddr_in far_address = ipv4("127.0.0.1", local_port(far_end.get()));
    // The relay's side: connected to the far end, with GRO.
    UdpConnect relay = connect_udp(reinterpret_cast<const sockaddr*>(&far_address), sizeof far_address, true);
    REQUIRE(relay.socket);
    sockaddr_in relay_address{};
    socklen_t length = sizeof relay_address;
    REQUIRE(::getsockname(relay.socket.get(), reinterpret_cast<sockaddr*>(&relay_address), &length) == 0);

    // The far end sends three 1,000-byte datagrams in one GSO message (and a 500-byte tail).
    std::vector<std::uint8_t> burst(3500);
    for (std::size_t i = 0; i < burst.size(); ++i) burst[i] = static_cast<std::uint8_t>(i / 1000 + 1);
    SocketAddress to{};
    to.v4 = relay_address;
    DatagramSender far_sender(1);
    far_sender.add(far_end.get(), burst, to, nullptr, 1000);
    REQUIRE(far_sender.flush() == 0);

    REQUIRE(readable(relay.socket.get()));
    DatagramBatch batch(4, 65535);
    std::size_t datagrams = 0;
    std::size_t bytes = 0;
    std::size_t largest_segment = 0;
    // GRO may deliver the train as one buffer or (an older kernel) datagram by datagram.
    for (int round = 0; round < 10 && bytes < burst.size(); ++round) {
        if (!readable(relay.socket.get())) break;
        const int received = batch.receive(relay.socket.get());
        REQUIRE(received > 0);
        for (int i = 0; i < received; ++i) {
            const DatagramBatch::Received datagram = batch.at(static_cast<std::size_t>(i));
            datagrams += datagram.datagrams();
            bytes += datagram.data.size();
            largest_segment = std::max(largest_segment, datagram.segment_size);
        }
    }
    CHECK(bytes == burst.size());
    CHECK(datagrams == 4);
    INFO("GRO segment size " << largest_segment);
    CHECK((largest_segment == 0 || largest_segment == 1000));
}

TEST_CASE("datagram: a GSO message the kernel refuses goes again datagram by datagram", "[reactor][datagram]") {
    const sockaddr_in loopback = ipv4("127.0.0.1", 0);
    Fd receiver = bind_udp(reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback);
    Fd sender_socket = bind_udp(reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback);
    SocketAddress to{};
    to.v4 = ipv4("127.0.0.1", local_port(receiver.get()));
    // 200 segments: over the kernel's limit per GSO message (UDP_MAX_SEGMENTS: 64, 128 from
    // Linux 6.4), so sendmmsg refuses it.
    const std::vector<std::uint8_t> data(20000, 0x5a);
    DatagramSender sender(1);
    sender.add(sender_socket.get(), data, to, nullptr, 100);
    CHECK(sender.flush() == 0);
    DatagramBatch batch(80, 2048);
    std::size_t count = 0;
    for (int round = 0; round < 20 && count < 200 && readable(receiver.get()); ++round) {
        const int received = batch.receive(receiver.get());
        REQUIRE(received > 0);
        for (int i = 0; i < received; ++i) {
            CHECK(batch.at(static_cast<std::size_t>(i)).data.size() == 100);
            ++count;
        }
    }
    CHECK(count == 200);
}

// As listen_tcp (tests/reactor/socket_test.cpp): on a host where net.ipv6.bindv6only is 1,
// bind_udp on [::] still comes out dual stack.
TEST_CASE("bind_udp on [::] is dual stack even where net.ipv6.bindv6only is 1", "[reactor][datagram]") {
    const sockaddr_in6 any = reactor_test::ipv6_any();
    CHECK(reactor_test::v6only_where_bindv6only_is_1(
              [&] { return bind_udp(reinterpret_cast<const sockaddr*>(&any), sizeof any); }) == 0);
}
