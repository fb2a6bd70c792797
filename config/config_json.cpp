#include "config/config_json.h"

#include <optional>
#include <variant>

namespace passgate::config {

namespace {

using Json = nlohmann::ordered_json;

template <typename T>
Json or_null(const std::optional<T>& value) {
    return value ? Json(*value) : Json(nullptr);
}

Json or_null(const std::optional<Duration>& value) {
    return value ? Json(duration_text(*value)) : Json(nullptr);
}

// An empty string stands for "not set" in the few places Config keeps strings that way.
Json text_or_null(const std::string& value) {
    return value.empty() ? Json(nullptr) : Json(value);
}

Json cidrs(const std::vector<Cidr>& list) {
    Json out = Json::array();
    for (const Cidr& cidr : list) out.push_back(cidr.to_string());
    return out;
}

Json addresses(const std::vector<Address>& list) {
    Json out = Json::array();
    for (const Address& address : list) out.push_back(address.to_string());
    return out;
}

Json strings(const std::vector<std::string>& list) {
    Json out = Json::array();
    for (const std::string& item : list) out.push_back(item);
    return out;
}

void add_origin(Json& out, const std::string& origin) {
    if (!origin.empty()) out["origin"] = origin;
}

const char* balance_name(Balance balance) {
    switch (balance) {
        case Balance::round_robin: return "round_robin";
        case Balance::least_connections: return "least_connections";
        case Balance::random_two: return "random_two";
        case Balance::maglev: return "maglev";
    }
    return "round_robin";
}

Json runtime_json(const Runtime& runtime) {
    Json out;
    out["workers"] = runtime.workers;
    out["shutdown_timeout"] = duration_text(runtime.shutdown_timeout);
    out["upgrade_timeout"] = duration_text(runtime.upgrade_timeout);
    out["drain_delay"] = duration_text(runtime.drain_delay);
    out["max_connections_per_worker"] = or_null(runtime.max_connections_per_worker);
    out["pause_accepting_at"] = or_null(runtime.pause_accepting_at);
    out["max_hello_memory"] = runtime.max_hello_memory;
    out["reuseport_cpu_steering"] = runtime.reuseport_cpu_steering;
    out["max_quic_flows_per_worker"] = runtime.max_quic_flows_per_worker;
    return out;
}

Json admin_json(const Admin& admin) {
    Json out;
    out["address"] = admin.address.to_string();
    out["departed_series_retention"] = duration_text(admin.departed_series_retention);
    out["request_timeout"] = duration_text(admin.request_timeout);
    out["max_connections"] = admin.max_connections;
    out["max_connections_per_source"] = admin.max_connections_per_source;
    return out;
}

Json access_log_json(const AccessLog& log) {
    Json out;
    out["enabled"] = log.enabled;
    out["format"] = log.format == AccessLogFormat::json ? "json" : "logfmt";
    out["path"] = log.path;
    return out;
}

Json dns_json(const Dns& dns) {
    Json out;
    out["servers"] = addresses(dns.servers);  // empty: /etc/resolv.conf's
    out["timeout"] = duration_text(dns.timeout);
    out["tries"] = dns.tries;
    return out;
}

// Paths only: the files (token, client key) are never read here.
Json kubernetes_json(const Kubernetes& kubernetes) {
    if (!kubernetes.configured) return nullptr;
    Json out;
    out["kubeconfig"] = text_or_null(kubernetes.kubeconfig);
    out["context"] = text_or_null(kubernetes.context);
    out["api_server"] = text_or_null(kubernetes.api_server);
    out["ca_file"] = text_or_null(kubernetes.ca_file);
    out["token_file"] = text_or_null(kubernetes.token_file);
    out["client_cert_file"] = text_or_null(kubernetes.client_cert_file);
    out["client_key_file"] = text_or_null(kubernetes.client_key_file);
    out["in_cluster"] = kubernetes.in_cluster;
    out["service_account_dir"] = kubernetes.service_account_dir;
    out["request_timeout"] = duration_text(kubernetes.request_timeout);
    out["watch_timeout"] = duration_text(kubernetes.watch_timeout);
    out["retry_initial_delay"] = duration_text(kubernetes.retry_initial_delay);
    out["retry_max_delay"] = duration_text(kubernetes.retry_max_delay);
    return out;
}

Json gateway_api_json(const GatewayApi& gateway) {
    if (!gateway.configured) return nullptr;
    Json out;
    out["gateway_class"] = strings(gateway.gateway_classes);
    out["manifests"] = strings(gateway.manifests);
    out["watch"] = gateway.watch;
    out["listen_address"] = gateway.listen_address;
    out["status_address"] = or_null(gateway.status_address);
    out["controller_name"] = gateway.controller_name;
    out["lease_namespace"] = gateway.lease_namespace;
    out["lease_name"] = gateway.lease_name;
    out["lease_duration"] = duration_text(gateway.lease_duration);
    return out;
}

Json listener_json(const Listener& listener) {
    Json out;
    out["name"] = listener.name;
    out["address"] = listener.address.to_string();
    out["protocol"] = listener.protocol == ListenerProtocol::quic ? "quic" : "tls";
    out["quic_flow_idle_timeout"] = duration_text(listener.quic_flow_idle_timeout);
    out["hostname"] = or_null(listener.hostname);
    out["client_hello_timeout"] = duration_text(listener.client_hello_timeout);
    out["max_client_hello_size"] = listener.max_client_hello_size;
    out["idle_timeout"] = duration_text(listener.idle_timeout);
    out["default_route"] = or_null(listener.default_route);
    out["allow"] = cidrs(listener.access.allow);
    out["deny"] = cidrs(listener.access.deny);
    out["max_connections"] = or_null(listener.max_connections);
    out["max_connection_rate"] = or_null(listener.max_connection_rate);
    out["accept_proxy_protocol"] = listener.accept_proxy_protocol;
    if (listener.protocol == ListenerProtocol::tls) out["defer_accept"] = listener.defer_accept;
    out["trusted_proxies"] = cidrs(listener.trusted_proxies);
    add_origin(out, listener.origin);
    return out;
}

Json route_json(const Route& route) {
    Json out;
    out["name"] = route.name;
    out["listeners"] = strings(route.listeners);
    out["hostnames"] = strings(route.hostnames);
    out["hostnames_file"] = text_or_null(route.hostnames_file);
    out["alpn"] = strings(route.alpn);
    Json backends = Json::array();
    for (const BackendRef& backend : route.backends) {
        Json item;
        item["service"] = text_or_null(backend.service);
        item["weight"] = backend.weight;
        if (!backend.invalid.empty()) item["invalid"] = backend.invalid;
        backends.push_back(std::move(item));
    }
    out["backends"] = std::move(backends);
    out["drain_timeout"] = or_null(route.drain_timeout);
    out["allow"] = cidrs(route.access.allow);
    out["deny"] = cidrs(route.access.deny);
    out["max_connections"] = or_null(route.max_connections);
    out["max_connection_duration"] = or_null(route.max_connection_duration);
    add_origin(out, route.origin);
    return out;
}

Json health_check_json(const std::optional<HealthCheck>& check) {
    if (!check) return nullptr;
    Json out;
    out["interval"] = duration_text(check->interval);
    out["timeout"] = duration_text(check->timeout);
    out["healthy_threshold"] = check->healthy_threshold;
    out["unhealthy_threshold"] = check->unhealthy_threshold;
    out["kind"] = check->kind == HealthCheck::Kind::tls ? "tls" : "tcp";
    out["sni"] = check->sni;
    return out;
}

Json kubernetes_backend_json(const std::optional<KubernetesBackend>& backend) {
    if (!backend) return nullptr;
    Json out;
    out["namespace"] = backend->namespace_name;
    out["service"] = backend->service;
    if (const auto* number = std::get_if<std::uint16_t>(&backend->port)) out["port"] = *number;
    else out["port"] = std::get<std::string>(backend->port);
    return out;
}

// The discovery keys a service does not use are null (exactly one source is set).
Json service_json(const Service& service) {
    Json out;
    out["name"] = service.name;
    if (service.discovery == Discovery::static_list) {
        Json endpoints = Json::array();
        for (const Endpoint& endpoint : service.endpoints) {
            Json item;
            item["address"] = endpoint.address.to_string();
            item["weight"] = endpoint.weight;
            item["max_connections"] = or_null(endpoint.max_connections);
            endpoints.push_back(std::move(item));
        }
        out["endpoints"] = std::move(endpoints);
    } else {
        out["endpoints"] = nullptr;
    }
    out["dns"] = service.discovery == Discovery::dns ? Json(service.dns_name) : Json(nullptr);
    out["port"] = service.discovery == Discovery::dns ? Json(service.port) : Json(nullptr);
    out["dns_srv"] = service.discovery == Discovery::dns_srv ? Json(service.dns_name) : Json(nullptr);
    out["endpoints_file"] = service.discovery == Discovery::file ? Json(service.endpoints_file) : Json(nullptr);
    out["kubernetes"] = kubernetes_backend_json(service.kubernetes);
    out["dns_min_ttl"] = duration_text(service.dns_min_ttl);
    out["dns_max_ttl"] = duration_text(service.dns_max_ttl);
    out["endpoint_max_connections"] = or_null(service.endpoint_max_connections);
    out["balance"] = balance_name(service.balance);
    out["hash_key"] = service.hash_key == HashKey::sni ? "sni" : "source_ip";
    out["health_check"] = health_check_json(service.health_check);
    Json outlier;
    outlier["consecutive_failures"] = service.outlier_detection.consecutive_failures;
    outlier["base_ejection_time"] = duration_text(service.outlier_detection.base_ejection_time);
    outlier["max_ejection_time"] = duration_text(service.outlier_detection.max_ejection_time);
    out["outlier_detection"] = std::move(outlier);
    out["connect_timeout"] = duration_text(service.connect_timeout);
    out["connect_attempts"] = service.connect_attempts;
    switch (service.send_proxy_protocol) {
        case ProxyProtocol::none: out["send_proxy_protocol"] = nullptr; break;
        case ProxyProtocol::v1: out["send_proxy_protocol"] = "v1"; break;
        case ProxyProtocol::v2: out["send_proxy_protocol"] = "v2"; break;
    }
    add_origin(out, service.origin);
    return out;
}

}  // namespace

std::string duration_text(Duration duration) {
    const std::int64_t ms = duration.count();
    if (ms == 0) return "0s";  // [runtime] drain_delay's "off", as its default is written
    if (ms != 0 && ms % (60 * 60 * 1000) == 0) return std::to_string(ms / (60 * 60 * 1000)) + "h";
    if (ms != 0 && ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
    if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

nlohmann::ordered_json effective_config_json(const Config& config) {
    Json out;
    out["runtime"] = runtime_json(config.runtime);
    out["admin"] = admin_json(config.admin);
    out["access_log"] = access_log_json(config.access_log);
    out["dns"] = dns_json(config.dns);
    out["kubernetes"] = kubernetes_json(config.kubernetes);
    out["gateway_api"] = gateway_api_json(config.gateway_api);
    Json listeners = Json::array();
    for (const Listener& listener : config.listeners) listeners.push_back(listener_json(listener));
    out["listener"] = std::move(listeners);
    Json routes = Json::array();
    for (const Route& route : config.routes) routes.push_back(route_json(route));
    out["route"] = std::move(routes);
    Json services = Json::array();
    for (const Service& service : config.services) services.push_back(service_json(service));
    out["service"] = std::move(services);
    return out;
}

}  // namespace passgate::config
