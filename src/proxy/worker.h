#pragma once
// One worker per core: its own loop (io_uring), its own SO_REUSEPORT listening sockets, its own
// pipe pool, balancing state and connections. Nothing here is shared with other workers; the
// only ways in are the inbox channel (control messages) and read-only snapshots (whose one
// mutable part, the listener and route admission counts, every worker updates atomically).

#include "reactor/acceptor.h"
#include "reactor/channel.h"
#include "reactor/fd.h"
#include "reactor/loop.h"
#include "src/proxy/admission.h"
#include "src/routing/balancer.h"
#include "src/observe/connection_summary.h"
#include "src/routing/endpoint_set.h"
#include "src/proxy/pipe_pool.h"
#include "src/proxy/quic_flows.h"
#include "src/routing/service_pool.h"
#include "src/routing/snapshot.h"
#include "src/proxy/worker_stats.h"

#include <list>
#include <unordered_map>
#include <utility>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

namespace passgate {

class ProxyConnection;

// At most `per_second` lines a second: a flood of bad clients must not turn into a flood of
// blocking writes to stderr. What is held back is counted and reported on the next line.
class LogBudget {
public:
    explicit LogBudget(std::uint32_t per_second) : per_second_(per_second) {}
    bool allow(reactor::Millis now) {
        if (now - window_start_ >= 1000) {
            window_start_ = now;
            used_ = 0;
        }
        if (used_ < per_second_) {
            ++used_;
            return true;
        }
        ++suppressed_;
        return false;
    }
    std::uint64_t take_suppressed() { return std::exchange(suppressed_, 0); }

private:
    std::uint32_t per_second_;
    std::uint32_t used_ = 0;
    reactor::Millis window_start_ = 0;
    std::uint64_t suppressed_ = 0;
};

// A snapshot as one worker uses it: with that worker's route balancing state, its services'
// endpoint pools (by service index; owned by the worker and shared by name between generations,
// so that open counts and ejections are per endpoint, not per snapshot), and a count of the
// connections that started under it (they keep it until they end).
struct Generation {
    explicit Generation(std::shared_ptr<const Snapshot> snapshot_)
        : snapshot(std::move(snapshot_)), balancer(*snapshot) {}
    std::shared_ptr<const Snapshot> snapshot;
    Balancer balancer;
    std::vector<ServicePool*> pools;  // by service index of the snapshot's config
    std::size_t connections = 0;
};

using EndpointSets = std::vector<std::shared_ptr<const EndpointSet>>;

// The control thread's messages to a worker, one type per kind (handled with std::visit).
// Stop accepting, let connections finish within `timeout`, then close the rest and return from run().
struct DrainMessage {
    reactor::Millis timeout = 0;
    // A binary upgrade handed over: stop reading the QUIC listener sockets (the new process
    // reads them) and read its forwarded datagrams from this channel (the control plane's; -1: none).
    bool handed_over = false;
    int quic_forward_fd = -1;
};
// Close everything now and return from run().
struct StopMessage {};
// A new configuration: the new snapshot, and per listener of it either a freshly bound socket or
// an invalid Fd meaning "keep the socket you have for the listener of this name and address";
// the endpoint set of every service of the new snapshot, in config order.
struct ReloadMessage {
    std::shared_ptr<const Snapshot> snapshot;
    std::vector<reactor::Fd> new_sockets;
    EndpointSets endpoint_sets;
};
// New endpoint sets for some services (discovery or health changed).
struct EndpointsMessage {
    EndpointSets endpoint_sets;
};
// Start accepting (a worker started with WorkerOptions::accepting false: a process started by an
// upgrade accepts only once the old one hands over).
struct StartAcceptingMessage {
    // The upgrade's QUIC forwarding channel to the old process (the control plane's; -1: none).
    int quic_forward_fd = -1;
};
using WorkerMessage =
    std::variant<DrainMessage, StopMessage, ReloadMessage, EndpointsMessage, StartAcceptingMessage>;

// A listening socket given to a worker, with the index of its listener in the snapshot. A
// listener may have several (inherited from an upgrade's old process with more workers), and
// workers may share one (each holds its own duplicate: a socket passed by systemd).
struct ListenerSocket {
    std::size_t listener = 0;
    reactor::Fd fd;
};

class AccessLog;

struct WorkerOptions {
    unsigned index = 0;
    AccessLog* access_log = nullptr;  // one line per connection; nullptr when disabled
    std::size_t pipe_size = 256 * 1024;
    std::size_t pipe_pool_idle = 64;
    // Client connections this worker holds at once ([runtime] max_connections_per_worker, or
    // derived from the descriptor limit); more are refused with worker_limit.
    std::uint32_t max_connections = 1'000'000;
    // This worker's share of [runtime] max_hello_memory: bytes of hello buffers held at once.
    std::uint64_t hello_memory_budget = 64ull * 1024 * 1024;
    // False: the listening sockets are held but not accepted on until a StartAcceptingMessage.
    bool accepting = true;
    // Connections held at which the worker stops accepting (new ones wait in the kernel's listen
    // queues) until it holds half as many ([runtime] pause_accepting_at); 0: never.
    std::uint32_t pause_accept_at = 0;
    // [runtime] max_quic_flows_per_worker.
    std::uint32_t max_quic_flows = 16384;
    // Channels to and from the other workers for QUIC datagrams that moved (WorkerSet's).
    QuicMesh quic_mesh;
};

class Worker {
public:
    // `listen_sockets`: at least one per snapshot listener; owned by the worker.
    // `endpoint_sets`: one per service of the snapshot, in config order.
    Worker(const WorkerOptions& options, std::shared_ptr<const Snapshot> snapshot,
           EndpointSets endpoint_sets, std::vector<ListenerSocket> listen_sockets,
           reactor::Channel<WorkerMessage>& inbox, WorkerStats& stats);
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    ~Worker();

