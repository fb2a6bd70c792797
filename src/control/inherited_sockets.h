#pragma once
// Listening sockets handed to passgate when it is executed, the way systemd's socket activation
// passes them (sd_listen_fds(3): LISTEN_FDS sockets from fd 3, LISTEN_PID this process,
// LISTEN_FDNAMES their names separated by ':'). A binary upgrade's old process passes its
// sockets the same way (src/control/upgrade.h), so the new process takes them with this code too.
//
// Names: a listener's sockets carry the listener's name (`[[listener]] name`, systemd's
// FileDescriptorName=); the admin socket is named "[admin]".

#include "config/config.h"
#include "reactor/fd.h"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace passgate {

inline constexpr const char* admin_socket_name = "[admin]";

struct InheritedSocket {
    std::string name;
    reactor::Fd fd;
};

// The values of LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (nullptr: unset) for process `self`:
// the fd numbers (3, 4, ...) with their names. Empty when LISTEN_PID is unset or another
// process's (the variables were meant for a parent). Throws std::runtime_error naming the
// variable when a value is malformed (not a number, names not matching the count).
struct ListenFd {
    int fd = -1;
    std::string name;
};
std::vector<ListenFd> parse_listen_fds(const char* fds, const char* pid, const char* names, pid_t self);

// Takes the sockets passed to this process and unsets the three variables (a child never sees
// them). Each must be a listening TCP socket or a bound UDP one (a QUIC listener's), else
// std::runtime_error names it (name and fd).
// The sockets are made close-on-exec and non-blocking.
std::vector<InheritedSocket> take_inherited_sockets();

// The inherited sockets sorted out against the config.
struct SocketAssignment {
    std::vector<std::vector<reactor::Fd>> listeners;  // per config listener, in order (may be empty)
    reactor::Fd admin;                                 // invalid when none was passed
    std::vector<std::string> notes;                    // what was closed, and why (to log)
};
// `upgrade` false (systemd): a socket whose name no listener has, or whose bound address is not
// its listener's (or the admin's), fails start-up with std::runtime_error saying so.
// `upgrade` true (from an old process, whose config may differ): such a socket is closed and
// noted; the listener's address is then bound as usual.
SocketAssignment assign_inherited_sockets(std::vector<InheritedSocket> sockets, const config::Config& config,
                                          bool upgrade);

}  // namespace passgate
