#include "src/control/upgrade.h"

#include "reactor/socket.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <utility>
#include <string>
#include <thread>

using passgate::PassedSocket;
using passgate::UpgradeChild;

namespace {

passgate::reactor::Fd listening() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return passgate::reactor::listen_tcp(reinterpret_cast<const sockaddr*>(&address), sizeof address);
}

// The next message from the child, waiting up to 5 s.
std::string next_message(UpgradeChild& child) {
    pollfd ready{.fd = child.channel(), .events = POLLIN, .revents = 0};
    if (::poll(&ready, 1, 5000) != 1) return "(nothing within 5 s)";
    return child.read_message().value_or("(nothing)");
}

}  // namespace

// The new process sees what systemd's socket activation would give it: the sockets at 3, 4, ...
// with LISTEN_PID its own pid and their names, the channel right after them, then the QUIC
// forwarding channel, and no other descriptor of the old process.
TEST_CASE("an upgrade's new process gets the sockets the systemd way, the channels, and nothing else",
          "[upgrade]") {
    passgate::reactor::Fd tls = listening();
    passgate::reactor::Fd admin = listening();
    // Not close-on-exec, and still not passed: the child closes every descriptor above the channel.
    // (Numbered 20 or above: clear of the numbers the passed sockets take in the child.)
    passgate::reactor::Fd socket = listening();
    passgate::reactor::Fd unrelated(::fcntl(socket.get(), F_DUPFD, 20));
    REQUIRE(unrelated.get() >= 20);
    REQUIRE(unrelated.get() <= 30);
    const std::string script =
        "test \"$LISTEN_PID\" = \"$$\" || exit 10; "
        "test \"$LISTEN_FDS\" = 2 || exit 11; "
        "test \"$LISTEN_FDNAMES\" = 'tls:[admin]' || exit 12; "
        "test \"$PASSGATE_UPGRADE_FD\" = 5 || exit 13; "
        "test \"$PASSGATE_UPGRADE_QUIC_FD\" = 6 || exit 19; "
        "case $(readlink /proc/$$/fd/3) in socket:*) ;; *) exit 14;; esac; "
        "case $(readlink /proc/$$/fd/4) in socket:*) ;; *) exit 15;; esac; "
        "test -S /proc/$$/fd/6 || exit 20; "
        "for n in 0 1 2 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do "
        "test -S /proc/$$/fd/$n && exit 16; done; "
        "printf 'ready test' >&5; answer=$(dd bs=64 count=1 <&5 2>/dev/null) || exit 17; test \"$answer\" = go || exit 18; exit 0";
    UpgradeChild child("/bin/sh", {"sh", "-c", script},
                       {PassedSocket{"tls", tls.get()}, PassedSocket{"[admin]", admin.get()}});
    const std::string first = next_message(child);
    if (first.empty()) {
        pollfd exited{.fd = child.pidfd(), .events = POLLIN, .revents = 0};
        REQUIRE(::poll(&exited, 1, 5000) == 1);
        FAIL("the child " << child.reap());
    }
    CHECK(first == "ready test");
    REQUIRE(child.send_go());
    pollfd exited{.fd = child.pidfd(), .events = POLLIN, .revents = 0};
    REQUIRE(::poll(&exited, 1, 5000) == 1);
    CHECK(child.reap() == "exited with status 0");
}

TEST_CASE("an upgrade's new process that cannot be executed says why; one that hangs is killed", "[upgrade]") {
    {
        UpgradeChild child("/nonexistent/passgate", {"passgate"}, {});
        CHECK(next_message(child) == "failed cannot execute /nonexistent/passgate: errno 2");
        pollfd exited{.fd = child.pidfd(), .events = POLLIN, .revents = 0};
        REQUIRE(::poll(&exited, 1, 5000) == 1);
        CHECK(child.reap() == "exited with status 127");
    }
    UpgradeChild hanging("/bin/sleep", {"sleep", "30"}, {});
    const auto start = std::chrono::steady_clock::now();
    CHECK(hanging.kill_and_reap() == "killed by signal 9 (Killed)");
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

// The new process's end: both channels taken from the environment (and the variables unset); a
// QUIC forwarding channel that is not a SOCK_SEQPACKET socket is refused by name; without the
// variable (an old process that predates it) nothing is forwarded.
TEST_CASE("an upgrade's new process takes the QUIC forwarding channel from PASSGATE_UPGRADE_QUIC_FD", "[upgrade]") {
    using passgate::UpgradeParent;
    const auto pair = [](int type) {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0);
        return std::pair<passgate::reactor::Fd, passgate::reactor::Fd>(fds[0], fds[1]);
    };
    auto channel = pair(SOCK_SEQPACKET);
    auto forward = pair(SOCK_SEQPACKET);
    auto datagram = pair(SOCK_DGRAM);
    // from_environment owns the descriptors it is given: hand it duplicates.
    const auto set = [](const char* name, int fd) {
        const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
        REQUIRE(copy >= 3);
        REQUIRE(::setenv(name, std::to_string(copy).c_str(), 1) == 0);
        return copy;
    };

    set("PASSGATE_UPGRADE_FD", channel.second.get());
    const int forward_copy = set("PASSGATE_UPGRADE_QUIC_FD", forward.second.get());
    {
        std::optional<UpgradeParent> parent = UpgradeParent::from_environment();
        REQUIRE(parent);
        CHECK(parent->quic_forward() == forward_copy);
        CHECK(std::getenv("PASSGATE_UPGRADE_FD") == nullptr);
        CHECK(std::getenv("PASSGATE_UPGRADE_QUIC_FD") == nullptr);
        // Non-blocking: nothing waits, so a read says so at once.
        char byte = 0;
        CHECK(::recv(parent->quic_forward(), &byte, 1, 0) == -1);
        CHECK(errno == EAGAIN);
    }

    set("PASSGATE_UPGRADE_FD", channel.second.get());
    const int wrong = set("PASSGATE_UPGRADE_QUIC_FD", datagram.second.get());
    CHECK_THROWS_WITH(UpgradeParent::from_environment(),
                      Catch::Contains("PASSGATE_UPGRADE_QUIC_FD=" + std::to_string(wrong)) &&
                          Catch::Contains("is not the QUIC forwarding channel"));
    ::close(wrong);

    set("PASSGATE_UPGRADE_FD", channel.second.get());
    std::optional<UpgradeParent> without = UpgradeParent::from_environment();
    REQUIRE(without);
    CHECK(without->quic_forward() == -1);
}
