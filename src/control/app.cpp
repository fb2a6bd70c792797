#include "src/control/app.h"

#include "metrics/process.h"
#include "reactor/loop.h"
#include "reactor/signals.h"
#include "reactor/socket.h"
#include "reactor/threads.h"
#include "src/observe/access_log.h"
#include "src/control/admin_server.h"
#include "src/observe/app_metrics.h"
#include "src/discovery/endpoint_directory.h"
#include "src/control/fd_limit.h"
#include "src/observe/log.h"
#include "src/control/sd_notify.h"
#include "src/routing/snapshot.h"
#include "src/proxy/worker.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace passgate {

namespace {

struct WorkerSlot {
    reactor::Channel<WorkerMessage> inbox{64};
    // Endpoint sets not delivered yet because the inbox was full: the latest per service, sent
    // on the next flush. Touched by the control thread only.
    std::map<std::string, std::shared_ptr<const EndpointSet>> pending_endpoints;
    // A reload the inbox had no room for (the worker is busy): retried every 100 ms by the
    // ticker, before any endpoint update (which may name the reload's new services). A newer
    // reload replaces it and takes over its freshly bound sockets. Control thread only.
    std::optional<WorkerMessage> pending_reload;
    // A drain or stop the inbox had no room for: retried by the same ticker, right after the
    // pending reload. A later stop replaces a pending drain. Control thread only.
    std::optional<WorkerMessage> pending_command;
    WorkerStats stats;
    std::thread thread;
    std::atomic<bool> finished{false};  // run() returned: the control thread may join
};

// Runs `tick` every `period_ms` on the control loop (STATUS lines, shutdown progress).
class Ticker final : public reactor::Timer {
public:
    Ticker(reactor::Loop& loop, reactor::Millis period_ms, std::function<void()> tick)
        : loop_(loop), period_ms_(period_ms), tick_(std::move(tick)) {
        loop_.arm_timer_after(*this, period_ms_);
    }
    ~Ticker() = default;
    void on_timer() override {
        loop_.arm_timer_after(*this, period_ms_);
        tick_();
    }

private:
    reactor::Loop& loop_;
    reactor::Millis period_ms_;
    std::function<void()> tick_;
};

// Sends the pending reload, if any. False while the worker's inbox is still full.
bool deliver_pending_reload(WorkerSlot& slot) {
    if (!slot.pending_reload) return true;
    if (!slot.inbox.try_send(std::move(*slot.pending_reload))) return false;
    slot.pending_reload.reset();
    return true;
}

// Sends the pending drain or stop, if any. False while the worker's inbox is still full.
bool deliver_pending_command(WorkerSlot& slot) {
    if (!slot.pending_command) return true;
    if (!slot.inbox.try_send(std::move(*slot.pending_command))) return false;
    slot.pending_command.reset();
    return true;
}

// `next` (a reload message) replaces `superseded`, which never reached the worker: the sockets
// bound for `superseded`'s new listeners go with `next` where it keeps those listeners (it says
// "keep" for them, since they were in the config it was compared with). The rest close with it.
void carry_over_sockets(WorkerMessage& superseded, WorkerMessage& next) {
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

// Sends a drain or stop to every worker. A worker whose inbox is full gets it from the ticker
// once there is room (never lost: a lost drain would leave that worker serving until killed).
void send_to_all(std::vector<std::unique_ptr<WorkerSlot>>& workers, WorkerMessage::Kind kind,
                 reactor::Millis drain_timeout = 0) {
    for (std::size_t index = 0; index < workers.size(); ++index) {
        WorkerSlot& slot = *workers[index];
        WorkerMessage message;
        message.kind = kind;
        message.drain_timeout = drain_timeout;
        // Behind a pending reload or command: keep the order the worker would have seen.
        if (!slot.pending_reload && !slot.pending_command && slot.inbox.try_send(std::move(message)))
            continue;
        if (slot.pending_command && slot.pending_command->kind == WorkerMessage::Kind::stop) continue;
        log_line(LogLevel::warning, "worker " + std::to_string(index) +
                                        " inbox full; its " + (kind == WorkerMessage::Kind::stop ? "stop" : "drain") +
                                        " is retried every 100 ms");
        slot.pending_command = std::move(message);
    }
}

// Polls until every worker is up, then tells systemd (READY=1) once.
class ReadinessNotifier final : public reactor::Timer {
public:
    ReadinessNotifier(reactor::Loop& loop, std::function<bool()> all_ready)
        : loop_(loop), all_ready_(std::move(all_ready)) {
        loop_.arm_timer_after(*this, 0);
    }
    ~ReadinessNotifier() = default;
    bool notified() const { return notified_; }
    void on_timer() override {
        if (!all_ready_()) return loop_.arm_timer_after(*this, 5);
        notified_ = true;
        log_line(LogLevel::info, "ready");
        if (!sd_notify_state("READY=1\nSTATUS=serving"))
            log_line(LogLevel::warning, std::string("sd_notify READY=1 failed: ") + std::strerror(errno));
    }

private:
    reactor::Loop& loop_;
    std::function<bool()> all_ready_;
    bool notified_ = false;
};

reactor::Fd bind_listener(const config::Listener& listener) {
    try {
        // Accepted sockets inherit TCP_NODELAY: forwarded bytes are batched by the peers already,
        // no Nagle delay on top (the backend side sets it at connect).
        return reactor::listen_tcp(listener.address.sockaddr_ptr(), listener.address.length,
                                   reactor::ListenOptions{.no_delay = true});
    } catch (const std::system_error& error) {
        throw std::runtime_error("listener \"" + listener.name + "\" on " +
                                 listener.address.to_string() + ": " + error.what());
    }
}

std::uint64_t monotonic_usec() {
    return static_cast<std::uint64_t>(reactor::monotonic_micros());
}

// What every worker may hold: connections, and bytes of hellos not yet routed.
struct WorkerBounds {
    std::uint32_t max_connections = 0;
    std::uint64_t hello_memory_budget = 0;
};

// Raises the descriptor soft limit to the hard limit (a shell's 1024 is far too few), derives
// the per-worker bounds from it and the config, and logs all three.
WorkerBounds start_up_bounds(const config::Config& config, unsigned workers) {
    const FdLimit limit = raise_fd_limit();
    if (limit.error != 0)
        log_line(LogLevel::warning, std::string("file descriptor limit: could not raise the soft limit to the hard "
                                                "limit: ") + std::strerror(limit.error));
    if (limit.soft != limit.soft_before)
        log_line(LogLevel::info, "file descriptor limit: soft limit raised from " + std::to_string(limit.soft_before) +
                                     " to " + std::to_string(limit.soft) + " (hard " + std::to_string(limit.hard) + ")");
    else
        log_line(LogLevel::info, "file descriptor limit: " + std::to_string(limit.soft) + " (hard " +
                                     std::to_string(limit.hard) + ")");
    WorkerBounds bounds;
    const FdReserve reserve{.admin_connections = config.admin.max_connections, .pipe_pool_idle = 64};
    const std::uint32_t derived = derived_worker_connections(limit.soft, workers, reserve);
    bounds.max_connections = config.runtime.max_connections_per_worker.value_or(derived);
    bounds.hello_memory_budget = (config.runtime.max_hello_memory + workers - 1) / workers;
    log_line(LogLevel::info,
             "connections per worker: at most " + std::to_string(bounds.max_connections) +
                 (config.runtime.max_connections_per_worker
                      ? " ([runtime] max_connections_per_worker)"
                      : " (derived from the descriptor limit; [runtime] max_connections_per_worker sets it)") +
                 "; hello memory per worker: " + std::to_string(bounds.hello_memory_budget) +
                 " bytes ([runtime] max_hello_memory / " + std::to_string(workers) + ")");
    if (config.runtime.max_connections_per_worker && *config.runtime.max_connections_per_worker > derived)
        log_line(LogLevel::warning, "[runtime] max_connections_per_worker " +
                                        std::to_string(*config.runtime.max_connections_per_worker) +
                                        " is more than the descriptor limit allows (" + std::to_string(derived) +
                                        "): connections may fail with EMFILE before the cap");
    return bounds;
}

bool same_listener(const config::Listener& a, const config::Listener& b) {
    return a.name == b.name && a.address == b.address;
}

// The control thread's state: the config in use, the workers, metrics. Runs signals, reloads and
// the admin server on its own loop; never touches a connection.
class ControlPlane {
public:
    ControlPlane(const AppOptions& options, std::shared_ptr<const config::Config> config,
                 unsigned worker_count)
        : options_(options),
          worker_count_(worker_count),
          metrics_(worker_count),
          current_(std::move(config)),
          current_hash_(current_->source_hash) {
        metrics::register_process_metrics(metrics_.registry);
        metrics_.config_last_reload_success.with().set(metrics_.control_shard(), unix_time_seconds());
        metrics_.config_hash_info.with({current_hash_}).set(metrics_.control_shard(), 1);
    }

    AppMetrics& metrics() { return metrics_; }
    const std::shared_ptr<const config::Config>& config() const { return current_; }
    // The snapshot of the running config, built here: reloads carry its admission counters over.
    std::shared_ptr<const Snapshot> first_snapshot() {
        snapshot_ = std::make_shared<const Snapshot>(current_, metrics_);
        return snapshot_;
    }

    void add_worker_metrics(const std::vector<std::unique_ptr<WorkerSlot>>& workers) {
        auto& completions = metrics_.registry.counter("passgate_worker_loop_completions_total",
            "io_uring completions handled, by worker.", {"worker"});
        auto& submissions = metrics_.registry.counter("passgate_worker_loop_submissions_total",
            "io_uring submissions, by worker.", {"worker"});
        auto& accepted = metrics_.registry.counter("passgate_worker_accepted_total",
            "Connections accepted, by worker.", {"worker"});
        auto& accept_errors = metrics_.registry.counter("passgate_worker_accept_errors_total",
            "Failed accepts (out of descriptors or memory), by worker; accepting backs off.", {"worker"});
        for (std::size_t index = 0; index < workers.size(); ++index) {
            const WorkerStats* stats = &workers[index]->stats;
            const std::string worker = std::to_string(index);
            completions.with_callback({worker}, [stats] { return double(stats->loop_completions.get()); });
            submissions.with_callback({worker}, [stats] { return double(stats->loop_submissions.get()); });
            accepted.with_callback({worker}, [stats] { return double(stats->accepted.get()); });
            accept_errors.with_callback({worker}, [stats] { return double(stats->accept_errors.get()); });
        }
        const auto* all = &workers;
        metrics_.registry.gauge("passgate_config_reload_pending_workers",
            "Workers that have not yet received the last configuration reload (their inbox was "
            "full); retried every 100 ms.").with_callback({}, [all] {
                double pending = 0;
                for (const auto& worker : *all) pending += worker->pending_reload ? 1 : 0;
                return pending;
            });
        metrics_.pipes_in_use.with_callback({}, [all] {
            double sum = 0;
            for (const auto& worker : *all) sum += double(worker->stats.pipes_in_use.get());
            return sum;
        });
        metrics_.registry.gauge("passgate_hello_memory_bytes",
            "Bytes of ClientHello buffers held before routing, summed over workers "
            "(bounded by [runtime] max_hello_memory).").with_callback({}, [all] {
                double sum = 0;
                for (const auto& worker : *all) sum += double(worker->stats.hello_memory.get());
                return sum;
            });
        metrics_.pipe_pool_size.with_callback({}, [all] {
            double sum = 0;
            for (const auto& worker : *all) sum += double(worker->stats.pipes_idle.get());
            return sum;
        });
    }

    // SIGHUP. Returns an empty string on success, else why the reload was rejected (nothing
    // changed then). New listeners are bound before anything is handed over, so a bind failure
    // rejects the whole reload.
    std::string reload(std::vector<std::unique_ptr<WorkerSlot>>& workers, EndpointDirectory& directory) {
        const std::size_t control = metrics_.control_shard();
        std::shared_ptr<const config::Config> next;
        try {
            next = std::make_shared<const config::Config>(config::load_config_file(options_.config_path));
        } catch (const config::ConfigError& error) {
            metrics_.config_reloads.with({"failure"}).inc(control);
            return error.what();
        }
        // The hash of the very bytes just parsed (never a second read of the file).
        const std::string hash = next->source_hash;
        if (hash == current_hash_) {
            metrics_.config_reloads.with({"success"}).inc(control);
            metrics_.config_last_reload_success.with().set(control, unix_time_seconds());
            log_line(LogLevel::info, "reload: configuration unchanged");
            return {};
        }
        const config::Config& running = *current_;
        if (!(next->admin.address == running.admin.address))
            log_line(LogLevel::warning, "reload: [admin] address changes need a restart; keeping " +
                                            running.admin.address.to_string());
        if (next->runtime.workers != running.runtime.workers)
            log_line(LogLevel::warning, "reload: [runtime] workers changes need a restart");
        for (const std::string& warning : next->warnings) log_line(LogLevel::warning, warning);

        std::vector<std::vector<reactor::Fd>> sockets(worker_count_);
        try {
            for (unsigned worker = 0; worker < worker_count_; ++worker) {
                for (const config::Listener& listener : next->listeners) {
                    const bool kept = std::any_of(running.listeners.begin(), running.listeners.end(),
                        [&](const config::Listener& had) { return same_listener(had, listener); });
                    sockets[worker].push_back(kept ? reactor::Fd() : bind_listener(listener));
                }
            }
        } catch (const std::exception& error) {
            metrics_.config_reloads.with({"failure"}).inc(control);
            return error.what();
        }
        EndpointSets endpoint_sets;
        try {
            endpoint_sets = directory.follow(*next);
        } catch (const std::runtime_error& error) {
            metrics_.config_reloads.with({"failure"}).inc(control);
            return error.what();
        }
        auto snapshot = std::make_shared<const Snapshot>(next, metrics_, snapshot_.get());
        for (unsigned worker = 0; worker < worker_count_; ++worker) {
            WorkerSlot& slot = *workers[worker];
            // The reload carries the newest sets: older undelivered ones are superseded.
            slot.pending_endpoints.clear();
            WorkerMessage message;
            message.kind = WorkerMessage::Kind::reload;
            message.snapshot = snapshot;
            message.new_sockets = std::move(sockets[worker]);
            message.endpoint_sets = endpoint_sets;
            if (slot.pending_reload) carry_over_sockets(*slot.pending_reload, message);
            slot.pending_reload = std::move(message);
            // Never silently partial: a worker that cannot take it now gets it as soon as its
            // inbox has room (passgate_config_reload_pending_workers counts those waiting).
            if (!deliver_pending_reload(slot))
                log_line(LogLevel::warning,
                         "worker " + std::to_string(worker) + " inbox full: the new configuration "
                         "is delivered as soon as it has room (retried every 100 ms)");
        }
        metrics_.config_hash_info.remove({current_hash_});
        metrics_.config_hash_info.with({hash}).set(control, 1);
        metrics_.config_reloads.with({"success"}).inc(control);
        metrics_.config_last_reload_success.with().set(control, unix_time_seconds());
        current_ = std::move(next);
        current_hash_ = hash;
        snapshot_ = std::move(snapshot);
        return {};
    }

private:
    const AppOptions& options_;
    unsigned worker_count_;
    AppMetrics metrics_;
    std::shared_ptr<const config::Config> current_;
    std::string current_hash_;
    // The newest snapshot (the workers hold it too). After metrics_: a snapshot's destructor
    // updates a metric.
    std::shared_ptr<const Snapshot> snapshot_;
};

}  // namespace

int run_app(config::Config config_value, const AppOptions& options) {
    // splice(2) has no MSG_NOSIGNAL: a write to a reset peer must be an EPIPE, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    // Before any thread starts, so that every thread inherits the mask and only the signalfd
    // sees these.
    reactor::block_signals({SIGTERM, SIGINT, SIGHUP, SIGUSR1});
    // From here on no thread blocks on stderr: lines go through the log writer's bounded queue
    // (a stalled journal drops lines, counted, instead of freezing a worker).
    LogWriterScope log_writer(std::chrono::milliseconds(1000));

    auto config = std::make_shared<const config::Config>(std::move(config_value));
    const unsigned worker_count = options.workers_override.value_or(
        config->runtime.workers != 0 ? config->runtime.workers : reactor::usable_cpus());
    const WorkerBounds bounds = start_up_bounds(*config, worker_count);
    ControlPlane control_plane(options, config, worker_count);
    auto snapshot = control_plane.first_snapshot();

    // The access log is set up once at start (format and path changes need a restart); SIGHUP
    // and SIGUSR1 reopen its file for log rotation.
    std::unique_ptr<AccessLog> access_log;
    if (config->access_log.enabled) {
        AccessLogOptions log_options;
        log_options.destination = config->access_log.path;
        log_options.format = config->access_log.format;
        log_options.workers = worker_count;
        try {
            access_log = std::make_unique<AccessLog>(log_options);
        } catch (const std::system_error& error) {
            throw std::runtime_error("access_log.path " + config->access_log.path + ": " + error.what());
        }
        AccessLog* log = access_log.get();
        auto& lines = control_plane.metrics().registry.counter("passgate_access_log_lines_total",
            "Access log lines, by result (dropped: the worker's queue was full, in lines or in bytes).", {"result"});
        lines.with_callback({"written"}, [log] { return double(log->written()); });
        lines.with_callback({"dropped"}, [log] { return double(log->dropped()); });
        control_plane.metrics().registry.counter("passgate_access_log_write_errors_total",
            "Failed writes or reopens of the access log.").with_callback({}, [log] {
                return double(log->write_errors());
            });
    }

    // Bind everything before starting anything: a taken port is reported at once, by name.
    std::vector<std::vector<reactor::Fd>> listen_sockets(worker_count);
    for (unsigned worker = 0; worker < worker_count; ++worker)
        for (const config::Listener& listener : config->listeners)
            listen_sockets[worker].push_back(bind_listener(listener));
    reactor::Fd admin_socket;
    try {
        admin_socket = reactor::listen_tcp(config->admin.address.sockaddr_ptr(),
                                           config->admin.address.length,
                                           reactor::ListenOptions{.backlog = 64, .reuse_port = false});
    } catch (const std::system_error& error) {
        throw std::runtime_error("admin address " + config->admin.address.to_string() + ": " +
                                 error.what());
    }

    control_plane.metrics().registry.counter("passgate_log_lines_dropped_total",
        "Diagnostic log lines dropped: the queue to stderr was full (a stalled reader).")
        .with_callback({}, [] { return double(log_lines_dropped()); });

    std::vector<std::unique_ptr<WorkerSlot>> workers;
    for (unsigned index = 0; index < worker_count; ++index) workers.push_back(std::make_unique<WorkerSlot>());
    control_plane.add_worker_metrics(workers);

    // The control loop runs signals, reloads, the admin server, endpoint discovery and health
    // checks. Created here, before the workers, because they start with the endpoint sets.
    reactor::Loop control(reactor::RingOptions{.sq_entries = 64, .cq_entries = 1024});
    auto flush_endpoints = [&] {
        for (std::size_t index = 0; index < workers.size(); ++index) {
            WorkerSlot& slot = *workers[index];
            const bool was_pending = slot.pending_reload.has_value();
            // The reload first: endpoint updates may be for services only it brings.
            if (!deliver_pending_reload(slot)) continue;
            if (was_pending)
                log_line(LogLevel::info, "worker " + std::to_string(index) + " took the configuration "
                                             "reload that found its inbox full");
            if (!deliver_pending_command(slot)) continue;
            if (slot.pending_endpoints.empty()) continue;
            WorkerMessage message;
            message.kind = WorkerMessage::Kind::endpoints;
            for (auto& [name, set] : slot.pending_endpoints) message.endpoint_sets.push_back(set);
            if (slot.inbox.try_send(std::move(message))) slot.pending_endpoints.clear();
            // else: kept, and retried by the ticker below (the worker is busy, not lost).
        }
    };
    EndpointDirectory directory(control, control_plane.metrics(),
        [&](std::vector<std::shared_ptr<const EndpointSet>> sets) {
            for (auto& worker : workers)
                for (const auto& set : sets) worker->pending_endpoints[set->service] = set;
            flush_endpoints();
        });
    EndpointSets initial_sets;
    try {
        initial_sets = directory.follow(*config);
    } catch (const std::runtime_error& error) {
        throw std::runtime_error(std::string("endpoints: ") + error.what());
    }
    std::atomic<unsigned> workers_ready{0};
    std::atomic<bool> worker_failed{false};
    for (unsigned index = 0; index < worker_count; ++index) {
        WorkerSlot& slot = *workers[index];
        slot.thread = std::thread([&, index, snapshot, initial_sets,
                                   sockets = std::move(listen_sockets[index])]() mutable {
            if (reactor::pin_current_thread(index) < 0)
                log_line(LogLevel::warning, "worker " + std::to_string(index) +
                                                " runs unpinned: could not pin it to a CPU: " +
                                                std::strerror(errno));
            // "passgate-w0"...: a worker is identifiable in top -H, gdb and /proc/PID/task.
            const std::string thread_name = "passgate-w" + std::to_string(index);
            // Cosmetic: a failure (ERANGE cannot happen at 15 characters) changes nothing else.
            [[maybe_unused]] const int named =
                ::pthread_setname_np(::pthread_self(), thread_name.substr(0, 15).c_str());
            try {
                WorkerOptions worker_options;
                worker_options.index = index;
                worker_options.access_log = access_log.get();
                worker_options.max_connections = bounds.max_connections;
                worker_options.hello_memory_budget = bounds.hello_memory_budget;
                // Moved, not copied: the thread's copy would keep the first snapshot alive until exit.
                Worker worker(worker_options, std::move(snapshot), std::move(initial_sets),
                              std::move(sockets), slot.inbox, slot.stats);
                workers_ready.fetch_add(1);
                worker.run();
            } catch (const std::exception& error) {
                log_line(LogLevel::error, "worker " + std::to_string(index) + " failed: " + error.what());
                worker_failed = true;
                ::kill(::getpid(), SIGTERM);  // take the process down cleanly, with status 1
            }
            slot.finished = true;
        });
    }
    snapshot.reset();  // the workers hold it now
    initial_sets.clear();

    bool stopping = false;
    auto active_connections = [&] {
        std::uint64_t active = 0;
        for (const auto& worker : workers) active += worker->stats.active.get();
        return active;
    };
    // First SIGTERM/SIGINT: stop accepting, let connections finish up to shutdown_timeout.
    // A second one: close everything now.
    reactor::SignalWatcher signals(control, {SIGTERM, SIGINT, SIGHUP, SIGUSR1}, [&](int signal) {
        if (signal == SIGTERM || signal == SIGINT) {
            if (stopping) {
                log_line(LogLevel::warning, std::string("received ") + ::strsignal(signal) +
                                                " again, closing every connection now");
                send_to_all(workers, WorkerMessage::Kind::stop);
                return;
            }
            stopping = true;
            const reactor::Millis timeout = control_plane.config()->runtime.shutdown_timeout.count();
            sd_notify_state("STOPPING=1\nSTATUS=draining " + std::to_string(active_connections()) +
                            " connections");
            log_line(LogLevel::info, std::string("received ") + ::strsignal(signal) +
                                         ", draining " + std::to_string(active_connections()) +
                                         " connections for up to " + std::to_string(timeout) + " ms");
            send_to_all(workers, WorkerMessage::Kind::drain, timeout);
        } else if (signal == SIGUSR1) {
            if (access_log) access_log->reopen();
        } else if (signal == SIGHUP && !stopping) {
            if (access_log) access_log->reopen();
            sd_notify_state("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
            const std::string rejected = control_plane.reload(workers, directory);
            if (rejected.empty())
                log_line(LogLevel::info, "configuration reloaded from " + options.config_path);
            else
                log_line(LogLevel::error,
                         "configuration reload rejected, keeping the running one: " + rejected);
            sd_notify_state("READY=1");
        }
    });
    // Every 100 ms: finish once every worker has returned; every 5 s: a STATUS line.
    unsigned ticks = 0;
    Ticker ticker(control, 100, [&] {
        const bool all_finished = std::all_of(workers.begin(), workers.end(),
            [](const auto& worker) { return worker->finished.load(); });
        if (all_finished) return control.stop();
        flush_endpoints();
        // Once a second: free the metric series hidden for departed_series_retention that
        // nothing uses any more (departed endpoints, removed services, old config hashes).
        if (ticks % 10 == 0) {
            AppMetrics& metrics = control_plane.metrics();
            metrics.registry.free_removed(control_plane.config()->admin.departed_series_retention);
            metrics.metric_series.with().set(metrics.control_shard(),
                                             static_cast<double>(metrics.registry.series_count()));
        }
        if (++ticks % 50 == 0 || stopping)
            sd_notify_state(std::string("STATUS=") + (stopping ? "draining " : "serving ") +
                            std::to_string(active_connections()) + " connections");
    });

    // Ready once every worker runs and every DNS service has had its first answer (or failure).
    ReadinessNotifier readiness(control, [&] {
        return workers_ready.load() == worker_count && directory.settled();
    });
    AdminServer admin(control, std::move(admin_socket), [&](const HttpRequest& request) {
        HttpResponse response;
        if (request.path == "/healthz") {
            response.body = "ok\n";
        } else if (request.path == "/readyz") {
            const bool ready = !stopping && readiness.notified();
            response.status = ready ? 200 : 503;
            response.body = ready ? "ready\n" : "not ready\n";
        } else if (request.path == "/metrics") {
            const metrics::Format format =
                request.accept.find("application/openmetrics-text") != std::string::npos
                    ? metrics::Format::openmetrics
                    : metrics::Format::text;
            response.content_type = std::string(metrics::content_type(format));
            response.body = control_plane.metrics().registry.render(format);
        } else {
            response.status = 404;
            response.body = "not found\n";
        }
        return response;
    }, AdminServerOptions{.request_timeout = config->admin.request_timeout.count(),
                          .max_connections = config->admin.max_connections,
                          .max_connections_per_source = config->admin.max_connections_per_source});
    {
        auto& admin_closed = control_plane.metrics().registry.counter("passgate_admin_connections_closed_total",
            "Admin connections closed early: evicted (the oldest waiting one, to make room for a new "
            "connection), timeout (no request head, or response not taken, within request_timeout).",
            {"reason"});
        const AdminServer* server = &admin;
        admin_closed.with_callback({"evicted"}, [server] { return double(server->stats().evicted); });
        admin_closed.with_callback({"timeout"}, [server] { return double(server->stats().timed_out); });
    }

    log_line(LogLevel::info, "started " + std::to_string(worker_count) + " workers; config " +
                                 options.config_path + "; admin on " +
                                 config->admin.address.to_string());
    control.run();
    for (auto& worker : workers) worker->thread.join();
    if (access_log) access_log->stop();  // after the workers: their last lines are queued
    log_line(LogLevel::info, "stopped");
    return worker_failed ? 1 : 0;
}

}  // namespace passgate
