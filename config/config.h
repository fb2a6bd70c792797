#pragma once
// The validated, immutable configuration snapshot. Built off the hot path by load_config_*;
// once built it is never modified, and workers share it read-only through shared_ptr<const Config>.
// Every key is documented in config/README.md.

#include "config/address.h"
#include "config/cidr.h"
#include "config/hostname.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
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
    // A binary upgrade: how long the new process has to become ready before the old one gives
    // up on it (kills it and keeps serving).
    Duration upgrade_timeout{std::chrono::seconds(60)};
    // SIGTERM/SIGINT: /readyz says 503 at once but the listeners go on accepting this long, so a
    // router (BGP/ECMP) can withdraw this node before it refuses anything. 0: stop accepting at once.
    Duration drain_delay{0};
    // Open client connections per worker at once. Unset: derived at start from RLIMIT_NOFILE
    // (src/control/fd_limit.h), so that passgate runs out of connection slots before descriptors.
    std::optional<std::uint32_t> max_connections_per_worker;
    // Connections per worker at which it stops accepting (new ones wait in the kernel's listen
    // queue, HAProxy's maxconn behaviour) until it holds half as many. Unset: it never pauses.
    std::optional<std::uint32_t> pause_accepting_at;
    // Bytes of ClientHellos buffered before routing, over all connections (each worker has its
    // share, max_hello_memory / workers). A hello that would grow past it is refused.
    std::uint64_t max_hello_memory = 64ull * 1024 * 1024;
    // Each listener's SO_REUSEPORT group picks the socket of the worker pinned to the CPU that
    // received the SYN (a classic BPF program on the group), instead of the kernel's hash of the
    // 4-tuple: a connection's softirq work, accept and forwarding stay on one CPU.
    bool reuseport_cpu_steering = false;
    // QUIC flows (one backend UDP socket each) a worker holds at once; a new client beyond it is
    // dropped (passgate_quic_initial_rejected_total{reason="flow_limit"}).
    std::uint32_t max_quic_flows_per_worker = 16384;
};

enum class AccessLogFormat { logfmt, json };

struct AccessLog {
    bool enabled = true;
    AccessLogFormat format = AccessLogFormat::logfmt;
    std::string path = "-";  // "-": stderr (the journal under systemd); else a file, appended
    int path_line = 0;       // line of `path` (0: not set), for the --check of the file
};

// [dns]: how `dns` and `dns_srv` services are resolved.
struct Dns {
    std::vector<Address> servers;  // empty: the servers of /etc/resolv.conf
    Duration timeout{std::chrono::seconds(2)};  // per try
    unsigned tries = 2;
};

// [kubernetes]: where the Kubernetes API server is and how passgate authenticates to it, for
// services with a `kubernetes` key. Exactly one of kubeconfig, api_server and in_cluster = true;
// src/discovery/kubernetes_credentials.h loads the files.
struct Kubernetes {
    bool configured = false;     // the table is present
    std::string kubeconfig;      // absolute path (relative to the config's folder), "" when not used
    std::string context;         // kubeconfig context; "" = its current-context
    std::string api_server;      // "https://host:port" (https only; no path)
    std::string ca_file;         // absolute
    std::string token_file;      // absolute
    std::string client_cert_file;
    std::string client_key_file;
    bool in_cluster = false;
    std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";  // in_cluster: token, ca.crt
    Duration request_timeout{std::chrono::seconds(10)};  // a list or get, start to end
    Duration watch_timeout{std::chrono::minutes(5)};     // timeoutSeconds asked of the server per watch
    Duration retry_initial_delay{std::chrono::milliseconds(500)};  // back-off after a failure, doubling,
    Duration retry_max_delay{std::chrono::seconds(30)};            // with jitter, up to this
    int line = 0;
    friend bool operator==(const Kubernetes&, const Kubernetes&) = default;
};

