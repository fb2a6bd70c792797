// Config loading: TOML text -> validated, immutable Config. Every key is documented in
// config/README.md; keep the two in step.

#include "config/config.h"

#include "config/toml_reader.h"
#include "config/warnings.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace passgate::config {

namespace {

using detail::fail_type;
using detail::line_of;
using detail::quote;
using detail::Source;
using detail::TableReader;

constexpr std::string_view kRootKeys[] = {"runtime", "admin", "access_log", "dns", "listener",
                                          "route", "service"};
constexpr std::string_view kDnsKeys[] = {"servers", "timeout", "tries"};
constexpr std::string_view kRuntimeKeys[] = {"workers", "shutdown_timeout", "max_connections_per_worker",
                                             "max_hello_memory"};
constexpr std::string_view kAccessLogKeys[] = {"enabled", "format", "path"};
constexpr std::string_view kAdminKeys[] = {"address", "departed_series_retention", "request_timeout",
                                           "max_connections", "max_connections_per_source"};
constexpr std::string_view kListenerKeys[] = {
    "name",         "address",      "hostname",     "client_hello_timeout", "max_client_hello_size",
    "idle_timeout", "default_route", "allow", "deny", "max_connections", "max_connection_rate",
    "accept_proxy_protocol", "trusted_proxies"};
constexpr std::string_view kRouteKeys[] = {"name",     "listeners",       "hostnames",
                                           "alpn",     "backends",        "drain_timeout",
                                           "allow",    "deny",            "max_connections",
                                           "max_connection_duration"};
constexpr std::string_view kBackendKeys[] = {"service", "weight"};
constexpr std::string_view kServiceKeys[] = {
    "name",           "endpoints",          "dns",           "port",
    "dns_srv",        "endpoints_file",     "dns_min_ttl",   "dns_max_ttl",
    "endpoint_max_connections", "balance",  "hash_key",      "health_check",
    "outlier_detection", "connect_timeout", "connect_attempts", "send_proxy_protocol"};
constexpr std::string_view kEndpointKeys[] = {"address", "weight", "max_connections"};
constexpr std::string_view kHealthCheckKeys[] = {"interval",          "timeout",
                                                 "healthy_threshold", "unhealthy_threshold",
                                                 "kind",              "sni"};
constexpr std::string_view kOutlierKeys[] = {"consecutive_failures", "base_ejection_time",
                                             "max_ejection_time"};

constexpr std::string_view kAddressHelp =
    "expected \"a.b.c.d:port\" or \"[ipv6]:port\" with a port from 1 to 65535 (host names are "
    "not resolved)";

constexpr unsigned kMaxWorkers = 1024;
constexpr std::int64_t kMinHelloSize = 512;
constexpr std::int64_t kMaxHelloSize = 1024 * 1024;
// [runtime] max_hello_memory: at least one largest hello; at most 64 GiB.
constexpr std::int64_t kMinHelloMemory = kMaxHelloSize;
constexpr std::int64_t kMaxHelloMemory = 64ll * 1024 * 1024 * 1024;
constexpr std::int64_t kMaxAdminConnections = 65536;
constexpr Duration kMaxAdminRequestTimeout{std::chrono::seconds(60)};
constexpr std::int64_t kMaxBackendWeight = 1'000'000;
constexpr std::int64_t kMaxEndpointWeight = 10'000;
constexpr std::int64_t kMaxConnectAttempts = 16;
constexpr std::int64_t kMaxThreshold = 100;
constexpr std::int64_t kMaxDnsTries = 10;
constexpr std::size_t kMaxDnsServers = 16;
constexpr std::int64_t kMaxConnections = 10'000'000;
constexpr std::int64_t kMaxConnectionRate = 10'000'000;
constexpr std::size_t kMaxCidrs = 10'000;
constexpr std::size_t kMaxConfigFileBytes = 16 * 1024 * 1024;
constexpr Duration kMaxDuration = std::chrono::hours(24 * 365);

std::string index_path(std::string_view base, std::size_t index) {
    return std::string(base) + "[" + std::to_string(index) + "]";
}

bool valid_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
    });
}

// Lines of values that later cross-reference checks point at.
struct ListenerLines {
    int address = 0;
    int default_route = 0;
};
struct RouteLines {
    std::vector<int> listeners;
    std::vector<int> backend_services;
};

class Builder {
public:
    Builder(const Source& source, const toml::table& root) : source_(source), root_(root) {}

