#pragma once
// QUIC passthrough on one worker: its SO_REUSEPORT UDP sockets of the QUIC listeners, and its
// flows. A flow is one client's QUIC connection as seen from outside:
//   1. a datagram from an address:port no flow has, carrying an Initial of v1 or v2, starts a
//      flow; its datagrams are kept (bounded: packets, bytes, the worker's hello memory) and fed
//      to the Initial reader (src/wire/quic_initial.h) until the ClientHello is complete
//      (deadline client_hello_timeout);
//   2. the hello is routed like a TLS connection's (the listener's routes, allow/deny, limits,
//      the service's balancer), and a UDP socket connected to the endpoint is opened;
//   3. the kept datagrams go to the backend in order, then both directions are forwarded as
//      they are. The backend's replies leave from the listener socket (from the address the
//      client used, for a wildcard listener);
//   4. it ends after quic_flow_idle_timeout without a datagram either way (UDP has no close),
//      the route's max_connection_duration, an ICMP error from the backend, or shutdown.
// Flows are found by the listener socket plus the client's address and port, and by the
// connection IDs the server chose (the SCIDs of its long-header packets) and the client's first
// DCID: a datagram from a new address whose DCID is one of them moves the flow there (NAT
// rebinding, or a migration that reuses the connection ID). The server validates the new path
// itself. Connection IDs the server hands out later (NEW_CONNECTION_ID) are encrypted: a
// client that migrates onto one of them is not followed (QUIC-LB would be needed).
// Datagrams that are not Initials and belong to no flow are dropped and counted, never answered.
//
// A binary upgrade (src/control/upgrade.h): both processes hold the same UDP sockets. At the
// hand-over the old process stops reading them (it keeps them: its flows' replies leave from
// them), so every client datagram reaches the new process. The new process sends the ones that
// are not Initials and match none of its flows to the old process over the upgrade's QUIC
// forwarding channel (a SOCK_SEQPACKET socketpair shared by all workers of both processes; one
// message per datagram: [name length: 1][listener name][peer: SocketAddress][local: SocketAddress]
// [has_local: 1][datagram]). The old process's workers read it and treat each datagram as their
// own receive path would (by address, by connection ID, moving the flow, handing a short header
// to the other workers). A full channel drops (counted); once the old process exited (the channel
// is closed) the new process drops them as no_flow, as before. Initials start flows in the new
// process: an old flow still assembling its ClientHello at the hand-over is not carried.

#include "reactor/channel.h"
#include "reactor/datagram.h"
#include "reactor/fd.h"
#include "reactor/loop.h"
#include "config/config.h"
#include "src/observe/connection_summary.h"
#include "src/routing/service_pool.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace passgate {

class Worker;
struct Generation;
struct QuicListenerMetrics;
class QuicFlow;

// A short-header datagram that matched no flow of the worker that received it, handed to the
// other workers: the kernel's SO_REUSEPORT hash is by 4-tuple, so a client that moved to a new
// address (NAT rebinding) may land on another worker than its flow's. The owner (the worker that
// knows the DCID) adopts the new address and forwards it; the others ignore it.
struct QuicHandoff {
    std::string listener;  // by name: the workers' snapshots may differ for a moment (reload)
    std::vector<std::uint8_t> data;
    reactor::SocketAddress peer{};
    reactor::SocketAddress local{};
    bool has_local = false;
};
using QuicHandoffChannel = reactor::Channel<QuicHandoff>;
// A worker's channels to and from each other worker (WorkerSet owns them; empty with one worker).
struct QuicMesh {
    std::vector<QuicHandoffChannel*> to;
    std::vector<QuicHandoffChannel*> from;
};

class QuicFlows {
public:
    QuicFlows(Worker& worker, std::uint32_t max_flows, const QuicMesh& mesh);
    QuicFlows(const QuicFlows&) = delete;
    QuicFlows& operator=(const QuicFlows&) = delete;
    ~QuicFlows();

