#pragma once
// The control thread (the main thread): owns the configuration in use, the metrics, the access
// log, the workers (a WorkerSet), endpoint discovery and the admin server, and runs signals,
// reloads, readiness and the admin HTTP on its own loop. It never touches a client connection:
// workers get what they need as messages (WorkerMessage) and read-only snapshots.

#include "config/config.h"
#include "reactor/fd.h"
#include "reactor/loop.h"
#include "reactor/signals.h"
#include "reactor/timer.h"
#include "src/control/admin_server.h"
#include "src/control/app.h"
#include "src/control/upgrade.h"
#include "src/discovery/endpoint_directory.h"
#include "src/gateway/gateway_controller.h"
#include "src/observe/access_log.h"
#include "src/observe/app_metrics.h"
#include "src/proxy/worker_set.h"
#include "src/discovery/hostnames_files.h"
#include "src/routing/snapshot.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace passgate {

// What every worker may hold: connections, and bytes of hellos not yet routed.
struct WorkerBounds {
    std::uint32_t max_connections = 0;
    std::uint64_t hello_memory_budget = 0;
    std::uint32_t pause_accept_at = 0;  // [runtime] pause_accepting_at; 0: never
};

class ControlPlane {
public:
    // Sets everything up without starting a thread: raises the descriptor limit, takes the
    // listening sockets passed by systemd or by an upgrade's old process and binds the other
    // listeners and the admin address (a taken port is reported at once, by name), opens the
    // access log and starts following the endpoint sources. Throws std::runtime_error on failure.
    ControlPlane(const AppOptions& options, config::Config config);
    ControlPlane(const ControlPlane&) = delete;
    ControlPlane& operator=(const ControlPlane&) = delete;
    ~ControlPlane();

    // Starts the workers and runs the control loop until every worker has returned (after
    // SIGTERM/SIGINT). Returns the process exit status: 1 when a worker failed.
    int run();

private:
    void register_metrics();
    void register_worker_metrics();
    void register_admin_metrics();
    void open_access_log();
    void bind_sockets();

    // Handlers, all on the control loop.
    void on_signal(int signal);
    void on_shutdown_signal(int signal);
    void on_drain_delay();  // [runtime] drain_delay after the first SIGTERM/SIGINT ran out
    // Closes the held sockets and tells the workers to drain; logs `why` and the drain.
    void stop_accepting(const std::string& why);
    void on_reload_signal();
    // Binary upgrade, old process's side (src/control/upgrade.h): starts the new binary with the
    // sockets. "" when started, else why it was refused.
    std::string start_upgrade();
    void on_upgrade_channel(int result);  // the new process wrote (ready, failed) or is gone
    void on_upgrade_exit(int result);     // its pidfd: it exited before taking over
    void on_upgrade_deadline();           // upgrade_timeout ran out
    void hand_over(const std::string& version);
    void fail_upgrade(const std::string& result, const std::string& reason);
    // New process's side: the old one said go (or is gone): accept, serve the admin socket.
    void on_parent_channel(int result);
    void start_serving();
    std::string upgrade_status() const;  // GET /upgrade
    void start_admin_server();
    // Reloads the config file. Returns an empty string on success, else why the reload was
    // rejected (nothing changed then).
    std::string reload();
    // Installs `next` (a reload's, or the Gateway API watch's): binds its new listeners, follows
    // its services, hands the workers a new snapshot. "" on success, else why nothing changed.
    std::string install(std::shared_ptr<const config::Config> next);
    void on_endpoints(EndpointSets sets);
    // A hostnames_file has a new good version: the current config's snapshot rebuilt with it.
    void on_hostnames_files();
    // A snapshot of `config` with the current hostnames files; logs what they shadow.
    std::shared_ptr<const Snapshot> make_snapshot(std::shared_ptr<const config::Config> config);
    // [gateway_api] watch: the objects changed (or were listed for the first time).
    void on_gateway_objects();
    void on_tick();       // every 100 ms
    void on_readiness();  // polls until every worker is up, then READY=1 once (or "ready" to the old process)
    AdminResponse on_admin_request(const AdminRequest& request);
    std::optional<AdminResponse> admin_view(const AdminRequest& request) const;  // nullopt: not a view's path