    Config build(std::string_view source_name) {
        const std::size_t slash = source_name.rfind('/');
        config_folder_ = slash == std::string_view::npos ? std::string("./")
                                                         : std::string(source_name.substr(0, slash + 1));
        config_.source = std::string(source_name);
        TableReader root(source_, root_, "", kRootKeys);
        read_runtime(root);
        read_admin(root);
        read_access_log(root);
        read_dns(root);
        const auto listeners = tables(root, "listener");
        if (listeners.empty()) {
            source_.fail(1, "listener", "at least one [[listener]] is required");
        }
        for (std::size_t i = 0; i < listeners.size(); ++i) read_listener(*listeners[i], i);
        const auto services = tables(root, "service");
        for (std::size_t i = 0; i < services.size(); ++i) read_service(*services[i], i);
        const auto routes = tables(root, "route");
        for (std::size_t i = 0; i < routes.size(); ++i) read_route(*routes[i], i);
        check_default_routes();
        config_.warnings = detail::collect_warnings(config_);
        return std::move(config_);
    }

private:
    // An array of tables ([[key]] or key = [ {...}, ... ]); empty when the key is absent.
    std::vector<const toml::table*> tables(const TableReader& root, std::string_view key) {
        std::vector<const toml::table*> out;
        const toml::node* node = root.find(key);
        if (node == nullptr) return out;
        const std::string path = root.path_of(key);
        if (!node->is_array()) {
            fail_type(source_, *node, path,
                      "an array of tables ([[" + std::string(key) + "]] sections)");
        }
        const toml::array& array = *node->as_array();
        for (std::size_t i = 0; i < array.size(); ++i) {
            if (!array[i].is_table()) fail_type(source_, array[i], index_path(path, i), "a table");
            out.push_back(array[i].as_table());
        }
        return out;
    }

    // A table-valued key ([runtime]); nullptr when absent.
    const toml::table* table(const TableReader& root, std::string_view key) {
        const toml::node* node = root.find(key);
        if (node == nullptr) return nullptr;
        if (!node->is_table()) {
            fail_type(source_, *node, root.path_of(key),
                      "a table ([" + std::string(key) + "] section)");
        }
        return node->as_table();
    }

    // A string that must parse as an address: `node` at `path`.
    Address address(const toml::node& node, const std::string& path) {
        if (!node.is_string()) fail_type(source_, node, path, "an address string like \"1.2.3.4:443\"");
        const std::string& text = node.as_string()->get();
        auto parsed = parse_address(text);
        if (!parsed) {
            source_.fail(line_of(node), path,
                         "invalid address " + quote(text) + ": " + std::string(kAddressHelp));
        }
        return *parsed;
    }

    std::string name(const TableReader& table) {
        std::string value = *table.string("name", true);
        if (value.empty()) table.fail("name", "must not be empty");
        if (!valid_name(value)) {
            table.fail("name", "invalid name " + quote(value) +
                                   ": use only letters, digits, '_', '.' and '-'");
        }
        return value;
    }

    template <typename T>
    void check_unique_name(const TableReader& table, const std::vector<T>& existing,
                           std::string_view kind, const std::string& value) {
        for (const T& item : existing) {
            if (item.name == value) {
                table.fail("name", "duplicate " + std::string(kind) + " name " + quote(value) +
                                       " (first defined at line " + std::to_string(item.line) +
                                       ")");
            }
        }
    }

    // Lowercased and validated hostname pattern from a string node.
    std::string hostname(const toml::node& node, const std::string& path) {
        if (!node.is_string()) fail_type(source_, node, path, "a hostname string");
        const std::string& text = node.as_string()->get();
        std::string lowered = ascii_lower(text);
        const std::string error = validate_hostname_pattern(lowered);
        if (!error.empty()) {
            source_.fail(line_of(node), path, "invalid hostname " + quote(text) + ": " + error);
        }
        return lowered;
    }

    // `allow` / `deny`: optional arrays of CIDR strings, strictly parsed, no repeats.
    std::vector<Cidr> cidrs(const TableReader& table, std::string_view key) {
        std::vector<Cidr> out;
        const toml::array* array = table.array(key, false);
        if (array == nullptr) return out;
        if (array->size() > kMaxCidrs) {
            table.fail(key, "at most " + std::to_string(kMaxCidrs) + " entries");
        }
        const std::string path = table.path_of(key);
        for (std::size_t i = 0; i < array->size(); ++i) {
            const toml::node& item = (*array)[i];
            const std::string item_path = index_path(path, i);
            if (!item.is_string()) {
                fail_type(source_, item, item_path, "a CIDR string like \"10.0.0.0/8\" or \"2001:db8::/32\"");
            }
            const std::string& text = item.as_string()->get();
            std::string error;
            const std::optional<Cidr> cidr = parse_cidr(text, error);
            if (!cidr) source_.fail(line_of(item), item_path, "invalid CIDR " + quote(text) + ": " + error);
            if (std::find(out.begin(), out.end(), *cidr) != out.end()) {
                source_.fail(line_of(item), item_path, "CIDR " + quote(text) + " is listed twice");
            }
            out.push_back(*cidr);
        }
        return out;
    }

