#include "src/proxy/worker_set.h"

#include "reactor/threads.h"
#include "src/observe/log.h"

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace passgate {

namespace {
// Datagrams queued from one worker to another: a burst of a moved client's packets per wake-up.
constexpr std::size_t kQuicHandoffCapacity = 128;
}  // namespace

namespace {

// Sends the pending message, if any. False while the worker's inbox is still full (the message
// stays pending: the channel moves from it only when it is taken).
bool deliver(reactor::Channel<WorkerMessage>& inbox, std::optional<WorkerMessage>& pending) {
    if (!pending) return true;
    if (!inbox.try_send(std::move(*pending))) return false;
    pending.reset();
    return true;
}

// `next` replaces `superseded`, which never reached the worker: the sockets bound for
// `superseded`'s new listeners go with `next` where it keeps those listeners (it says "keep" for
// them, since they were in the config it was compared with). The rest close with it.
void carry_over_sockets(ReloadMessage& superseded, ReloadMessage& next) {
    const auto& old_listeners = superseded.snapshot->listeners();
    const auto& new_listeners = next.snapshot->listeners();
    const std::size_t old_count = std::min(old_listeners.size(), superseded.new_sockets.size());
    const std::size_t new_count = std::min(new_listeners.size(), next.new_sockets.size());
    for (std::size_t index = 0; index < new_count; ++index) {
        if (next.new_sockets[index]) continue;
        const config::Listener& wanted = *new_listeners[index].listener;
        for (std::size_t old = 0; old < old_count; ++old) {
            const config::Listener& had = *old_listeners[old].listener;
            if (superseded.new_sockets[old] && had.name == wanted.name && had.address == wanted.address) {
                next.new_sockets[index] = std::move(superseded.new_sockets[old]);
                break;
            }
        }
    }
}

}  // namespace

WorkerSet::WorkerSet(unsigned count) {
    for (unsigned index = 0; index < count; ++index) slots_.push_back(std::make_unique<Slot>());
}

WorkerSet::~WorkerSet() {
    for (auto& slot : slots_) {
        if (!slot->thread.joinable()) continue;
        WorkerMessage stop = StopMessage{};
        [[maybe_unused]] const bool sent = slot->inbox.try_send(std::move(stop));
        slot->thread.join();
    }
}

void WorkerSet::enable_quic_handoff() {
    if (slots_.size() < 2) return;
    for (unsigned to = 0; to < slots_.size(); ++to) {
        slots_[to]->quic_from.resize(slots_.size());
        for (unsigned from = 0; from < slots_.size(); ++from)
            if (from != to) slots_[to]->quic_from[from] = std::make_unique<reactor::Channel<QuicHandoff>>(kQuicHandoffCapacity);
    }
}

void WorkerSet::start(WorkerOptions options, std::shared_ptr<const Snapshot> snapshot, EndpointSets endpoint_sets,
                      std::vector<std::vector<ListenerSocket>> listen_sockets, OnFailure on_failure) {
    for (unsigned index = 0; index < slots_.size(); ++index) {
        options.index = index;
        options.quic_mesh = QuicMesh{};
        for (unsigned other = 0; other < slots_.size(); ++other) {
            if (other == index || slots_[index]->quic_from.empty()) continue;
            options.quic_mesh.to.push_back(slots_[other]->quic_from[index].get());
            options.quic_mesh.from.push_back(slots_[index]->quic_from[other].get());
        }
        slots_[index]->thread = std::thread(&WorkerSet::run_worker, this, index, options, snapshot, endpoint_sets,
                                            std::move(listen_sockets[index]), on_failure);
    }
}

void WorkerSet::run_worker(unsigned index, WorkerOptions options, std::shared_ptr<const Snapshot> snapshot,
                           EndpointSets endpoint_sets, std::vector<ListenerSocket> sockets,
                           const OnFailure& on_failure) {
    Slot& slot = *slots_[index];
    if (reactor::pin_current_thread(index) < 0)
        log_line(LogLevel::warning, "worker " + std::to_string(index) +
                                        " runs unpinned: could not pin it to a CPU: " + std::strerror(errno));
    // "passgate-w0"...: a worker is identifiable in top -H, gdb and /proc/PID/task.
    const std::string thread_name = "passgate-w" + std::to_string(index);
    // Cosmetic: a failure (ERANGE cannot happen at 15 characters) changes nothing else.
    [[maybe_unused]] const int named = ::pthread_setname_np(::pthread_self(), thread_name.substr(0, 15).c_str());
    try {
        // Moved, not copied: a copy here would keep the first snapshot alive until the thread exits.
        Worker worker(options, std::move(snapshot), std::move(endpoint_sets), std::move(sockets), slot.inbox,
                      slot.stats);
        ready_.fetch_add(1);
        worker.run();
    } catch (const std::exception& error) {
        log_line(LogLevel::error, "worker " + std::to_string(index) + " failed: " + error.what());
        failed_ = true;
        if (on_failure) on_failure(index);
    }
    slot.finished = true;
}

void WorkerSet::join() {
    for (auto& slot : slots_)
        if (slot->thread.joinable()) slot->thread.join();
}

bool WorkerSet::all_finished() const {
    return std::all_of(slots_.begin(), slots_.end(), [](const auto& slot) { return slot->finished.load(); });
}

std::uint64_t WorkerSet::active_connections() const {
    std::uint64_t active = 0;
    for (const auto& slot : slots_) active += slot->stats.active.get();
    return active;
}

std::size_t WorkerSet::pending_reloads() const {
    std::size_t pending = 0;
    for (const auto& slot : slots_) pending += slot->pending_reload ? 1 : 0;
    return pending;
}

void WorkerSet::send_to_all(Command command) {
    const bool stop = std::holds_alternative<StopMessage>(command);
    const bool start_accepting = std::holds_alternative<StartAcceptingMessage>(command);
    const char* what = stop ? "stop" : start_accepting ? "start of accepting" : "drain";
    for (std::size_t index = 0; index < slots_.size(); ++index) {
        Slot& slot = *slots_[index];
        WorkerMessage message = std::visit([](auto kind) -> WorkerMessage { return kind; }, command);
        // Behind a pending reload or command: keep the order the worker would have seen.
        if (!slot.pending_reload && !slot.pending_command && slot.inbox.try_send(std::move(message))) continue;
        if (slot.pending_command && std::holds_alternative<StopMessage>(*slot.pending_command)) continue;
        if (slot.pending_command && start_accepting) continue;  // a pending drain wins
        log_line(LogLevel::warning, "worker " + std::to_string(index) + " inbox full; its " + what +
                                        " is retried every 100 ms");
        slot.pending_command = std::move(message);
    }
}

void WorkerSet::send_reload(unsigned worker, ReloadMessage reload) {
    Slot& slot = *slots_[worker];
    // The reload carries the newest sets: older undelivered ones are superseded.
    slot.pending_endpoints.clear();
    if (slot.pending_reload) carry_over_sockets(std::get<ReloadMessage>(*slot.pending_reload), reload);
    slot.pending_reload = std::move(reload);
    // Never silently partial: a worker that cannot take it now gets it as soon as its inbox has
    // room (passgate_config_reload_pending_workers counts those waiting).
    if (!deliver(slot.inbox, slot.pending_reload))
        log_line(LogLevel::warning, "worker " + std::to_string(worker) + " inbox full: the new configuration "
                                    "is delivered as soon as it has room (retried every 100 ms)");
}

void WorkerSet::queue_endpoints(const EndpointSets& sets) {
    for (auto& slot : slots_)
        for (const auto& set : sets) slot->pending_endpoints[set->service] = set;
}

void WorkerSet::flush() {
    for (std::size_t index = 0; index < slots_.size(); ++index) {
        Slot& slot = *slots_[index];
        const bool was_pending = slot.pending_reload.has_value();
        // The reload first: endpoint updates may be for services only it brings.
        if (!deliver(slot.inbox, slot.pending_reload)) continue;
        if (was_pending)
            log_line(LogLevel::info, "worker " + std::to_string(index) + " took the configuration "
                                         "reload that found its inbox full");
        if (!deliver(slot.inbox, slot.pending_command)) continue;
        if (slot.pending_endpoints.empty()) continue;
        EndpointsMessage endpoints;
        for (auto& [name, set] : slot.pending_endpoints) endpoints.endpoint_sets.push_back(set);
        WorkerMessage message = std::move(endpoints);
        if (slot.inbox.try_send(std::move(message))) slot.pending_endpoints.clear();
        // else: kept, and retried by the next flush (the worker is busy, not lost).
    }
}

}  // namespace passgate
