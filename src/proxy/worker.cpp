#include "src/proxy/worker.h"

#include "src/observe/access_log.h"
#include "src/observe/log.h"
#include "src/proxy/proxy_connection.h"

#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>

namespace passgate {

Worker::Worker(const WorkerOptions& options, std::shared_ptr<const Snapshot> snapshot,
               EndpointSets endpoint_sets, std::vector<ListenerSocket> listen_sockets,
               reactor::Channel<WorkerMessage>& inbox, WorkerStats& stats)
    : options_(options),
      stats_(stats),
      pipes_(options.pipe_size, options.pipe_pool_idle),
      admission_(options.max_connections, options.hello_memory_budget),
      accepting_(options.accepting),
      inbox_(loop_, inbox, [this](WorkerMessage message) {
          std::visit([this](auto&& kind) { on_message(std::move(kind)); }, std::move(message));
      }) {
    log_line(LogLevel::info, "worker " + std::to_string(options_.index) + ": io_uring " + loop_.features().describe());
    quic_ = std::make_unique<QuicFlows>(*this, options_.max_quic_flows, options_.quic_mesh);
    for (ListenerSocket& socket : listen_sockets) {
        const bool quic = snapshot->listeners()[socket.listener].listener->protocol == config::ListenerProtocol::quic;
        listen_sockets_.push_back(
            ListenSocket{.listener = socket.listener, .fd = std::move(socket.fd), .acceptor = {}, .quic = quic});
    }
    generations_.emplace_back(std::move(snapshot));
    attach_pools(generations_.back(), endpoint_sets);
    start_acceptors();
    loop_.set_batch_end([this] { on_batch_end(); });
}

// Starts an acceptor on every listening socket that has none yet (all of them at start, or when
// told to start accepting; the new ones after a reload).
void Worker::start_acceptors() {
    if (!accepting_ || draining_) return;
    for (ListenSocket& socket : listen_sockets_) {
        if (socket.quic && socket.fd && !socket.reading) {
            quic_->add_socket(socket.fd.get());
            socket.reading = true;
        }
        if (!socket.fd || socket.acceptor || socket.quic) continue;
        // The acceptor outlives reloads that keep its socket, and the socket's listener index
        // may change then: it is looked up by descriptor on each accept.
        const int fd = socket.fd.get();
        socket.acceptor = std::make_unique<reactor::Acceptor>(
            loop_, fd, [this, fd](reactor::Fd client) { accept_on(fd, std::move(client)); },
            [this](int error) { on_accept_error(error); },
            // With a population bound, each accept is seen before the next is taken.
            options_.pause_accept_at > 0 ? reactor::Watch::AcceptMode::one_at_a_time
                                         : reactor::Watch::AcceptMode::multishot);
        if (accept_paused_) socket.acceptor->pause();
    }
}

// Out of descriptors or memory: counted, and logged within the reject log budget (the acceptor
// backs off, so this is at most a few lines a second).
void Worker::on_accept_error(int error) {
    stats_.accept_errors.add();
    if (!reject_log_budget_.allow(loop_.now())) return;
    std::string line = "worker " + std::to_string(options_.index) + ": accept failed: " +
                       std::strerror(error) + " (backing off)";
    const std::uint64_t suppressed = reject_log_budget_.take_suppressed();
    if (suppressed > 0) line += " (" + std::to_string(suppressed) + " similar lines suppressed)";
    log_line(LogLevel::warning, line);
}

void Worker::accept_on(int listen_fd, reactor::Fd client) {
    for (const ListenSocket& socket : listen_sockets_)
        if (socket.fd.get() == listen_fd) return accept(socket.listener, std::move(client));
    // Not a current socket (cannot happen: acceptors go before their sockets): drop it.
}

std::optional<std::size_t> Worker::quic_listener_of(int fd) const {
    for (const ListenSocket& socket : listen_sockets_)
        if (socket.quic && socket.fd.get() == fd) return socket.listener;
    return std::nullopt;
}

std::optional<std::pair<int, std::size_t>> Worker::quic_socket_of(std::string_view name) const {
    for (const ListenSocket& socket : listen_sockets_)
        if (socket.quic && socket.reading && current_snapshot().listeners()[socket.listener].listener->name == name)
            return std::pair<int, std::size_t>(socket.fd.get(), socket.listener);
    return std::nullopt;
}

Worker::~Worker() {
    // Connections, flows and acceptors hold watches on the loop: they go before it.
    quic_.reset();
    listen_sockets_.clear();
    connections_.clear();
    loop_.free_deferred();  // retired connections refer to this worker: freed while it is whole
}

void Worker::run() { loop_.run(); }

void Worker::accept(std::size_t listener, reactor::Fd client) {
    stats_.accepted.add();
    stats_.active.add();
    auto connection =
        std::make_unique<ProxyConnection>(*this, generations_.back(), listener, std::move(client));
    connection->slot = connections_.size();
    ProxyConnection& started = *connection;
    connections_.push_back(std::move(connection));
    started.start();
    pause_or_resume_accepting();
}

// Past pause_accept_at connections, each one more costs every connection more (the ring's polls,
// timers and the sockets' memory go cold): new ones are left in the kernel's listen queue, where
// waiting costs nothing and a full backlog sheds SYNs, until half of the population is gone.
void Worker::pause_or_resume_accepting() {
    const std::uint32_t pause_at = options_.pause_accept_at;
    if (pause_at == 0) return;
    const std::size_t held = connections_.size();
    if (!accept_paused_ && held >= pause_at) {
        accept_paused_ = true;
        stats_.accept_pauses.add();
        for (ListenSocket& socket : listen_sockets_)
            if (socket.acceptor) socket.acceptor->pause();
    } else if (accept_paused_ && held <= pause_at / 2) {
        accept_paused_ = false;
        for (ListenSocket& socket : listen_sockets_)
            if (socket.acceptor) socket.acceptor->resume();
    }
}

void Worker::retire(ProxyConnection& connection, const ConnectionSummary& summary) {
    stats_.active.sub();
    if (options_.access_log != nullptr) {
        // Never blocks: a full queue drops the line and counts it.
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        const Snapshot& snapshot = *connection.generation().snapshot;
        options_.access_log->submit(
            options_.index,
            make_access_record(summary, snapshot.listeners()[summary.listener].listener->name,
                               options_.index, now));
    } else if (summary.reason != CloseReason::completed && summary.reason != CloseReason::shutdown &&
               log_enabled(LogLevel::info) && reject_log_budget_.allow(loop_.now())) {
        // Without an access log, rejected and failed connections still leave a (bounded) trace.
        std::string line = "connection closed: reason=" + std::string(close_reason_name(summary.reason));
        if (summary.reason == CloseReason::hello_rejected)
            line += " hello_error=" + std::string(hello_error_name(summary.hello_error));
        line += " client=" + summary.client;
        if (!summary.sni.empty()) line += " sni=" + summary.sni;
        if (!summary.endpoint.empty()) line += " endpoint=" + summary.endpoint;
        if (summary.error != 0) line += " error=\"" + std::string(strerror(summary.error)) + "\"";
        const std::uint64_t suppressed = reject_log_budget_.take_suppressed();
        if (suppressed > 0) line += " (" + std::to_string(suppressed) + " similar lines suppressed)";
        log_line(LogLevel::info, line);
    }
    // Swap-remove from the table; the object itself is freed by the loop after this batch of
    // events (before on_batch_end), since it is still on the call stack.
    const std::size_t slot = connection.slot;
    std::unique_ptr<ProxyConnection> owned = std::move(connections_[slot]);
    if (slot + 1 != connections_.size()) {
        connections_[slot] = std::move(connections_.back());
        connections_[slot]->slot = slot;
    }
    connections_.pop_back();
    loop_.defer_destroy(std::move(owned));
    // Freeing a connection releases its generation: look for unused generations at batch end.
    generations_may_be_unused_ = true;
    pause_or_resume_accepting();
}

void Worker::on_batch_end() {
    if (draining_) {
        // A listening socket closes once its acceptor's last accept came back (a connection
        // accepted as the drain began is served, not reset). A QUIC socket carries its flows'
        // datagrams: it closes with the last flow.
        std::erase_if(listen_sockets_, [this](const ListenSocket& socket) {
            if (socket.quic) {
                if (quic_->size() > 0) return false;
                if (socket.reading) quic_->remove_socket(socket.fd.get(), CloseReason::shutdown);
                return true;
            }
            return !socket.acceptor || socket.acceptor->finished();
        });
        if (connections_.empty() && quic_->size() == 0 && listen_sockets_.empty()) loop_.stop();
    }
    if (generations_may_be_unused_) free_unused_generations();
    // Published for the control thread (scrapes, STATUS): plain stores to this worker's cells.
    const PipePoolStats& pipes = pipes_.stats();
    stats_.pipes_in_use.set(pipes.in_use);
    stats_.pipes_idle.set(pipes.idle);
    stats_.loop_completions.set(loop_.stats().completions);
    stats_.loop_submissions.set(loop_.stats().submissions);
    stats_.hello_memory.set(admission_.hello_memory());
}

// An older snapshot lives until its last connection ends, wherever it is in the list: one
// long-lived connection on an old snapshot keeps that snapshot only, not every later one.
// (std::list: erasing one generation leaves the others, which connections refer to, in place.)
void Worker::free_unused_generations() {
    generations_may_be_unused_ = false;
    bool freed = false;
    const auto current = std::prev(generations_.end());
    for (auto generation = generations_.begin(); generation != current;) {
        if (generation->connections == 0) {
            generation = generations_.erase(generation);
            freed = true;
        } else {
            ++generation;
        }
    }
    if (freed) collect_pools();
}

void Worker::on_message(DrainMessage message) {
    drain(message.timeout);
    if (message.handed_over) quic_->hand_over(message.quic_forward_fd);
}

void Worker::on_message(StopMessage) { stop(); }

void Worker::on_message(StartAcceptingMessage message) {
    if (message.quic_forward_fd >= 0) quic_->forward_to(message.quic_forward_fd);
    accepting_ = true;
    start_acceptors();
}

void Worker::on_message(ReloadMessage message) {
    reload(std::move(message.snapshot), std::move(message.new_sockets), std::move(message.endpoint_sets));
}

void Worker::on_message(EndpointsMessage message) {
    const metrics::Histogram& delay = current_snapshot().metrics().endpoint_update_delay;
    for (std::shared_ptr<const EndpointSet>& set : message.endpoint_sets) {
        const auto pool = pools_.find(set->service);
        if (pool == pools_.end()) continue;
        const std::chrono::steady_clock::time_point changed_at = set->changed_at;
        pool->second->update(std::move(set));
        // After update(): the set is in use from here on.
        const std::chrono::duration<double> waited = std::chrono::steady_clock::now() - changed_at;
        delay.observe(options_.index, waited.count());
    }
}

void Worker::attach_pools(Generation& generation, const EndpointSets& sets) {
    const Snapshot& snapshot = *generation.snapshot;
    const config::Config& config = snapshot.config();
    generation.pools.clear();
    for (std::size_t index = 0; index < config.services.size(); ++index) {
        const config::Service& service = config.services[index];
        PoolSettings settings;
        settings.balance = service.balance;
        settings.hash_key = service.hash_key;
        settings.outlier_detection = service.outlier_detection;
        settings.workers = snapshot.metrics().workers;
        settings.shard = options_.index;
        // Different per worker and per service: random_two's draws must not move in lockstep.
        settings.random_seed = stable_hash(service.name, options_.index + 1);
        std::unique_ptr<ServicePool>& pool = pools_[service.name];
        if (!pool) pool = std::make_unique<ServicePool>(settings);
        else pool->configure(settings);
        if (index < sets.size() && sets[index]) pool->update(sets[index]);
        generation.pools.push_back(pool.get());
    }
}

void Worker::collect_pools() {
    for (auto pool = pools_.begin(); pool != pools_.end();) {
        const bool used = std::any_of(generations_.begin(), generations_.end(), [&](const Generation& g) {
            return std::find(g.pools.begin(), g.pools.end(), pool->second.get()) != g.pools.end();
        });
        pool = used ? std::next(pool) : pools_.erase(pool);
    }
}

void Worker::stop() {
    quic_->stop();
    listen_sockets_.clear();
    while (!connections_.empty()) connections_.back()->abort(CloseReason::shutdown);
    loop_.stop();
}

// Stop accepting at once, let the open connections finish, and close what is left when the
// timeout runs out. Each listening socket closes once its acceptor's cancel came back (the
// kernel then sends new connections to no one and resets the backlog, unless another process
// holds the socket: a binary upgrade's new process, which goes on accepting from it). A
// connection accepted before the cancel took effect is served like the others.
void Worker::drain(reactor::Millis timeout) {
    if (draining_) return;
    draining_ = true;
    quic_->drain();
    for (ListenSocket& socket : listen_sockets_)
        if (socket.acceptor) socket.acceptor->finish();
    loop_.arm_timer_after(drain_deadline_, timeout);
    on_batch_end();
}

void Worker::on_drain_deadline() {
    if (!connections_.empty())
        log_line(LogLevel::warning, "worker " + std::to_string(options_.index) + ": closing " +
                                        std::to_string(connections_.size()) +
                                        " connections still open at shutdown_timeout");
    stop();
}

}  // namespace passgate