    AccessList access_list(const TableReader& table) {
        AccessList list;
        list.allow = cidrs(table, "allow");
        list.deny = cidrs(table, "deny");
        return list;
    }

    void read_runtime(const TableReader& root) {
        const toml::table* node = table(root, "runtime");
        if (node == nullptr) return;
        TableReader runtime(source_, *node, root.path_of("runtime"), kRuntimeKeys);
        if (auto workers = runtime.integer("workers", 0, kMaxWorkers)) {
            config_.runtime.workers = static_cast<unsigned>(*workers);
        }
        if (auto value = runtime.duration("shutdown_timeout")) config_.runtime.shutdown_timeout = *value;
        if (auto value = runtime.integer("max_connections_per_worker", 1, kMaxConnections))
            config_.runtime.max_connections_per_worker = static_cast<std::uint32_t>(*value);
        if (auto value = runtime.integer("max_hello_memory", kMinHelloMemory, kMaxHelloMemory))
            config_.runtime.max_hello_memory = static_cast<std::uint64_t>(*value);
    }

    void read_access_log(const TableReader& root) {
        const toml::table* node = table(root, "access_log");
        if (node == nullptr) return;
        TableReader access_log(source_, *node, root.path_of("access_log"), kAccessLogKeys);
        if (auto enabled = access_log.boolean("enabled")) config_.access_log.enabled = *enabled;
        if (auto format = access_log.string("format", false)) {
            if (*format == "logfmt") config_.access_log.format = AccessLogFormat::logfmt;
            else if (*format == "json") config_.access_log.format = AccessLogFormat::json;
            else access_log.fail("format", "unknown format " + quote(*format) + " (logfmt or json)");
        }
        if (auto path = access_log.string("path", false)) {
            if (path->empty()) access_log.fail("path", "must not be empty (\"-\" is stderr)");
            config_.access_log.path = *path;
        }
    }

    void read_admin(const TableReader& root) {
        config_.admin.address = *parse_address("127.0.0.1:9901");
        const toml::table* node = table(root, "admin");
        if (node == nullptr) return;
        TableReader admin(source_, *node, root.path_of("admin"), kAdminKeys);
        if (const toml::node* value = admin.find("address")) {
            config_.admin.address = address(*value, admin.path_of("address"));
            admin_address_line_ = line_of(*value);
        }
        if (auto value = admin.duration("departed_series_retention"))
            config_.admin.departed_series_retention = *value;
        if (auto value = admin.duration("request_timeout")) {
            if (*value > kMaxAdminRequestTimeout)
                admin.fail("request_timeout", "must be at most \"60s\"");
            config_.admin.request_timeout = *value;
        }
        if (auto value = admin.integer("max_connections", 1, kMaxAdminConnections))
            config_.admin.max_connections = static_cast<std::uint32_t>(*value);
        if (auto value = admin.integer("max_connections_per_source", 1, kMaxAdminConnections))
            config_.admin.max_connections_per_source = static_cast<std::uint32_t>(*value);
    }

