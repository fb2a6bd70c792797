#pragma once
// What a finished connection reports to its worker: the input to metrics and the access log.

#include "src/wire/client_hello.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

enum class CloseReason {
    completed,        // both directions closed in order
    hello_timeout,    // no complete ClientHello within client_hello_timeout
    hello_rejected,   // see hello_error
    client_closed,    // client closed (or reset) before a complete hello
    no_sni,           // no SNI and no default_route
    no_route,         // SNI matched no route and no default_route
    no_endpoint,      // the chosen service has no endpoint to try
    connect_failed,   // every attempt refused or timed out
    client_error,     // reset or error on the client socket while forwarding
    backend_error,    // reset or error on the backend socket while forwarding
    idle_timeout,     // nothing moved either way for idle_timeout
    out_of_resources, // no pipe or socket could be created
    route_removed,    // a reload removed its route, and the route's drain_timeout ran out
    denied,           // the client address is refused by the listener's or the route's allow/deny
    listener_limit,   // the listener's max_connections was reached (over all workers)
    rate_limit,       // the listener's max_connection_rate was exceeded (one bucket, all workers)
    route_limit,      // the route's max_connections was reached (over all workers)
    max_duration,     // open for the route's max_connection_duration
    // Listeners with accept_proxy_protocol (PROXY protocol from an upstream load balancer):
    proxy_untrusted,  // the peer is not in trusted_proxies (closed at accept, nothing read)
    proxy_missing,    // the connection does not start with a PROXY header
    proxy_malformed,  // a PROXY header that breaks the specification (or passgate's bounds)
    proxy_timeout,    // no complete PROXY header within client_hello_timeout
    worker_limit,     // the worker holds [runtime] max_connections_per_worker connections already
    hello_memory_limit, // the hello would grow past this worker's share of [runtime] max_hello_memory
    shutdown,         // the process stopped (shutdown_timeout ran out, or a second SIGTERM)
};

inline constexpr std::size_t close_reason_count = static_cast<std::size_t>(CloseReason::shutdown) + 1;
std::string_view close_reason_name(CloseReason reason);

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
