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
#include "src/discovery/endpoint_directory.h"
#include "src/gateway/gateway_controller.h"
#include "src/observe/access_log.h"
#include "src/observe/app_metrics.h"
#include "src/proxy/worker_set.h"
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
};

class ControlPlane {
public:
    // Sets everything up without starting a thread: raises the descriptor limit, binds every
    // listener and the admin address (a taken port is reported at once, by name), opens the
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
    void on_reload_signal();
    // Reloads the config file. Returns an empty string on success, else why the reload was
    // rejected (nothing changed then).
    std::string reload();
    // Installs `next` (a reload's, or the Gateway API watch's): binds its new listeners, follows
    // its services, hands the workers a new snapshot. "" on success, else why nothing changed.
    std::string install(std::shared_ptr<const config::Config> next);
    void on_endpoints(EndpointSets sets);
    // [gateway_api] watch: the objects changed (or were listed for the first time).
    void on_gateway_objects();
    void on_tick();       // every 100 ms
    void on_readiness();  // polls until every worker is up, then READY=1 once
    HttpResponse on_admin_request(const HttpRequest& request);

    AppOptions options_;
    std::shared_ptr<const config::Config> current_;  // the config in use
    std::string current_hash_;
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
    std::vector<std::vector<reactor::Fd>> initial_sockets_;
    EndpointSets initial_sets_;
    reactor::Fd admin_socket_;  // until the admin server takes it
    WorkerSet workers_;
    // The control loop: signals, reloads, the admin server, endpoint discovery and health checks.
    reactor::Loop loop_;
    EndpointDirectory directory_;
    // [gateway_api] watch = true only: the TOML's own config (the file as last loaded), which
    // every change of the objects is merged into, and the watch with its status writer.
    std::shared_ptr<const config::Config> base_;
    std::unique_ptr<gateway_api::GatewayController> gateway_;
    bool stopping_ = false;   // a first SIGTERM/SIGINT came: draining
    bool notified_ready_ = false;
    unsigned ticks_ = 0;
    reactor::SignalWatcher signals_;
    reactor::MemberTimer<ControlPlane, &ControlPlane::on_tick> ticker_{*this};
    reactor::MemberTimer<ControlPlane, &ControlPlane::on_readiness> readiness_{*this};
    std::optional<AdminServer> admin_;  // made in run(), once the workers started
};

}  // namespace passgate