    void read_listener(const toml::table& node, std::size_t index) {
        TableReader table(source_, node, index_path("listener", index), kListenerKeys);
        Listener listener;
        listener.line = table.line();
        listener.name = name(table);
        check_unique_name(table, config_.listeners, "listener", listener.name);

        const toml::node* address_node = table.find("address");
        if (address_node == nullptr) table.fail_missing("address");
        listener.address = address(*address_node, table.path_of("address"));
        ListenerLines lines;
        lines.address = line_of(*address_node);
        for (std::size_t i = 0; i < config_.listeners.size(); ++i) {
            if (config_.listeners[i].address == listener.address) {
                table.fail("address", listener.address.to_string() + " is already used by listener " +
                                          quote(config_.listeners[i].name) + " (line " +
                                          std::to_string(listener_lines_[i].address) + ")");
            }
        }
        if (listener.address == config_.admin.address) {
            table.fail("address", listener.address.to_string() + " is also the admin address" +
                                      (admin_address_line_ != 0
                                           ? " (line " + std::to_string(admin_address_line_) + ")"
                                           : std::string(" (the default)")));
        }

        if (const toml::node* value = table.find("hostname")) {
            listener.hostname = hostname(*value, table.path_of("hostname"));
        }
        if (auto value = table.duration("client_hello_timeout")) {
            listener.client_hello_timeout = *value;
        }
        if (auto value = table.integer("max_client_hello_size", kMinHelloSize, kMaxHelloSize)) {
            listener.max_client_hello_size = static_cast<std::uint32_t>(*value);
        }
        if (auto value = table.duration("idle_timeout")) listener.idle_timeout = *value;
        if (auto value = table.string("default_route", false)) {
            listener.default_route = std::move(*value);
            lines.default_route = line_of(*table.find("default_route"));
        }
        listener.access = access_list(table);
        read_proxy_protocol(table, listener);
        if (auto value = table.integer("max_connections", 1, kMaxConnections)) {
            listener.max_connections = static_cast<std::uint32_t>(*value);
        }
        if (auto value = table.integer("max_connection_rate", 1, kMaxConnectionRate)) {
            listener.max_connection_rate = static_cast<std::uint32_t>(*value);
        }
        config_.listeners.push_back(std::move(listener));
        listener_lines_.push_back(lines);
    }

    void read_dns(const TableReader& root) {
        const toml::table* node = table(root, "dns");
        if (node == nullptr) return;
        TableReader dns(source_, *node, root.path_of("dns"), kDnsKeys);
        if (const toml::array* servers = dns.array("servers", false)) {
            if (servers->size() > kMaxDnsServers)
                dns.fail("servers", "at most " + std::to_string(kMaxDnsServers) + " servers");
            const std::string path = dns.path_of("servers");
            for (std::size_t i = 0; i < servers->size(); ++i) {
                const Address server = address((*servers)[i], index_path(path, i));
                if (server.is_unspecified())
                    source_.fail(line_of((*servers)[i]), index_path(path, i),
                                 "the unspecified address (0.0.0.0 or ::) cannot be queried");
                config_.dns.servers.push_back(server);
            }
        }
        if (auto value = dns.duration("timeout")) {
            if (value->count() == 0) dns.fail("timeout", "must be more than 0");
            config_.dns.timeout = *value;
        }
        if (auto value = dns.integer("tries", 1, kMaxDnsTries)) config_.dns.tries = static_cast<unsigned>(*value);
    }

    // accept_proxy_protocol and trusted_proxies go together: a header from just anyone would let
    // any client pick the address that access control, logs and balancing see.
    void read_proxy_protocol(const TableReader& table, Listener& listener) {
        if (auto value = table.boolean("accept_proxy_protocol")) listener.accept_proxy_protocol = *value;
        listener.trusted_proxies = cidrs(table, "trusted_proxies");
        const bool given = table.find("trusted_proxies") != nullptr;
        if (listener.accept_proxy_protocol && !given) {
            table.fail("accept_proxy_protocol",
                       "needs trusted_proxies: the addresses of the load balancers allowed to send "
                       "PROXY headers, like [\"10.0.0.0/8\"]");
        }
        if (listener.accept_proxy_protocol && listener.trusted_proxies.empty()) {
            table.fail("trusted_proxies", "must list at least one CIDR (accept_proxy_protocol is true)");
        }
        if (!listener.accept_proxy_protocol && given) {
            table.fail("trusted_proxies", "only applies with accept_proxy_protocol = true");
        }
    }

