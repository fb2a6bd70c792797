#pragma once
// What a finished connection reports to its worker: the input to metrics and the access log.

#include "src/wire/client_hello.h"

#include <array>
#include <cstddef>
#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

enum class CloseReason {
    completed,
    hello_timeout,
    hello_rejected,
    client_closed,
    no_sni,
    no_route,
    no_endpoint,
    connect_failed,
    client_error,
    backend_error,
    idle_timeout,
    out_of_resources,
    route_removed,
    denied,
    listener_limit,
    rate_limit,
    route_limit,
    max_duration,
    proxy_untrusted,
    proxy_missing,
    proxy_malformed,
    proxy_timeout,
    worker_limit,
    hello_memory_limit,
    shutdown,
    invalid_backend,
};
inline constexpr std::size_t close_reason_count = static_cast<std::size_t>(CloseReason::invalid_backend) + 1;

// The `reason` labels of the counters that sort some closes further (src/observe/app_metrics.h).
// passgate_client_hello_rejected_total{reason}: closed before routing.
enum class HelloReject { timeout, not_tls, malformed, too_large, no_sni, no_route, client_closed, count };
// passgate_downstream_connections_refused_total{reason}: access control and limits. The names are
// those of the matching CloseReason (checked below).
enum class Refusal { denied, listener_limit, rate_limit, route_limit, worker_limit, hello_memory_limit, count };
// passgate_proxy_protocol_rejected_total{reason}: PROXY headers refused on listeners with
// accept_proxy_protocol. Each has its own close reason, proxy_<name> (checked below).
enum class ProxyReject { untrusted, missing, malformed, timeout, count };

// One row of a label table: the label value and what it means.
struct LabelInfo {
    std::string_view name;
    std::string_view description;
};

inline constexpr std::array<LabelInfo, static_cast<std::size_t>(HelloReject::count)> hello_reject_labels{{
    {"timeout", "no complete ClientHello within client_hello_timeout (hello_timeout)"},
    {"not_tls", "not TLS at all (hello_rejected with a hello error of class not_tls)"},
    {"malformed", "a ClientHello that breaks the specification or passgate's bounds"},
    {"too_large", "a ClientHello over max_client_hello_size or the record limit"},
    {"no_sni", "no SNI and no default_route (no_sni)"},
    {"no_route", "an SNI that matched no route, and no default_route (no_route)"},
    {"client_closed", "the client closed before a complete hello (client_closed)"},
}};
inline constexpr std::array<LabelInfo, static_cast<std::size_t>(Refusal::count)> refusal_labels{{
    {"denied", "an allow/deny list of the listener or the route"},
    {"listener_limit", "the listener's max_connections"},
    {"rate_limit", "the listener's max_connection_rate"},
    {"route_limit", "the route's max_connections"},
    {"worker_limit", "[runtime] max_connections_per_worker"},
    {"hello_memory_limit", "the worker's share of [runtime] max_hello_memory"},
}};
inline constexpr std::array<LabelInfo, static_cast<std::size_t>(ProxyReject::count)> proxy_reject_labels{{
    {"untrusted", "the peer is not in trusted_proxies"},
    {"missing", "the connection does not start with a PROXY header"},
    {"malformed", "a PROXY header that breaks the specification or passgate's bounds"},
    {"timeout", "no complete PROXY header within client_hello_timeout"},
}};

// One row per CloseReason, in enum order (checked below): the one place that names a close
// reason and says which labelled counters count it. Every close counts in
// passgate_downstream_connections_closed_total{reason=name}; `name` is also the logs' reason=
// value, and config/README.md lists the same names (tests/observe/close_reason_table_test.cpp).
struct CloseReasonInfo {
    CloseReason reason;
    std::string_view name;
    std::string_view description;
    // Also counted in passgate_client_hello_rejected_total{reason} under this label...
    std::optional<HelloReject> hello_reject = std::nullopt;
    // ...or, for hello_rejected, under the class of the connection's hello error.
    bool hello_reject_by_error_class = false;
    // Also counted in passgate_downstream_connections_refused_total{reason}.
    std::optional<Refusal> refusal = std::nullopt;
    // Also counted in passgate_proxy_protocol_rejected_total{reason}.
    std::optional<ProxyReject> proxy_reject = std::nullopt;
};

