#include "src/control/control_plane.h"

#include "src/gateway/configuration.h"

#include <malloc.h>

#include "metrics/process.h"
#include "reactor/datagram.h"
#include "reactor/socket.h"
#include "reactor/threads.h"
#include "src/control/admin_views.h"
#include "src/control/fd_limit.h"
#include "src/control/inherited_sockets.h"
#include "src/control/reload_plan.h"
#include "src/control/sd_notify.h"
#include "src/observe/log.h"
#include "src/observe/version.h"

#include <fcntl.h>
#include <poll.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace passgate {

namespace {

reactor::Fd bind_listener(const config::Listener& listener) {
    try {
        // QUIC: a UDP socket per worker in one SO_REUSEPORT group (the kernel hashes the 4-tuple).
        if (listener.protocol == config::ListenerProtocol::quic)
            return reactor::bind_udp(listener.address.sockaddr_ptr(), listener.address.length);
        // Accepted sockets inherit TCP_NODELAY: forwarded bytes are batched by the peers already,
        // no Nagle delay on top (the backend side sets it at connect).
        return reactor::listen_tcp(listener.address.sockaddr_ptr(), listener.address.length,
                                   reactor::ListenOptions{.no_delay = true});
    } catch (const std::system_error& error) {
        throw std::runtime_error("listener \"" + listener.name + "\" on " +
                                 listener.address.to_string() + ": " + error.what());
    }
}

// [[listener]] defer_accept, set on every socket of a TLS listener: bound here, passed by systemd
// or by the old process (whatever they had), and a kept listener's on each reload (the option
// belongs to the socket, which the workers' duplicates share).
void apply_defer_accept(const config::Listener& listener, const std::vector<reactor::Fd>& sockets) {
    if (listener.protocol != config::ListenerProtocol::tls) return;
    try {
        for (const reactor::Fd& socket : sockets) reactor::set_defer_accept(socket.get(), listener.defer_accept);
    } catch (const std::system_error& error) {
        throw std::runtime_error("listener \"" + listener.name + "\" on " + listener.address.to_string() +
                                 ": defer_accept: " + error.what());
    }
}

// [runtime] reuseport_cpu_steering: `group` holds a listener's sockets in the order they started
// listening, worker i's at i (workers are pinned to reactor::pinned_cpus in index order), so the
// group sends the connections whose SYN arrived on worker i's CPU to worker i.
void steer_by_cpu(const config::Listener& listener, const std::vector<reactor::Fd>& group) {
    const std::string where = "listener \"" + listener.name + "\" on " + listener.address.to_string();
    const std::vector<int> cpus = reactor::pinned_cpus(static_cast<unsigned>(group.size()));
    if (cpus.empty() || group.empty())
        throw std::runtime_error(where + ": reuseport_cpu_steering: cannot read this process's CPU affinity: " +
                                 std::strerror(errno));
    try {
        reactor::attach_reuseport_cpu_steering(group.front().get(), cpus);
    } catch (const std::system_error& error) {
        throw std::runtime_error(where + ": reuseport_cpu_steering: " + error.what());
    }
    std::string mapping;
    for (std::size_t worker = 0; worker < cpus.size(); ++worker)
        mapping += (worker == 0 ? "CPU " : ", CPU ") + std::to_string(cpus[worker]) + " -> worker " +
                   std::to_string(worker);
    log_line(LogLevel::info, where + ": reuseport CPU steering: " + mapping);
}

std::uint64_t monotonic_usec() {
    return static_cast<std::uint64_t>(reactor::monotonic_micros());
}

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
    bounds.pause_accept_at = config.runtime.pause_accepting_at.value_or(0);
    if (bounds.pause_accept_at > bounds.max_connections)
        log_line(LogLevel::warning, "[runtime] pause_accepting_at " + std::to_string(bounds.pause_accept_at) +
                                        " is above the connection cap per worker (" +
                                        std::to_string(bounds.max_connections) +
                                        "): connections are refused (worker_limit) before accepting pauses");
    return bounds;
}

bool same_listener(const config::Listener& a, const config::Listener& b) {
    // A protocol change is a new listener: a UDP socket is bound and the TCP one closed.
    return a.name == b.name && a.address == b.address && a.protocol == b.protocol;
}

reactor::Fd duplicate(int fd) {
    reactor::Fd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!copy) throw std::runtime_error(std::string("fcntl(F_DUPFD_CLOEXEC): ") + std::strerror(errno));
    return copy;
}

unsigned worker_count_of(const config::Config& config, const AppOptions& options) {
    return options.workers_override.value_or(config.runtime.workers != 0 ? config.runtime.workers
                                                                          : reactor::usable_cpus());
}

}  // namespace