    void run();  // returns after a stop message, with every connection closed

    reactor::Loop& loop() { return loop_; }
    AccessLog* access_log() const { return options_.access_log; }
    Generation& current_generation() { return generations_.back(); }
    // The listener (index in the current snapshot) of a QUIC listener socket this worker reads;
    // nullopt when it is not one (any more).
    std::optional<std::size_t> quic_listener_of(int fd) const;
    // This worker's socket (and listener index) of the QUIC listener named `name`.
    std::optional<std::pair<int, std::size_t>> quic_socket_of(std::string_view name) const;
    // A QUIC flow ended: its generation may be unused now.
    void flow_retired() { generations_may_be_unused_ = true; }
    PipePool& pipes() { return pipes_; }
    WorkerStats& stats() { return stats_; }
    unsigned index() const { return options_.index; }
    // A connection is done: account for it and free it after the current batch of events.
    void retire(ProxyConnection& connection, const ConnectionSummary& summary);

    // Limits: decided by the worker's Admission (src/proxy/admission.h) against the current
    // snapshot; listener and route limits are exact across workers, and follow listeners and
    // routes by name across reloads.
    // A new connection on `listener` of `generation`: nullopt when admitted (then it counts as
    // open until release_listener), else the refusal (worker_limit, listener_limit or rate_limit).
    std::optional<CloseReason> admit_listener(const Generation& generation, std::size_t listener) {
        return admission_.admit_listener(current_snapshot(), *generation.snapshot, listener, loop_.now());
    }
    void release_listener(const Generation& generation, std::size_t listener) {
        admission_.release_listener(current_snapshot(), *generation.snapshot, listener);
    }
    // Hello buffers, against hello_memory_budget: see Admission::charge_hello_memory.
    bool charge_hello_memory(std::size_t growth, std::size_t buffer_after) {
        return admission_.charge_hello_memory(growth, buffer_after);
    }
    void release_hello_memory(std::size_t bytes) { admission_.release_hello_memory(bytes); }
    void add_hello_memory(std::size_t bytes) { admission_.add_hello_memory(bytes); }
    // A connection routed to `route` of `generation`: true when admitted (then it counts as open
    // until release_route); false when the route is at its max_connections.
    bool admit_route(const Generation& generation, std::size_t route, bool& counted) {
        return admission_.admit_route(current_snapshot(), *generation.snapshot, route, counted);
    }
    void release_route(const Generation& generation, std::size_t route) {
        admission_.release_route(current_snapshot(), *generation.snapshot, route);
    }

private:
    void accept(std::size_t listener, reactor::Fd client);
    void accept_on(int listen_fd, reactor::Fd client);
    void on_accept_error(int error);
    void on_message(DrainMessage message);
    void on_message(StopMessage message);
    void on_message(ReloadMessage message);
    void on_message(EndpointsMessage message);
    void on_message(StartAcceptingMessage message);
    void on_batch_end();  // after the loop freed the connections retired in the batch
    void free_unused_generations();
    void stop();
    void drain(reactor::Millis timeout);
    void on_drain_deadline();
    void reload(std::shared_ptr<const Snapshot> snapshot, std::vector<reactor::Fd> new_sockets,
                EndpointSets endpoint_sets);
    // Points the current generation at the pools of its services, creating and updating them.
    void attach_pools(Generation& generation, const EndpointSets& sets);
    // Frees the pools no live generation uses any more.
    void collect_pools();
    void start_acceptors();
    // The population bound (WorkerOptions::pause_accept_at), checked after each accept and close.
    void pause_or_resume_accepting();
    const Snapshot& current_snapshot() const { return *generations_.back().snapshot; }

    WorkerOptions options_;
    reactor::Loop loop_;
    WorkerStats& stats_;
    PipePool pipes_;
    std::list<Generation> generations_;  // back() is current; older ones live while used
    std::unordered_map<std::string, std::unique_ptr<ServicePool>> pools_;  // by service name
    // A listening socket and its acceptor (none while not accepting). The acceptor goes first
    // (declared last), so no accept is in flight on a closed socket.
    struct ListenSocket {
        std::size_t listener = 0;  // index in the current snapshot's listeners
        reactor::Fd fd;
        std::unique_ptr<reactor::Acceptor> acceptor;
        // A QUIC listener's UDP socket: read by quic_ (once reading) instead of an acceptor.
        bool quic = false;
        bool reading = false;
    };
    std::vector<ListenSocket> listen_sockets_;
    std::vector<std::unique_ptr<ProxyConnection>> connections_;
    std::unique_ptr<QuicFlows> quic_;  // created in the constructor (it needs the loop)
    LogBudget reject_log_budget_{100};
    Admission admission_;
    bool accepting_ = true;
    bool draining_ = false;
    bool accept_paused_ = false;  // by the population bound
    bool generations_may_be_unused_ = false;  // a connection ended or a reload came since the last look
    reactor::MemberTimer<Worker, &Worker::on_drain_deadline> drain_deadline_{*this};
    reactor::ChannelReceiver<WorkerMessage> inbox_;
};

}  // namespace passgate
