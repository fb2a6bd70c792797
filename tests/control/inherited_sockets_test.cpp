#include "src/control/inherited_sockets.h"

#include "reactor/socket.h"
#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdexcept>
#include <string>

using passgate::InheritedSocket;
using passgate::ListenFd;
using passgate::parse_listen_fds;
using passgate::config::Config;

TEST_CASE("LISTEN_FDS: numbers from 3 with their names, only for this process", "[inherited_sockets]") {
    const std::vector<ListenFd> fds = parse_listen_fds("3", "42", "tls:[admin]:tls", 42);
    REQUIRE(fds.size() == 3);
    CHECK(fds[0].fd == 3);
    CHECK(fds[0].name == "tls");
    CHECK(fds[1].fd == 4);
    CHECK(fds[1].name == "[admin]");
    CHECK(fds[2].fd == 5);
    // Meant for another process (a parent's variables leaked into a child): ignored.
    CHECK(parse_listen_fds("3", "41", "a:b:c", 42).empty());
    CHECK(parse_listen_fds(nullptr, nullptr, nullptr, 42).empty());
    // Without names (older systemd, a harness): unnamed.
    const std::vector<ListenFd> unnamed = parse_listen_fds("2", "42", nullptr, 42);
    REQUIRE(unnamed.size() == 2);
    CHECK(unnamed[1].name.empty());
    CHECK(parse_listen_fds("0", "42", "", 42).empty());
}

TEST_CASE("LISTEN_FDS: malformed values are errors naming the variable", "[inherited_sockets]") {
    CHECK_THROWS_WITH(parse_listen_fds("3", "x42", "a:b:c", 42), Catch::Contains("LISTEN_PID"));
    CHECK_THROWS_WITH(parse_listen_fds("three", "42", "a", 42), Catch::Contains("LISTEN_FDS"));
    CHECK_THROWS_WITH(parse_listen_fds("-1", "42", "a", 42), Catch::Contains("LISTEN_FDS"));
    CHECK_THROWS_WITH(parse_listen_fds("2", "42", "a:b:c", 42),
                      Catch::Contains("LISTEN_FDNAMES has 3 names for 2 descriptors"));
}

namespace {

// A listening socket on 127.0.0.1 at an ephemeral port, and that port.
passgate::reactor::Fd listening(std::uint16_t& port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    passgate::reactor::Fd socket =
        passgate::reactor::listen_tcp(reinterpret_cast<const sockaddr*>(&address), sizeof address);
    port = static_cast<std::uint16_t>(passgate::reactor::local_port(socket.get()));
    return socket;
}

Config two_listeners(std::uint16_t tls_port, std::uint16_t other_port, std::uint16_t admin_port) {
    return test_config::make_config(
        "[admin]\naddress = \"127.0.0.1:" + std::to_string(admin_port) + "\"\n" +
            test_config::listener("tls", tls_port) + test_config::listener("other", other_port) +
            test_config::route("r", {"tls", "other"}, {"app.example.com"}),
        "inherited_test.toml");
}

}  // namespace

TEST_CASE("inherited sockets go to the listener of their name, [admin] to the admin server", "[inherited_sockets]") {
    std::uint16_t tls = 0, admin = 0, unused = 0;
    std::vector<InheritedSocket> sockets;
    sockets.push_back({"tls", listening(tls)});
    sockets.push_back({"[admin]", listening(admin)});
    {
        passgate::reactor::Fd spare = listening(unused);  // a free port for "other"
    }
    const Config config = two_listeners(tls, unused, admin);
    passgate::SocketAssignment assigned = passgate::assign_inherited_sockets(std::move(sockets), config, false);
    REQUIRE(assigned.listeners.size() == 2);
    CHECK(assigned.listeners[0].size() == 1);
    CHECK(assigned.listeners[1].empty());  // "other" was not passed: bound as usual
    CHECK(assigned.admin);
    CHECK(assigned.notes.empty());
}

TEST_CASE("systemd: a socket no listener names, or bound elsewhere, fails start-up; an upgrade closes it",
          "[inherited_sockets]") {
    std::uint16_t tls = 0, admin = 0, stray = 0, elsewhere = 0;
    passgate::reactor::Fd admin_socket = listening(admin);
    const auto passed = [&](const std::string& name, std::uint16_t& port) {
        std::vector<InheritedSocket> sockets;
        sockets.push_back({name, listening(port)});
        return sockets;
    };
    {
        passgate::reactor::Fd probe = listening(tls);
    }
    const Config config = two_listeners(tls, static_cast<std::uint16_t>(tls + 1), admin);
    CHECK_THROWS_WITH(passgate::assign_inherited_sockets(passed("web", stray), config, false),
                      Catch::Contains("systemd passed a socket named \"web\" (FileDescriptorName=) but") &&
                          Catch::Contains("no [[listener]] has that name; listeners: tls, other"));
    CHECK_THROWS_WITH(passgate::assign_inherited_sockets(passed("tls", elsewhere), config, false),
                      Catch::Contains("listener \"tls\": systemd passed a socket bound to 127.0.0.1:" +
                                      std::to_string(elsewhere)) &&
                          Catch::Contains("(FileDescriptorName=tls) but address = \"127.0.0.1:" + std::to_string(tls) + "\""));
    // From an upgrade's old process (whose config may have been older): closed and noted.
    passgate::SocketAssignment removed = passgate::assign_inherited_sockets(passed("web", stray), config, true);
    CHECK(removed.listeners[0].empty());
    REQUIRE(removed.notes.size() == 1);
    CHECK_THAT(removed.notes[0], Catch::Contains("closed (the listener is gone from the configuration)"));
    passgate::SocketAssignment moved = passgate::assign_inherited_sockets(passed("tls", elsewhere), config, true);
    CHECK(moved.listeners[0].empty());
    REQUIRE(moved.notes.size() == 1);
    CHECK_THAT(moved.notes[0], Catch::Contains("closed, and the configured address is bound"));
}
