#include "src/control/inherited_sockets.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace passgate {

namespace {

constexpr int first_listen_fd = 3;  // SD_LISTEN_FDS_START

template <class Number>
std::optional<Number> parse_number(const char* text) {
    if (text == nullptr || *text == '\0') return std::nullopt;
    const char* end = text + std::strlen(text);
    Number value{};
    const auto [where, error] = std::from_chars(text, end, value);
    if (error != std::errc() || where != end) return std::nullopt;
    return value;
}

std::string quote(const std::string& text) { return "\"" + text + "\""; }

std::string describe(const InheritedSocket& socket) {
    return "socket " + quote(socket.name) + " (fd " + std::to_string(socket.fd.get()) + ")";
}

// A listening TCP socket (or a bound UDP socket: a QUIC listener's), or why not.
std::string not_a_listening_tcp_socket(int fd) {
    int type = 0;
    socklen_t length = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0)
        return errno == ENOTSOCK ? "is not a socket" : std::string("cannot be read: ") + std::strerror(errno);
    if (type != SOCK_STREAM && type != SOCK_DGRAM) return "is neither a stream nor a datagram socket";
    int listening = 0;
    if (type == SOCK_DGRAM) listening = 1;  // UDP does not listen: bound is enough
    length = sizeof listening;
    if (listening == 0 && (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || listening == 0))
        return "is not listening (systemd passes it that way with Accept=yes or a Socket unit without ListenStream=)";
    int domain = 0;
    length = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0 || (domain != AF_INET && domain != AF_INET6))
        return "is not an IPv4 or IPv6 socket";
    return {};
}

bool is_datagram_socket(int fd) {
    int type = 0;
    socklen_t length = sizeof type;
    return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_DGRAM;
}

std::optional<config::Address> bound_address(int fd) {
    config::Address address;
    socklen_t length = sizeof address.storage;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address.storage), &length) != 0) return std::nullopt;
    address.length = length;
    return address;
}

// The socket is bound where the config says. Port 0 in the config (any free port) matches the
// port the socket got.
bool bound_as_configured(const config::Address& bound, const config::Address& wanted) {
    if (wanted.port() != 0) return bound == wanted;
    config::Address any_port = bound;
    if (any_port.family() == AF_INET) reinterpret_cast<sockaddr_in&>(any_port.storage).sin_port = 0;
    if (any_port.family() == AF_INET6) reinterpret_cast<sockaddr_in6&>(any_port.storage).sin6_port = 0;
    return any_port == wanted;
}

std::string listener_names(const config::Config& config) {
    std::string names;
    for (const config::Listener& listener : config.listeners) names += (names.empty() ? "" : ", ") + listener.name;
    return names.empty() ? "none" : names;
}

}  // namespace

std::vector<ListenFd> parse_listen_fds(const char* fds, const char* pid, const char* names, pid_t self) {
    if (pid == nullptr) return {};
    const std::optional<pid_t> for_pid = parse_number<pid_t>(pid);
    if (!for_pid) throw std::runtime_error(std::string("LISTEN_PID is not a process ID: ") + quote(pid));
    if (*for_pid != self) return {};
    const std::optional<int> count = parse_number<int>(fds);
    if (!count || *count < 0 || *count > 4096)
        throw std::runtime_error(std::string("LISTEN_FDS is not a count of descriptors: ") +
                                 quote(fds == nullptr ? "" : fds));
    std::vector<ListenFd> listen_fds;
    for (int index = 0; index < *count; ++index) listen_fds.push_back(ListenFd{.fd = first_listen_fd + index, .name = {}});
    if (names == nullptr) return listen_fds;  // systemd before v227, or a harness without names
    std::vector<std::string> split;
    std::string current;
    for (const char* c = names;; ++c) {
        if (*c == ':' || *c == '\0') {
            split.push_back(current);
            current.clear();
            if (*c == '\0') break;
        } else {
            current += *c;
        }
    }
    if (*count == 0 && split.size() == 1 && split[0].empty()) return listen_fds;
    if (split.size() != listen_fds.size())
        throw std::runtime_error("LISTEN_FDNAMES has " + std::to_string(split.size()) + " names for " +
                                 std::to_string(*count) + " descriptors (LISTEN_FDS)");
    for (std::size_t index = 0; index < split.size(); ++index) listen_fds[index].name = split[index];
    return listen_fds;
}