    // The one discovery key a service has: endpoints, dns (+ port), dns_srv or endpoints_file.
    void read_discovery(const TableReader& table, Service& service) {
        constexpr std::string_view kinds[] = {"endpoints", "dns", "dns_srv", "endpoints_file"};
        std::vector<std::string_view> given;
        for (std::string_view kind : kinds)
            if (table.find(kind) != nullptr) given.push_back(kind);
        if (given.empty()) {
            table.fail_missing("endpoints");
        }
        if (given.size() > 1) {
            table.fail(given[1], "a service takes its endpoints from one source; " +
                                     std::string(given[0]) + " is already given");
        }
        const std::string_view kind = given[0];
        if (kind != "dns" && table.find("port") != nullptr)
            table.fail("port", "port goes with dns (dns_srv answers carry their own ports)");
        const bool dns_kind = kind == "dns" || kind == "dns_srv";
        for (std::string_view key : {"dns_min_ttl", "dns_max_ttl", "endpoint_max_connections"}) {
            if (!dns_kind && table.find(key) != nullptr &&
                !(key == "endpoint_max_connections" && kind == "endpoints_file"))
                table.fail(key, std::string(key) + " goes with dns or dns_srv");
        }
        if (kind == "endpoints") return read_static_endpoints(table, service);
        if (auto value = table.integer("endpoint_max_connections", 1, kMaxConnections))
            service.endpoint_max_connections = static_cast<std::uint32_t>(*value);
        if (kind == "endpoints_file") {
            service.discovery = Discovery::file;
            std::string path = *table.string("endpoints_file", true);
            if (path.empty()) table.fail("endpoints_file", "must not be empty");
            if (path.find('\0') != std::string::npos) table.fail("endpoints_file", "contains a NUL byte");
            if (path.front() != '/') path = config_folder_ + path;
            service.endpoints_file = std::move(path);
            return;
        }
        service.discovery = kind == "dns" ? Discovery::dns : Discovery::dns_srv;
        std::string name = ascii_lower(*table.string(kind, true));
        if (!name.empty() && name.back() == '.') name.pop_back();
        const std::string error = validate_dns_name(name);
        if (!error.empty()) table.fail(kind, "invalid name " + quote(name) + ": " + error);
        service.dns_name = std::move(name);
        if (kind == "dns") {
            if (table.find("port") == nullptr) table.fail_missing("port");
            service.port = static_cast<std::uint16_t>(*table.integer("port", 1, 65535));
        }
        if (auto value = table.duration("dns_min_ttl")) service.dns_min_ttl = *value;
        if (auto value = table.duration("dns_max_ttl")) service.dns_max_ttl = *value;
        if (service.dns_min_ttl.count() == 0) table.fail("dns_min_ttl", "must be more than 0");
        if (service.dns_max_ttl < service.dns_min_ttl)
            table.fail("dns_max_ttl", "must not be less than dns_min_ttl");
    }

    void read_static_endpoints(const TableReader& table, Service& service) {
        const toml::array& endpoints = *table.array("endpoints", true);
        const std::string endpoints_path = table.path_of("endpoints");
        if (endpoints.empty()) table.fail("endpoints", "must list at least one endpoint");
        std::vector<int> endpoint_lines;
        for (std::size_t i = 0; i < endpoints.size(); ++i) {
            const toml::node& item = endpoints[i];
            const std::string item_path = index_path(endpoints_path, i);
            Endpoint endpoint;
            std::string address_path = item_path;
            const toml::node* address_node = &item;
            if (item.is_table()) {
                TableReader entry(source_, *item.as_table(), item_path, kEndpointKeys);
                address_node = entry.find("address");
                if (address_node == nullptr) entry.fail_missing("address");
                address_path = entry.path_of("address");
                if (auto weight = entry.integer("weight", 0, kMaxEndpointWeight)) {
                    endpoint.weight = static_cast<std::uint32_t>(*weight);
                }
                if (auto limit = entry.integer("max_connections", 1, kMaxConnections)) {
                    endpoint.max_connections = static_cast<std::uint32_t>(*limit);
                }
            } else if (!item.is_string()) {
                fail_type(source_, item, item_path,
                          "an \"ip:port\" string or a table { address = \"ip:port\", weight = N }");
            }
            endpoint.address = address(*address_node, address_path);
            if (endpoint.address.is_unspecified()) {
                source_.fail(line_of(*address_node), address_path,
                             "invalid endpoint " + endpoint.address.to_string() +
                                 ": the unspecified address (0.0.0.0 or ::) cannot be connected to");
            }
            for (std::size_t j = 0; j < service.endpoints.size(); ++j) {
                if (service.endpoints[j].address == endpoint.address) {
                    source_.fail(line_of(*address_node), address_path,
                                 "duplicate endpoint " + endpoint.address.to_string() + " (line " +
                                     std::to_string(endpoint_lines[j]) + ")");
                }
            }
            endpoint_lines.push_back(line_of(*address_node));
            service.endpoints.push_back(endpoint);
        }
    }

