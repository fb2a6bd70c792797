#include "src/app.h"

#include "reactor/loop.h"
#include "reactor/signals.h"
#include "reactor/socket.h"
#include "reactor/threads.h"
#include "src/admin_server.h"
#include "src/log.h"
#include "src/sd_notify.h"
#include "src/snapshot.h"
#include "src/worker.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <functional>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace passgate {

namespace {

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

struct WorkerSlot {
    reactor::Channel<WorkerMessage> inbox{8};
    WorkerStats stats;
    std::thread thread;
};

reactor::Fd bind_listener(const config::Listener& listener) {
    try {
        return reactor::listen_tcp(listener.address.sockaddr_ptr(), listener.address.length);
    } catch (const std::system_error& error) {
        throw std::runtime_error("listener \"" + listener.name + "\" on " +
                                 listener.address.to_string() + ": " + error.what());
    }
}

std::uint64_t monotonic_usec() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000 +
           static_cast<std::uint64_t>(now.tv_nsec) / 1000;
}

bool same_listener(const config::Listener& a, const config::Listener& b) {
    return a.name == b.name && a.address == b.address;
}

// Returns an empty string on success (and updates `current`), else why the reload was rejected.
std::string reload_config(const std::string& path, const config::Config& running,
                          unsigned worker_count, std::vector<std::unique_ptr<WorkerSlot>>& workers,
                          std::shared_ptr<const config::Config>& current) {
    std::shared_ptr<const config::Config> next;
    try {
        next = std::make_shared<const config::Config>(config::load_config_file(path));
    } catch (const config::ConfigError& error) {
        return error.what();
    }
    if (!(next->admin.address == running.admin.address))
        log_line(LogLevel::warning, "reload: [admin] address changes need a restart; keeping " +
                                        running.admin.address.to_string());
    if (next->runtime.workers != running.runtime.workers)
        log_line(LogLevel::warning, "reload: [runtime] workers changes need a restart");
    for (const std::string& warning : next->warnings) log_line(LogLevel::warning, warning);

    std::vector<std::vector<reactor::Fd>> sockets(worker_count);
    try {
        for (unsigned worker = 0; worker < worker_count; ++worker) {
            for (const config::Listener& listener : next->listeners) {
                const bool kept = std::any_of(running.listeners.begin(), running.listeners.end(),
                    [&](const config::Listener& had) { return same_listener(had, listener); });
                sockets[worker].push_back(kept ? reactor::Fd() : bind_listener(listener));
            }
        }
    } catch (const std::exception& error) {
        return error.what();
    }
    auto snapshot = std::make_shared<const Snapshot>(next);
    for (unsigned worker = 0; worker < worker_count; ++worker) {
        WorkerMessage message{WorkerMessage::Kind::reload, snapshot, std::move(sockets[worker])};
        if (!workers[worker]->inbox.try_send(std::move(message)))
            log_line(LogLevel::error, "worker " + std::to_string(worker) +
                                          " inbox full: it keeps the previous configuration");
    }
    current = std::move(next);
    return {};
}

}  // namespace

int run_app(config::Config config_value, const AppOptions& options) {
    // splice(2) has no MSG_NOSIGNAL: a write to a reset peer must be an EPIPE, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    // Before any thread starts, so that every thread inherits the mask and only the signalfd
    // sees these.
    reactor::block_signals({SIGTERM, SIGINT, SIGHUP, SIGUSR1});

    auto config = std::make_shared<const config::Config>(std::move(config_value));
    auto snapshot = std::make_shared<const Snapshot>(config);
    const unsigned worker_count = options.workers_override.value_or(
        config->runtime.workers != 0 ? config->runtime.workers : reactor::usable_cpus());

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

    std::vector<std::unique_ptr<WorkerSlot>> workers;
    std::atomic<unsigned> workers_ready{0};
    std::atomic<bool> worker_failed{false};
    for (unsigned index = 0; index < worker_count; ++index) {
        workers.push_back(std::make_unique<WorkerSlot>());
        WorkerSlot& slot = *workers.back();
        slot.thread = std::thread([&, index, sockets = std::move(listen_sockets[index])]() mutable {
            reactor::pin_current_thread(index);
            try {
                WorkerOptions worker_options;
                worker_options.index = index;
                Worker worker(worker_options, snapshot, std::move(sockets), slot.inbox, slot.stats);
                workers_ready.fetch_add(1);
                worker.run();
            } catch (const std::exception& error) {
                log_line(LogLevel::error, "worker " + std::to_string(index) + " failed: " + error.what());
                worker_failed = true;
                ::kill(::getpid(), SIGTERM);  // take the process down cleanly, with status 1
            }
        });
    }

    reactor::Loop control(reactor::RingOptions{.sq_entries = 64, .cq_entries = 1024});
    bool stopping = false;
    std::shared_ptr<const config::Config> current = config;

    // SIGHUP: read and validate the new config here, off the workers' path. Invalid: nothing
    // changes. Valid: new listeners are bound first (a bind failure rejects the whole reload),
    // then every worker gets the new snapshot and switches between events.
    auto reload = [&] {
        sd_notify_state("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
        const std::string outcome = reload_config(options.config_path, *current, worker_count,
                                                  workers, current);
        log_line(outcome.empty() ? LogLevel::info : LogLevel::error,
                 outcome.empty() ? "configuration reloaded from " + options.config_path
                                 : "configuration reload rejected, keeping the running one: " + outcome);
        sd_notify_state("READY=1");
    };
    reactor::SignalWatcher signals(control, {SIGTERM, SIGINT, SIGHUP, SIGUSR1}, [&](int signal) {
        if (signal == SIGTERM || signal == SIGINT) {
            if (stopping) return;
            stopping = true;
            sd_notify_state("STOPPING=1");
            log_line(LogLevel::info, std::string("received ") + ::strsignal(signal) + ", stopping");
            for (auto& worker : workers)
                if (!worker->inbox.try_send(WorkerMessage{WorkerMessage::Kind::stop, nullptr, {}}))
                    log_line(LogLevel::error, "worker inbox full; stop message not delivered");
            control.stop();
        } else if (signal == SIGHUP) {
            if (!stopping) reload();
        }
    });

    ReadinessNotifier readiness(control, [&] { return workers_ready.load() == worker_count; });
    AdminServer admin(control, std::move(admin_socket), [&](const HttpRequest& request) {
        HttpResponse response;
        if (request.path == "/healthz") {
            response.body = "ok\n";
        } else if (request.path == "/readyz") {
            const bool ready = !stopping && readiness.notified();
            response.status = ready ? 200 : 503;
            response.body = ready ? "ready\n" : "not ready\n";
        } else if (request.path == "/metrics") {
            response.content_type = "text/plain; version=0.0.4; charset=utf-8";
            std::uint64_t accepted = 0, active = 0;
            for (const auto& worker : workers) {
                accepted += worker->stats.accepted.get();
                active += worker->stats.active.get();
            }
            response.body = "# TYPE passgate_accepted_total counter\npassgate_accepted_total " +
                            std::to_string(accepted) + "\n# TYPE passgate_active gauge\npassgate_active " +
                            std::to_string(active) + "\n";
        } else {
            response.status = 404;
            response.body = "not found\n";
        }
        return response;
    });

    log_line(LogLevel::info, "started " + std::to_string(worker_count) + " workers; config " +
                                 options.config_path + "; admin on " +
                                 config->admin.address.to_string());
    control.run();
    for (auto& worker : workers) worker->thread.join();
    log_line(LogLevel::info, "stopped");
    return worker_failed ? 1 : 0;
}

}  // namespace passgate