ControlPlane::ControlPlane(const AppOptions& options, config::Config config)
    : options_(options),
      current_(std::make_shared<const config::Config>(std::move(config))),
      started_(current_),
      current_hash_(current_->source_hash),
      worker_count_(worker_count_of(*current_, options_)),
      bounds_(start_up_bounds(*current_, worker_count_)),
      metrics_(worker_count_),
      workers_(worker_count_),
      loop_(reactor::RingOptions{.sq_entries = 64, .cq_entries = 1024}),
      directory_(loop_, metrics_, [this](EndpointSets sets) { on_endpoints(std::move(sets)); }),
      hostnames_files_(loop_, metrics_.registry, metrics_.control_shard(), [this] { on_hostnames_files(); }),
      upgrade_parent_(options.upgrade_parent),
      serving_(options.upgrade_parent == nullptr),
      signals_(loop_, {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}, [this](int signal) { on_signal(signal); }) {
    if (upgrade_parent_ != nullptr) upgraded_from_ = upgrade_parent_->parent();
    loaded_at_ = unix_time_seconds();
    register_metrics();
    try {
        hostnames_files_.commit(hostnames_files_.prepare(*current_), *current_);
    } catch (const std::runtime_error& error) {
        throw std::runtime_error(std::string("hostnames: ") + error.what());
    }
    initial_snapshot_ = make_snapshot(current_);
    snapshot_ = initial_snapshot_;
    open_access_log();
    bind_sockets();
    metrics_.registry.counter("passgate_log_lines_dropped_total",
        "Diagnostic log lines dropped: the queue to stderr was full (a stalled reader).")
        .with_callback({}, [] { return double(log_lines_dropped()); });
    register_worker_metrics();
    try {
        initial_sets_ = directory_.follow(*current_);
    } catch (const std::runtime_error& error) {
        throw std::runtime_error(std::string("endpoints: ") + error.what());
    }
    if (current_->gateway_api.watch) {
        base_ = current_;
        try {
            gateway_ = std::make_unique<gateway_api::GatewayController>(loop_, *current_, metrics_,
                                                                        [this] { on_gateway_objects(); });
        } catch (const std::runtime_error& error) {
            throw std::runtime_error(std::string("gateway_api: ") + error.what());
        }
    }
}

// The admin server and the directory go before the loop (members in reverse order); the
// workers have been joined by run(), or are stopped and joined by ~WorkerSet.
ControlPlane::~ControlPlane() = default;

void ControlPlane::register_metrics() {
    metrics::register_process_metrics(metrics_.registry);
    metrics_.config_last_reload_success.with().set(metrics_.control_shard(), unix_time_seconds());
    metrics_.config_hash_info.with({current_hash_}).set(metrics_.control_shard(), 1);
    upgrades_ = &metrics_.registry.counter("passgate_upgrades_total",
        "Binary upgrades (SIGUSR2, passgate upgrade) by result: success (the new process took over; "
        "a process started by an upgrade counts its own), failed (the new process exited or could not "
        "be started), timeout (not ready within upgrade_timeout: killed), refused (one was in progress, "
        "or this process was shutting down).", {"result"});
    for (const char* result : {"success", "failed", "timeout", "refused"}) upgrades_->with({result});
    metrics_.registry.gauge("passgate_draining",
        "1 from the first SIGTERM/SIGINT (or a binary upgrade's hand-over) on: /readyz answers 503; "
        "new connections are still accepted during [runtime] drain_delay.")
        .with_callback({}, [this] { return stopping_ ? 1.0 : 0.0; });
}

void ControlPlane::open_access_log() {
    const config::Config& config = *current_;
    if (!config.access_log.enabled) return;
    AccessLogOptions log_options;
    log_options.destination = config.access_log.path;
    log_options.format = config.access_log.format;
    log_options.workers = worker_count_;
    try {
        access_log_ = std::make_unique<AccessLog>(log_options);
    } catch (const std::system_error& error) {
        throw std::runtime_error("access_log.path " + config.access_log.path + ": " + error.what());
    }
    AccessLog* log = access_log_.get();
    auto& lines = metrics_.registry.counter("passgate_access_log_lines_total",
        "Access log lines, by result (dropped: the worker's queue was full, in lines or in bytes).", {"result"});
    lines.with_callback({"written"}, [log] { return double(log->written()); });
    lines.with_callback({"dropped"}, [log] { return double(log->dropped()); });
    metrics_.registry.counter("passgate_access_log_write_errors_total",
        "Failed writes or reopens of the access log.").with_callback({}, [log] {
            return double(log->write_errors());
        });
}

