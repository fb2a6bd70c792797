#include "reactor/socket.h"

#include "reactor/system_error.h"

#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <system_error>

namespace passgate::reactor {

Fd listen_tcp(const sockaddr* address, socklen_t length, const ListenOptions& options) {
    Fd socket(::socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!socket) throw_errno("socket");
    const int one = 1;
    if (::setsockopt(socket.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        throw_errno("setsockopt(SO_REUSEADDR)");
    if (options.reuse_port &&
        ::setsockopt(socket.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        throw_errno("setsockopt(SO_REUSEPORT)");
    if (options.no_delay && ::setsockopt(socket.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        throw_errno("setsockopt(TCP_NODELAY)");
    set_dual_stack(socket.get(), address->sa_family);
    if (::bind(socket.get(), address, length) != 0) throw_errno("bind");
    if (::listen(socket.get(), options.backlog) != 0) throw_errno("listen");
    return socket;
}

void set_dual_stack(int fd, int family) {
    const int zero = 0;
    if (family == AF_INET6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0)
        throw_errno("setsockopt(IPV6_V6ONLY)");
}

void attach_reuseport_cpu_steering(int listening_fd, const std::vector<int>& cpu_of_index) {
    // A = the receiving CPU; then for each listed CPU: if A == cpu return its index; else a
    // value past any group (the kernel then uses its hash).
    std::vector<sock_filter> program;
    program.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_CPU)));
    std::vector<int> seen;
    for (std::size_t index = 0; index < cpu_of_index.size(); ++index) {
        const int cpu = cpu_of_index[index];
        if (std::find(seen.begin(), seen.end(), cpu) != seen.end()) continue;
        seen.push_back(cpu);
        program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(cpu), 0, 1));
        program.push_back(BPF_STMT(BPF_RET | BPF_K, static_cast<std::uint32_t>(index)));
    }
    program.push_back(BPF_STMT(BPF_RET | BPF_K, 0xffffffffu));
    if (program.size() > BPF_MAXINSNS)
        throw std::system_error(E2BIG, std::generic_category(), "SO_ATTACH_REUSEPORT_CBPF: too many CPUs");
    const sock_fprog fprog{.len = static_cast<unsigned short>(program.size()), .filter = program.data()};
    if (::setsockopt(listening_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof fprog) != 0)
        throw_errno("setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
}

void detach_reuseport_program(int listening_fd) {
    const int unused = 0;
    // ENOENT: a group without a program; EINVAL: a socket in no group (no SO_REUSEPORT, as
    // systemd's sockets without ReusePort=yes). Neither has a program to remove.
    if (::setsockopt(listening_fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof unused) != 0 &&
        errno != ENOENT && errno != EINVAL)
        throw_errno("setsockopt(SO_DETACH_REUSEPORT_BPF)");
}

ConnectStart start_connect(const sockaddr* address, socklen_t length, const ConnectOptions& options) {
    ConnectStart start;
    start.socket = Fd(::socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!start.socket) {
        start.error = errno;
        return start;
    }
    const int one = 1;
    // Forwarded bytes are already batched by the peers; do not add Nagle delay on top.
    ::setsockopt(start.socket.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Both best effort: a socket without them works, only less efficiently.
    // Leaves quick-ACK mode: the kernel then delays the handshake's last ACK (tcp_rcv_synsent_state_process)
    // and re-enters quick-ACK mode itself right after, so later data is acknowledged as usual.
    const int zero = 0;
    if (options.ack_with_first_data)
        ::setsockopt(start.socket.get(), IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
    if (::connect(start.socket.get(), address, length) == 0) return start;
    start.error = errno;
    if (start.error != EINPROGRESS) start.socket.reset();
    return start;
}

void set_defer_accept(int listening_fd, bool on) {
    const int seconds = on ? 1 : 0;
    if (::setsockopt(listening_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds) != 0)
        throw_errno("setsockopt(TCP_DEFER_ACCEPT)");
}

bool is_local_resource_error(int error) {
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

int socket_error(int fd) {
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
    return error;
}

int local_port(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw_errno("getsockname");
    if (address.ss_family == AF_INET)
        return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
    return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
}

}  // namespace passgate::reactor