    std::optional<HealthCheck> read_health_check(const TableReader& service) {
        const toml::table* node = table(service, "health_check");
        if (node == nullptr) return std::nullopt;
        TableReader table(source_, *node, service.path_of("health_check"), kHealthCheckKeys);
        HealthCheck check;
        if (auto value = table.duration("interval")) check.interval = *value;
        if (auto value = table.duration("timeout")) check.timeout = *value;
        if (check.interval.count() < 10) table.fail("interval", "must be at least 10ms");
        if (check.timeout.count() == 0) table.fail("timeout", "must be more than 0");
        if (auto value = table.integer("healthy_threshold", 1, kMaxThreshold))
            check.healthy_threshold = static_cast<unsigned>(*value);
        if (auto value = table.integer("unhealthy_threshold", 1, kMaxThreshold))
            check.unhealthy_threshold = static_cast<unsigned>(*value);
        if (auto kind = table.string("kind", false)) {
            if (*kind == "tcp") check.kind = HealthCheck::Kind::tcp;
            else if (*kind == "tls") check.kind = HealthCheck::Kind::tls;
            else table.fail("kind", "unknown kind " + quote(*kind) + " (\"tcp\" or \"tls\")");
        }
        if (auto sni = table.string("sni", false)) {
            if (check.kind != HealthCheck::Kind::tls) table.fail("sni", "sni goes with kind = \"tls\"");
            std::string lowered = ascii_lower(*sni);
            const std::string error = validate_hostname_pattern(lowered);
            if (!error.empty() || lowered.starts_with("*."))
                table.fail("sni", "invalid server name " + quote(*sni) +
                                      (error.empty() ? ": a wildcard cannot be sent" : ": " + error));
            check.sni = std::move(lowered);
        }
        return check;
    }

    OutlierDetection read_outlier_detection(const TableReader& service) {
        OutlierDetection outlier;
        const toml::table* node = table(service, "outlier_detection");
        if (node == nullptr) return outlier;
        TableReader table(source_, *node, service.path_of("outlier_detection"), kOutlierKeys);
        if (auto value = table.integer("consecutive_failures", 0, kMaxThreshold))
            outlier.consecutive_failures = static_cast<unsigned>(*value);
        if (auto value = table.duration("base_ejection_time")) outlier.base_ejection_time = *value;
        if (auto value = table.duration("max_ejection_time")) outlier.max_ejection_time = *value;
        if (outlier.base_ejection_time.count() == 0)
            table.fail("base_ejection_time", "must be more than 0");
        if (outlier.max_ejection_time < outlier.base_ejection_time)
            table.fail("max_ejection_time", "must not be less than base_ejection_time");
        return outlier;
    }

    void read_service(const toml::table& node, std::size_t index) {
        TableReader table(source_, node, index_path("service", index), kServiceKeys);
        Service service;
        service.line = table.line();
        service.name = name(table);
        check_unique_name(table, config_.services, "service", service.name);
        read_discovery(table, service);

        if (auto balance = table.string("balance", false)) {
            if (*balance == "round_robin") service.balance = Balance::round_robin;
            else if (*balance == "least_connections") service.balance = Balance::least_connections;
            else if (*balance == "random_two") service.balance = Balance::random_two;
            else if (*balance == "maglev") service.balance = Balance::maglev;
            else table.fail("balance", "unknown balance " + quote(*balance) +
                                           "; supported: round_robin, least_connections, "
                                           "random_two, maglev");
        }
        if (auto key = table.string("hash_key", false)) {
            if (service.balance != Balance::maglev)
                table.fail("hash_key", "hash_key goes with balance = \"maglev\"");
            if (*key == "source_ip") service.hash_key = HashKey::source_ip;
            else if (*key == "sni") service.hash_key = HashKey::sni;
            else table.fail("hash_key", "unknown hash_key " + quote(*key) + " (\"source_ip\" or \"sni\")");
        }
        service.health_check = read_health_check(table);
        service.outlier_detection = read_outlier_detection(table);
        if (auto value = table.duration("connect_timeout")) service.connect_timeout = *value;
        if (auto version = table.string("send_proxy_protocol", false)) {
            if (*version == "v1") service.send_proxy_protocol = ProxyProtocol::v1;
            else if (*version == "v2") service.send_proxy_protocol = ProxyProtocol::v2;
            else table.fail("send_proxy_protocol", "unknown version " + quote(*version) + " (\"v1\" or \"v2\")");
        }
        if (auto value = table.integer("connect_attempts", 1, kMaxConnectAttempts)) {
            service.connect_attempts = static_cast<unsigned>(*value);
        }
        config_.services.push_back(std::move(service));
    }

