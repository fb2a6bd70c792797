#include "src/control/upgrade_command.h"

#include "reactor/fd.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>

namespace passgate {

namespace {

using Clock = std::chrono::steady_clock;

struct HttpAnswer {
    int status = 0;
    std::string body;
};

// The admin address to connect to: an unspecified one (0.0.0.0, [::]) means this machine.
config::Address connectable(config::Address address) {
    if (!address.is_unspecified()) return address;
    if (address.family() == AF_INET)
        reinterpret_cast<sockaddr_in&>(address.storage).sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else
        reinterpret_cast<sockaddr_in6&>(address.storage).sin6_addr = in6addr_loopback;
    return address;
}

// One request, Connection: close, within `deadline`. nullopt (and `error` set) when it fails.
std::optional<HttpAnswer> exchange(const config::Address& admin, const std::string& method, const std::string& path,
                                   Clock::time_point deadline, std::string& error) {
    reactor::Fd socket(::socket(admin.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!socket) {
        error = std::string("socket: ") + std::strerror(errno);
        return std::nullopt;
    }
    const auto wait_for = [&](short events) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
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
            if (response.size() > 1024 * 1024) break;
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

// GET /upgrade's "key: value" lines.
std::map<std::string, std::string> fields_of(const std::string& body) {
    std::map<std::string, std::string> fields;
    std::size_t start = 0;
    while (start < body.size()) {
        std::size_t end = body.find('\n', start);
        if (end == std::string::npos) end = body.size();
        const std::string line = body.substr(start, end - start);
        const std::size_t colon = line.find(": ");
        if (colon != std::string::npos) fields[line.substr(0, colon)] = line.substr(colon + 2);
        start = end + 1;
    }
    return fields;
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

}  // namespace

int run_upgrade_command(const config::Address& configured, std::chrono::milliseconds timeout) {
    const config::Address admin = connectable(configured);
    const Clock::time_point deadline = Clock::now() + timeout;
    std::string error;
    const std::optional<HttpAnswer> before = exchange(admin, "GET", "/upgrade", deadline, error);
    if (!before || before->status != 200) {
        std::fprintf(stderr, "passgate upgrade: cannot reach passgate's admin server at %s: %s\n",
                     admin.to_string().c_str(), before ? ("status " + std::to_string(before->status)).c_str() : error.c_str());
        return 1;
    }
    const std::string old_pid = fields_of(before->body)["pid"];
    const std::optional<HttpAnswer> started = exchange(admin, "POST", "/upgrade", deadline, error);
    if (!started) {
        std::fprintf(stderr, "passgate upgrade: POST /upgrade to %s: %s\n", admin.to_string().c_str(), error.c_str());
        return 1;
    }
    if (started->status != 202) {
        std::fprintf(stderr, "passgate upgrade: %s\n", trimmed(started->body).c_str());
        return 1;
    }
    const std::string prefix = "upgrade started: new process ";
    const std::string new_pid = started->body.rfind(prefix, 0) == 0 ? trimmed(started->body.substr(prefix.size())) : "";
    std::string last_seen = "no answer yet";
    while (Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const std::optional<HttpAnswer> answer = exchange(admin, "GET", "/upgrade", deadline, error);
        if (!answer) {
            last_seen = error;
            continue;
        }
        std::map<std::string, std::string> fields = fields_of(answer->body);
        if (!new_pid.empty() && new_pid != "0" && fields["pid"] == new_pid) {
            std::printf("upgraded: pid %s -> %s (%s)\n", old_pid.c_str(), new_pid.c_str(), fields["version"].c_str());
            return 0;
        }
        if (fields["pid"] == old_pid && fields["last_new_pid"] == new_pid &&
            (fields["last_result"] == "failed" || fields["last_result"] == "timeout")) {
            std::fprintf(stderr, "passgate upgrade: upgrade failed: %s; pid %s still serving\n",
                         fields["last_reason"].c_str(), old_pid.c_str());
            return 1;
        }
        last_seen = "state " + fields["state"] + " (pid " + fields["pid"] + ")";
    }
    std::fprintf(stderr, "passgate upgrade: no outcome within %lld ms (last seen: %s); see passgate's log\n",
                 static_cast<long long>(timeout.count()), last_seen.c_str());
    return 1;
}

}  // namespace passgate
