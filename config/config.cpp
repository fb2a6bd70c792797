// Config loading: TOML text -> validated, immutable Config. Every key is documented in
// config/README.md; keep the two in step.

#include "config/config.h"
#include "config/read_file.h"

#include "config/toml_reader.h"
#include "config/warnings.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>
#include <vector>

namespace passgate::config {

namespace {

using detail::did_you_mean;
using detail::fail_type;
using detail::first_at_line;
using detail::line_of;
using detail::quote;
using detail::Source;
using detail::TableReader;

class Builder;

// One key of a config section: the one place that says the key exists and how it is read. A
// section's TableReader allows exactly the names of its table (the unknown-key error lists them
// in this order), and the section is read by running the table's readers in order. So a key
// cannot be known without being read, nor read without being known: TableReader asserts that
// every key a reader asks for is in the table, and read_keys that every key of the table was
// asked for.
template <typename Target>
struct Key {
    std::string_view name;
    // nullptr: read by the reader of an earlier key of its group (deny with allow, the
    // discovery keys with endpoints, trusted_proxies with accept_proxy_protocol).
    void (*read)(Builder&, const TableReader&, Target&) = nullptr;
    // Read right after this key rather than at its place in the table: it needs what that one
    // read (routes name services), or errors keep the order they have always been reported in.
    std::string_view after = {};
};

template <typename Target>
std::vector<std::string_view> key_names(std::span<const Key<Target>> keys) {
    std::vector<std::string_view> names;
    for (const Key<Target>& key : keys) names.push_back(key.name);
    return names;
}

// Table order, each key followed by the keys to read after it.
template <typename Target>
std::vector<std::size_t> reading_order(std::span<const Key<Target>> keys) {
    std::vector<std::size_t> order;
    const auto append = [&](const auto& self, std::size_t index) -> void {
        order.push_back(index);
        for (std::size_t next = 0; next < keys.size(); ++next) {
            if (keys[next].after == keys[index].name) self(self, next);
        }
    };
    for (std::size_t index = 0; index < keys.size(); ++index) {
        if (keys[index].after.empty()) append(append, index);
    }
    assert(order.size() == keys.size());  // every `after` names a key of the same table
    return order;
}

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
constexpr std::size_t kMaxGatewayClasses = 64;
constexpr std::size_t kMaxManifestPaths = 256;
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

// Kubernetes object names: a DNS-1123 label (namespaces, Services).
std::string dns_label_error(std::string_view name) {
    if (name.empty()) return "must not be empty";
    if (name.size() > 63) return "at most 63 characters (a DNS-1123 label)";
    const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    for (const char c : name) {
        if (!alnum(c) && c != '-')
            return "a DNS-1123 label has only lowercase letters, digits and '-'";
    }
    if (!alnum(name.front()) || !alnum(name.back()))
        return "a DNS-1123 label starts and ends with a lowercase letter or digit";
    return {};
}

// Kubernetes object names of most kinds: a DNS-1123 subdomain (at most 253 characters, lowercase
// letters, digits, '-' and '.', starting and ending with a letter or digit).
std::string object_name_error(std::string_view name) {
    if (name.empty()) return "must not be empty";
    if (name.size() > 253) return "at most 253 characters (a DNS-1123 subdomain)";
    const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    for (const char c : name) {
        if (!alnum(c) && c != '-' && c != '.')
            return "a DNS-1123 subdomain has only lowercase letters, digits, '-' and '.'";
    }
    if (!alnum(name.front()) || !alnum(name.back())) return "must start and end with a lowercase letter or digit";
    return {};
}

// GatewayClass spec.controllerName: "domain/path" (the API's pattern, simplified: a DNS
// subdomain, '/', then a non-empty path of [A-Za-z0-9/._~%!$&'()*+,;=:-]).
std::string controller_name_error(std::string_view name) {
    if (name.size() > 253) return "at most 253 characters";
    const std::size_t slash = name.find('/');
    if (slash == std::string_view::npos || slash + 1 == name.size())
        return "expected DOMAIN/PATH, like \"passgate.io/gateway-controller\"";
    const std::string domain_error = object_name_error(name.substr(0, slash));
    if (!domain_error.empty()) return "its domain: " + domain_error;
    for (const char c : name.substr(slash + 1)) {
        const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && std::string_view("/._~%!$&'()*+,;=:-").find(c) == std::string_view::npos)
            return "its path has a character the Gateway API does not allow";
    }
    return {};
}

// A service named for a Gateway API backendRef: "namespace/name:port".
std::string backend_service_name_error(std::string_view value) {
    const std::size_t slash = value.find('/');
    const std::size_t colon = value.rfind(':');
    if (colon == std::string_view::npos || colon < slash)
        return "a name with '/' is a Gateway API backend, \"namespace/service:port\" (like \"default/echo:443\")";
    const std::string namespace_error = dns_label_error(value.substr(0, slash));
    if (!namespace_error.empty()) return "its namespace: " + namespace_error;
    const std::string service_error = dns_label_error(value.substr(slash + 1, colon - slash - 1));
    if (!service_error.empty()) return "its Service name: " + service_error;
    const std::string_view port = value.substr(colon + 1);
    unsigned number = 0;
    if (port.empty() || port.size() > 5 || port.front() == '0' ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return "its port must be a number from 1 to 65535";
    for (const char c : port) number = number * 10 + unsigned(c - '0');
    if (number > 65535) return "its port must be a number from 1 to 65535";
    return {};
}

// A Service port's name as Kubernetes validates it (IANA_SVC_NAME).
std::string port_name_error(std::string_view name) {
    if (name.empty() || name.size() > 15) return "expected 1 to 15 characters (an IANA service name)";
    bool letter = false;
    for (const char c : name) {
        const bool lower = c >= 'a' && c <= 'z';
        letter = letter || lower;
        if (!lower && !(c >= '0' && c <= '9') && c != '-')
            return "an IANA service name has only lowercase letters, digits and '-'";
    }
    if (!letter) return "an IANA service name has at least one letter (a number is written without quotes)";
    if (name.front() == '-' || name.back() == '-' || name.find("--") != std::string_view::npos)
        return "an IANA service name does not start or end with '-' nor have \"--\"";
    return {};
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
        TableReader root(source_, root_, "", key_names(root_keys()));
        read_keys(root, root_keys(), config_);
        check_default_routes();
        check_quic_backends();
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

    // A service's name: a plain name, or "namespace/name:port", the name a Gateway API TLSRoute
    // backendRef to that Service port refers to (src/gateway/translate.h).
    std::string service_name(const TableReader& table) {
        const std::string value = *table.string("name", true);
        if (value.find('/') == std::string::npos) return name(table);
        const std::string error = backend_service_name_error(value);
        if (!error.empty()) table.fail("name", "invalid name " + quote(value) + ": " + error);
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
            if (const auto first = std::find(out.begin(), out.end(), *cidr); first != out.end()) {
                const int first_line = line_of((*array)[static_cast<std::size_t>(first - out.begin())]);
                source_.fail(line_of(item), item_path,
                             "CIDR " + quote(text) + " is listed twice" + first_at_line(first_line));
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

    // Reads a section's keys into `target` (see Key).
    template <typename Target>
    void read_keys(const TableReader& table, std::span<const Key<Target>> keys, Target& target) {
        for (const std::size_t index : reading_order(keys)) {
            if (keys[index].read != nullptr) keys[index].read(*this, table, target);
        }
        assert(table.every_key_consulted());
    }

    // The top level. Listeners need the admin address; routes need listeners and services.
    static std::span<const Key<Config>> root_keys() {
        static constexpr Key<Config> keys[] = {
            {"runtime", [](Builder& b, const TableReader& t, Config& c) { b.read_runtime(t, c.runtime); }},
            {"admin", [](Builder& b, const TableReader& t, Config& c) { b.read_admin(t, c.admin); }},
            {"access_log",
             [](Builder& b, const TableReader& t, Config& c) { b.read_access_log(t, c.access_log); }},
            {"dns", [](Builder& b, const TableReader& t, Config& c) { b.read_dns(t, c.dns); }},
            // Before services: a service's `kubernetes` key needs the table.
            {"kubernetes",
             [](Builder& b, const TableReader& t, Config& c) { b.read_kubernetes(t, c.kubernetes); }},
            {"gateway_api",
             [](Builder& b, const TableReader& t, Config& c) { b.read_gateway_api(t, c.gateway_api); }},
            {"listener",
             [](Builder& b, const TableReader& t, Config& c) {
                 const auto listeners = b.tables(t, "listener");
                 if (listeners.empty() && !c.gateway_api.configured) {
                     b.source_.fail(1, "listener", "at least one [[listener]] is required "
                                                   "(or a [gateway_api] table whose Gateways make them)");
                 }
                 for (std::size_t i = 0; i < listeners.size(); ++i) b.read_listener(*listeners[i], i);
             }},
            {"route",
             [](Builder& b, const TableReader& t, Config&) {
                 const auto routes = b.tables(t, "route");
                 for (std::size_t i = 0; i < routes.size(); ++i) b.read_route(*routes[i], i);
             },
             "service"},
            {"service",
             [](Builder& b, const TableReader& t, Config&) {
                 const auto services = b.tables(t, "service");
                 for (std::size_t i = 0; i < services.size(); ++i) b.read_service(*services[i], i);
             }},
        };
        return keys;
    }

    // A [section] table read with its key table; absent: nothing is read.
    template <typename Target>
    void read_section(const TableReader& parent, std::string_view key,
                      std::span<const Key<Target>> keys, Target& target) {
        const toml::table* node = table(parent, key);
        if (node == nullptr) return;
        TableReader section(source_, *node, parent.path_of(key), key_names(keys));
        read_keys(section, keys, target);
    }

    void read_runtime(const TableReader& root, Runtime& runtime) {
        static constexpr Key<Runtime> keys[] = {
            {"workers",
             [](Builder&, const TableReader& t, Runtime& r) {
                 if (auto workers = t.integer("workers", 0, kMaxWorkers)) {
                     r.workers = static_cast<unsigned>(*workers);
                 }
             }},
            {"shutdown_timeout",
             [](Builder&, const TableReader& t, Runtime& r) {
                 if (auto value = t.duration("shutdown_timeout")) r.shutdown_timeout = *value;
             }},
            {"upgrade_timeout",
             [](Builder&, const TableReader& t, Runtime& r) {
                 if (auto value = t.duration("upgrade_timeout")) r.upgrade_timeout = *value;
             }},
            {"drain_delay",
             [](Builder&, const TableReader& t, Runtime& r) {
                 if (auto value = t.duration("drain_delay", true)) r.drain_delay = *value;
             }},
            {"max_connections_per_worker",
             [](Builder&, const TableReader& t, Runtime& r) {
                 if (auto value = t.integer("max_connections_per_worker", 1, kMaxConnections))
                     r.max_connections_per_worker = static_cast<std::uint32_t>(*value);
             }},
            {"pause_accepting_at",
             [](Builder&, const TableReader& t, Runtime& r) {
                 // After max_connections_per_worker in this list: that value is known here.
                 auto value = t.integer("pause_accepting_at", 2, kMaxConnections);
                 if (!value) return;
                 if (r.max_connections_per_worker && *value > *r.max_connections_per_worker)
                     t.fail("pause_accepting_at",
                            std::to_string(*value) + " is above max_connections_per_worker " +
                                std::to_string(*r.max_connections_per_worker) +
                                ": connections would be refused before accepting pauses");
                 r.pause_accepting_at = static_cast<std::uint32_t>(*value);
             }},
            {"max_hello_memory",
             [](Builder&, const TableReader& t, Runtime& r) {
                 if (auto value = t.integer("max_hello_memory", kMinHelloMemory, kMaxHelloMemory))
                     r.max_hello_memory = static_cast<std::uint64_t>(*value);
             }},
            {"reuseport_cpu_steering",
             [](Builder&, const TableReader& t, Runtime& r) {
                 if (auto steering = t.boolean("reuseport_cpu_steering")) r.reuseport_cpu_steering = *steering;
             }},
            {"max_quic_flows_per_worker",
             [](Builder&, const TableReader& t, Runtime& r) {
                 if (auto value = t.integer("max_quic_flows_per_worker", 1, kMaxConnections))
                     r.max_quic_flows_per_worker = static_cast<std::uint32_t>(*value);
             }},
        };
        read_section(root, "runtime", std::span<const Key<Runtime>>(keys), runtime);
    }

    void read_access_log(const TableReader& root, AccessLog& access_log) {
        static constexpr Key<AccessLog> keys[] = {
            {"enabled",
             [](Builder&, const TableReader& t, AccessLog& a) {
                 if (auto enabled = t.boolean("enabled")) a.enabled = *enabled;
             }},
            {"format",
             [](Builder&, const TableReader& t, AccessLog& a) {
                 if (auto format = t.string("format", false)) {
                     if (*format == "logfmt") a.format = AccessLogFormat::logfmt;
                     else if (*format == "json") a.format = AccessLogFormat::json;
                     else t.fail("format", "unknown format " + quote(*format) + " (logfmt or json)");
                 }
             }},
            {"path",
             [](Builder&, const TableReader& t, AccessLog& a) {
                 if (auto path = t.string("path", false)) {
                     if (path->empty()) t.fail("path", "must not be empty (\"-\" is stderr)");
                     a.path = *path;
                     a.path_line = line_of(*t.find("path"));
                 }
             }},
        };
        read_section(root, "access_log", std::span<const Key<AccessLog>>(keys), access_log);
    }

    void read_admin(const TableReader& root, Admin& admin) {
        static constexpr Key<Admin> keys[] = {
            {"address",
             [](Builder& b, const TableReader& t, Admin& a) {
                 if (const toml::node* value = t.find("address")) {
                     a.address = b.address(*value, t.path_of("address"));
                     b.admin_address_line_ = line_of(*value);
                 }
             }},
            {"departed_series_retention",
             [](Builder&, const TableReader& t, Admin& a) {
                 if (auto value = t.duration("departed_series_retention"))
                     a.departed_series_retention = *value;
             }},
            {"request_timeout",
             [](Builder&, const TableReader& t, Admin& a) {
                 if (auto value = t.duration("request_timeout")) {
                     if (*value > kMaxAdminRequestTimeout)
                         t.fail("request_timeout", "must be at most \"60s\"");
                     a.request_timeout = *value;
                 }
             }},
            {"max_connections",
             [](Builder&, const TableReader& t, Admin& a) {
                 if (auto value = t.integer("max_connections", 1, kMaxAdminConnections))
                     a.max_connections = static_cast<std::uint32_t>(*value);
             }},
            {"max_connections_per_source",
             [](Builder&, const TableReader& t, Admin& a) {
                 if (auto value = t.integer("max_connections_per_source", 1, kMaxAdminConnections))
                     a.max_connections_per_source = static_cast<std::uint32_t>(*value);
             }},
        };
        admin.address = *parse_address("127.0.0.1:9901");
        read_section(root, "admin", std::span<const Key<Admin>>(keys), admin);
    }

    // A [[listener]] being read, with the lines later checks point at.
    struct ListenerDraft {
        Listener listener;
        ListenerLines lines;
    };

    static std::span<const Key<ListenerDraft>> listener_keys() {
        static constexpr Key<ListenerDraft> keys[] = {
            {"name",
             [](Builder& b, const TableReader& t, ListenerDraft& d) {
                 d.listener.name = b.name(t);
                 b.check_unique_name(t, b.config_.listeners, "listener", d.listener.name);
             }},
            {"address", [](Builder& b, const TableReader& t, ListenerDraft& d) { b.read_listener_address(t, d); }},
            {"protocol"},  // with address: which addresses overlap depends on it
            {"quic_flow_idle_timeout",
             [](Builder&, const TableReader& t, ListenerDraft& d) {
                 if (auto value = t.duration("quic_flow_idle_timeout")) {
                     if (d.listener.protocol != ListenerProtocol::quic)
                         t.fail("quic_flow_idle_timeout", "only applies with protocol = \"quic\"");
                     d.listener.quic_flow_idle_timeout = *value;
                 }
             }},
            {"hostname",
             [](Builder& b, const TableReader& t, ListenerDraft& d) {
                 if (const toml::node* value = t.find("hostname")) {
                     d.listener.hostname = b.hostname(*value, t.path_of("hostname"));
                 }
             }},
            {"client_hello_timeout",
             [](Builder&, const TableReader& t, ListenerDraft& d) {
                 if (auto value = t.duration("client_hello_timeout")) {
                     d.listener.client_hello_timeout = *value;
                 }
             }},
            {"defer_accept",
             [](Builder&, const TableReader& t, ListenerDraft& d) {
                 if (auto value = t.boolean("defer_accept")) {
                     if (d.listener.protocol == ListenerProtocol::quic)
                         t.fail("defer_accept", "does not apply to protocol = \"quic\" (UDP has no accept)");
                     d.listener.defer_accept = *value;
                 }
             }},
            {"max_client_hello_size",
             [](Builder&, const TableReader& t, ListenerDraft& d) {
                 if (auto value = t.integer("max_client_hello_size", kMinHelloSize, kMaxHelloSize)) {
                     d.listener.max_client_hello_size = static_cast<std::uint32_t>(*value);
                 }
             }},
            {"idle_timeout",
             [](Builder&, const TableReader& t, ListenerDraft& d) {
                 if (auto value = t.duration("idle_timeout")) d.listener.idle_timeout = *value;
             }},
            {"default_route",
             [](Builder&, const TableReader& t, ListenerDraft& d) {
                 if (auto value = t.string("default_route", false)) {
                     d.listener.default_route = std::move(*value);
                     d.lines.default_route = line_of(*t.find("default_route"));
                 }
             }},
            {"allow",
             [](Builder& b, const TableReader& t, ListenerDraft& d) { d.listener.access = b.access_list(t); }},
            {"deny"},  // with allow
            {"max_connections",
             [](Builder&, const TableReader& t, ListenerDraft& d) {
                 if (auto value = t.integer("max_connections", 1, kMaxConnections)) {
                     d.listener.max_connections = static_cast<std::uint32_t>(*value);
                 }
             },
             "trusted_proxies"},
            {"max_connection_rate",
             [](Builder&, const TableReader& t, ListenerDraft& d) {
                 if (auto value = t.integer("max_connection_rate", 1, kMaxConnectionRate)) {
                     d.listener.max_connection_rate = static_cast<std::uint32_t>(*value);
                 }
             },
             "max_connections"},
            {"accept_proxy_protocol",
             [](Builder& b, const TableReader& t, ListenerDraft& d) { b.read_proxy_protocol(t, d.listener); }},
            {"trusted_proxies"},  // with accept_proxy_protocol
        };
        return keys;
    }

    void read_listener(const toml::table& node, std::size_t index) {
        TableReader table(source_, node, index_path("listener", index), key_names(listener_keys()));
        ListenerDraft draft;
        draft.listener.line = table.line();
        read_keys(table, listener_keys(), draft);
        config_.listeners.push_back(std::move(draft.listener));
        listener_lines_.push_back(draft.lines);
    }

    void read_listener_address(const TableReader& table, ListenerDraft& draft) {
        Listener& listener = draft.listener;
        if (auto protocol = table.string("protocol", false)) {
            if (*protocol == "quic") listener.protocol = ListenerProtocol::quic;
            else if (*protocol != "tls")
                table.fail("protocol", "unknown protocol " + quote(*protocol) + " (\"tls\" or \"quic\")");
        }
        const toml::node* address_node = table.find("address");
        if (address_node == nullptr) table.fail_missing("address");
        listener.address = address(*address_node, table.path_of("address"));
        draft.lines.address = line_of(*address_node);
        for (std::size_t i = 0; i < config_.listeners.size(); ++i) {
            const Listener& earlier = config_.listeners[i];
            // TCP and UDP ports are separate: HTTPS and HTTP/3 share 0.0.0.0:443.
            if (earlier.protocol != listener.protocol) continue;
            const std::string line = std::to_string(listener_lines_[i].address);
            if (earlier.address == listener.address) {
                table.fail("address", listener.address.to_string() + " is already used by listener " +
                                          quote(earlier.name) + " (line " + line + ")");
            }
            // Listeners bind with SO_REUSEPORT: the pair would bind without an error.
            if (addresses_overlap(earlier.address, listener.address)) {
                table.fail("address", listener.address.to_string() + " overlaps " + earlier.address.to_string() +
                                          " of listener " + quote(earlier.name) + " (line " + line +
                                          "): one of them would take the other's connections");
            }
        }
        const std::string admin_line = admin_address_line_ != 0 ? " (line " + std::to_string(admin_address_line_) + ")"
                                                                 : std::string(" (the default)");
        if (listener.address == config_.admin.address) {
            table.fail("address", listener.address.to_string() + " is also the admin address" + admin_line);
        }
        if (addresses_overlap(config_.admin.address, listener.address)) {
            table.fail("address", listener.address.to_string() + " overlaps the admin address " +
                                      config_.admin.address.to_string() + admin_line +
                                      ": the second of them to bind would fail");
        }
    }

    void read_dns(const TableReader& root, Dns& dns) {
        static constexpr Key<Dns> keys[] = {
            {"servers", [](Builder& b, const TableReader& t, Dns& d) { b.read_dns_servers(t, d); }},
            {"timeout",
             [](Builder&, const TableReader& t, Dns& d) {
                 if (auto value = t.duration("timeout")) {
                     if (value->count() == 0) t.fail("timeout", "must be more than 0");
                     d.timeout = *value;
                 }
             }},
            {"tries",
             [](Builder&, const TableReader& t, Dns& d) {
                 if (auto value = t.integer("tries", 1, kMaxDnsTries)) d.tries = static_cast<unsigned>(*value);
             }},
        };
        read_section(root, "dns", std::span<const Key<Dns>>(keys), dns);
    }

    void read_dns_servers(const TableReader& dns, Dns& out) {
        const toml::array* servers = dns.array("servers", false);
        if (servers == nullptr) return;
        if (servers->size() > kMaxDnsServers)
            dns.fail("servers", "at most " + std::to_string(kMaxDnsServers) + " servers");
        const std::string path = dns.path_of("servers");
        for (std::size_t i = 0; i < servers->size(); ++i) {
            const Address server = address((*servers)[i], index_path(path, i));
            if (server.is_unspecified())
                source_.fail(line_of((*servers)[i]), index_path(path, i),
                             "the unspecified address (0.0.0.0 or ::) cannot be queried");
            out.servers.push_back(server);
        }
    }

    // A file path: not empty, no NUL, relative paths resolved against the config's folder.
    std::string path_value(const TableReader& table, std::string_view key) {
        std::string path = *table.string(key, true);
        if (path.empty()) table.fail(key, "must not be empty");
        if (path.find('\0') != std::string::npos) table.fail(key, "contains a NUL byte");
        if (path.front() != '/') path = config_folder_ + path;
        return path;
    }

    void read_kubernetes(const TableReader& root, Kubernetes& kubernetes) {
        static constexpr Key<Kubernetes> keys[] = {
            {"kubeconfig", [](Builder& b, const TableReader& t, Kubernetes& k) { b.read_kubernetes_source(t, k); }},
            // Read with kubeconfig (read_kubernetes_source): the one way to the API server.
            {"context"},
            {"api_server"},
            {"ca_file"},
            {"token_file"},
            {"client_cert_file"},
            {"client_key_file"},
            {"in_cluster"},
            {"service_account_dir"},
            {"request_timeout",
             [](Builder&, const TableReader& t, Kubernetes& k) {
                 if (auto value = t.duration("request_timeout")) k.request_timeout = *value;
             }},
            {"watch_timeout",
             [](Builder&, const TableReader& t, Kubernetes& k) {
                 if (auto value = t.duration("watch_timeout")) k.watch_timeout = *value;
             }},
            {"retry_initial_delay",
             [](Builder&, const TableReader& t, Kubernetes& k) {
                 if (auto value = t.duration("retry_initial_delay")) k.retry_initial_delay = *value;
             }},
            {"retry_max_delay",
             [](Builder&, const TableReader& t, Kubernetes& k) {
                 if (auto value = t.duration("retry_max_delay")) k.retry_max_delay = *value;
                 // Both delays read: check them, defaults included.
                 if (k.retry_max_delay < k.retry_initial_delay)
                     t.fail(t.find("retry_max_delay") != nullptr ? "retry_max_delay" : "retry_initial_delay",
                            "retry_max_delay must not be less than retry_initial_delay");
             }},
        };
        const toml::table* node = table(root, "kubernetes");
        if (node == nullptr) return;
        kubernetes.configured = true;
        TableReader section(source_, *node, root.path_of("kubernetes"),
                            key_names(std::span<const Key<Kubernetes>>(keys)));
        kubernetes.line = section.line();
        read_keys(section, std::span<const Key<Kubernetes>>(keys), kubernetes);
    }

    void read_gateway_api(const TableReader& root, GatewayApi& gateway) {
        static constexpr Key<GatewayApi> keys[] = {
            {"gateway_class", [](Builder& b, const TableReader& t, GatewayApi& g) { b.read_gateway_classes(t, g); }},
            {"manifests", [](Builder& b, const TableReader& t, GatewayApi& g) { b.read_gateway_source(t, g); }},
            // Read with manifests (read_gateway_source): one source of objects.
            {"watch"},
            {"listen_address",
             [](Builder&, const TableReader& t, GatewayApi& g) {
                 if (auto value = t.string("listen_address", false)) {
                     if (!parse_address("[" + *value + "]:1") && !parse_address(*value + ":1"))
                         t.fail("listen_address", "invalid address " + quote(*value) +
                                                      ": an IP address without a port, like \"0.0.0.0\", "
                                                      "\"192.0.2.10\", \"::\" or \"2001:db8::10\"");
                     g.listen_address = *value;
                 }
             }},
            {"status_address",
             [](Builder&, const TableReader& t, GatewayApi& g) {
                 if (auto value = t.string("status_address", false)) {
                     if (!parse_address("[" + *value + "]:1") && !parse_address(*value + ":1"))
                         t.fail("status_address", "invalid address " + quote(*value) + ": an IP address without a port");
                     g.status_address = *value;
                 }
             }},
            {"controller_name",
             [](Builder&, const TableReader& t, GatewayApi& g) {
                 if (auto value = t.string("controller_name", false)) {
                     const std::string error = controller_name_error(*value);
                     if (!error.empty()) t.fail("controller_name", "invalid controller name " + quote(*value) + ": " + error);
                     g.controller_name = *value;
                 }
             }},
            {"lease_namespace",
             [](Builder&, const TableReader& t, GatewayApi& g) {
                 if (auto value = t.string("lease_namespace", false)) {
                     const std::string error = dns_label_error(*value);
                     if (!error.empty()) t.fail("lease_namespace", "invalid namespace " + quote(*value) + ": " + error);
                     g.lease_namespace = *value;
                 }
             }},
            {"lease_name",
             [](Builder&, const TableReader& t, GatewayApi& g) {
                 if (auto value = t.string("lease_name", false)) {
                     const std::string error = dns_label_error(*value);
                     if (!error.empty()) t.fail("lease_name", "invalid Lease name " + quote(*value) + ": " + error);
                     g.lease_name = *value;
                 }
             }},
            {"lease_duration",
             [](Builder&, const TableReader& t, GatewayApi& g) {
                 if (auto value = t.duration("lease_duration")) {
                     if (*value < std::chrono::seconds(1) || *value > std::chrono::hours(1))
                         t.fail("lease_duration", "must be from \"1s\" to \"1h\"");
                     if (value->count() % 1000 != 0)
                         t.fail("lease_duration", "must be whole seconds (a Lease counts seconds)");
                     g.lease_duration = *value;
                 }
             }},
        };
        const toml::table* node = table(root, "gateway_api");
        if (node == nullptr) return;
        gateway.configured = true;
        TableReader section(source_, *node, root.path_of("gateway_api"),
                            key_names(std::span<const Key<GatewayApi>>(keys)));
        gateway.line = section.line();
        read_keys(section, std::span<const Key<GatewayApi>>(keys), gateway);
    }

    // gateway_class: a GatewayClass name, or a list of them (at least one).
    void read_gateway_classes(const TableReader& table, GatewayApi& gateway) {
        const toml::node* node = table.find("gateway_class");
        if (node == nullptr) table.fail_missing("gateway_class");
        const std::string path = table.path_of("gateway_class");
        std::vector<int> class_lines;  // of gateway.gateway_classes
        const auto add = [&](const toml::node& item, const std::string& item_path) {
            if (!item.is_string()) fail_type(source_, item, item_path, "a GatewayClass name");
            const std::string& name = item.as_string()->get();
            const std::string error = object_name_error(name);
            if (!error.empty()) source_.fail(line_of(item), item_path, "invalid GatewayClass name " + quote(name) + ": " + error);
            const auto first = std::find(gateway.gateway_classes.begin(), gateway.gateway_classes.end(), name);
            if (first != gateway.gateway_classes.end())
                source_.fail(line_of(item), item_path,
                             "GatewayClass " + quote(name) + " is listed twice" +
                                 first_at_line(class_lines[static_cast<std::size_t>(first - gateway.gateway_classes.begin())]));
            gateway.gateway_classes.push_back(name);
            class_lines.push_back(line_of(item));
        };
        if (node->is_array()) {
            const toml::array& array = *node->as_array();
            if (array.empty()) table.fail("gateway_class", "must name at least one GatewayClass");
            if (array.size() > kMaxGatewayClasses)
                table.fail("gateway_class", "at most " + std::to_string(kMaxGatewayClasses) + " GatewayClasses");
            for (std::size_t i = 0; i < array.size(); ++i) add(array[i], index_path(path, i));
        } else {
            add(*node, path);
        }
    }

    // Exactly one of manifests and watch = true; watch needs [kubernetes].
    void read_gateway_source(const TableReader& table, GatewayApi& gateway) {
        if (auto watch = table.boolean("watch")) gateway.watch = *watch;
        const toml::array* manifests = table.array("manifests", false);
        if (gateway.watch && manifests != nullptr)
            table.fail("manifests", "[gateway_api] takes manifests or watch = true, not both");
        if (!gateway.watch && manifests == nullptr)
            table.fail("manifests", "[gateway_api] needs manifests (files or folders of YAML) or watch = true");
        if (gateway.watch && !config_.kubernetes.configured)
            table.fail("watch", "watch = true reads the objects from the API server: it needs a [kubernetes] table");
        if (manifests == nullptr) return;
        if (manifests->empty()) table.fail("manifests", "must list at least one file or folder");
        if (manifests->size() > kMaxManifestPaths)
            table.fail("manifests", "at most " + std::to_string(kMaxManifestPaths) + " entries");
        const std::string path = table.path_of("manifests");
        for (std::size_t i = 0; i < manifests->size(); ++i) {
            const toml::node& item = (*manifests)[i];
            const std::string item_path = index_path(path, i);
            if (!item.is_string()) fail_type(source_, item, item_path, "a file or folder path");
            std::string value = item.as_string()->get();
            if (value.empty()) source_.fail(line_of(item), item_path, "must not be empty");
            if (value.find('\0') != std::string::npos) source_.fail(line_of(item), item_path, "contains a NUL byte");
            if (value.front() != '/') value = config_folder_ + value;
            gateway.manifests.push_back(std::move(value));
        }
    }

    // Exactly one of kubeconfig, api_server (with its files) and in_cluster = true.
    void read_kubernetes_source(const TableReader& table, Kubernetes& kubernetes) {
        if (auto value = table.boolean("in_cluster")) kubernetes.in_cluster = *value;
        std::vector<std::string_view> given;
        if (table.find("kubeconfig") != nullptr) given.push_back("kubeconfig");
        if (table.find("api_server") != nullptr) given.push_back("api_server");
        if (kubernetes.in_cluster) given.push_back("in_cluster");
        if (given.empty()) {
            table.fail("kubeconfig", "[kubernetes] needs one of kubeconfig, api_server or in_cluster = true");
        }
        if (given.size() > 1) {
            table.fail(given[1], "[kubernetes] takes one of kubeconfig, api_server and in_cluster = true; " +
                                     std::string(given[0]) + " is already given");
        }
        const std::string_view mode = given[0];
        const auto only_with = [&](std::string_view key, std::string_view with) {
            if (mode != with && table.find(key) != nullptr)
                table.fail(key, std::string(key) + " goes with " + std::string(with));
        };
        only_with("context", "kubeconfig");
        for (std::string_view key : {"ca_file", "token_file", "client_cert_file", "client_key_file"})
            only_with(key, "api_server");
        if (mode != "in_cluster" && table.find("service_account_dir") != nullptr)
            table.fail("service_account_dir", "service_account_dir goes with in_cluster = true");

        if (mode == "kubeconfig") {
            kubernetes.kubeconfig = path_value(table, "kubeconfig");
            if (auto context = table.string("context", false)) {
                if (context->empty()) table.fail("context", "must not be empty (omit it for the current-context)");
                kubernetes.context = std::move(*context);
            }
        } else if (mode == "api_server") {
            std::string server = *table.string("api_server", true);
            const std::string error = check_api_server_url(server);
            if (!error.empty()) table.fail("api_server", "invalid API server " + quote(server) + ": " + error);
            kubernetes.api_server = std::move(server);
            for (auto [key, target] : {std::pair{"ca_file", &kubernetes.ca_file},
                                       std::pair{"token_file", &kubernetes.token_file},
                                       std::pair{"client_cert_file", &kubernetes.client_cert_file},
                                       std::pair{"client_key_file", &kubernetes.client_key_file}}) {
                if (table.find(key) != nullptr) *target = path_value(table, key);
            }
            const bool cert = table.find("client_cert_file") != nullptr;
            const bool key = table.find("client_key_file") != nullptr;
            if (cert && !key) table.fail("client_cert_file", "client_cert_file needs client_key_file");
            if (key && !cert) table.fail("client_key_file", "client_key_file needs client_cert_file");
        } else if (table.find("service_account_dir") != nullptr) {
            kubernetes.service_account_dir = path_value(table, "service_account_dir");
        }
    }

    // A service's `kubernetes = { namespace, service, port }`.
    static std::span<const Key<KubernetesBackend>> kubernetes_backend_keys() {
        static constexpr Key<KubernetesBackend> keys[] = {
            {"namespace",
             [](Builder&, const TableReader& t, KubernetesBackend& k) {
                 k.namespace_name = *t.string("namespace", true);
                 const std::string error = dns_label_error(k.namespace_name);
                 if (!error.empty()) t.fail("namespace", "invalid namespace " + quote(k.namespace_name) + ": " + error);
             }},
            {"service",
             [](Builder&, const TableReader& t, KubernetesBackend& k) {
                 k.service = *t.string("service", true);
                 const std::string error = dns_label_error(k.service);
                 if (!error.empty()) t.fail("service", "invalid Service name " + quote(k.service) + ": " + error);
             }},
            {"port",
             [](Builder& b, const TableReader& t, KubernetesBackend& k) {
                 const toml::node* port = t.find("port");
                 if (port == nullptr) t.fail_missing("port");
                 if (port->is_integer()) {
                     k.port = static_cast<std::uint16_t>(*t.integer("port", 1, 65535));
                 } else if (port->is_string()) {
                     const std::string& name = port->as_string()->get();
                     const std::string error = port_name_error(name);
                     if (!error.empty()) t.fail("port", "invalid port name " + quote(name) + ": " + error);
                     k.port = name;
                 } else {
                     fail_type(b.source_, *port, t.path_of("port"),
                               "the Service's port: a number from 1 to 65535 or its name (\"https\")");
                 }
             }},
        };
        return keys;
    }

    void read_kubernetes_backend(const TableReader& table, Service& service) {
        const toml::node* node = table.find("kubernetes");
        if (!node->is_table()) {
            fail_type(source_, *node, table.path_of("kubernetes"),
                      "a table like { namespace = \"default\", service = \"echo\", port = 443 }");
        }
        if (!config_.kubernetes.configured) {
            table.fail("kubernetes", "service " + quote(service.name) + " (line " + std::to_string(service.line) +
                                         ") follows a Kubernetes Service, but there is no [kubernetes] table "
                                         "(the API server and credentials)");
        }
        TableReader entry(source_, *node->as_table(), table.path_of("kubernetes"), key_names(kubernetes_backend_keys()));
        KubernetesBackend backend;
        read_keys(entry, kubernetes_backend_keys(), backend);
        service.discovery = Discovery::kubernetes;
        service.kubernetes = std::move(backend);
    }

    // accept_proxy_protocol and trusted_proxies go together: a header from just anyone would let
    // any client pick the address that access control, logs and balancing see.
    void read_proxy_protocol(const TableReader& table, Listener& listener) {
        if (auto value = table.boolean("accept_proxy_protocol")) listener.accept_proxy_protocol = *value;
        // A PROXY header starts a TCP stream; a QUIC flow's datagrams have no place for one.
        if (listener.accept_proxy_protocol && listener.protocol == ListenerProtocol::quic)
            table.fail("accept_proxy_protocol", "does not apply to protocol = \"quic\" (UDP has no stream to carry a PROXY header)");
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
        constexpr std::string_view kinds[] = {"endpoints", "dns", "dns_srv", "endpoints_file", "kubernetes"};
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
        if (kind == "kubernetes" && table.find("port") != nullptr)
            table.fail("port", "port goes with dns (a kubernetes service names the Service's port in its "
                               "kubernetes table)");
        if (kind != "dns" && table.find("port") != nullptr)
            table.fail("port", "port goes with dns (dns_srv answers carry their own ports)");
        const bool dns_kind = kind == "dns" || kind == "dns_srv";
        for (std::string_view key : {"dns_min_ttl", "dns_max_ttl", "endpoint_max_connections"}) {
            if (!dns_kind && table.find(key) != nullptr &&
                !(key == "endpoint_max_connections" && (kind == "endpoints_file" || kind == "kubernetes")))
                table.fail(key, std::string(key) + " goes with dns or dns_srv");
        }
        if (kind == "endpoints") return read_static_endpoints(table, service);
        if (auto value = table.integer("endpoint_max_connections", 1, kMaxConnections))
            service.endpoint_max_connections = static_cast<std::uint32_t>(*value);
        if (kind == "kubernetes") return read_kubernetes_backend(table, service);
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

    // An endpoint written as a table; its address is checked once read, as a string's is.
    struct EndpointDraft {
        Endpoint endpoint;
        const toml::node* address_node = nullptr;
        std::string address_path;
    };

    static std::span<const Key<EndpointDraft>> endpoint_keys() {
        static constexpr Key<EndpointDraft> keys[] = {
            {"address",
             [](Builder&, const TableReader& t, EndpointDraft& d) {
                 d.address_node = t.find("address");
                 if (d.address_node == nullptr) t.fail_missing("address");
                 d.address_path = t.path_of("address");
             }},
            {"weight",
             [](Builder&, const TableReader& t, EndpointDraft& d) {
                 if (auto weight = t.integer("weight", 0, kMaxEndpointWeight)) {
                     d.endpoint.weight = static_cast<std::uint32_t>(*weight);
                 }
             }},
            {"max_connections",
             [](Builder&, const TableReader& t, EndpointDraft& d) {
                 if (auto limit = t.integer("max_connections", 1, kMaxConnections)) {
                     d.endpoint.max_connections = static_cast<std::uint32_t>(*limit);
                 }
             }},
        };
        return keys;
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
                TableReader entry(source_, *item.as_table(), item_path, key_names(endpoint_keys()));
                EndpointDraft draft;
                read_keys(entry, endpoint_keys(), draft);
                endpoint = draft.endpoint;
                address_node = draft.address_node;
                address_path = std::move(draft.address_path);
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
        static constexpr Key<HealthCheck> keys[] = {
            {"interval",
             [](Builder&, const TableReader& t, HealthCheck& c) {
                 if (auto value = t.duration("interval")) c.interval = *value;
             }},
            {"timeout",
             [](Builder&, const TableReader& t, HealthCheck& c) {
                 if (auto value = t.duration("timeout")) c.timeout = *value;
                 // Both read (interval comes first in the table): check them, defaults included.
                 if (c.interval.count() < 10) t.fail("interval", "must be at least 10ms");
                 if (c.timeout.count() == 0) t.fail("timeout", "must be more than 0");
             }},
            {"healthy_threshold",
             [](Builder&, const TableReader& t, HealthCheck& c) {
                 if (auto value = t.integer("healthy_threshold", 1, kMaxThreshold))
                     c.healthy_threshold = static_cast<unsigned>(*value);
             }},
            {"unhealthy_threshold",
             [](Builder&, const TableReader& t, HealthCheck& c) {
                 if (auto value = t.integer("unhealthy_threshold", 1, kMaxThreshold))
                     c.unhealthy_threshold = static_cast<unsigned>(*value);
             }},
            {"kind",
             [](Builder&, const TableReader& t, HealthCheck& c) {
                 if (auto kind = t.string("kind", false)) {
                     if (*kind == "tcp") c.kind = HealthCheck::Kind::tcp;
                     else if (*kind == "tls") c.kind = HealthCheck::Kind::tls;
                     else t.fail("kind", "unknown kind " + quote(*kind) + " (\"tcp\" or \"tls\")");
                 }
             }},
            {"sni",
             [](Builder&, const TableReader& t, HealthCheck& c) {
                 if (auto sni = t.string("sni", false)) {
                     if (c.kind != HealthCheck::Kind::tls) t.fail("sni", "sni goes with kind = \"tls\"");
                     std::string lowered = ascii_lower(*sni);
                     const std::string error = validate_hostname_pattern(lowered);
                     if (!error.empty() || lowered.starts_with("*."))
                         t.fail("sni", "invalid server name " + quote(*sni) +
                                           (error.empty() ? ": a wildcard cannot be sent" : ": " + error));
                     c.sni = std::move(lowered);
                 }
             }},
        };
        const toml::table* node = table(service, "health_check");
        if (node == nullptr) return std::nullopt;
        TableReader table(source_, *node, service.path_of("health_check"), key_names(std::span<const Key<HealthCheck>>(keys)));
        HealthCheck check;
        read_keys(table, std::span<const Key<HealthCheck>>(keys), check);
        return check;
    }

    OutlierDetection read_outlier_detection(const TableReader& service) {
        static constexpr Key<OutlierDetection> keys[] = {
            {"consecutive_failures",
             [](Builder&, const TableReader& t, OutlierDetection& o) {
                 if (auto value = t.integer("consecutive_failures", 0, kMaxThreshold))
                     o.consecutive_failures = static_cast<unsigned>(*value);
             }},
            {"base_ejection_time",
             [](Builder&, const TableReader& t, OutlierDetection& o) {
                 if (auto value = t.duration("base_ejection_time")) o.base_ejection_time = *value;
             }},
            {"max_ejection_time",
             [](Builder&, const TableReader& t, OutlierDetection& o) {
                 if (auto value = t.duration("max_ejection_time")) o.max_ejection_time = *value;
                 // Both times read: check them, defaults included.
                 if (o.base_ejection_time.count() == 0)
                     t.fail("base_ejection_time", "must be more than 0");
                 if (o.max_ejection_time < o.base_ejection_time)
                     t.fail("max_ejection_time", "must not be less than base_ejection_time");
             }},
        };
        OutlierDetection outlier;
        read_section(service, "outlier_detection", std::span<const Key<OutlierDetection>>(keys), outlier);
        return outlier;
    }

    static std::span<const Key<Service>> service_keys() {
        static constexpr Key<Service> keys[] = {
            {"name",
             [](Builder& b, const TableReader& t, Service& s) {
                 s.name = b.service_name(t);
                 b.check_unique_name(t, b.config_.services, "service", s.name);
             }},
            {"endpoints", [](Builder& b, const TableReader& t, Service& s) { b.read_discovery(t, s); }},
            // Read with endpoints (read_discovery): one source of endpoints and its settings.
            {"dns"},
            {"port"},
            {"dns_srv"},
            {"endpoints_file"},
            {"kubernetes"},
            {"dns_min_ttl"},
            {"dns_max_ttl"},
            {"endpoint_max_connections"},
            {"balance",
             [](Builder&, const TableReader& t, Service& s) {
                 if (auto balance = t.string("balance", false)) {
                     if (*balance == "round_robin") s.balance = Balance::round_robin;
                     else if (*balance == "least_connections") s.balance = Balance::least_connections;
                     else if (*balance == "random_two") s.balance = Balance::random_two;
                     else if (*balance == "maglev") s.balance = Balance::maglev;
                     else t.fail("balance", "unknown balance " + quote(*balance) +
                                                "; supported: round_robin, least_connections, "
                                                "random_two, maglev");
                 }
             }},
            {"hash_key",
             [](Builder&, const TableReader& t, Service& s) {
                 if (auto key = t.string("hash_key", false)) {
                     if (s.balance != Balance::maglev)
                         t.fail("hash_key", "hash_key goes with balance = \"maglev\"");
                     if (*key == "source_ip") s.hash_key = HashKey::source_ip;
                     else if (*key == "sni") s.hash_key = HashKey::sni;
                     else t.fail("hash_key", "unknown hash_key " + quote(*key) + " (\"source_ip\" or \"sni\")");
                 }
             }},
            {"health_check",
             [](Builder& b, const TableReader& t, Service& s) { s.health_check = b.read_health_check(t); }},
            {"outlier_detection",
             [](Builder& b, const TableReader& t, Service& s) {
                 s.outlier_detection = b.read_outlier_detection(t);
             }},
            {"connect_timeout",
             [](Builder&, const TableReader& t, Service& s) {
                 if (auto value = t.duration("connect_timeout")) s.connect_timeout = *value;
             }},
            {"connect_attempts",
             [](Builder&, const TableReader& t, Service& s) {
                 if (auto value = t.integer("connect_attempts", 1, kMaxConnectAttempts)) {
                     s.connect_attempts = static_cast<unsigned>(*value);
                 }
             },
             "send_proxy_protocol"},
            {"send_proxy_protocol",
             [](Builder&, const TableReader& t, Service& s) {
                 if (auto version = t.string("send_proxy_protocol", false)) {
                     if (*version == "v1") s.send_proxy_protocol = ProxyProtocol::v1;
                     else if (*version == "v2") s.send_proxy_protocol = ProxyProtocol::v2;
                     else t.fail("send_proxy_protocol", "unknown version " + quote(*version) + " (\"v1\" or \"v2\")");
                 }
             }},
        };
        return keys;
    }

    void read_service(const toml::table& node, std::size_t index) {
        TableReader table(source_, node, index_path("service", index), key_names(service_keys()));
        Service service;
        service.line = table.line();
        read_keys(table, service_keys(), service);
        config_.services.push_back(std::move(service));
    }

    // A [[route]] being read, with the lines later checks point at.
    struct RouteDraft {
        Route route;
        RouteLines lines;
    };

    static std::span<const Key<RouteDraft>> route_keys() {
        static constexpr Key<RouteDraft> keys[] = {
            {"name",
             [](Builder& b, const TableReader& t, RouteDraft& d) {
                 d.route.name = b.name(t);
                 b.check_unique_name(t, b.config_.routes, "route", d.route.name);
             }},
            {"listeners", [](Builder& b, const TableReader& t, RouteDraft& d) { b.read_route_listeners(t, d); }},
            {"hostnames", [](Builder& b, const TableReader& t, RouteDraft& d) { b.read_route_hostnames(t, d); }},
            {"hostnames_file",
             [](Builder& b, const TableReader& t, RouteDraft& d) {
                 if (t.string("hostnames_file", false)) d.route.hostnames_file = b.path_value(t, "hostnames_file");
             }},
            {"alpn", [](Builder& b, const TableReader& t, RouteDraft& d) { b.read_route_alpn(t, d); }},
            {"backends", [](Builder& b, const TableReader& t, RouteDraft& d) { b.read_route_backends(t, d); },
             "max_connection_duration"},
            {"drain_timeout",
             [](Builder&, const TableReader& t, RouteDraft& d) {
                 if (auto value = t.duration("drain_timeout")) d.route.drain_timeout = *value;
             }},
            {"allow", [](Builder& b, const TableReader& t, RouteDraft& d) { d.route.access = b.access_list(t); }},
            {"deny"},  // with allow
            {"max_connections",
             [](Builder&, const TableReader& t, RouteDraft& d) {
                 if (auto value = t.integer("max_connections", 1, kMaxConnections)) {
                     d.route.max_connections = static_cast<std::uint32_t>(*value);
                 }
             }},
            {"max_connection_duration",
             [](Builder&, const TableReader& t, RouteDraft& d) {
                 if (auto value = t.duration("max_connection_duration")) {
                     d.route.max_connection_duration = *value;
                 }
             }},
        };
        return keys;
    }

    void read_route(const toml::table& node, std::size_t index) {
        TableReader table(source_, node, index_path("route", index), key_names(route_keys()));
        RouteDraft draft;
        draft.route.line = table.line();
        read_keys(table, route_keys(), draft);
        config_.routes.push_back(std::move(draft.route));
        route_lines_.push_back(std::move(draft.lines));
    }

    void read_route_listeners(const TableReader& table, RouteDraft& draft) {
        Route& route = draft.route;
        RouteLines& lines = draft.lines;
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
                source_.fail(line_of(item), item_path,
                             "unknown listener " + quote(value) + did_you_mean(value, listener_names()));
            }
            const auto first = std::find(route.listeners.begin(), route.listeners.end(), value);
            if (first != route.listeners.end()) {
                const int first_line = lines.listeners[static_cast<std::size_t>(first - route.listeners.begin())];
                source_.fail(line_of(item), item_path,
                             "listener " + quote(value) + " is listed twice" + first_at_line(first_line));
            }
            route.listeners.push_back(value);
            lines.listeners.push_back(line_of(item));
        }
    }

    void read_route_hostnames(const TableReader& table, RouteDraft& draft) {
        Route& route = draft.route;
        // hostnames: optional, may be empty; lowercased, validated, no repeats.
        if (const toml::array* hostnames = table.array("hostnames", false)) {
            const std::string path = table.path_of("hostnames");
            for (std::size_t i = 0; i < hostnames->size(); ++i) {
                const std::string item_path = index_path(path, i);
                std::string value = hostname((*hostnames)[i], item_path);
                const auto first = std::find(route.hostnames.begin(), route.hostnames.end(), value);
                if (first != route.hostnames.end()) {
                    const int first_line =
                        line_of((*hostnames)[static_cast<std::size_t>(first - route.hostnames.begin())]);
                    source_.fail(line_of((*hostnames)[i]), item_path,
                                 "hostname " + quote(value) + " is listed twice" + first_at_line(first_line));
                }
                route.hostnames.push_back(std::move(value));
            }
        }
    }

    void read_route_alpn(const TableReader& table, RouteDraft& draft) {
        Route& route = draft.route;
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
                if (const auto first = std::find(route.alpn.begin(), route.alpn.end(), value);
                    first != route.alpn.end()) {
                    const int first_line = line_of((*alpn)[static_cast<std::size_t>(first - route.alpn.begin())]);
                    source_.fail(line_of(item), item_path,
                                 "ALPN protocol " + quote(value) + " is listed twice" + first_at_line(first_line));
                }
                route.alpn.push_back(value);
            }
        }
    }

    // One of a route's backends being read; `route` has the backends read before it.
    struct BackendDraft {
        BackendRef backend;
        int service_line = 0;
        const RouteDraft* route = nullptr;
    };

    static std::span<const Key<BackendDraft>> backend_keys() {
        static constexpr Key<BackendDraft> keys[] = {
            {"service",
             [](Builder& b, const TableReader& t, BackendDraft& d) {
                 d.backend.service = *t.string("service", true);
                 d.service_line = line_of(*t.find("service"));
                 if (b.config_.find_service(d.backend.service) == nullptr) {
                     t.fail("service", "unknown service " + quote(d.backend.service) +
                                           did_you_mean(d.backend.service, b.service_names()));
                 }
                 const Route& route = d.route->route;
                 for (std::size_t j = 0; j < route.backends.size(); ++j) {
                     if (route.backends[j].service == d.backend.service) {
                         t.fail("service", "service " + quote(d.backend.service) +
                                               " is already a backend of this route (line " +
                                               std::to_string(d.route->lines.backend_services[j]) + ")");
                     }
                 }
             }},
            {"weight",
             [](Builder&, const TableReader& t, BackendDraft& d) {
                 if (auto weight = t.integer("weight", 0, kMaxBackendWeight)) {
                     d.backend.weight = static_cast<std::uint32_t>(*weight);
                 }
             }},
        };
        return keys;
    }

    void read_route_backends(const TableReader& table, RouteDraft& draft) {
        Route& route = draft.route;
        RouteLines& lines = draft.lines;
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
            TableReader entry(source_, *item.as_table(), item_path, key_names(backend_keys()));
            BackendDraft backend{{}, 0, &draft};
            read_keys(entry, backend_keys(), backend);
            route.backends.push_back(std::move(backend.backend));
            lines.backend_services.push_back(backend.service_line);
        }
        if (std::all_of(route.backends.begin(), route.backends.end(),
                        [](const BackendRef& b) { return b.weight == 0; })) {
            table.fail("backends", "all backend weights are 0");
        }
    }

