#pragma once
// A binary upgrade's two processes and the channel between them (a SOCK_SEQPACKET socketpair;
// each message is one datagram):
//   new -> old  "ready VERSION"     the new process is ready (workers up, endpoints known)
//   new -> old  "failed REASON"     it cannot start (then it exits 1)
//   old -> new  "go"                the old process stopped accepting: start
// A second socketpair (SOCK_SEQPACKET, PASSGATE_UPGRADE_QUIC_FD in the new process) carries QUIC
// client datagrams the new process holds no flow for back to the old one, which stopped reading
// its QUIC sockets at the hand-over (src/proxy/quic_flows.h has the message format).
// The old process starts the new one with UpgradeChild: fork + execve of the binary at its path
// (the file a package manager replaced), the same arguments, and every listening socket passed
// the way systemd passes them (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES: src/control/inherited_sockets.h),
// plus PASSGATE_UPGRADE_FD, its end of the channel. The new process finds it with UpgradeParent.

#include "reactor/fd.h"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace passgate {

// A socket to pass, borrowed for the call: its name (the listener's, or "[admin]") and fd.
struct PassedSocket {
    std::string name;
    int fd = -1;
};

// The old process's handle on the new one. Until release(), the destructor kills the child
// (SIGKILL) and reaps it: a new process that never took over must not outlive the attempt.
class UpgradeChild {
public:
    // Starts `binary` with `arguments` (arguments[0] included) and the environment of this
    // process (without LISTEN_* and PASSGATE_UPGRADE_FD) plus the passed sockets.
    // Throws std::runtime_error (socketpair, fork, pidfd_open failed).
    UpgradeChild(const std::string& binary, const std::vector<std::string>& arguments,
                 const std::vector<PassedSocket>& sockets);
    UpgradeChild(const UpgradeChild&) = delete;
    UpgradeChild& operator=(const UpgradeChild&) = delete;
    ~UpgradeChild();

    pid_t pid() const { return pid_; }
    int channel() const { return channel_.get(); }  // readable: a message, or the child's end closed
    int pidfd() const { return pidfd_.get(); }      // readable once the child exited
    // This process's end of the QUIC forwarding channel (taken at the hand-over).
    reactor::Fd take_quic_forward() { return std::move(quic_forward_); }

    // The next message (non-blocking): nullopt when none is waiting; "" when the child's end is
    // closed (it exited, or closed it).
    std::optional<std::string> read_message();
    bool send_go();
    // Kills the child (SIGKILL) if it still runs, waits for it, and says how it ended
    // ("exited with status 1", "killed by signal 9 (Killed)").
    std::string kill_and_reap();
    // Waits for an exited child (its pidfd was readable) and says how it ended.
    std::string reap();
    // The child took over: the destructor leaves it alone.
    void release() { released_ = true; }

private:
    pid_t pid_ = -1;
    reactor::Fd channel_;
    reactor::Fd pidfd_;
    reactor::Fd quic_forward_;
    bool reaped_ = false;
    bool released_ = false;
};

// The new process's end: from PASSGATE_UPGRADE_FD, which is then unset.
class UpgradeParent {
public:
    // nullopt when this process was not started by an upgrade. Throws std::runtime_error when
    // the variable is set but is not an open socket.
    static std::optional<UpgradeParent> from_environment();

    pid_t parent() const { return parent_; }
    int channel() const { return channel_.get(); }
    // The new process's end of the QUIC forwarding channel; -1 when the old process passed none.
    int quic_forward() const { return quic_forward_.get(); }
    bool send_ready(const std::string& version);
    bool send_failed(const std::string& reason);
    // The old process's answer (non-blocking): nullopt when none is waiting; "go"; or "" when the
    // old process's end is closed (it exited without handing over).
    std::optional<std::string> read_message();

private:
    UpgradeParent(reactor::Fd channel, reactor::Fd quic_forward, pid_t parent)
        : channel_(std::move(channel)), quic_forward_(std::move(quic_forward)), parent_(parent) {}
    reactor::Fd channel_;
    reactor::Fd quic_forward_;
    pid_t parent_ = -1;
};

}  // namespace passgate