    void read_route(const toml::table& node, std::size_t index) {
        TableReader table(source_, node, index_path("route", index), kRouteKeys);
        Route route;
        route.line = table.line();
        route.name = name(table);
        check_unique_name(table, config_.routes, "route", route.name);
        RouteLines lines;

        // listeners: non-empty, each an existing listener, no repeats.
        const toml::array& listeners = *table.array("listeners", true);
        const std::string listeners_path = table.path_of("listeners");
        if (listeners.empty()) table.fail("listeners", "must name at least one listener");
        for (std::size_t i = 0; i < listeners.size(); ++i) {
            const toml::node& item = listeners[i];
            const std::string item_path = index_path(listeners_path, i);
            if (!item.is_string()) fail_type(source_, item, item_path, "a listener name string");
            const std::string& value = item.as_string()->get();
            if (config_.find_listener(value) == nullptr) {
                source_.fail(line_of(item), item_path, "unknown listener " + quote(value));
            }
            if (std::find(route.listeners.begin(), route.listeners.end(), value) !=
                route.listeners.end()) {
                source_.fail(line_of(item), item_path, "listener " + quote(value) + " is listed twice");
            }
            route.listeners.push_back(value);
            lines.listeners.push_back(line_of(item));
        }

        // hostnames: optional, may be empty; lowercased, validated, no repeats.
        if (const toml::array* hostnames = table.array("hostnames", false)) {
            const std::string path = table.path_of("hostnames");
            for (std::size_t i = 0; i < hostnames->size(); ++i) {
                const std::string item_path = index_path(path, i);
                std::string value = hostname((*hostnames)[i], item_path);
                if (std::find(route.hostnames.begin(), route.hostnames.end(), value) !=
                    route.hostnames.end()) {
                    source_.fail(line_of((*hostnames)[i]), item_path,
                                 "hostname " + quote(value) + " is listed twice");
                }
                route.hostnames.push_back(std::move(value));
            }
        }

        // alpn: optional; when present non-empty, 1..255 visible ASCII bytes each, no repeats.
        if (const toml::array* alpn = table.array("alpn", false)) {
            const std::string path = table.path_of("alpn");
            if (alpn->empty()) {
                table.fail("alpn", "must not be empty (omit the key to match any ALPN)");
            }
            for (std::size_t i = 0; i < alpn->size(); ++i) {
                const toml::node& item = (*alpn)[i];
                const std::string item_path = index_path(path, i);
                if (!item.is_string()) fail_type(source_, item, item_path, "a protocol name string");
                const std::string& value = item.as_string()->get();
                const bool visible = std::all_of(value.begin(), value.end(), [](char c) {
                    return c > 0x20 && c < 0x7f;
                });
                if (value.empty() || value.size() > 255 || !visible) {
                    source_.fail(line_of(item), item_path,
                                 "invalid ALPN protocol " + quote(value) +
                                     ": expected 1 to 255 visible ASCII characters, like \"h2\" "
                                     "or \"http/1.1\"");
                }
                if (std::find(route.alpn.begin(), route.alpn.end(), value) != route.alpn.end()) {
                    source_.fail(line_of(item), item_path,
                                 "ALPN protocol " + quote(value) + " is listed twice");
                }
                route.alpn.push_back(value);
            }
        }

        if (auto value = table.duration("drain_timeout")) route.drain_timeout = *value;
        route.access = access_list(table);
        if (auto value = table.integer("max_connections", 1, kMaxConnections)) {
            route.max_connections = static_cast<std::uint32_t>(*value);
        }
        if (auto value = table.duration("max_connection_duration")) {
            route.max_connection_duration = *value;
        }

        // backends: non-empty tables { service, weight }, existing services, not all weight 0.
        const toml::array& backends = *table.array("backends", true);
        const std::string backends_path = table.path_of("backends");
        if (backends.empty()) table.fail("backends", "must list at least one backend");
        for (std::size_t i = 0; i < backends.size(); ++i) {
            const toml::node& item = backends[i];
            const std::string item_path = index_path(backends_path, i);
            if (!item.is_table()) {
                fail_type(source_, item, item_path, "a table like { service = \"name\", weight = 1 }");
            }
            TableReader entry(source_, *item.as_table(), item_path, kBackendKeys);
            BackendRef backend;
            backend.service = *entry.string("service", true);
            const int service_line = line_of(*entry.find("service"));
            if (config_.find_service(backend.service) == nullptr) {
                entry.fail("service", "unknown service " + quote(backend.service));
            }
            for (std::size_t j = 0; j < route.backends.size(); ++j) {
                if (route.backends[j].service == backend.service) {
                    entry.fail("service", "service " + quote(backend.service) +
                                              " is already a backend of this route (line " +
                                              std::to_string(lines.backend_services[j]) + ")");
                }
            }
            if (auto weight = entry.integer("weight", 0, kMaxBackendWeight)) {
                backend.weight = static_cast<std::uint32_t>(*weight);
            }
            route.backends.push_back(std::move(backend));
            lines.backend_services.push_back(service_line);
        }
        if (std::all_of(route.backends.begin(), route.backends.end(),
                        [](const BackendRef& b) { return b.weight == 0; })) {
            table.fail("backends", "all backend weights are 0");
        }

        config_.routes.push_back(std::move(route));
        route_lines_.push_back(std::move(lines));
    }

