#include "src/control/sd_notify.h"

#include "reactor/fd.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

using passgate::reactor::Fd;

namespace {
// Binds a datagram socket like systemd's notify socket; `name` starting with '@' is abstract.
Fd bind_notify_socket(const std::string& name) {
    Fd socket(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name.data(), name.size());
    if (name[0] == '@') address.sun_path[0] = '\0';
    const socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    REQUIRE(::bind(socket.get(), reinterpret_cast<sockaddr*>(&address), length) == 0);
    timeval timeout{2, 0};
    ::setsockopt(socket.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return socket;
}

std::string receive(int fd) {
    char buffer[512];
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    REQUIRE(got >= 0);
    return std::string(buffer, static_cast<std::size_t>(got));
}
}  // namespace

TEST_CASE("sd_notify sends one datagram to a path NOTIFY_SOCKET") {
    const std::string path = "/tmp/passgate-notify-test-" + std::to_string(::getpid());
    ::unlink(path.c_str());
    Fd socket = bind_notify_socket(path);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    CHECK(passgate::sd_notify_state("READY=1\nSTATUS=serving"));
    CHECK(receive(socket.get()) == "READY=1\nSTATUS=serving");
    ::unsetenv("NOTIFY_SOCKET");
    ::unlink(path.c_str());
}

TEST_CASE("sd_notify reaches an abstract NOTIFY_SOCKET; unset is a no-op; junk is an error") {
    const std::string name = "@passgate-notify-test-" + std::to_string(::getpid());
    Fd socket = bind_notify_socket(name);
    ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
    CHECK(passgate::sd_notify_state("STOPPING=1"));
    CHECK(receive(socket.get()) == "STOPPING=1");
    ::unsetenv("NOTIFY_SOCKET");
    CHECK(passgate::sd_notify_state("READY=1"));
    ::setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK_FALSE(passgate::sd_notify_state("READY=1"));
    ::setenv("NOTIFY_SOCKET", "/nonexistent/passgate/notify", 1);
    CHECK_FALSE(passgate::sd_notify_state("READY=1"));
    ::unsetenv("NOTIFY_SOCKET");
}