    AppOptions options_;
    std::shared_ptr<const config::Config> current_;  // the config in use
    // The config the process started with: what it read once (workers, access log, admin
    // server) is still as there; a reload that changes it warns (src/control/reload_plan.h).
    std::shared_ptr<const config::Config> started_;
    std::string current_hash_;
    double loaded_at_ = 0;  // unix seconds: when current_ was installed (GET /config)
    unsigned worker_count_;
    WorkerBounds bounds_;
    AppMetrics metrics_;
    // The access log is set up once at start (format and path changes need a restart); SIGHUP
    // and SIGUSR1 reopen its file for log rotation.
    std::unique_ptr<AccessLog> access_log_;
    // Until run() hands them to the workers: the first snapshot, the listening sockets (per
    // worker, per listener) and the first endpoint sets.
    std::shared_ptr<const Snapshot> initial_snapshot_;
    // The newest snapshot (the workers hold it too): a reload builds the next one from it, so
    // listeners and routes that keep their names keep their admission counters. After metrics_:
    // a snapshot's destructor updates a metric.
    std::shared_ptr<const Snapshot> snapshot_;
    std::vector<std::vector<ListenerSocket>> initial_sockets_;
    EndpointSets initial_sets_;
    reactor::Fd admin_socket_;  // until the admin server takes it
    // A duplicate of every listening socket (the workers hold the others) and of the admin socket,
    // to pass to an upgrade's new process. Closed when this process stops accepting.
    struct HeldListener {
        std::string name;
        config::Address address;
        std::vector<reactor::Fd> sockets;  // the distinct sockets (one per worker when bound here)
    };
    std::vector<HeldListener> held_listeners_;
    reactor::Fd held_admin_;
    // After a hand-over: this process's end of the upgrade's QUIC forwarding channel, read by the
    // workers (declared before them: it stays open until they are gone).
    reactor::Fd upgrade_quic_forward_;
    WorkerSet workers_;
    // The control loop: signals, reloads, the admin server, endpoint discovery and health checks.
    reactor::Loop loop_;
    EndpointDirectory directory_;
    // The routes' hostnames files: a new good version makes a new snapshot (on_hostnames_files).
    HostnamesFiles hostnames_files_;
    // [gateway_api] watch = true only: the TOML's own config (the file as last loaded), which
    // every change of the objects is merged into, and the watch with its status writer.
    std::shared_ptr<const config::Config> base_;
    std::unique_ptr<gateway_api::GatewayController> gateway_;
    bool stopping_ = false;   // a first SIGTERM/SIGINT came, or an upgrade handed over: draining
    // From the first SIGTERM/SIGINT until [runtime] drain_delay ran out: /readyz says 503 but the
    // workers still accept. The delay (the value in use at the signal) and when it ends.
    bool delaying_drain_ = false;
    reactor::Millis drain_delay_ = 0;
    reactor::Millis drain_delay_end_ = 0;
    bool notified_ready_ = false;
    // Binary upgrade. Old process: the new one until it took over or failed, and the last
    // attempt's outcome. New process: the channel to the old one until it said go.
    std::unique_ptr<UpgradeChild> upgrade_child_;
    reactor::Millis upgrade_started_ = 0;
    std::string upgrade_failure_;  // what the new process wrote before exiting
    pid_t last_upgrade_pid_ = 0;
    std::string last_upgrade_result_;
    std::string last_upgrade_reason_;
    bool handed_over_ = false;
    UpgradeParent* upgrade_parent_ = nullptr;  // owned by main; nullptr unless started by an upgrade
    pid_t upgraded_from_ = 0;
    bool serving_ = false;  // accepting: at once, or for an upgrade's new process once the old said go
    metrics::CounterFamily* upgrades_ = nullptr;  // passgate_upgrades_total{result}
    unsigned ticks_ = 0;
    reactor::SignalWatcher signals_;
    reactor::MemberTimer<ControlPlane, &ControlPlane::on_tick> ticker_{*this};
    reactor::MemberTimer<ControlPlane, &ControlPlane::on_readiness> readiness_{*this};
    reactor::MemberTimer<ControlPlane, &ControlPlane::on_upgrade_deadline> upgrade_deadline_{*this};
    reactor::MemberTimer<ControlPlane, &ControlPlane::on_drain_delay> drain_delay_timer_{*this};
    reactor::MemberWatchHandler<ControlPlane, &ControlPlane::on_upgrade_channel> upgrade_channel_handler_{*this};
    reactor::MemberWatchHandler<ControlPlane, &ControlPlane::on_upgrade_exit> upgrade_exit_handler_{*this};
    reactor::MemberWatchHandler<ControlPlane, &ControlPlane::on_parent_channel> parent_channel_handler_{*this};
    reactor::Watch upgrade_channel_watch_{loop_, upgrade_channel_handler_};
    reactor::Watch upgrade_exit_watch_{loop_, upgrade_exit_handler_};
    reactor::Watch parent_channel_watch_{loop_, parent_channel_handler_};
    std::optional<AdminServer> admin_;  // made in run(), once the workers started
};

}  // namespace passgate