// [gateway_api]: Gateway API objects (GatewayClass, Gateway, TLSRoute, ReferenceGrant) as a second
// source of listeners, routes and services (src/gateway/ translates them). From manifest files,
// or (watch = true) from the [kubernetes] API server, with status written back.
struct GatewayApi {
    bool configured = false;                   // the table is present
    std::vector<std::string> gateway_classes;  // at least one; the GatewayClass names served
    std::vector<std::string> manifests;        // absolute paths of files or folders (not with watch)
    bool watch = false;                        // the objects come from the API server ([kubernetes])
    std::string listen_address = "0.0.0.0";   // IP literal Gateway listeners bind ("::": dual stack)
    // Written as status.parents[].controllerName of TLSRoutes, and the GatewayClass's
    // controllerName that makes passgate write GatewayClass and Gateway status (watch mode).
    std::string controller_name = "passgate.io/gateway-controller";
    // Watch mode: the coordination.k8s.io Lease whose holder writes status (one writer per class
    // in a fleet); held by "<hostname>_<pid>" for lease_duration, renewed at a third of it.
    std::string lease_namespace = "default";
    std::string lease_name = "passgate-gateway-status";
    Duration lease_duration{std::chrono::seconds(15)};
    // Gateway status.addresses: this value (an IP literal); unset: listen_address unless it is
    // a wildcard (then no address is written).
    std::optional<std::string> status_address;
    int line = 0;
    friend bool operator==(const GatewayApi&, const GatewayApi&) = default;
};

struct Admin {
    Address address;  // default 127.0.0.1:9901
    // Metric series hidden from /metrics (an endpoint gone from its service, a route or service
    // removed by a reload) are freed once hidden this long and no longer used. Within it, a
    // series that comes back keeps counting from its old values.
    Duration departed_series_retention{std::chrono::seconds(60)};
    // A connection must deliver its request head within this long (and get its response).
    Duration request_timeout{std::chrono::seconds(2)};
    // Connections held at once, and from one client address at once. When either is reached, a
    // new connection closes the oldest one still waiting for its request head (of that address,
    // or of all): a new probe always gets a slot.
    std::uint32_t max_connections = 256;
    std::uint32_t max_connections_per_source = 16;
};

// What a listener speaks: TLS over TCP, or QUIC over UDP (routed by the ClientHello inside the
// client's Initial packets, src/proxy/quic_flows.h).
enum class ListenerProtocol { tls, quic };

struct Listener {
    std::string name;
    Address address;
    ListenerProtocol protocol = ListenerProtocol::tls;
    // quic: a flow (client address or server connection ID to backend socket) with no datagram
    // either way this long is forgotten. UDP has no close: this is how a flow ends.
    Duration quic_flow_idle_timeout{std::chrono::seconds(30)};
    std::optional<std::string> hostname;  // lowercased; exact or "*.suffix"
    Duration client_hello_timeout{std::chrono::seconds(10)};
    // tls: TCP_DEFER_ACCEPT on the listening sockets (reactor::set_defer_accept): a connection is
    // accepted once its first bytes arrived. false: at the end of the handshake.
    bool defer_accept = true;
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
    // Open connections at once, exact over all workers (one shared count, src/proxy/admission.h).
    std::optional<std::uint32_t> max_connections;
    // New connections per second; one token bucket shared by all workers, refilled at this rate
    // and holding as many tokens (a burst of one second's worth).
    std::optional<std::uint32_t> max_connection_rate;
    int line = 0;                                     // where the [[listener]] table starts
    // Made from a Gateway listener (src/gateway/): "FILE:LINE: Gateway ns/name listener l", or
    // "Gateway ns/name listener l" from the API server. Empty for a [[listener]] of the TOML.
    std::string origin;
};

struct BackendRef {
    std::string service;  // validated to name a [[service]]; empty when `invalid` is set
    std::uint32_t weight = 1;  // 1.. in the TOML; a Gateway API backendRef may have 0 (no traffic)
    // A TLSRoute backendRef that cannot be used (unknown Service, wrong kind, not permitted by a
    // ReferenceGrant): it keeps its weight's share of connections and closes them
    // (close reason invalid_backend), as the Gateway API requires. Says why, e.g.
    // "BackendNotFound: Service default/missing port 443".
    std::string invalid;
};