// Takes the sockets systemd or an upgrade's old process passed, and binds the rest, before
// starting anything: a taken port is reported at once, by name. A listener's sockets are spread
// over the workers; when there are fewer than workers, workers share them (each holds its own
// duplicate, so each owns what it closes).
void ControlPlane::bind_sockets() {
    const config::Config& config = *current_;
    const bool upgrade = upgrade_parent_ != nullptr;
    SocketAssignment inherited = assign_inherited_sockets(take_inherited_sockets(), config, upgrade);
    for (const std::string& note : inherited.notes) log_line(LogLevel::warning, "upgrade: " + note);
    initial_sockets_.resize(worker_count_);
    for (std::size_t index = 0; index < config.listeners.size(); ++index) {
        const config::Listener& listener = config.listeners[index];
        std::vector<reactor::Fd> sockets = std::move(inherited.listeners[index]);
        const bool steering = config.runtime.reuseport_cpu_steering;
        if (!sockets.empty()) {
            const std::string from = upgrade ? "the old process" : "systemd";
            log_line(LogLevel::info, "listener \"" + listener.name + "\": " + std::to_string(sockets.size()) +
                                         " listening socket(s) on " + listener.address.to_string() + " from " + from);
            // The old process bound its sockets in worker order; its group keeps that order. A
            // group of another size (or systemd's sockets) cannot be mapped to the workers.
            if (steering && upgrade && sockets.size() == worker_count_) {
                steer_by_cpu(listener, sockets);
            } else if (steering) {
                log_line(LogLevel::warning, "listener \"" + listener.name + "\": reuseport_cpu_steering not applied: " +
                                                std::to_string(sockets.size()) + " socket(s) from " + from + " for " +
                                                std::to_string(worker_count_) +
                                                " workers (it needs one socket per worker, bound in worker order)");
            } else {
                // Steering off: a program the old process attached must not go on steering.
                try {
                    reactor::detach_reuseport_program(sockets.front().get());
                } catch (const std::system_error& error) {
                    throw std::runtime_error("listener \"" + listener.name + "\": " + error.what());
                }
            }
        } else {
            for (unsigned worker = 0; worker < worker_count_; ++worker) sockets.push_back(bind_listener(listener));
            if (steering) steer_by_cpu(listener, sockets);
        }
        apply_defer_accept(listener, sockets);
        HeldListener held{.name = listener.name, .address = listener.address, .sockets = {}};
        for (const reactor::Fd& socket : sockets) held.sockets.push_back(duplicate(socket.get()));
        held_listeners_.push_back(std::move(held));
        const std::size_t count = sockets.size();
        if (count >= worker_count_) {
            for (std::size_t socket = 0; socket < count; ++socket)
                initial_sockets_[socket % worker_count_].push_back(
                    ListenerSocket{.listener = index, .fd = std::move(sockets[socket])});
        } else {
            for (unsigned worker = 0; worker < worker_count_; ++worker)
                initial_sockets_[worker].push_back(ListenerSocket{
                    .listener = index, .fd = duplicate(sockets[worker % count].get())});
        }
    }
    if (inherited.admin) {
        admin_socket_ = std::move(inherited.admin);
    } else {
        try {
            admin_socket_ = reactor::listen_tcp(config.admin.address.sockaddr_ptr(), config.admin.address.length,
                                                reactor::ListenOptions{.backlog = 64, .reuse_port = false});
        } catch (const std::system_error& error) {
            throw std::runtime_error("admin address " + config.admin.address.to_string() + ": " + error.what());
        }
    }
    held_admin_ = duplicate(admin_socket_.get());
}

