#pragma once
// Socket set-up helpers. Addresses are plain sockaddrs: the reactor knows nothing of config.

#include "reactor/fd.h"

#include <sys/socket.h>

#include <vector>

namespace passgate::reactor {

struct ListenOptions {
    int backlog = 4096;
    bool reuse_port = true;  // one socket per worker on the same address; the kernel spreads load
    // TCP_NODELAY on the listening socket: accepted sockets inherit it (Linux), which saves a
    // setsockopt per connection.
    bool no_delay = false;
};

// socket + SO_REUSEADDR (+ SO_REUSEPORT, TCP_NODELAY) + bind + listen; non-blocking,
// close-on-exec.
// Throws std::system_error naming the failed call.
Fd listen_tcp(const sockaddr* address, socklen_t length, const ListenOptions& options = {});

// An IPv6 socket about to be bound: IPV6_V6ONLY off, so "[::]" means IPv4 too whatever the host's
// net.ipv6.bindv6only says (the config's overlap rules assume it). Other families: nothing.
// Throws std::system_error.
void set_dual_stack(int fd, int family);

// Steers new connections of the SO_REUSEPORT group `listening_fd` belongs to by the CPU that
// received the SYN: a classic BPF program on the group returns index i for CPU cpu_of_index[i]
// (the first i when a CPU appears twice), so the group's i-th socket (in the order the sockets
// started listening) gets that CPU's connections. A CPU not in the list returns an index past the
// group, for which the kernel falls back to its hash. Throws std::system_error.
void attach_reuseport_cpu_steering(int listening_fd, const std::vector<int>& cpu_of_index);
// Removes a program attached to the group (by this process or by the one before an upgrade);
// no program attached, or a socket in no SO_REUSEPORT group, is not an error. Throws
// std::system_error.
void detach_reuseport_program(int listening_fd);

// Starts a non-blocking connect. Returns the socket and 0 (connected at once) or EINPROGRESS;
// any other errno is returned with an invalid Fd.
struct ConnectStart {
    Fd socket;
    int error = 0;
};
struct ConnectOptions {
    // For a caller that writes first as soon as the connect completes (a proxy with the client's
    // hello in hand): the handshake's last ACK is held back (TCP_QUICKACK off before connect) and
    // rides on that first data segment, so the peer gets one packet instead of two. The kernel
    // sends it alone after 200 ms if nothing is written by then. HAProxy's tcp-smart-connect.
    bool ack_with_first_data = false;
};
ConnectStart start_connect(const sockaddr* address, socklen_t length, const ConnectOptions& options = {});

// TCP_DEFER_ACCEPT on a listening socket, on (1 s) or off: with it on, the kernel completes an
// accept only once the client's first data arrived (one packet fewer processed per connection,
// and the data is there at the first read). A client that connects and says nothing is accepted
// after about a second anyway (when it answers the SYN-ACK the kernel sends again), so its
// read deadline still applies, a second late. Throws std::system_error.
void set_defer_accept(int listening_fd, bool on);

// An errno that says this process or machine is short of something (descriptors, socket buffers,
// memory: EMFILE, ENFILE, ENOBUFS, ENOMEM), not that the peer failed. A connect or probe that
// fails so must not be held against the endpoint.
bool is_local_resource_error(int error);

// SO_ERROR of a socket (the outcome of a non-blocking connect).
int socket_error(int fd);

// The bound port of a socket (for tests that listen on port 0).
int local_port(int fd);

}  // namespace passgate::reactor