    // A QUIC listener's socket (owned by the worker) to read from; its listener index is looked
    // up per wake-up (Worker::quic_listener_of), so it follows reloads.
    void add_socket(int fd);
    // The socket is going: its flows close (they could not answer the client any more).
    void remove_socket(int fd, CloseReason reason);
    // SIGTERM: no new flows; the flows held go on until they idle out or stop().
    void drain() { draining_ = true; }
    // A binary upgrade handed over (the old process, with drain()): stop reading the listener
    // sockets and read the new process's forwarded datagrams from `forward_fd` (borrowed; the
    // control plane keeps it open until the workers are gone).
    void hand_over(int forward_fd);
    // A process started by an upgrade: forward datagrams of no flow to the old process through
    // `forward_fd` (borrowed, as above) until it is closed.
    void forward_to(int forward_fd) { forward_fd_ = forward_fd; }
    // A reload: flows whose route `next` no longer has close after that route's drain_timeout
    // (none: they run until idle), as TCP connections do.
    void after_reload(const config::Config& next);
    // Closes every flow (reason shutdown).
    void stop();
    std::size_t size() const { return flows_.size(); }

private:
    friend class QuicFlow;
    struct Socket;
    void on_socket_readable(Socket& socket, int result);
    void on_client_datagram(int fd, std::size_t listener, const reactor::DatagramBatch::Received& datagram);
    void start_flow(int fd, std::size_t listener, const reactor::DatagramBatch::Received& datagram);
    void hand_off(std::size_t listener, const reactor::DatagramBatch::Received& datagram);
    void on_handoff(QuicHandoff handoff);
    // The new process: true when the datagram went (or was dropped, counted) to the old process.
    bool forward_to_old(std::size_t listener, const reactor::DatagramBatch::Received& datagram);
    struct ForwardReader;
    void on_forwarded(int result);
    QuicFlow* find_by_short_dcid(int fd, std::span<const std::uint8_t> datagram);
    QuicFlow* find_by_cid(int fd, std::span<const std::uint8_t> cid);
    // Flow bookkeeping: keys are the socket's descriptor plus the address or connection ID bytes.
    static std::string address_key(int fd, const reactor::SocketAddress& address);
    static std::string cid_key(int fd, std::span<const std::uint8_t> cid);
    void index_address(QuicFlow& flow);
    void unindex_address(QuicFlow& flow);
    void index_cid(QuicFlow& flow, std::span<const std::uint8_t> cid);
    void retire(QuicFlow& flow);
    const QuicListenerMetrics& metrics(std::size_t listener) const;
    std::size_t shard() const;

    Worker& worker_;
    std::uint32_t max_flows_;
    bool draining_ = false;
    std::vector<std::unique_ptr<Socket>> sockets_;
    std::vector<std::unique_ptr<QuicFlow>> flows_;
    std::unordered_map<std::string, QuicFlow*> by_address_;
    std::unordered_map<std::string, QuicFlow*> by_cid_;
    // How many indexed connection IDs have each length: the lengths a short header's DCID is
    // tried with (servers use one length, so this is one or two entries).
    std::map<std::size_t, std::size_t> cid_lengths_;
    // One receive batch and one send batch for all sockets of the worker: a wake-up handles one
    // socket at a time, and sends what it received before it receives more.
    reactor::DatagramBatch batch_;
    reactor::DatagramSender sender_;
    std::vector<QuicHandoffChannel*> handoff_to_;
    std::vector<std::unique_ptr<reactor::ChannelReceiver<QuicHandoff>>> handoff_from_;
    int forward_fd_ = -1;  // the new process's end of the upgrade's forwarding channel
    std::unique_ptr<ForwardReader> forward_reader_;  // the old process's, after the hand-over
    std::vector<std::uint8_t> forward_buffer_;
};

}  // namespace passgate
