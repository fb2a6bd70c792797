#pragma once
// The workers as one object for the control thread (the analogue of Seastar's sharded<>): it
// starts one thread per worker, sends messages to each or to all, and joins them. Each worker has
// a bounded inbox; what finds an inbox full is kept here, per worker, and sent again by flush()
// (the control plane calls it every 100 ms), in the order the worker would have seen it:
// a pending reload first, then a pending drain or stop, then the latest endpoint sets.
//
// Everything here runs on the control thread, except each worker's own thread body; the threads
// see only their inbox, their stats cells and the `finished`/`ready` flags.

#include "reactor/channel.h"
#include "reactor/fd.h"
#include "src/proxy/worker.h"
#include "src/proxy/worker_stats.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace passgate {

class WorkerSet {
public:
    explicit WorkerSet(unsigned count);
    WorkerSet(const WorkerSet&) = delete;
    WorkerSet& operator=(const WorkerSet&) = delete;
    // Joins threads still running (after a stop message), so that a failure between start() and
    // join() never destroys a running std::thread.
    ~WorkerSet();

    // Called on a worker's thread when its Worker failed to start or run.
    using OnFailure = std::function<void(unsigned worker)>;
    // Starts worker `index` on its own thread, pinned to CPU `index`, named "passgate-wN", with
    // `options` (its index set here), the first snapshot and endpoint sets, and its listening
    // sockets (at least one per snapshot listener).
    void start(WorkerOptions options, std::shared_ptr<const Snapshot> snapshot, EndpointSets endpoint_sets,
               std::vector<std::vector<ListenerSocket>> listen_sockets, OnFailure on_failure);
    // Before start(): channels between every pair of workers for QUIC datagrams that moved to
    // another worker (src/proxy/quic_flows.h). Only when QUIC listeners exist at start: a
    // worker pair costs a channel (an eventfd and its slots) each way.
    void enable_quic_handoff();
    // Waits for every started thread to return.
    void join();

    unsigned size() const { return static_cast<unsigned>(slots_.size()); }
    const WorkerStats& stats(unsigned worker) const { return slots_[worker]->stats; }
    bool all_ready() const { return ready_.load() == slots_.size(); }
    bool all_finished() const;
    bool failed() const { return failed_.load(); }
    std::uint64_t active_connections() const;
    // Workers that have not yet received the last reload (passgate_config_reload_pending_workers).
    std::size_t pending_reloads() const;

    // A drain or stop (the message) to every worker. A worker whose inbox is full gets it from
    // flush() once there is room (never lost: a lost drain would leave that worker serving until
    // killed). A later stop replaces a pending drain; a start-accepting never replaces a pending
    // drain or stop (it is dropped then: a draining worker accepts nothing).
    using Command = std::variant<DrainMessage, StopMessage, StartAcceptingMessage>;
    void send_to_all(Command command);
    // A reload to `worker`: sent now if its inbox has room, else kept and sent by flush(). It
    // replaces a pending older reload (taking over that one's freshly bound sockets where it keeps
    // their listeners) and the endpoint sets not yet delivered (it carries newer ones).
    void send_reload(unsigned worker, ReloadMessage reload);
    // New endpoint sets for every worker: the latest per service is kept and sent by flush().
    void queue_endpoints(const EndpointSets& sets);
    // Sends what is pending, per worker: the reload, then the drain or stop, then the endpoints.
    void flush();

private:
    struct Slot {
        reactor::Channel<WorkerMessage> inbox{64};
        // Endpoint sets not delivered yet: the latest per service.
        std::map<std::string, std::shared_ptr<const EndpointSet>> pending_endpoints;
        // A ReloadMessage the inbox had no room for (the worker is busy).
        std::optional<WorkerMessage> pending_reload;
        // A DrainMessage or StopMessage the inbox had no room for.
        std::optional<WorkerMessage> pending_command;
        WorkerStats stats;
        std::thread thread;
        std::atomic<bool> finished{false};  // run() returned: the control thread may join
        // QUIC hand-offs to this worker, by sending worker (null for itself); empty when off.
        std::vector<std::unique_ptr<reactor::Channel<QuicHandoff>>> quic_from;
    };
    void run_worker(unsigned index, WorkerOptions options, std::shared_ptr<const Snapshot> snapshot,
                    EndpointSets endpoint_sets, std::vector<ListenerSocket> sockets, const OnFailure& on_failure);

    std::vector<std::unique_ptr<Slot>> slots_;
    std::atomic<std::size_t> ready_{0};  // workers constructed and about to run
    std::atomic<bool> failed_{false};
};

}  // namespace passgate