struct Route {
    std::string name;
    std::vector<std::string> listeners;  // validated to name [[listener]]s
    std::vector<std::string> hostnames;  // lowercased; exact or "*.suffix"; may be empty
    // More hostnames, one a line, in a watched file (src/wire/hostnames_file.h): absolute (a
    // relative path is resolved against the config's folder); empty: none. A route with a file
    // is not a route "without hostnames", even when the file lists none.
    std::string hostnames_file;
    std::vector<std::string> alpn;       // optional: match only hellos offering one of these
    std::vector<BackendRef> backends;    // at least one
    // When a reload removes this route, its open connections are closed after this long;
    // unset: they run until they end on their own.
    std::optional<Duration> drain_timeout;
    // Client addresses checked after routing, before any backend is touched.
    AccessList access;
    // Open connections routed here at once (from all its listeners together); exact over all
    // workers like Listener::max_connections.
    std::optional<std::uint32_t> max_connections;
    // A connection routed here is closed (reason max_duration) this long after it was accepted.
    std::optional<Duration> max_connection_duration;
    int line = 0;
    // Made from a TLSRoute (src/gateway/): "FILE:LINE: TLSRoute ns/name" or "TLSRoute ns/name".
    std::string origin;
};

// How a service spreads connections over its endpoints (src/routing/service_pool.h has the details).
enum class Balance { round_robin, least_connections, random_two, maglev };
// What maglev hashes: the client's IP address (no port), or the SNI.
enum class HashKey { source_ip, sni };

// Where a service's endpoints come from.
enum class Discovery {
    static_list,  // `endpoints = [...]`
    dns,          // `dns = "name"` + `port`: A and AAAA records
    dns_srv,      // `dns_srv = "_service._proto.name"`: SRV records, then their targets' A/AAAA
    file,         // `endpoints_file = "path"`, watched with inotify
    kubernetes,   // `kubernetes = { namespace, service, port }`: a Service's EndpointSlices
};

// [[service]] kubernetes = { namespace = "default", service = "passthrough-echoserver", port = 443 }
struct KubernetesBackend {
    std::string namespace_name;
    std::string service;
    std::variant<std::uint16_t, std::string> port;  // the Service's port: number or name
    friend bool operator==(const KubernetesBackend&, const KubernetesBackend&) = default;
};

// [service.health_check]: active checks, from the control thread (one prober for all workers).
struct HealthCheck {
    enum class Kind { tcp, tls };
    Duration interval{std::chrono::seconds(5)};
    Duration timeout{std::chrono::seconds(2)};
    unsigned healthy_threshold = 2;    // consecutive passes to become healthy again
    unsigned unhealthy_threshold = 3;  // consecutive failures to become unhealthy
    Kind kind = Kind::tcp;
    std::string sni;                   // tls: server name in the probe's ClientHello (may be empty)

    friend bool operator==(const HealthCheck&, const HealthCheck&) = default;
};

// [service.outlier_detection]: passive checks. Each worker counts the connect failures it sees;
// `consecutive_failures` of them in a row eject the endpoint on that worker for
// base_ejection_time, doubled on each ejection in a row, at most max_ejection_time. A success
// resets the count and the doubling.
struct OutlierDetection {
    unsigned consecutive_failures = 5;  // 0: off
    Duration base_ejection_time{std::chrono::seconds(5)};
    Duration max_ejection_time{std::chrono::seconds(300)};
};

// PROXY protocol header written to the backend before the hello (HAProxy's specification).
enum class ProxyProtocol { none, v1, v2 };

struct Endpoint {
    Address address;
    std::uint32_t weight = 1;
    std::optional<std::uint32_t> max_connections;  // open at once, split across workers
};