void ControlPlane::register_worker_metrics() {
    auto& completions = metrics_.registry.counter("passgate_worker_loop_completions_total",
        "io_uring completions handled, by worker.", {"worker"});
    auto& submissions = metrics_.registry.counter("passgate_worker_loop_submissions_total",
        "io_uring submissions, by worker.", {"worker"});
    auto& accepted = metrics_.registry.counter("passgate_worker_accepted_total",
        "Connections accepted, by worker.", {"worker"});
    auto& accept_errors = metrics_.registry.counter("passgate_worker_accept_errors_total",
        "Failed accepts (out of descriptors or memory), by worker; accepting backs off.", {"worker"});
    auto& accept_pauses = metrics_.registry.counter("passgate_worker_accept_pauses_total",
        "Times a worker stopped accepting because it held pause_accept_at connections, by worker.", {"worker"});
    for (unsigned index = 0; index < workers_.size(); ++index) {
        const WorkerStats* stats = &workers_.stats(index);
        const std::string worker = std::to_string(index);
        completions.with_callback({worker}, [stats] { return double(stats->loop_completions.get()); });
        submissions.with_callback({worker}, [stats] { return double(stats->loop_submissions.get()); });
        accepted.with_callback({worker}, [stats] { return double(stats->accepted.get()); });
        accept_errors.with_callback({worker}, [stats] { return double(stats->accept_errors.get()); });
        accept_pauses.with_callback({worker}, [stats] { return double(stats->accept_pauses.get()); });
    }
    const WorkerSet* all = &workers_;
    metrics_.registry.gauge("passgate_config_reload_pending_workers",
        "Workers that have not yet received the last configuration reload (their inbox was "
        "full); retried every 100 ms.").with_callback({}, [all] { return double(all->pending_reloads()); });
    metrics_.pipes_in_use.with_callback({}, [all] {
        double sum = 0;
        for (unsigned index = 0; index < all->size(); ++index) sum += double(all->stats(index).pipes_in_use.get());
        return sum;
    });
    metrics_.registry.gauge("passgate_hello_memory_bytes",
        "Bytes of ClientHello buffers held before routing, summed over workers "
        "(bounded by [runtime] max_hello_memory).").with_callback({}, [all] {
            double sum = 0;
            for (unsigned index = 0; index < all->size(); ++index)
                sum += double(all->stats(index).hello_memory.get());
            return sum;
        });
    metrics_.pipe_pool_size.with_callback({}, [all] {
        double sum = 0;
        for (unsigned index = 0; index < all->size(); ++index) sum += double(all->stats(index).pipes_idle.get());
        return sum;
    });
}

void ControlPlane::register_admin_metrics() {
    auto& admin_closed = metrics_.registry.counter("passgate_admin_connections_closed_total",
        "Admin connections closed early: evicted (the oldest waiting one, to make room for a new "
        "connection), timeout (no request head, or response not taken, within request_timeout).",
        {"reason"});
    const AdminServer* server = &*admin_;
    admin_closed.with_callback({"evicted"}, [server] { return double(server->stats().evicted); });
    admin_closed.with_callback({"timeout"}, [server] { return double(server->stats().timed_out); });
}

int ControlPlane::run() {
    WorkerOptions worker_options;
    worker_options.access_log = access_log_.get();
    worker_options.max_connections = bounds_.max_connections;
    worker_options.pause_accept_at = bounds_.pause_accept_at;
    worker_options.max_quic_flows = started_->runtime.max_quic_flows_per_worker;
    worker_options.hello_memory_budget = bounds_.hello_memory_budget;
    // An upgrade's new process holds its sockets but accepts only once the old one hands over.
    worker_options.accepting = serving_;
    // The snapshot is moved: the workers hold it now. A worker that fails takes the process down
    // cleanly, with status 1.
    if (std::any_of(started_->listeners.begin(), started_->listeners.end(), [](const config::Listener& listener) {
            return listener.protocol == config::ListenerProtocol::quic;
        }))
        workers_.enable_quic_handoff();
    workers_.start(worker_options, std::move(initial_snapshot_), std::move(initial_sets_), std::move(initial_sockets_),
                   [](unsigned) { ::kill(::getpid(), SIGTERM); });
    initial_sets_.clear();

    loop_.arm_timer_after(ticker_, 100);
    // Ready once every worker runs and every DNS service has had its first answer (or failure).
    loop_.arm_timer_after(readiness_, 0);
    const config::Config& config = *current_;
    if (serving_) start_admin_server();

    log_line(LogLevel::info, "started " + std::to_string(worker_count_) + " workers; config " + options_.config_path +
                                 "; admin on " + config.admin.address.to_string() +
                                 (serving_ ? std::string() : "; waiting for the old process (pid " +
                                                                 std::to_string(upgraded_from_) + ") to hand over"));
    loop_.run();
    workers_.join();
    if (access_log_) access_log_->stop();  // after the workers: their last lines are queued
    log_line(LogLevel::info, "stopped");
    return workers_.failed() ? 1 : 0;
}

void ControlPlane::start_admin_server() {
    const config::Config& config = *current_;
    admin_.emplace(loop_, std::move(admin_socket_),
                   [this](const AdminRequest& request) { return on_admin_request(request); },
                   AdminServerOptions{.request_timeout = config.admin.request_timeout.count(),
                                      .max_connections = config.admin.max_connections,
                                      .max_connections_per_source = config.admin.max_connections_per_source});
    register_admin_metrics();
}

