#include "src/observe/app_metrics.h"

#include "src/observe/version.h"

#include <cerrno>
#include <ctime>

namespace passgate {

namespace {
const std::vector<double> hello_byte_buckets{256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
const std::vector<double> latency_buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                          0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                          5,      10};
// From a fast hand-over between threads (tens of microseconds) to a control thread busy for a
// second: fine enough to interpolate percentiles.
const std::vector<double> update_delay_buckets{
    0.000025, 0.00005, 0.000075, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002,
    0.003,    0.005,   0.0075,   0.01,   0.015,   0.02,   0.03,   0.05,   0.075,   0.1,   0.15,   0.2,
    0.3,      0.5,     0.75,     1,      2.5};
}  // namespace

double unix_time_seconds() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

std::string_view connect_failure_name(ConnectFailure reason) {
    switch (reason) {
        case ConnectFailure::refused: return "refused";
        case ConnectFailure::timeout: return "timeout";
        case ConnectFailure::unreachable: return "unreachable";
        case ConnectFailure::error: return "error";
        case ConnectFailure::count: break;
    }
    return "unknown";
}

ConnectFailure connect_failure_of(int error) {
    switch (error) {
        case ECONNREFUSED: return ConnectFailure::refused;
        case ETIMEDOUT: return ConnectFailure::timeout;
        case ENETUNREACH:
        case EHOSTUNREACH:
        case EADDRNOTAVAIL: return ConnectFailure::unreachable;
        default: return ConnectFailure::error;
    }
}

AppMetrics::AppMetrics(unsigned workers)
    : registry(workers + 1),
      downstream_connections(registry.counter("passgate_downstream_connections_total",
          "Client connections routed, by listener and route.", {"listener", "route"})),
      downstream_active(registry.gauge("passgate_downstream_connections_active",
          "Client connections open now, by listener.", {"listener"})),
      downstream_closed(registry.counter("passgate_downstream_connections_closed_total",
          "Client connections closed, by listener and close reason.", {"listener", "reason"})),
      hello_rejected(registry.counter("passgate_client_hello_rejected_total",
          "Connections closed before routing, by listener and reason.", {"listener", "reason"})),
      downstream_refused(registry.counter("passgate_downstream_connections_refused_total",
          "Client connections closed by access control (allow/deny) or a limit, by listener and "
          "reason.", {"listener", "reason"})),
      proxy_rejected(registry.counter("passgate_proxy_protocol_rejected_total",
          "Connections closed for their PROXY protocol header (listeners with "
          "accept_proxy_protocol), by listener and reason.", {"listener", "reason"})),
      hello_bytes(registry.histogram("passgate_client_hello_bytes",
          "Size of complete ClientHellos in bytes (TLS records included).", hello_byte_buckets,
          {"listener"})),
      hello_duration(registry.histogram("passgate_client_hello_duration_seconds",
          "Time from accept to a complete ClientHello.", latency_buckets, {"listener"})),
      upstream_connections(registry.counter("passgate_upstream_connections_total",
          "Backend connections established, by service and endpoint.", {"service", "endpoint"})),
      upstream_connect_failures(registry.counter("passgate_upstream_connect_failures_total",
          "Backend connect attempts that failed, by service, endpoint and reason.",
          {"service", "endpoint", "reason"})),
      upstream_connect_duration(registry.histogram("passgate_upstream_connect_duration_seconds",
          "Time to establish a backend connection, by service.", latency_buckets, {"service"})),
      bytes(registry.counter("passgate_bytes_total",
          "Bytes forwarded, by route and direction (the ClientHello counts as client_to_backend).",
          {"route", "direction"})),
      quic_flows(registry.counter("passgate_quic_flows_total",
          "QUIC flows routed, by listener and route.", {"listener", "route"})),
      quic_flows_active(registry.gauge("passgate_quic_flows_active",
          "QUIC flows held now (routed or reading their Initials), by listener.", {"listener"})),
      quic_flows_closed(registry.counter("passgate_quic_flows_closed_total",
          "QUIC flows ended, by listener and close reason.", {"listener", "reason"})),
      quic_packets(registry.counter("passgate_quic_packets_total",
          "UDP datagrams forwarded on QUIC flows, by listener and direction.", {"listener", "direction"})),
      quic_bytes(registry.counter("passgate_quic_bytes_total",
          "UDP payload bytes forwarded on QUIC flows, by listener and direction.", {"listener", "direction"})),
      quic_initial_rejected(registry.counter("passgate_quic_initial_rejected_total",
          "QUIC flows refused before routing, by listener and reason.", {"listener", "reason"})),
      quic_datagrams_dropped(registry.counter("passgate_quic_datagrams_dropped_total",
          "Datagrams dropped unanswered on QUIC listeners, by listener and reason.", {"listener", "reason"})),
      quic_handoffs(registry.counter("passgate_quic_handoffs_total",
          "Short-header datagrams that matched no flow of the worker that received them, handed to "
          "the other workers (sent), copies refused by a full channel (queue_full), and found by "
          "their flow's worker (claimed); during a binary upgrade, datagrams of no flow the new process "
          "sent to the old one (upgrade_forwarded) or dropped on a full channel (upgrade_full), and "
          "those the old one received (upgrade_received); by listener and result.", {"listener", "result"})),
      config_reloads(registry.counter("passgate_config_reloads_total",
          "Configuration reloads (SIGHUP), by result.", {"result"})),
      config_last_reload_success(registry.gauge("passgate_config_last_reload_success_timestamp_seconds",
          "Unix time of the last configuration load that succeeded (start-up included).")),
      config_hash_info(registry.gauge("passgate_config_hash_info",
          "Hash of the configuration file in use (value always 1).", {"hash"})),
      config_reload_restart_required(registry.counter("passgate_config_reload_restart_required_total",
          "Reloads that changed a setting a reload does not apply (it keeps its running value until a "
          "restart), by the setting's key, e.g. access_log.format.", {"key"})),
      pipes_in_use(registry.gauge("passgate_pipes_in_use",
          "Pipes leased by connections now, summed over workers.")),
      pipe_pool_size(registry.gauge("passgate_pipe_pool_size",
          "Empty pipes kept for reuse, summed over workers.")),
      build_info(registry.gauge("passgate_build_info", "Build and runtime versions (value always 1).",
          {"version", "liburing", "kernel"})),
      endpoint_healthy(registry.gauge("passgate_endpoint_healthy",
          "1 when the endpoint passes its service's active health check (always 1 without one), "
          "else 0.", {"service", "endpoint"})),
      endpoint_ejections(registry.counter("passgate_endpoint_ejections_total",
          "Passive ejections (outlier detection: consecutive connect failures), summed over the "
          "workers that ejected.", {"service", "endpoint"})),
      service_endpoints(registry.gauge("passgate_service_endpoints",
          "Endpoints the service has now (from its static list, DNS or endpoints file).",
          {"service"})),
      upstream_panic(registry.counter("passgate_upstream_panic_total",
          "Endpoint picks made while no endpoint of the service was healthy (health ignored).",
          {"service"})),
      discovery_updates(registry.counter("passgate_discovery_updates_total",
          "Endpoint discovery results (DNS answers, endpoints file reads, Kubernetes updates and failures), by service and result.",
          {"service", "result"})),
      health_check_local_errors(registry.counter("passgate_health_check_local_errors_total",
          "Health probes that could not run for a local shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM): "
          "not held against the endpoint.", {"service"})),
      discovery_last_success(registry.gauge("passgate_discovery_last_success_timestamp_seconds",
          "Unix time of the service's last successful endpoint discovery.", {"service"})),
      endpoint_update_delay(registry.histogram("passgate_endpoint_update_delay_seconds",
          "Time from the control thread first seeing an endpoint change (a Kubernetes watch event, "
          "a DNS answer, an endpoints file change, a health verdict) to a worker using the set that "
          "carries it; observed once per worker and set.", update_delay_buckets)),
      kubernetes_relists(registry.counter("passgate_kubernetes_relists_total",
          "Complete lists of a watched Kubernetes resource, by reason: initial (start), expired (410 Gone: "
          "the resourceVersion was compacted), bad_event (a watch event that did not decode), error (a "
          "list retried after a failure).", {"namespace", "kubernetes_service", "resource", "reason"})),
      kubernetes_watch_restarts(registry.counter("passgate_kubernetes_watch_restarts_total",
          "Watches started again from the last resourceVersion, by reason: server_closed (the "
          "server's timeout ended the stream), error (the stream failed).",
          {"namespace", "kubernetes_service", "resource", "reason"})),
      kubernetes_request_failures(registry.counter("passgate_kubernetes_request_failures_total",
          "Failed requests to the Kubernetes API server, by reason: connect, timeout, tls, "
          "unauthorized, forbidden, not_found, server_error, http_error, bad_response, token_file.",
          {"namespace", "kubernetes_service", "resource", "reason"})),
      gateway_api_status_writes(registry.counter("passgate_gateway_api_status_writes_total",
          "Status writes (PATCH of the status subresource) of Gateway API objects, by kind and result: ok, "
          "conflict (409: the object changed meanwhile; computed again), error.", {"kind", "result"})),
      gateway_api_status_leader(registry.gauge("passgate_gateway_api_status_leader",
          "1 while this node holds the status Lease ([gateway_api] lease_name) and so writes Gateway API "
          "status, else 0.")),
      gateway_api_objects(registry.gauge("passgate_gateway_api_objects",
          "Gateway API watch mode: objects held from the API server, by kind (GatewayClass, Gateway, TLSRoute, "
          "ReferenceGrant, Service, Namespace).", {"kind"})),
      gateway_api_invalid_objects(registry.gauge("passgate_gateway_api_invalid_objects",
          "Gateway API watch mode: objects that do not decode and are left out, by kind.", {"kind"})),
      metric_series(registry.gauge("passgate_metric_series",
          "Metric series held in memory, shown or hidden (departed endpoints wait for "
          "departed_series_retention before they are freed); updated once a second.")) {
    build_info.with({version(), liburing_version(), kernel_release()}).set(control_shard(), 1);
    config_reloads.with({"success"});
    config_reloads.with({"failure"});
    registry.callback_gauge("passgate_config_snapshots_live",
        "Configuration snapshots in memory: the current one plus older ones that open connections "
        "still use.", [this] { return static_cast<double>(snapshots_live.load(std::memory_order_relaxed)); });
}

std::string_view quic_initial_reject_name(std::size_t reason) {
    static constexpr std::array<std::string_view, quic_initial_reject_count> names{
        "none", "not_quic", "unsupported_version", "short_datagram", "undecryptable", "malformed",
        "too_large", "too_many_packets", "hello", "timeout", "flow_limit", "hello_memory_limit"};
    return reason < names.size() ? names[reason] : "unknown";
}

SnapshotMetrics::SnapshotMetrics(AppMetrics& metrics, const config::Config& config)
    : workers(static_cast<unsigned>(metrics.registry.shards() > 1 ? metrics.registry.shards() - 1 : 1)) {
    for (const config::Listener& listener : config.listeners) {
        ListenerMetrics handles;
        handles.active = metrics.downstream_active.with({listener.name});
        for (std::size_t reason = 0; reason < handles.rejected.size(); ++reason)
            handles.rejected[reason] = metrics.hello_rejected.with(
                {listener.name, std::string(hello_reject_name(static_cast<HelloReject>(reason)))});
        for (std::size_t reason = 0; reason < handles.refused.size(); ++reason)
            handles.refused[reason] = metrics.downstream_refused.with(
                {listener.name, std::string(refusal_name(static_cast<Refusal>(reason)))});
        for (std::size_t reason = 0; reason < handles.closed.size(); ++reason)
            handles.closed[reason] = metrics.downstream_closed.with(
                {listener.name, std::string(close_reason_name(static_cast<CloseReason>(reason)))});
        if (listener.accept_proxy_protocol) {
            for (std::size_t reason = 0; reason < handles.proxy_rejected.size(); ++reason)
                handles.proxy_rejected[reason] = metrics.proxy_rejected.with(
                    {listener.name, std::string(proxy_reject_name(static_cast<ProxyReject>(reason)))});
        }
        handles.hello_bytes = metrics.hello_bytes.with({listener.name});
        handles.hello_duration = metrics.hello_duration.with({listener.name});
        handles.connections_by_route.resize(config.routes.size());
        for (std::size_t route = 0; route < config.routes.size(); ++route) {
            const config::Route& r = config.routes[route];
            for (const std::string& name : r.listeners)
                if (name == listener.name)
                    handles.connections_by_route[route] =
                        metrics.downstream_connections.with({listener.name, r.name});
        }
        listeners.push_back(std::move(handles));
        QuicListenerMetrics quic;
        if (listener.protocol == config::ListenerProtocol::quic) {
            quic.active = metrics.quic_flows_active.with({listener.name});
            quic.flows_by_route.resize(config.routes.size());
            for (std::size_t route = 0; route < config.routes.size(); ++route)
                for (const std::string& name : config.routes[route].listeners)
                    if (name == listener.name)
                        quic.flows_by_route[route] = metrics.quic_flows.with({listener.name, config.routes[route].name});
            for (std::size_t reason = 0; reason < quic.closed.size(); ++reason)
                quic.closed[reason] = metrics.quic_flows_closed.with(
                    {listener.name, std::string(close_reason_name(static_cast<CloseReason>(reason)))});
            quic.packets_client_to_backend = metrics.quic_packets.with({listener.name, "client_to_backend"});
            quic.packets_backend_to_client = metrics.quic_packets.with({listener.name, "backend_to_client"});
            quic.bytes_client_to_backend = metrics.quic_bytes.with({listener.name, "client_to_backend"});
            quic.bytes_backend_to_client = metrics.quic_bytes.with({listener.name, "backend_to_client"});
            for (std::size_t reason = 1; reason < quic.initial_rejected.size(); ++reason)  // 0: none
                quic.initial_rejected[reason] =
                    metrics.quic_initial_rejected.with({listener.name, std::string(quic_initial_reject_name(reason))});
            for (std::size_t reason = 0; reason < quic.dropped.size(); ++reason)
                quic.dropped[reason] =
                    metrics.quic_datagrams_dropped.with({listener.name, std::string(quic_drop_labels[reason].name)});
            quic.handoffs_sent = metrics.quic_handoffs.with({listener.name, "sent"});
            quic.handoffs_full = metrics.quic_handoffs.with({listener.name, "queue_full"});
            quic.handoffs_claimed = metrics.quic_handoffs.with({listener.name, "claimed"});
            quic.upgrade_forwarded = metrics.quic_handoffs.with({listener.name, "upgrade_forwarded"});
            quic.upgrade_full = metrics.quic_handoffs.with({listener.name, "upgrade_full"});
            quic.upgrade_received = metrics.quic_handoffs.with({listener.name, "upgrade_received"});
        }
        quic_listeners.push_back(std::move(quic));
    }
    for (const config::Route& route : config.routes) {
        routes.push_back(RouteMetrics{metrics.bytes.with({route.name, "client_to_backend"}),
                                      metrics.bytes.with({route.name, "backend_to_client"})});
    }
    for (const config::Service& service : config.services) {
        ServiceMetrics handles;
        handles.connect_duration = metrics.upstream_connect_duration.with({service.name});
        handles.panic = metrics.upstream_panic.with({service.name});
        services.push_back(std::move(handles));
    }
    endpoint_update_delay = metrics.endpoint_update_delay.with();
}

EndpointMetrics::EndpointMetrics(AppMetrics& metrics, const std::string& service,
                                 const std::string& endpoint)
    : connections(metrics.upstream_connections.with({service, endpoint})),
      ejections(metrics.endpoint_ejections.with({service, endpoint})) {
    for (std::size_t reason = 0; reason < failures.size(); ++reason)
        failures[reason] = metrics.upstream_connect_failures.with(
            {service, endpoint, std::string(connect_failure_name(static_cast<ConnectFailure>(reason)))});
}

}  // namespace passgate
