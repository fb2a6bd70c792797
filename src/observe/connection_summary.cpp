#include "src/observe/connection_summary.h"

namespace passgate {

std::string_view close_reason_name(CloseReason reason) {
    switch (reason) {
        case CloseReason::completed: return "completed";
        case CloseReason::hello_timeout: return "hello_timeout";
        case CloseReason::hello_rejected: return "hello_rejected";
        case CloseReason::client_closed: return "client_closed";
        case CloseReason::no_sni: return "no_sni";
        case CloseReason::no_route: return "no_route";
        case CloseReason::no_endpoint: return "no_endpoint";
        case CloseReason::connect_failed: return "connect_failed";
        case CloseReason::client_error: return "client_error";
        case CloseReason::backend_error: return "backend_error";
        case CloseReason::idle_timeout: return "idle_timeout";
        case CloseReason::out_of_resources: return "out_of_resources";
        case CloseReason::route_removed: return "route_removed";
        case CloseReason::denied: return "denied";
        case CloseReason::listener_limit: return "listener_limit";
        case CloseReason::rate_limit: return "rate_limit";
        case CloseReason::route_limit: return "route_limit";
        case CloseReason::max_duration: return "max_duration";
        case CloseReason::proxy_untrusted: return "proxy_untrusted";
        case CloseReason::proxy_missing: return "proxy_missing";
        case CloseReason::proxy_malformed: return "proxy_malformed";
        case CloseReason::proxy_timeout: return "proxy_timeout";
        case CloseReason::worker_limit: return "worker_limit";
        case CloseReason::hello_memory_limit: return "hello_memory_limit";
        case CloseReason::shutdown: return "shutdown";
    }
    return "unknown";
}

}  // namespace passgate