namespace passgate {

// Switches to a new snapshot between events. Listeners that stay (same name and address) keep
// their sockets, so no connection is refused during the switch: connections waiting in the
// backlog are accepted by the same acceptor. Established connections keep their own snapshot.
void Worker::reload(std::shared_ptr<const Snapshot> snapshot, std::vector<reactor::Fd> new_sockets,
                    EndpointSets endpoint_sets) {
    const Snapshot& old_snapshot = *generations_.back().snapshot;
    std::vector<ListenSocket> sockets;
    for (std::size_t index = 0; index < snapshot->listeners().size(); ++index) {
        const bool quic = snapshot->listeners()[index].listener->protocol == config::ListenerProtocol::quic;
        if (index < new_sockets.size() && new_sockets[index]) {
            sockets.push_back(
                ListenSocket{.listener = index, .fd = std::move(new_sockets[index]), .acceptor = {}, .quic = quic});
            continue;
        }
        // Kept sockets keep their acceptor: cancelling an accept in flight would close (reset) a
        // connection the kernel had already accepted for it.
        const config::Listener& wanted = *snapshot->listeners()[index].listener;
        bool found = false;
        for (ListenSocket& socket : listen_sockets_) {
            if (!socket.fd) continue;
            const config::Listener& had = *old_snapshot.listeners()[socket.listener].listener;
            if (had.name != wanted.name || !(had.address == wanted.address) || had.protocol != wanted.protocol)
                continue;
            sockets.push_back(std::move(socket));
            sockets.back().listener = index;
            found = true;
        }
        if (!found && !draining_)
            log_line(LogLevel::error, "worker " + std::to_string(options_.index) +
                                          ": no socket for listener " + wanted.name);
    }
    // The sockets of removed listeners close here, their acceptors first (cancelling the accepts
    // in flight). A removed QUIC listener's flows close with it: their replies would have no
    // socket to leave from.
    for (const ListenSocket& socket : listen_sockets_)
        if (socket.fd && socket.reading) quic_->remove_socket(socket.fd.get(), CloseReason::route_removed);
    listen_sockets_ = std::move(sockets);
    generations_.emplace_back(std::move(snapshot));
    generations_may_be_unused_ = true;  // the previous one, if no connection uses it
    attach_pools(generations_.back(), endpoint_sets);
    start_acceptors();

    // Connections whose route the new config no longer has keep running, unless that route
    // asked for a drain_timeout.
    const config::Config& next = generations_.back().snapshot->config();
    quic_->after_reload(next);
    for (const auto& connection : connections_) {
        const config::Route* route = connection->route();
        if (route == nullptr || !route->drain_timeout) continue;
        if (next.find_route(route->name) != nullptr) continue;
        connection->close_after(route->drain_timeout->count());
    }
}

}  // namespace passgate