inline constexpr std::array<CloseReasonInfo, close_reason_count> close_reasons{{
    {.reason = CloseReason::completed, .name = "completed",
     .description = "both directions closed in order"},
    {.reason = CloseReason::hello_timeout, .name = "hello_timeout",
     .description = "no complete ClientHello within client_hello_timeout",
     .hello_reject = HelloReject::timeout},
    {.reason = CloseReason::hello_rejected, .name = "hello_rejected",
     .description = "the ClientHello was refused; hello_error says why",
     .hello_reject_by_error_class = true},
    {.reason = CloseReason::client_closed, .name = "client_closed",
     .description = "the client closed (or reset) before a complete hello",
     .hello_reject = HelloReject::client_closed},
    {.reason = CloseReason::no_sni, .name = "no_sni",
     .description = "no SNI and no default_route", .hello_reject = HelloReject::no_sni},
    {.reason = CloseReason::no_route, .name = "no_route",
     .description = "the SNI matched no route and there is no default_route",
     .hello_reject = HelloReject::no_route},
    {.reason = CloseReason::no_endpoint, .name = "no_endpoint",
     .description = "the chosen service has no endpoint to try"},
    {.reason = CloseReason::connect_failed, .name = "connect_failed",
     .description = "every backend connect attempt was refused or timed out"},
    {.reason = CloseReason::client_error, .name = "client_error",
     .description = "a reset or an error on the client socket while forwarding"},
    {.reason = CloseReason::backend_error, .name = "backend_error",
     .description = "a reset or an error on the backend socket while forwarding"},
    {.reason = CloseReason::idle_timeout, .name = "idle_timeout",
     .description = "nothing moved either way for idle_timeout"},
    {.reason = CloseReason::out_of_resources, .name = "out_of_resources",
     .description = "no pipe or socket could be created"},
    {.reason = CloseReason::route_removed, .name = "route_removed",
     .description = "a reload removed the route, and the route's drain_timeout ran out"},
    {.reason = CloseReason::denied, .name = "denied",
     .description = "the client address is refused by the listener's or the route's allow/deny",
     .refusal = Refusal::denied},
    {.reason = CloseReason::listener_limit, .name = "listener_limit",
     .description = "the listener's max_connections was reached (counted over all workers)",
     .refusal = Refusal::listener_limit},
    {.reason = CloseReason::rate_limit, .name = "rate_limit",
     .description = "the listener's max_connection_rate was exceeded (one bucket for all workers)",
     .refusal = Refusal::rate_limit},
    {.reason = CloseReason::route_limit, .name = "route_limit",
     .description = "the route's max_connections was reached (counted over all workers)",
     .refusal = Refusal::route_limit},
    {.reason = CloseReason::max_duration, .name = "max_duration",
     .description = "open for the route's max_connection_duration"},
    // Listeners with accept_proxy_protocol (PROXY protocol from an upstream load balancer):
    {.reason = CloseReason::proxy_untrusted, .name = "proxy_untrusted",
     .description = "the peer is not in trusted_proxies (closed at accept, nothing read)",
     .proxy_reject = ProxyReject::untrusted},
    {.reason = CloseReason::proxy_missing, .name = "proxy_missing",
     .description = "the connection does not start with a PROXY header",
     .proxy_reject = ProxyReject::missing},
    {.reason = CloseReason::proxy_malformed, .name = "proxy_malformed",
     .description = "a PROXY header that breaks the specification (or passgate's bounds)",
     .proxy_reject = ProxyReject::malformed},
    {.reason = CloseReason::proxy_timeout, .name = "proxy_timeout",
     .description = "no complete PROXY header within client_hello_timeout",
     .proxy_reject = ProxyReject::timeout},
    {.reason = CloseReason::worker_limit, .name = "worker_limit",
     .description = "the worker holds [runtime] max_connections_per_worker connections already",
     .refusal = Refusal::worker_limit},
    {.reason = CloseReason::hello_memory_limit, .name = "hello_memory_limit",
     .description = "the hello would grow past this worker's share of [runtime] max_hello_memory",
     .refusal = Refusal::hello_memory_limit},
    {.reason = CloseReason::shutdown, .name = "shutdown",
     .description = "the process stopped (shutdown_timeout ran out, or a second SIGTERM)"},
    {.reason = CloseReason::invalid_backend, .name = "invalid_backend",
     .description = "the route picked a TLSRoute backendRef that cannot be used (its share is rejected)"},
}};

namespace close_reason_checks {
constexpr bool in_enum_order() {
    for (std::size_t i = 0; i < close_reasons.size(); ++i)
        if (static_cast<std::size_t>(close_reasons[i].reason) != i) return false;
    return true;
}
// A refusal's label is its close reason's name; a PROXY rejection's is that name minus "proxy_".
constexpr bool labels_match_names() {
    for (const CloseReasonInfo& row : close_reasons) {
        if (row.refusal && refusal_labels[static_cast<std::size_t>(*row.refusal)].name != row.name)
            return false;
        if (row.proxy_reject) {
            const std::string_view label = proxy_reject_labels[static_cast<std::size_t>(*row.proxy_reject)].name;
            if (!row.name.starts_with("proxy_") || row.name.substr(6) != label) return false;
        }
    }
    return true;
}
}  // namespace close_reason_checks
static_assert(close_reason_checks::in_enum_order(), "close_reasons: one row per CloseReason, in enum order");
static_assert(close_reason_checks::labels_match_names(), "close_reasons: refusal / PROXY labels drift from the names");

// "unknown" for a value outside the enum.
constexpr std::string_view close_reason_name(CloseReason reason) {
    const auto index = static_cast<std::size_t>(reason);
    return index < close_reasons.size() ? close_reasons[index].name : "unknown";
}

// Where a close counts besides passgate_downstream_connections_closed_total, from the table.
// `hello_error`: the connection's, read only for hello_rejected.
std::optional<HelloReject> hello_reject_of(CloseReason reason, HelloError hello_error);
std::optional<Refusal> refusal_of(CloseReason reason);
std::optional<ProxyReject> proxy_reject_of(CloseReason reason);

struct ConnectionSummary {
    std::size_t listener = 0;                    // index in the snapshot
    const std::string* route = nullptr;          // names point into the snapshot's config
    const std::string* service = nullptr;
    std::string endpoint;                        // "ip:port" of the backend used, if any
    std::string client;                          // "ip:port"
    std::string sni;
    std::vector<std::string> alpn;
    std::size_t hello_bytes = 0;
    std::uint64_t bytes_client_to_backend = 0;   // including the hello
    std::uint64_t bytes_backend_to_client = 0;
    std::int64_t duration_ms = 0;
    unsigned connect_attempts = 0;
    CloseReason reason = CloseReason::completed;
    HelloError hello_error = HelloError::none;
    int error = 0;  // errno behind client_error / backend_error / connect_failed, if any
};

}  // namespace passgate