struct Service {
    std::string name;
    Discovery discovery = Discovery::static_list;
    std::vector<Endpoint> endpoints;  // static_list
    std::string dns_name;             // dns: the name; dns_srv: the SRV name
    std::uint16_t port = 0;           // dns: the port of every resolved address
    // DNS answers are re-resolved after their TTL, clamped to [dns_min_ttl, dns_max_ttl]; a
    // failed resolution is retried after dns_min_ttl and keeps the last good set.
    Duration dns_min_ttl{std::chrono::seconds(1)};
    Duration dns_max_ttl{std::chrono::seconds(300)};
    std::string endpoints_file;       // file: absolute (relative paths resolved against the config's folder)
    std::optional<KubernetesBackend> kubernetes;  // kubernetes: the Service and its port
    // max_connections of every discovered endpoint (dns, dns_srv, kubernetes; an endpoints file
    // line may set its own).
    std::optional<std::uint32_t> endpoint_max_connections;
    Balance balance = Balance::round_robin;
    HashKey hash_key = HashKey::source_ip;  // maglev only
    std::optional<HealthCheck> health_check;
    OutlierDetection outlier_detection;
    Duration connect_timeout{std::chrono::seconds(3)};
    unsigned connect_attempts = 3;  // endpoints tried before the client is closed
    ProxyProtocol send_proxy_protocol = ProxyProtocol::none;
    int line = 0;
    // Made for a TLSRoute backendRef (src/gateway/): "TLSRoute ns/name backendRef ns/svc:port".
    std::string origin;
};

struct Config {
    std::string source;  // file path (or a name given to parse_config)
    // FNV-1a 64 of exactly the bytes this config was parsed from, as 16 hex digits: identifies
    // the config in use (passgate_config_hash_info) and tells a reload whether anything changed.
    // Computed from the same bytes as the parse, so a write between reading and hashing cannot
    // make the two disagree.
    std::string source_hash;
    Runtime runtime;
    Admin admin;
    AccessLog access_log;
    Dns dns;
    Kubernetes kubernetes;
    GatewayApi gateway_api;
    std::vector<Listener> listeners;
    std::vector<Route> routes;
    std::vector<Service> services;
    std::vector<std::string> warnings;  // "FILE:LINE: message", e.g. a route that attaches nowhere

    const Listener* find_listener(std::string_view name) const;
    const Route* find_route(std::string_view name) const;
    const Service* find_service(std::string_view name) const;
};

Config parse_config(std::string_view toml_text, std::string_view source_name);
// The warnings of a validated config, as Config::warnings holds them for a parsed file (config/
// README.md, "Warnings"); for a config merged from the TOML and Gateway API objects. An item made
// from an object is named by its origin instead of FILE:LINE of the TOML.
std::vector<std::string> config_warnings(const Config& config);
// The same settings, wherever in the file they are written (`line` aside): a reload that only moves
// a table, or adds a comment above it, changes nothing.
bool same_settings(const Kubernetes& a, const Kubernetes& b);
bool same_settings(const GatewayApi& a, const GatewayApi& b);
// FNV-1a 64 of `bytes` as 16 lowercase hex digits (Config::source_hash).
std::string config_hash(std::string_view bytes);

// The hostnames `route` matches on `listener` (Gateway API intersection, config/hostname.h), with
// one exception: a route without hostnames that is the listener's default_route serves there only
// as the default (no SNI, or no match), as in the example config. Empty: matches no SNI there.
// Only its `hostnames`: the names of its hostnames_file are read and intersected by src/routing.
std::vector<std::string> attached_hostnames(const Listener& listener, const Route& route);
// Reads the file once (at most kMaxConfigFileBytes) and parses and hashes those bytes.
Config load_config_file(const std::string& path);

// Where a discovered service's endpoints come from, for `--check` and `route`:
// "dns app.example.com port 8443", "dns_srv _https._tcp.example.com", "endpoints_file /etc/x",
// "kubernetes default/passthrough-echoserver port 443" (or "port https").
// Empty for a static list.
std::string describe_discovery(const Service& service);

// "" when `url` is an API server URL passgate accepts: "https://host[:port]" (host a DNS name,
// an IPv4 address or an IPv6 address in brackets; no path, query or user); else what is wrong.
// For [kubernetes] api_server and a kubeconfig's cluster server.
std::string check_api_server_url(std::string_view url);

// The hostname rules (validate_hostname_pattern, validate_dns_name, ascii_lower) are in
// config/hostname.h, shared with the ClientHello parser.
// "10s", "250ms", "1h", "1m30s"? -> only single-unit forms: <digits>(ms|s|m|h). nullopt if malformed.
std::optional<Duration> parse_duration(std::string_view text, bool allow_zero = false);

}  // namespace passgate::config
