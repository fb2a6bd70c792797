#include "src/control/admin_client.h"

#include "reactor/fd.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace passgate {

config::Address connectable(config::Address address) {
    if (!address.is_unspecified()) return address;
    if (address.family() == AF_INET)
        reinterpret_cast<sockaddr_in&>(address.storage).sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else
        reinterpret_cast<sockaddr_in6&>(address.storage).sin6_addr = in6addr_loopback;
    return address;
}

std::optional<HttpAnswer> exchange(const config::Address& admin, const std::string& method, const std::string& path,
                                   std::chrono::steady_clock::time_point deadline, std::string& error) {
    reactor::Fd socket(::socket(admin.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!socket) {
        error = std::string("socket: ") + std::strerror(errno);
        return std::nullopt;
    }
    const auto wait_for = [&](short events) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) return false;
        pollfd poll_fd{.fd = socket.get(), .events = events, .revents = 0};
        return ::poll(&poll_fd, 1, static_cast<int>(left)) > 0;
    };
    if (::connect(socket.get(), admin.sockaddr_ptr(), admin.length) != 0) {
        if (errno != EINPROGRESS) {
            error = "connect to " + admin.to_string() + ": " + std::strerror(errno);
            return std::nullopt;
        }
        if (!wait_for(POLLOUT)) {
            error = "connect to " + admin.to_string() + ": timed out";
            return std::nullopt;
        }
        int result = 0;
        socklen_t length = sizeof result;
        if (::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &result, &length) != 0 || result != 0) {
            error = "connect to " + admin.to_string() + ": " + std::strerror(result != 0 ? result : errno);
            return std::nullopt;
        }
    }
    const std::string request = method + " " + path + " HTTP/1.1\r\nHost: passgate\r\nContent-Length: 0\r\n"
                                "Connection: close\r\n\r\n";
    std::size_t sent = 0;
    while (sent < request.size()) {
        const ssize_t wrote = ::send(socket.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (wrote > 0) {
            sent += static_cast<std::size_t>(wrote);
        } else if (wrote < 0 && errno == EAGAIN && wait_for(POLLOUT)) {
            continue;
        } else if (wrote < 0 && errno == EINTR) {
            continue;
        } else {
            error = std::string("send: ") + std::strerror(errno);
            return std::nullopt;
        }
    }
    std::string response;
    for (;;) {
        char buffer[4096];
        const ssize_t got = ::recv(socket.get(), buffer, sizeof buffer, 0);
        if (got > 0) {
            response.append(buffer, static_cast<std::size_t>(got));
            if (response.size() > kMaxAnswerBytes) break;
        } else if (got == 0) {
            break;
        } else if (errno == EINTR || (errno == EAGAIN && wait_for(POLLIN))) {
            continue;
        } else {
            error = errno == EAGAIN ? std::string("no answer in time") : std::string("recv: ") + std::strerror(errno);
            return std::nullopt;
        }
    }
    const std::size_t head_end = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos || response.size() < 12) {
        error = "not an HTTP answer from " + admin.to_string();
        return std::nullopt;
    }
    return HttpAnswer{.status = std::atoi(response.c_str() + 9), .body = response.substr(head_end + 4)};
}

}  // namespace passgate
