#pragma once
// passgate's Prometheus metrics: the families (created once per process, so counters keep
// counting across reloads) and, per snapshot, the handles workers increment on their own shard.
// Label values come only from config names, never from client bytes: cardinality is bounded by
// the config.

#include "config/config.h"
#include "metrics/registry.h"
#include "src/observe/connection_summary.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace passgate {

// Label names of the enums in connection_summary.h (their tables there).
constexpr std::string_view hello_reject_name(HelloReject reason) {
    return hello_reject_labels[static_cast<std::size_t>(reason)].name;
}
constexpr std::string_view refusal_name(Refusal reason) {
    return refusal_labels[static_cast<std::size_t>(reason)].name;
}
constexpr std::string_view proxy_reject_name(ProxyReject reason) {
    return proxy_reject_labels[static_cast<std::size_t>(reason)].name;
}

// Reasons for passgate_upstream_connect_failures_total{reason}.
enum class ConnectFailure { refused, timeout, unreachable, error, count };
std::string_view connect_failure_name(ConnectFailure reason);
ConnectFailure connect_failure_of(int error);

// Unix time in seconds (CLOCK_REALTIME), for the *_timestamp_seconds gauges.
double unix_time_seconds();

class AppMetrics {
public:
    // Shards: one per worker (index = worker index) and the last for the control thread.
    explicit AppMetrics(unsigned workers);
    metrics::Registry registry;
    std::size_t control_shard() const { return registry.shards() - 1; }

    metrics::CounterFamily& downstream_connections;       // {listener, route}
    metrics::GaugeFamily& downstream_active;              // {listener}
    metrics::CounterFamily& downstream_closed;            // {listener, reason}
    metrics::CounterFamily& hello_rejected;               // {listener, reason}
    metrics::CounterFamily& downstream_refused;           // {listener, reason}
    metrics::CounterFamily& proxy_rejected;               // {listener, reason}
    metrics::HistogramFamily& hello_bytes;                // {listener}
    metrics::HistogramFamily& hello_duration;             // {listener}
    metrics::CounterFamily& upstream_connections;         // {service, endpoint}
    metrics::CounterFamily& upstream_connect_failures;    // {service, endpoint, reason}
    metrics::HistogramFamily& upstream_connect_duration;  // {service}
    metrics::CounterFamily& bytes;                        // {route, direction}
    // QUIC listeners (src/proxy/quic_flows.h): flows are their connections.
    metrics::CounterFamily& quic_flows;                   // {listener, route}
    metrics::GaugeFamily& quic_flows_active;              // {listener}
    metrics::CounterFamily& quic_flows_closed;            // {listener, reason}
    metrics::CounterFamily& quic_packets;                 // {listener, direction}
    metrics::CounterFamily& quic_bytes;                   // {listener, direction}
    metrics::CounterFamily& quic_initial_rejected;        // {listener, reason}
    metrics::CounterFamily& quic_datagrams_dropped;       // {listener, reason}
    metrics::CounterFamily& quic_handoffs;                // {listener, result}
    metrics::CounterFamily& config_reloads;               // {result}
    metrics::GaugeFamily& config_last_reload_success;
    metrics::GaugeFamily& config_hash_info;               // {hash}
    // Reloads that changed a setting only read at start (src/control/reload_plan.h); a series
    // appears when its key is first counted.
    metrics::CounterFamily& config_reload_restart_required;  // {key}
    metrics::GaugeFamily& pipes_in_use;
    metrics::GaugeFamily& pipe_pool_size;
    metrics::GaugeFamily& build_info;                     // {version, liburing, kernel}
    // Endpoints and their health (src/discovery/endpoint_directory.h).
    metrics::GaugeFamily& endpoint_healthy;               // {service, endpoint}
    metrics::CounterFamily& endpoint_ejections;           // {service, endpoint}
    metrics::GaugeFamily& service_endpoints;              // {service}
    metrics::CounterFamily& upstream_panic;               // {service}
    metrics::CounterFamily& discovery_updates;            // {service, result}
    metrics::CounterFamily& health_check_local_errors;    // {service}
    metrics::GaugeFamily& discovery_last_success;         // {service}
    // Workers, when they install a new endpoint set: now minus EndpointSet::changed_at.
    metrics::HistogramFamily& endpoint_update_delay;
    // Kubernetes watches (src/discovery/kubernetes_watch.h), by the Kubernetes Service they follow
    // and the resource ("services", "endpointslices").
    metrics::CounterFamily& kubernetes_relists;            // {namespace, kubernetes_service, resource, reason}
    metrics::CounterFamily& kubernetes_watch_restarts;     // {namespace, kubernetes_service, resource, reason}
    metrics::CounterFamily& kubernetes_request_failures;   // {namespace, kubernetes_service, resource, reason}
    // Gateway API watch mode (src/gateway/gateway_watch.h, status_writer.h).
    metrics::CounterFamily& gateway_api_status_writes;     // {kind, result}
    metrics::GaugeFamily& gateway_api_status_leader;
    metrics::GaugeFamily& gateway_api_objects;             // {kind}
    metrics::GaugeFamily& gateway_api_invalid_objects;     // {kind}
    // Series held in memory, shown or hidden; set by the control thread when it frees departed
    // series (src/control/app.cpp).
    metrics::GaugeFamily& metric_series;
    // Config snapshots alive now (the current one plus older ones that connections still use),
    // over all workers: passgate_config_snapshots_live. Counted by Snapshot's constructor and
    // destructor (a reload, the end of a snapshot's last connection): rare, so one shared atomic.
    std::atomic<std::int64_t> snapshots_live{0};
};