void ControlPlane::on_signal(int signal) {
    if (signal == SIGTERM || signal == SIGINT) {
        on_shutdown_signal(signal);
    } else if (signal == SIGUSR1) {
        if (access_log_) access_log_->reopen();
    } else if (signal == SIGHUP && !stopping_) {
        on_reload_signal();
    } else if (signal == SIGHUP) {
        // The process is going away: a new config would serve at most the rest of drain_delay,
        // and a rejected one could not be fixed in time. Only the log-rotation part applies.
        if (access_log_) access_log_->reopen();
        log_line(LogLevel::warning, "received SIGHUP while shutting down: configuration not reloaded "
                                    "(access log reopened)");
    } else if (signal == SIGUSR2) {
        const std::string refused = start_upgrade();
        if (!refused.empty()) log_line(LogLevel::error, "upgrade refused (SIGUSR2): " + refused);
    }
}

// First SIGTERM/SIGINT: /readyz says 503 at once; the listeners go on accepting for
// [runtime] drain_delay (a router withdrawing this node still sends it flows meanwhile), then
// stop, and connections may finish up to shutdown_timeout. A second one: close everything now.
void ControlPlane::on_shutdown_signal(int signal) {
    if (stopping_) {
        log_line(LogLevel::warning, std::string("received ") + ::strsignal(signal) +
                                        " again, closing every connection now");
        if (delaying_drain_) {
            delaying_drain_ = false;
            loop_.cancel_timer(drain_delay_timer_);
        }
        workers_.send_to_all(StopMessage{});
        return;
    }
    stopping_ = true;
    if (upgrade_child_) fail_upgrade("failed", "shutting down (" + std::string(::strsignal(signal)) + ")");
    drain_delay_ = current_->runtime.drain_delay.count();
    if (drain_delay_ <= 0) return stop_accepting(std::string("received ") + ::strsignal(signal));
    delaying_drain_ = true;
    drain_delay_end_ = loop_.now() + drain_delay_;
    if (!handed_over_)
        sd_notify_state(std::string("STOPPING=1\nSTATUS=draining: /readyz answers 503, accepting new connections for ") +
                        std::to_string(drain_delay_) + " ms (drain_delay); " +
                        std::to_string(workers_.active_connections()) + " connections");
    log_line(LogLevel::info, std::string("received ") + ::strsignal(signal) +
                                 ", drain started: /readyz answers 503; accepting new connections for " +
                                 std::to_string(drain_delay_) + " ms (drain_delay), then draining for up to " +
                                 std::to_string(current_->runtime.shutdown_timeout.count()) + " ms");
    loop_.arm_timer_after(drain_delay_timer_, drain_delay_);
}

void ControlPlane::on_drain_delay() {
    if (!delaying_drain_) return;
    delaying_drain_ = false;
    stop_accepting(std::string("drain_delay (") + std::to_string(drain_delay_) + " ms) over: stopped accepting");
}

void ControlPlane::stop_accepting(const std::string& why) {
    held_listeners_.clear();  // the workers' sockets are the last ones: closing them resets the backlog
    held_admin_.reset();
    const reactor::Millis timeout = current_->runtime.shutdown_timeout.count();
    // STOPPING=1 once: at the signal (with a drain_delay it was said then).
    if (!handed_over_)
        sd_notify_state(std::string(drain_delay_ > 0 ? "" : "STOPPING=1\n") + "STATUS=draining " +
                        std::to_string(workers_.active_connections()) + " connections");
    log_line(LogLevel::info, why + ", draining " + std::to_string(workers_.active_connections()) +
                                 " connections for up to " + std::to_string(timeout) + " ms");
    workers_.send_to_all(DrainMessage{.timeout = timeout});
}