std::vector<InheritedSocket> take_inherited_sockets() {
    const char* fds = std::getenv("LISTEN_FDS");
    const char* pid = std::getenv("LISTEN_PID");
    const char* names = std::getenv("LISTEN_FDNAMES");
    std::vector<ListenFd> listen_fds;
    try {
        listen_fds = parse_listen_fds(fds, pid, names, ::getpid());
    } catch (...) {
        ::unsetenv("LISTEN_FDS");
        ::unsetenv("LISTEN_PID");
        ::unsetenv("LISTEN_FDNAMES");
        throw;
    }
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDNAMES");
    // Owned at once: a failure below closes every one of them.
    std::vector<InheritedSocket> sockets;
    for (const ListenFd& listen_fd : listen_fds) sockets.push_back(InheritedSocket{listen_fd.name, reactor::Fd(listen_fd.fd)});
    for (const InheritedSocket& socket : sockets) {
        const std::string why = not_a_listening_tcp_socket(socket.fd.get());
        if (!why.empty()) throw std::runtime_error("passed " + describe(socket) + " " + why);
        const int flags = ::fcntl(socket.fd.get(), F_GETFL);
        if (flags < 0 || ::fcntl(socket.fd.get(), F_SETFL, flags | O_NONBLOCK) != 0 ||
            ::fcntl(socket.fd.get(), F_SETFD, FD_CLOEXEC) != 0)
            throw std::runtime_error("passed " + describe(socket) + ": fcntl: " + std::strerror(errno));
    }
    return sockets;
}

SocketAssignment assign_inherited_sockets(std::vector<InheritedSocket> sockets, const config::Config& config,
                                          bool upgrade) {
    SocketAssignment assignment;
    assignment.listeners.resize(config.listeners.size());
    const char* from = upgrade ? "the old process passed" : "systemd passed";
    for (InheritedSocket& socket : sockets) {
        const std::optional<config::Address> bound = bound_address(socket.fd.get());
        const std::string at = bound ? bound->to_string() : std::string("an unknown address");
        const bool is_admin = socket.name == admin_socket_name;
        const config::Address* wanted = nullptr;
        std::size_t listener = 0;
        if (is_admin) {
            wanted = &config.admin.address;
        } else {
            for (; listener < config.listeners.size(); ++listener)
                if (config.listeners[listener].name == socket.name) break;
            if (listener < config.listeners.size()) wanted = &config.listeners[listener].address;
        }
        if (wanted == nullptr) {
            if (!upgrade)
                throw std::runtime_error("systemd passed a socket named " + quote(socket.name) +
                                         " (FileDescriptorName=) but no [[listener]] has that name; listeners: " +
                                         listener_names(config) + " (the admin socket is named " + admin_socket_name +
                                         "; the socket is bound to " + at + ")");
            const std::string why = std::string(from) + " a socket named " + quote(socket.name) + " bound to " + at +
                                    " but no [[listener]] has that name; listeners: " + listener_names(config);
            assignment.notes.push_back(why + ": closed (the listener is gone from the configuration)");
            continue;
        }
        const std::string owner = is_admin ? std::string("[admin]") : "listener " + quote(socket.name);
        // A QUIC listener takes a UDP socket, every other one a TCP socket (a reload may have
        // changed a listener's protocol since the old process bound it).
        const bool wants_datagram = !is_admin && config.listeners[listener].protocol == config::ListenerProtocol::quic;
        if (is_datagram_socket(socket.fd.get()) != wants_datagram) {
            const std::string why = owner + ": " + from + " a " + (wants_datagram ? "TCP" : "UDP") + " " +
                                    describe(socket) + " but " +
                                    (wants_datagram ? "protocol = \"quic\" needs UDP" : "the listener needs TCP");
            if (!upgrade) throw std::runtime_error(why);
            assignment.notes.push_back(why + ": closed, and the configured address is bound");
            continue;
        }
        if (!bound || !bound_as_configured(*bound, *wanted)) {
            if (!upgrade)
                throw std::runtime_error(owner + ": systemd passed a socket bound to " + at + " (FileDescriptorName=" +
                                         socket.name + ") but address = " + quote(wanted->to_string()) +
                                         " (the socket unit's ListenStream= and the configured address must be the same)");
            const std::string why = owner + ": " + from + " a socket bound to " + at + " but the configuration says " +
                                    wanted->to_string();
            assignment.notes.push_back(why + ": closed, and the configured address is bound");
            continue;
        }
        if (is_admin) {
            if (assignment.admin) {
                if (!upgrade) throw std::runtime_error(std::string(from) + " more than one socket named [admin]");
                assignment.notes.push_back(std::string(from) + " more than one [admin] socket: closed the extra one");
                continue;
            }
            assignment.admin = std::move(socket.fd);
        } else {
            assignment.listeners[listener].push_back(std::move(socket.fd));
        }
    }
    return assignment;
}

}  // namespace passgate