// Handles for one snapshot, resolved on the control thread when the snapshot is built.
struct ListenerMetrics {
    metrics::Gauge active;
    std::array<metrics::Counter, static_cast<std::size_t>(HelloReject::count)> rejected;
    std::array<metrics::Counter, static_cast<std::size_t>(Refusal::count)> refused;
    std::array<metrics::Counter, close_reason_count> closed;
    // Resolved only for listeners with accept_proxy_protocol (the only ones that can count them).
    std::array<metrics::Counter, static_cast<std::size_t>(ProxyReject::count)> proxy_rejected;
    metrics::Histogram hello_bytes;
    metrics::Histogram hello_duration;
    std::vector<metrics::Counter> connections_by_route;  // by route index; empty handle if not attached
};

// Why a datagram from a client matching no flow was dropped, unanswered
// (passgate_quic_datagrams_dropped_total{reason}).
enum class QuicDrop { not_quic, unsupported_version, no_flow, truncated, draining, send_failed, count };
inline constexpr std::array<LabelInfo, static_cast<std::size_t>(QuicDrop::count)> quic_drop_labels{{
    {"not_quic", "not a QUIC packet (fixed bit clear, truncated header, connection ID over 20 bytes)"},
    {"unsupported_version", "a long header of a version other than 1 and 2, no Version Negotiation sent"},
    {"no_flow", "not an Initial, and neither its address nor its connection ID belongs to a flow"},
    {"truncated", "larger than the receive buffer (65,535 bytes)"},
    {"draining", "an Initial for a new flow while the worker drains (SIGTERM, upgrade)"},
    {"send_failed", "a forwarded datagram the kernel did not take (socket buffer full, ICMP error)"},
}};
// Why a client's Initials were refused before routing (passgate_quic_initial_rejected_total{reason}):
// the Initial reader's errors (src/wire/quic_initial.h), then those of the data path.
inline constexpr std::size_t quic_initial_error_count = 9;  // quic::InitialError none..hello
enum class QuicInitialLimit { timeout = quic_initial_error_count, flow_limit, hello_memory_limit, end };
inline constexpr std::size_t quic_initial_reject_count = static_cast<std::size_t>(QuicInitialLimit::end);
std::string_view quic_initial_reject_name(std::size_t reason);

// A QUIC listener's series (unresolved for TLS listeners).
struct QuicListenerMetrics {
    metrics::Gauge active;
    std::vector<metrics::Counter> flows_by_route;  // by route index; empty handle if not attached
    std::array<metrics::Counter, close_reason_count> closed;
    metrics::Counter packets_client_to_backend, packets_backend_to_client;
    metrics::Counter bytes_client_to_backend, bytes_backend_to_client;
    std::array<metrics::Counter, quic_initial_reject_count> initial_rejected;
    std::array<metrics::Counter, static_cast<std::size_t>(QuicDrop::count)> dropped;
    // Cross-worker hand-offs of short headers matching no flow (src/proxy/quic_flows.h).
    metrics::Counter handoffs_sent, handoffs_full, handoffs_claimed;
    // A binary upgrade: the new process's datagrams of no flow sent to the old process
    // (upgrade_forwarded) or dropped on a full channel (upgrade_full); the old one's received.
    metrics::Counter upgrade_forwarded, upgrade_full, upgrade_received;
};

struct RouteMetrics {
    metrics::Counter bytes_client_to_backend;
    metrics::Counter bytes_backend_to_client;
};

// One endpoint's series, created (or revived) on the control thread when the endpoint appears.
struct EndpointMetrics {
    EndpointMetrics() = default;
    EndpointMetrics(AppMetrics& metrics, const std::string& service, const std::string& endpoint);
    metrics::Counter connections;
    std::array<metrics::Counter, static_cast<std::size_t>(ConnectFailure::count)> failures;
    metrics::Counter ejections;
};

struct ServiceMetrics {
    metrics::Histogram connect_duration;
    metrics::Counter panic;
};

struct SnapshotMetrics {
    SnapshotMetrics(AppMetrics& metrics, const config::Config& config);
    unsigned workers = 1;  // worker threads: connection limits are split across them
    std::vector<ListenerMetrics> listeners;
    std::vector<QuicListenerMetrics> quic_listeners;  // by listener index
    std::vector<RouteMetrics> routes;
    std::vector<ServiceMetrics> services;
    metrics::Histogram endpoint_update_delay;
};

}  // namespace passgate