    void check_default_routes() {
        for (std::size_t i = 0; i < config_.listeners.size(); ++i) {
            const Listener& listener = config_.listeners[i];
            if (!listener.default_route) continue;
            const std::string path = index_path("listener", i) + ".default_route";
            const int line = listener_lines_[i].default_route;
            const Route* route = config_.find_route(*listener.default_route);
            if (route == nullptr) {
                source_.fail(line, path, "unknown route " + quote(*listener.default_route));
            }
            if (std::find(route->listeners.begin(), route->listeners.end(), listener.name) ==
                route->listeners.end()) {
                source_.fail(line, path,
                             "route " + quote(route->name) + " (line " + std::to_string(route->line) +
                                 ") does not list listener " + quote(listener.name) +
                                 " in its listeners");
            }
        }
    }

    const Source& source_;
    const toml::table& root_;
    Config config_;
    int admin_address_line_ = 0;
    std::string config_folder_;  // ends with '/' (or is "."), for relative endpoints_file paths
    std::vector<ListenerLines> listener_lines_;
    std::vector<RouteLines> route_lines_;
};

}  // namespace

const Listener* Config::find_listener(std::string_view name) const {
    for (const Listener& listener : listeners) {
        if (listener.name == name) return &listener;
    }
    return nullptr;
}

const Route* Config::find_route(std::string_view name) const {
    for (const Route& route : routes) {
        if (route.name == name) return &route;
    }
    return nullptr;
}

std::string describe_discovery(const Service& service) {
    switch (service.discovery) {
        case Discovery::static_list: return {};
        case Discovery::dns: return "dns " + service.dns_name + " port " + std::to_string(service.port);
        case Discovery::dns_srv: return "dns_srv " + service.dns_name;
        case Discovery::file: return "endpoints_file " + service.endpoints_file;
    }
    return {};
}

const Service* Config::find_service(std::string_view name) const {
    for (const Service& service : services) {
        if (service.name == name) return &service;
    }
    return nullptr;
}

std::optional<Duration> parse_duration(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits > 12) return std::nullopt;  // 12 digits cannot overflow below
    const std::string_view unit = text.substr(digits);
    std::int64_t scale = 0;
    if (unit == "ms") {
        scale = 1;
    } else if (unit == "s") {
        scale = 1000;
    } else if (unit == "m") {
        scale = 60 * 1000;
    } else if (unit == "h") {
        scale = 60 * 60 * 1000;
    } else {
        return std::nullopt;
    }
    std::int64_t value = 0;
    for (std::size_t i = 0; i < digits; ++i) value = value * 10 + (text[i] - '0');
    // value < 10^12 and scale <= 3.6e6: the product < 3.6e18 fits in int64.
    const Duration result(value * scale);
    if (result.count() <= 0 || result > kMaxDuration) return std::nullopt;
    return result;
}

Config parse_config(std::string_view toml_text, std::string_view source_name) {
    const Source source(source_name);
    toml::table root;
    try {
        root = toml::parse(toml_text, std::string_view{});
    } catch (const toml::parse_error& error) {
        const auto& begin = error.source().begin;
        source.fail(begin.line == 0 ? 1 : static_cast<int>(begin.line), "syntax error",
                    std::string(error.description()) + " (column " +
                        std::to_string(begin.column) + ")");
    }
    Builder builder(source, root);
    Config config = builder.build(source_name);
    config.source_hash = config_hash(toml_text);
    return config;
}

std::string config_hash(std::string_view bytes) {
    std::uint64_t hash = 14695981039346656037ull;
    for (const char byte : bytes) {
        hash ^= static_cast<unsigned char>(byte);
        hash *= 1099511628211ull;
    }
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
    return text;
}

Config load_config_file(const std::string& path) {
    auto fail = [&](const std::string& reason) -> void {
        throw ConfigError(path + ":0: cannot read: " + reason);
    };
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(std::strerror(errno));
    std::string text;
    char buffer[64 * 1024];
    while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int saved = errno;
            ::close(fd);
            fail(std::strerror(saved));
        }
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > kMaxConfigFileBytes) {
            ::close(fd);
            fail("larger than " + std::to_string(kMaxConfigFileBytes / (1024 * 1024)) + " MiB");
        }
    }
    ::close(fd);
    return parse_config(text, path);
}

}  // namespace passgate::config
