#pragma once
// Socket set-up helpers. Addresses are plain sockaddrs: the reactor knows nothing of config.

#include "reactor/fd.h"

#include <sys/socket.h>

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

// Starts a non-blocking connect. Returns the socket and 0 (connected at once) or EINPROGRESS;
// any other errno is returned with an invalid Fd.
struct ConnectStart {
    Fd socket;
    int error = 0;
};
ConnectStart start_connect(const sockaddr* address, socklen_t length);

// An errno that says this process or machine is short of something (descriptors, socket buffers,
// memory: EMFILE, ENFILE, ENOBUFS, ENOMEM), not that the peer failed. A connect or probe that
// fails so must not be held against the endpoint.
bool is_local_resource_error(int error);

// SO_ERROR of a socket (the outcome of a non-blocking connect).
int socket_error(int fd);

// The bound port of a socket (for tests that listen on port 0).
int local_port(int fd);

}  // namespace passgate::reactor