void ControlPlane::on_reload_signal() {
    if (access_log_) access_log_->reopen();
    sd_notify_state("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
    const std::string rejected = reload();
    if (rejected.empty())
        log_line(LogLevel::info, "configuration reloaded from " + options_.config_path);
    else
        log_line(LogLevel::error, "configuration reload rejected, keeping the running one: " + rejected);
    sd_notify_state("READY=1");
}

// Reads the config file (and the manifests) again and installs the result.
// In watch mode the file gives the TOML's part, merged with the objects held now.
std::string ControlPlane::reload() {
    std::shared_ptr<const config::Config> next;
    try {
        next = std::make_shared<const config::Config>(gateway_api::load_configuration(options_.config_path));
        if (next->gateway_api.watch != (gateway_ != nullptr) ||
            (gateway_ && !(config::same_settings(next->gateway_api, base_->gateway_api) &&
                           config::same_settings(next->kubernetes, base_->kubernetes))))
            throw config::ConfigError(next->source + ":" + std::to_string(next->gateway_api.line) +
                                      ": gateway_api: changes to [gateway_api] or to [kubernetes] with watch = true "
                                      "need a restart");
        if (gateway_) {
            auto base = next;
            if (gateway_->synced()) next = std::make_shared<const config::Config>(gateway_->merged(*base));
            base_ = std::move(base);
        }
    } catch (const config::ConfigError& error) {
        metrics_.config_reloads.with({"failure"}).inc(metrics_.control_shard());
        return error.what();
    }
    const std::string rejected = install(std::move(next));
    if (rejected.empty() && gateway_ && gateway_->synced()) gateway_->installed();
    return rejected;
}

// The watch's objects changed: the TOML's config merged with them, installed like a reload.
void ControlPlane::on_gateway_objects() {
    if (stopping_) return;
    std::shared_ptr<const config::Config> next;
    try {
        next = std::make_shared<const config::Config>(gateway_->merged(*base_));
    } catch (const config::ConfigError& error) {
        metrics_.config_reloads.with({"failure"}).inc(metrics_.control_shard());
        log_line(LogLevel::error, std::string("gateway_api: objects not applied, keeping the running configuration: ") +
                                      error.what());
        return;
    }
    // Nothing that passgate serves changed (a status write, an unrelated Service): no reinstall.
    if (next->source_hash == current_hash_) return gateway_->installed();
    const std::string rejected = install(std::move(next));
    if (!rejected.empty()) {
        log_line(LogLevel::error, "gateway_api: objects not applied, keeping the running configuration: " + rejected);
        return;
    }
    gateway_->installed();
}

// New listeners are bound before anything is handed over, so a bind failure rejects the whole
// change.
std::string ControlPlane::install(std::shared_ptr<const config::Config> next) {
    const std::size_t control = metrics_.control_shard();
    // The hash of the very bytes just parsed (never a second read of the file).
    const std::string hash = next->source_hash;
    if (hash == current_hash_) {
        metrics_.config_reloads.with({"success"}).inc(control);
        metrics_.config_last_reload_success.with().set(control, unix_time_seconds());
        log_line(LogLevel::info, "reload: configuration unchanged");
        return {};
    }
    const config::Config& running = *current_;
    // Compared with the config the process started with: an earlier reload that changed one of
    // these did not apply it either. Logged and counted once the reload is installed.
    const std::vector<RestartRequired> restart_needed = restart_required(*started_, *next);
    for (const std::string& warning : next->warnings) log_line(LogLevel::warning, warning);

    std::vector<std::vector<reactor::Fd>> sockets(worker_count_);
    // Duplicates of the freshly bound sockets, held for an upgrade (per listener of `next`).
    std::vector<std::vector<reactor::Fd>> bound(next->listeners.size());
    try {
        for (std::size_t index = 0; index < next->listeners.size(); ++index) {
            const config::Listener& listener = next->listeners[index];
            const bool kept = std::any_of(running.listeners.begin(), running.listeners.end(),
                [&](const config::Listener& had) { return same_listener(had, listener); });
            for (unsigned worker = 0; worker < worker_count_; ++worker) {
                sockets[worker].push_back(kept ? reactor::Fd() : bind_listener(listener));
                if (!kept) bound[index].push_back(duplicate(sockets[worker].back().get()));
            }
            apply_defer_accept(listener, bound[index]);
            // A restart-only key: the workers were pinned, and the groups set up, at start.
            if (!kept && started_->runtime.reuseport_cpu_steering) steer_by_cpu(listener, bound[index]);
        }
    } catch (const std::exception& error) {
        metrics_.config_reloads.with({"failure"}).inc(control);
        return error.what();
    }
    std::unique_ptr<HostnamesFiles::Prepared> hostnames;
    try {
        hostnames = hostnames_files_.prepare(*next);
    } catch (const std::runtime_error& error) {
        metrics_.config_reloads.with({"failure"}).inc(control);
        return error.what();
    }
    EndpointSets endpoint_sets;
    try {
        endpoint_sets = directory_.follow(*next);
    } catch (const std::runtime_error& error) {
        metrics_.config_reloads.with({"failure"}).inc(control);
        return error.what();
    }
    // The held sockets follow: kept listeners keep theirs, new ones hold the fresh duplicates,
    // removed ones close. (None are held once this process stopped accepting.)
    std::vector<HeldListener> held;
    for (std::size_t index = 0; index < next->listeners.size() && !stopping_; ++index) {
        const config::Listener& listener = next->listeners[index];
        HeldListener holding{.name = listener.name, .address = listener.address, .sockets = std::move(bound[index])};
        const bool kept = holding.sockets.empty();
        if (kept)
            for (HeldListener& had : held_listeners_)
                if (had.name == listener.name && had.address == listener.address) holding.sockets = std::move(had.sockets);
        // A kept listener's defer_accept changes here, where nothing can reject the reload any more
        // (a rejected reload leaves the running sockets as they were). A kernel that refused it
        // leaves the socket as it was: said, not fatal.
        if (kept) {
            try {
                apply_defer_accept(listener, holding.sockets);
            } catch (const std::runtime_error& error) {
                log_line(LogLevel::warning, std::string("reload: ") + error.what());
            }
        }
        held.push_back(std::move(holding));
    }
    held_listeners_ = std::move(held);
    hostnames_files_.commit(std::move(hostnames), *next);
    auto snapshot = make_snapshot(next);
    for (unsigned worker = 0; worker < worker_count_; ++worker)
        workers_.send_reload(worker, ReloadMessage{.snapshot = snapshot,
                                                   .new_sockets = std::move(sockets[worker]),
                                                   .endpoint_sets = endpoint_sets});
    metrics_.config_hash_info.remove({current_hash_});
    metrics_.config_hash_info.with({hash}).set(control, 1);
    metrics_.config_reloads.with({"success"}).inc(control);
    metrics_.config_last_reload_success.with().set(control, unix_time_seconds());
    for (const RestartRequired& change : restart_needed) {
        log_line(LogLevel::warning, "reload: " + describe_restart_warning(change));
        metrics_.config_reload_restart_required.with({change.key}).inc(control);
    }
    loaded_at_ = unix_time_seconds();
    current_ = std::move(next);
    current_hash_ = hash;
    snapshot_ = snapshot;
    return {};
}

std::shared_ptr<const Snapshot> ControlPlane::make_snapshot(std::shared_ptr<const config::Config> config) {
    const HostnameFiles files = hostnames_files_.current(*config);
    auto snapshot = std::make_shared<const Snapshot>(std::move(config), metrics_, snapshot_.get(), &files);
    // Names claimed twice with a file involved, as --check reports them (bounded per listener).
    for (const ListenerPlan& plan : snapshot->listeners()) {
        for (const std::string& warning : plan.routes.shadowed()) log_line(LogLevel::warning, warning);
        if (plan.routes.shadowed_count() > plan.routes.shadowed().size())
            log_line(LogLevel::warning, "listener \"" + plan.listener->name + "\": " +
                                            std::to_string(plan.routes.shadowed_count() - plan.routes.shadowed().size()) +
                                            " more shadowed hostnames not listed");
    }
    return snapshot;
}

// A hostnames file changed: the same config, new route tables, published like a reload's
// snapshot (every listener keeps its socket; connections keep the snapshot they started with).
void ControlPlane::on_hostnames_files() {
    if (stopping_) return;
    auto snapshot = make_snapshot(current_);
    EndpointSets endpoint_sets;
    try {
        // The same config again: every service keeps its source; this returns the current sets.
        endpoint_sets = directory_.follow(*current_);
    } catch (const std::runtime_error& error) {
        log_line(LogLevel::error, std::string("hostnames: new route tables not published: ") + error.what());
        return;
    }
    for (unsigned worker = 0; worker < worker_count_; ++worker)
        workers_.send_reload(worker, ReloadMessage{.snapshot = snapshot, .new_sockets = {}, .endpoint_sets = endpoint_sets});
    snapshot_ = std::move(snapshot);
}

// Discovery or health changed some services' endpoints: every worker gets the latest sets.
void ControlPlane::on_endpoints(EndpointSets sets) {
    workers_.queue_endpoints(sets);
    workers_.flush();
}

// Every 100 ms: finish once every worker has returned; retry what found an inbox full; every
// 5 s: a STATUS line.
void ControlPlane::on_tick() {
    loop_.arm_timer_after(ticker_, 100);
    if (workers_.all_finished()) return loop_.stop();
    workers_.flush();
    // Once a second: free the metric series hidden for departed_series_retention that nothing
    // uses any more (departed endpoints, removed services, old config hashes).
    if (ticks_ % 10 == 0) {
        // What the series held goes back to the system, not only to malloc's free lists (as
        // HAProxy trims after freeing its pools): after endpoint churn RSS comes back down.
        if (metrics_.registry.free_removed(current_->admin.departed_series_retention) > 0) ::malloc_trim(0);
        metrics_.metric_series.with().set(metrics_.control_shard(), static_cast<double>(metrics_.registry.series_count()));
    }
    // Once handed over, this process is no longer the service's main process: systemd would
    // refuse (and log) its notifications.
    if ((++ticks_ % 50 == 0 || stopping_) && !handed_over_) {
        std::string status = stopping_ ? "STATUS=draining " : "STATUS=serving ";
        if (delaying_drain_)
            status += std::string("(accepting for ") +
                      std::to_string(std::max<reactor::Millis>(0, drain_delay_end_ - loop_.now())) +
                      " ms more, drain_delay) ";
        sd_notify_state(status + std::to_string(workers_.active_connections()) + " connections");
    }
}

void ControlPlane::on_readiness() {
    // In watch mode, ready once the Gateway API objects are listed and installed as well.
    if (!(workers_.all_ready() && directory_.settled() && (!gateway_ || gateway_->applied())))
        return loop_.arm_timer_after(readiness_, 5);
    notified_ready_ = true;
    if (!serving_) {
        // An upgrade's new process: the old one hands over (stops accepting, says go) first.
        log_line(LogLevel::info, "ready; asking the old process (pid " + std::to_string(upgraded_from_) +
                                     ") to hand over");
        if (!upgrade_parent_->send_ready(version())) {
            log_line(LogLevel::warning, std::string("upgrade: the old process cannot be told (") + std::strerror(errno) +
                                            "): serving now");
            return start_serving();
        }
        parent_channel_watch_.poll(upgrade_parent_->channel(), POLLIN, true);
        return;
    }
    log_line(LogLevel::info, "ready");
    if (!sd_notify_state("READY=1\nSTATUS=serving"))
        log_line(LogLevel::warning, std::string("sd_notify READY=1 failed: ") + std::strerror(errno));
}

// GET /config, /listeners, /endpoints: JSON, read-only.
std::optional<AdminResponse> ControlPlane::admin_view(const AdminRequest& request) const {
    if (request.path != "/config" && request.path != "/listeners" && request.path != "/endpoints") return std::nullopt;
    AdminResponse response;
    if (request.method != "GET") {
        response.status = 405;
        response.allow = "GET";
        response.body = "only GET\n";
        return response;
    }
    nlohmann::ordered_json view;
    if (request.path == "/config") {
        view = config_view(*current_, loaded_at_);
    } else if (request.path == "/listeners") {
        view = listeners_view(*snapshot_, worker_count_, bounds_.max_connections);
    } else {
        std::vector<ServiceEndpoints> services;
        for (const config::Service& service : current_->services) {
            EndpointDirectory::View state = directory_.view(service.name);
            services.push_back(ServiceEndpoints{.service = &service, .set = std::move(state.set),
                                                .last_update = state.last_update});
        }
        view = endpoints_view(services, worker_count_, reactor::monotonic_millis());
    }
    response.content_type = "application/json";
    // Replace, never throw, on bytes that are not UTF-8 (a name from a Gateway API manifest).
    response.body = view.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    return response;
}

AdminResponse ControlPlane::on_admin_request(const AdminRequest& request) {
    if (std::optional<AdminResponse> view = admin_view(request)) return *view;
    AdminResponse response;
    if (request.method != "GET" && request.method != "HEAD" && request.method != "POST") {
        response.status = 405;
        response.allow = request.path == "/upgrade" ? "GET, HEAD, POST" : "GET, HEAD";
        response.body = "only GET (and POST /upgrade)\n";
    } else if (request.path == "/healthz") {
        response.body = "ok\n";
    } else if (request.path == "/readyz") {
        const bool ready = !stopping_ && notified_ready_;
        response.status = ready ? 200 : 503;
        // "draining" from the first SIGTERM on, also while drain_delay still accepts: a routing
        // daemon withdraws this node on it (config/README.md, "Running in a fleet").
        response.body = ready ? "ready\n" : stopping_ ? "draining\n" : "not ready\n";
    } else if (request.path == "/upgrade") {
        if (request.method == "POST") {
            if (!request.peer_loopback) {
                response.status = 403;
                response.body = "upgrade: only from a loopback address\n";
                return response;
            }
            const std::string refused = start_upgrade();
            response.status = refused.empty() ? 202 : 409;
            response.body = refused.empty() ? "upgrade started: new process " + std::to_string(last_upgrade_pid_) + "\n"
                                            : "upgrade refused: " + refused + "\n";
            if (!refused.empty()) log_line(LogLevel::error, "upgrade refused (POST /upgrade): " + refused);
            return response;
        }
        response.body = upgrade_status();
    } else if (request.method != "GET" && request.method != "HEAD") {
        response.status = 405;
        response.body = "only GET (and POST /upgrade)\n";
    } else if (request.path == "/metrics") {
        const metrics::Format format = request.accept.find("application/openmetrics-text") != std::string::npos
                                           ? metrics::Format::openmetrics
                                           : metrics::Format::text;
        response.content_type = std::string(metrics::content_type(format));
        response.body = metrics_.registry.render(format);
    } else {
        response.status = 404;
        response.body = "not found\n";
    }
    return response;
}

}  // namespace passgate
