#pragma once
// The validated, immutable configuration snapshot. Built off the hot path by load_config_*;
// once built it is never modified, and workers share it read-only through shared_ptr<const Config>.
// Every key is documented in config/README.md.

#include "config/address.h"
#include "config/cidr.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace passgate::config {

using Duration = std::chrono::milliseconds;

// Thrown for any invalid config. what() is "FILE:LINE: key: message" (LINE is the line of the
// offending key or table; 0 only when the file could not be read at all).
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Runtime {
    unsigned workers = 0;  // 0 = one per online CPU
    // SIGTERM/SIGINT: established connections may finish for this long, then are closed.
    Duration shutdown_timeout{std::chrono::seconds(30)};
};

enum class AccessLogFormat { logfmt, json };

struct AccessLog {
    bool enabled = true;
    AccessLogFormat format = AccessLogFormat::logfmt;
    std::string path = "-";  // "-": stderr (the journal under systemd); else a file, appended
};

struct Admin {
    Address address;  // default 127.0.0.1:9901
};

struct Listener {
    std::string name;
    Address address;
    std::optional<std::string> hostname;  // lowercased; exact or "*.suffix"
    Duration client_hello_timeout{std::chrono::seconds(10)};
    std::uint32_t max_client_hello_size = 64 * 1024;  // bytes of TLS records buffered before routing
    Duration idle_timeout{std::chrono::hours(1)};     // both directions quiet this long: close
    std::optional<std::string> default_route;         // route name, validated to exist
    // Client addresses checked at accept, before the hello is read (deny wins; empty allow = all);
    // with accept_proxy_protocol, checked on the address the PROXY header carries instead.
    AccessList access;
    // Connections start with a PROXY protocol header (v1 or v2) from an upstream load balancer,
    // accepted only from peers in trusted_proxies (non-empty exactly when this is true). The
    // addresses it carries stand for the client's from then on.
    bool accept_proxy_protocol = false;
    std::vector<Cidr> trusted_proxies;
    // Open connections at once; split across workers: each worker admits ceil(limit / workers).
    std::optional<std::uint32_t> max_connections;
    // New connections per second; a token bucket per worker with rate / workers tokens a second
    // and a burst of the same (at least 1).
    std::optional<std::uint32_t> max_connection_rate;
    int line = 0;                                     // where the [[listener]] table starts
};

struct BackendRef {
    std::string service;  // validated to name a [[service]]
    std::uint32_t weight = 1;
};

struct Route {
    std::string name;
    std::vector<std::string> listeners;  // validated to name [[listener]]s
    std::vector<std::string> hostnames;  // lowercased; exact or "*.suffix"; may be empty
    std::vector<std::string> alpn;       // optional: match only hellos offering one of these
    std::vector<BackendRef> backends;    // at least one
    // When a reload removes this route, its open connections are closed after this long;
    // unset: they run until they end on their own.
    std::optional<Duration> drain_timeout;
    // Client addresses checked after routing, before any backend is touched.
    AccessList access;
    // Open connections routed here at once (from all its listeners together); split across
    // workers like Listener::max_connections.
    std::optional<std::uint32_t> max_connections;
    // A connection routed here is closed (reason max_duration) this long after it was accepted.
    std::optional<Duration> max_connection_duration;
    int line = 0;
};

enum class Balance { round_robin };

// PROXY protocol header written to the backend before the hello (HAProxy's specification).
enum class ProxyProtocol { none, v1, v2 };

struct Endpoint {
    Address address;
    std::uint32_t weight = 1;
};

struct Service {
    std::string name;
    std::vector<Endpoint> endpoints;
    Balance balance = Balance::round_robin;
    Duration connect_timeout{std::chrono::seconds(3)};
    unsigned connect_attempts = 3;  // endpoints tried before the client is closed
    ProxyProtocol send_proxy_protocol = ProxyProtocol::none;
    int line = 0;
};

struct Config {
    std::string source;  // file path (or a name given to parse_config)
    Runtime runtime;
    Admin admin;
    AccessLog access_log;
    std::vector<Listener> listeners;
    std::vector<Route> routes;
    std::vector<Service> services;
    std::vector<std::string> warnings;  // "FILE:LINE: message", e.g. a route that attaches nowhere

    const Listener* find_listener(std::string_view name) const;
    const Route* find_route(std::string_view name) const;
    const Service* find_service(std::string_view name) const;
};

Config parse_config(std::string_view toml_text, std::string_view source_name);

// The hostnames `route` matches on `listener` (Gateway API intersection, config/hostname.h), with
// one exception: a route without hostnames that is the listener's default_route serves there only
// as the default (no SNI, or no match), as in the example config. Empty: matches no SNI there.
std::vector<std::string> attached_hostnames(const Listener& listener, const Route& route);
Config load_config_file(const std::string& path);

// Hostname helpers shared by validation and routing.
// A valid hostname pattern: lowercase DNS labels (letters, digits, '-'), optionally "*." first;
// not an IP literal. Returns an error message, or empty when valid.
std::string validate_hostname_pattern(std::string_view pattern);
// Case-insensitive lowercasing for ASCII.
std::string ascii_lower(std::string_view text);
// "10s", "250ms", "1h", "1m30s"? -> only single-unit forms: <digits>(ms|s|m|h). nullopt if malformed.
std::optional<Duration> parse_duration(std::string_view text);

}  // namespace passgate::config