    // A QUIC route's services get the client's datagrams unchanged: a PROXY header would be taken
    // for a (broken) QUIC packet by the backend.
    void check_quic_backends() {
        for (std::size_t r = 0; r < config_.routes.size(); ++r) {
            const Route& route = config_.routes[r];
            const Listener* quic = nullptr;
            for (const std::string& name : route.listeners) {
                const Listener* listener = config_.find_listener(name);
                if (listener != nullptr && listener->protocol == ListenerProtocol::quic) quic = listener;
            }
            if (quic == nullptr) continue;
            for (std::size_t b = 0; b < route.backends.size(); ++b) {
                const Service* service = config_.find_service(route.backends[b].service);
                if (service == nullptr || service->send_proxy_protocol == ProxyProtocol::none) continue;
                source_.fail(route_lines_[r].backend_services[b], index_path("route", r) + ".backends",
                             "service " + quote(service->name) + " (line " + std::to_string(service->line) +
                                 ") sends a PROXY protocol header, which QUIC listener " + quote(quic->name) +
                                 " cannot: its backends get the client's datagrams unchanged");
            }
        }
    }

    void check_default_routes() {
        for (std::size_t i = 0; i < config_.listeners.size(); ++i) {
            const Listener& listener = config_.listeners[i];
            if (!listener.default_route) continue;
            const std::string path = index_path("listener", i) + ".default_route";
            const int line = listener_lines_[i].default_route;
            const Route* route = config_.find_route(*listener.default_route);
            if (route == nullptr) {
                source_.fail(line, path,
                             "unknown route " + quote(*listener.default_route) +
                                 did_you_mean(*listener.default_route, route_names()));
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

    // The names defined so far, for "did you mean" suggestions.
    template <typename T>
    static std::vector<std::string_view> names_of(const std::vector<T>& items) {
        std::vector<std::string_view> names;
        for (const T& item : items) names.push_back(item.name);
        return names;
    }
    std::vector<std::string_view> listener_names() const { return names_of(config_.listeners); }
    std::vector<std::string_view> route_names() const { return names_of(config_.routes); }
    std::vector<std::string_view> service_names() const { return names_of(config_.services); }

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
        case Discovery::kubernetes: {
            if (!service.kubernetes) return "kubernetes";
            const KubernetesBackend& backend = *service.kubernetes;
            const std::string port = std::holds_alternative<std::uint16_t>(backend.port)
                                         ? std::to_string(std::get<std::uint16_t>(backend.port))
                                         : std::get<std::string>(backend.port);
            return "kubernetes " + backend.namespace_name + "/" + backend.service + " port " + port;
        }
    }
    return {};
}

std::string check_api_server_url(std::string_view url) {
    constexpr std::string_view scheme = "https://";
    if (!url.starts_with(scheme)) return "expected \"https://host[:port]\" (https only)";
    std::string_view rest = url.substr(scheme.size());
    if (rest.find_first_of("/?#") != std::string_view::npos)
        return "expected \"https://host[:port]\" without a path";
    if (rest.find('@') != std::string_view::npos) return "credentials do not go in the URL";
    std::string_view host = rest;
    std::string_view port;
    if (rest.starts_with("[")) {
        const std::size_t close = rest.find(']');
        if (close == std::string_view::npos) return "an IPv6 address in brackets lacks its ']'";
        host = rest.substr(1, close - 1);
        const std::string_view after = rest.substr(close + 1);
        if (!after.empty() && !after.starts_with(":")) return "expected ':port' after ']'";
        if (!after.empty()) port = after.substr(1);
        in6_addr address{};
        if (::inet_pton(AF_INET6, std::string(host).c_str(), &address) != 1)
            return "invalid IPv6 address in brackets";
        if (!after.empty() && port.empty()) return "empty port";
    } else {
        const std::size_t colon = rest.find(':');
        if (colon != rest.rfind(':')) return "an IPv6 address goes in brackets (\"https://[fd00::1]:6443\")";
        if (colon != std::string_view::npos) {
            host = rest.substr(0, colon);
            port = rest.substr(colon + 1);
            if (port.empty()) return "empty port";
        }
        if (host.empty()) return "no host";
        if (ascii_lower(host) != host) return "the host must be lowercase";
        const std::string error = validate_dns_name(host);
        if (!error.empty()) return "invalid host: " + error;
    }
    if (!port.empty()) {
        if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return "the port must be a number from 1 to 65535";
        const int number = std::stoi(std::string(port));
        if (number < 1 || number > 65535) return "the port must be a number from 1 to 65535";
    }
    return {};
}

const Service* Config::find_service(std::string_view name) const {
    for (const Service& service : services) {
        if (service.name == name) return &service;
    }
    return nullptr;
}

std::optional<Duration> parse_duration(std::string_view text, bool allow_zero) {
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
    if (result.count() < 0 || (result.count() == 0 && !allow_zero) || result > kMaxDuration) return std::nullopt;
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

bool same_settings(const Kubernetes& a, const Kubernetes& b) {
    Kubernetes x = a, y = b;
    x.line = y.line = 0;
    return x == y;
}

bool same_settings(const GatewayApi& a, const GatewayApi& b) {
    GatewayApi x = a, y = b;
    x.line = y.line = 0;
    return x == y;
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
    std::string text;
    try {
        text = read_bounded_file(path, kMaxConfigFileBytes);
    } catch (const FileReadError& error) {
        throw ConfigError(path + ":0: " + error.what());
    }
    return parse_config(text, path);
}

}  // namespace passgate::config
