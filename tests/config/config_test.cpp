#include "config/config.h"
#include "tests/config/config_error.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>

using namespace passgate::config;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;
using namespace std::chrono_literals;

namespace {

// The config of the brief / README, line for line (line 1 is "[runtime]").
const std::string kExample = R"([runtime]
workers = 0                             # worker threads; 0 = one per CPU
[admin]
address = "127.0.0.1:9901"              # GET /metrics /healthz /readyz
[[listener]]
name = "tls"
address = "0.0.0.0:6443"                # IPv4 or "[::]:6443"
hostname = "passthrough.example.com"    # optional; exact or leading "*." wildcard
client_hello_timeout = "10s"            # optional; durations like "250ms", "10s", "1h"
default_route = "fallback"              # optional: route for no SNI / no match; otherwise close
[[route]]
name = "fallback"                       # a route used only as a default_route may omit hostnames
listeners = ["tls"]
backends = [ { service = "passthrough-echoserver" } ]   # weight defaults to 1
[[route]]
name = "passthrough"
listeners = ["tls"]
hostnames = ["passthrough.example.com"]
backends = [ { service = "passthrough-echoserver", weight = 1 } ]
[[service]]
name = "passthrough-echoserver"
endpoints = ["127.0.0.1:8443"]
balance = "round_robin"                 # optional, this is the default
connect_timeout = "3s"
)";

// A small valid config that the error tests edit. Lines:
//  1 [[listener]]   2 name   3 address
//  5 [[route]]      6 name   7 listeners   8 hostnames   9 backends
// 11 [[service]]   12 name  13 endpoints
const std::string kBase = R"([[listener]]
name = "tls"
address = "127.0.0.1:6443"

[[route]]
name = "r"
listeners = ["tls"]
hostnames = ["a.example.com"]
backends = [{ service = "s" }]

[[service]]
name = "s"
endpoints = ["127.0.0.1:8443"]
)";

std::string replace(std::string text, std::string_view from, std::string_view to) {
    const auto position = text.find(from);
    REQUIRE(position != std::string::npos);
    text.replace(position, from.size(), to);
    return text;
}

// kBase with one extra line: in the listener at line 4, the route at line 10, the service at
// line 14.
std::string listener_with(std::string_view line) {
    return replace(kBase, "address = \"127.0.0.1:6443\"\n",
                   "address = \"127.0.0.1:6443\"\n" + std::string(line) + "\n");
}
std::string route_with(std::string_view line) {
    return replace(kBase, "backends = [{ service = \"s\" }]\n",
                   "backends = [{ service = \"s\" }]\n" + std::string(line) + "\n");
}
std::string service_with(std::string_view line) {
    return replace(kBase, "endpoints = [\"127.0.0.1:8443\"]\n",
                   "endpoints = [\"127.0.0.1:8443\"]\n" + std::string(line) + "\n");
}

using passgate::config::testing::error_of;

Config parse(const std::string& text) { return parse_config(text, "t.toml"); }

std::string source_root() {
    if (const char* root = std::getenv("PASSGATE_SOURCE_ROOT")) return root;
    return PASSGATE_SOURCE_ROOT;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Valid configs

TEST_CASE("the example config parses to the expected values", "[config]") {
    const Config config = parse(kExample);
    CHECK(config.source == "t.toml");
    CHECK(config.runtime.workers == 0);
    CHECK(config.admin.address.to_string() == "127.0.0.1:9901");

    REQUIRE(config.listeners.size() == 1);
    const Listener& listener = config.listeners[0];
    CHECK(listener.name == "tls");
    CHECK(listener.address.to_string() == "0.0.0.0:6443");
    CHECK(listener.hostname == "passthrough.example.com");
    CHECK(listener.client_hello_timeout == 10s);
    CHECK(listener.max_client_hello_size == 65536);
    CHECK(listener.idle_timeout == 1h);
    CHECK(listener.default_route == "fallback");
    CHECK(listener.line == 5);

    REQUIRE(config.routes.size() == 2);
    const Route& fallback = config.routes[0];
    CHECK(fallback.name == "fallback");
    CHECK(fallback.listeners == std::vector<std::string>{"tls"});
    CHECK(fallback.hostnames.empty());
    CHECK(fallback.alpn.empty());
    REQUIRE(fallback.backends.size() == 1);
    CHECK(fallback.backends[0].service == "passthrough-echoserver");
    CHECK(fallback.backends[0].weight == 1);
    CHECK(fallback.line == 11);
    const Route& passthrough = config.routes[1];
    CHECK(passthrough.name == "passthrough");
    CHECK(passthrough.hostnames == std::vector<std::string>{"passthrough.example.com"});
    REQUIRE(passthrough.backends.size() == 1);
    CHECK(passthrough.backends[0].weight == 1);
    CHECK(passthrough.line == 15);

    REQUIRE(config.services.size() == 1);
    const Service& service = config.services[0];
    CHECK(service.name == "passthrough-echoserver");
    REQUIRE(service.endpoints.size() == 1);
    CHECK(service.endpoints[0].address.to_string() == "127.0.0.1:8443");
    CHECK(service.endpoints[0].weight == 1);
    CHECK(service.balance == Balance::round_robin);
    CHECK(service.connect_timeout == 3s);
    CHECK(service.connect_attempts == 3);
    CHECK(service.line == 20);

    // "fallback" has no hostnames and is the listener's default_route: it serves only as the
    // default there, so it shadows nothing (the contract example has no warning).
    CHECK(config.warnings.empty());

    CHECK(config.find_listener("tls") == &config.listeners[0]);
    CHECK(config.find_listener("nope") == nullptr);
    CHECK(config.find_route("passthrough") == &config.routes[1]);
    CHECK(config.find_route("tls") == nullptr);
    CHECK(config.find_service("passthrough-echoserver") == &config.services[0]);
    CHECK(config.find_service("") == nullptr);
}

TEST_CASE("defaults apply when optional keys are absent", "[config]") {
    const Config config = parse(kBase);
    CHECK(config.runtime.workers == 0);
    CHECK(config.admin.address.to_string() == "127.0.0.1:9901");
    const Listener& listener = config.listeners.at(0);
    CHECK_FALSE(listener.hostname);
    CHECK(listener.client_hello_timeout == 10s);
    CHECK(listener.defer_accept);
    CHECK(listener.max_client_hello_size == 64 * 1024);
    CHECK(listener.idle_timeout == 1h);
    CHECK_FALSE(listener.default_route);
    const Service& service = config.services.at(0);
    CHECK(service.balance == Balance::round_robin);
    CHECK(service.connect_timeout == 3s);
    CHECK(service.connect_attempts == 3);
    CHECK(config.warnings.empty());
    // An empty [admin] or [runtime] table keeps the defaults too.
    const Config empty_tables = parse("[runtime]\n[admin]\n" + kBase);
    CHECK(empty_tables.admin.address.to_string() == "127.0.0.1:9901");
    CHECK(empty_tables.runtime.workers == 0);
}

TEST_CASE("every key can be set", "[config]") {
    const Config config = parse(R"(
[runtime]
workers = 1024
[admin]
address = "[::1]:9000"

[[listener]]
name = "tls-v6"
address = "[::]:6443"
hostname = "*.Example.COM"
client_hello_timeout = "250ms"
max_client_hello_size = 1048576
idle_timeout = "5m"
default_route = "catch-all"

[[listener]]
name = "plain_2"
address = "0.0.0.0:8443"
defer_accept = false
max_client_hello_size = 512
idle_timeout = "8760h"

[[route]]
name = "catch-all"
listeners = ["tls-v6"]
backends = [{ service = "b" }]

[[route]]
name = "h2.only"
listeners = ["tls-v6", "plain_2"]
hostnames = ["API.example.com", "*.Internal.Example.com"]
alpn = ["h2", "http/1.1"]
backends = [ { service = "a", weight = 0 }, { service = "b", weight = 1000000 } ]

[[service]]
name = "a"
endpoints = [
  "10.0.0.1:443",
  { address = "[2001:db8::1]:443", weight = 10000 },
  { address = "10.0.0.2:443", weight = 0 },
  { address = "10.0.0.3:443" },
]
balance = "round_robin"
connect_timeout = "1s"
connect_attempts = 16

[[service]]
name = "b"
endpoints = ["127.0.0.1:1"]
connect_attempts = 1
)");
    CHECK(config.runtime.workers == 1024);
    CHECK(config.admin.address.to_string() == "[::1]:9000");

    REQUIRE(config.listeners.size() == 2);
    const Listener& v6 = config.listeners[0];
    CHECK(v6.address.to_string() == "[::]:6443");
    CHECK(v6.hostname == "*.example.com");  // lowercased
    CHECK(v6.client_hello_timeout == 250ms);
    CHECK(v6.max_client_hello_size == 1048576);
    CHECK(v6.idle_timeout == 5min);
    CHECK(v6.default_route == "catch-all");
    CHECK(v6.defer_accept);
    const Listener& plain = config.listeners[1];
    CHECK(plain.name == "plain_2");
    CHECK_FALSE(plain.defer_accept);
    CHECK(plain.max_client_hello_size == 512);
    CHECK(plain.idle_timeout == 8760h);

    const Route& route = config.routes.at(1);
    CHECK(route.name == "h2.only");
    CHECK(route.listeners == std::vector<std::string>{"tls-v6", "plain_2"});
    CHECK(route.hostnames == std::vector<std::string>{"api.example.com", "*.internal.example.com"});
    CHECK(route.alpn == std::vector<std::string>{"h2", "http/1.1"});
    REQUIRE(route.backends.size() == 2);
    CHECK(route.backends[0].service == "a");
    CHECK(route.backends[0].weight == 0);
    CHECK(route.backends[1].weight == 1000000);

    const Service& a = config.services.at(0);
    REQUIRE(a.endpoints.size() == 4);
    CHECK(a.endpoints[0].address.to_string() == "10.0.0.1:443");
    CHECK(a.endpoints[0].weight == 1);
    CHECK(a.endpoints[1].address.to_string() == "[2001:db8::1]:443");
    CHECK(a.endpoints[1].weight == 10000);
    CHECK(a.endpoints[2].weight == 0);
    CHECK(a.endpoints[3].weight == 1);
    CHECK(a.connect_timeout == 1s);
    CHECK(a.connect_attempts == 16);
    CHECK(config.services.at(1).connect_attempts == 1);
    CHECK(config.warnings.empty());
}

TEST_CASE("array-of-tables may also be written inline", "[config]") {
    const Config config = parse(R"(
listener = [ { name = "tls", address = "127.0.0.1:6443" } ]
service = [ { name = "s", endpoints = ["127.0.0.1:8443"] } ]
[[route]]
name = "r"
listeners = ["tls"]
hostnames = ["a.example.com"]
[[route.backends]]
service = "s"
weight = 5
)");
    REQUIRE(config.routes.size() == 1);
    REQUIRE(config.routes[0].backends.size() == 1);
    CHECK(config.routes[0].backends[0].weight == 5);
}

TEST_CASE("the shipped example config loads without warnings", "[config]") {
    const std::string path = source_root() + "/examples/passgate.toml";
    const Config config = load_config_file(path);
    CHECK(config.source == path);
    CHECK(config.warnings.empty());
    const Listener* listener = config.find_listener("tls");
    REQUIRE(listener != nullptr);
    CHECK(listener->address.to_string() == "0.0.0.0:6443");
    CHECK(listener->default_route == "fallback");
    const Route* route = config.find_route("passthrough");
    REQUIRE(route != nullptr);
    CHECK(route->hostnames == std::vector<std::string>{"passthrough.example.com"});
    REQUIRE(config.find_service("passthrough-echoserver") != nullptr);
}

TEST_CASE("the complete example in config/README.md parses without warnings", "[config]") {
    std::ifstream in(source_root() + "/config/README.md");
    REQUIRE(in);
    const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto start = readme.find("```toml\n");
    REQUIRE(start != std::string::npos);
    const auto body = start + 8;
    const auto end = readme.find("```", body);
    REQUIRE(end != std::string::npos);
    const Config config = parse(readme.substr(body, end - body));
    CHECK(config.warnings.empty());
    CHECK(config.listeners.at(0).hostname == "*.example.com");
    CHECK(config.listeners.at(0).accept_proxy_protocol);
    CHECK(config.listeners.at(0).trusted_proxies.size() == 1);
    CHECK(config.routes.at(1).alpn == std::vector<std::string>{"h2", "http/1.1"});
    CHECK(config.services.at(0).endpoints.at(1).weight == 2);
}

// ---------------------------------------------------------------------------------------------
// Error format and line numbers

TEST_CASE("errors read FILE:LINE: KEY: MESSAGE with the line of the offending value", "[config][errors]") {
    CHECK(error_of(replace(kBase, "\"127.0.0.1:6443\"", "\"localhost:6443\"")) ==
          "t.toml:3: listener[0].address: invalid address \"localhost:6443\": expected "
          "\"a.b.c.d:port\" or \"[ipv6]:port\" with a port from 1 to 65535 (host names are not "
          "resolved)");
    CHECK(error_of(replace(kBase, "[{ service = \"s\" }]", "[{ service = \"nope\" }]")) ==
          "t.toml:9: route[0].backends[0].service: unknown service \"nope\"");
    CHECK(error_of(replace(kBase, "listeners = [\"tls\"]", "listeners = [\"tls\", \"x\"]")) ==
          "t.toml:7: route[0].listeners[1]: unknown listener \"x\"");
    CHECK(error_of(replace(kBase, "\"127.0.0.1:8443\"", "\"127.0.0.1:0\"")) ==
          "t.toml:13: service[0].endpoints[0]: invalid address \"127.0.0.1:0\": expected "
          "\"a.b.c.d:port\" or \"[ipv6]:port\" with a port from 1 to 65535 (host names are not "
          "resolved)");
    // Values on later lines of a multi-line array point at their own line.
    CHECK(error_of(replace(kBase, "endpoints = [\"127.0.0.1:8443\"]",
                           "endpoints = [\n  \"127.0.0.1:8443\",\n  \"127.0.0.1:8444\",\n  "
                           "\"bad\",\n]")) ==
          "t.toml:16: service[0].endpoints[2]: invalid address \"bad\": expected "
          "\"a.b.c.d:port\" or \"[ipv6]:port\" with a port from 1 to 65535 (host names are not "
          "resolved)");
    // The second listener, 40 lines down.
    std::string padded = kBase + std::string(40, '\n') +
                         "[[listener]]\nname = \"two\"\naddress = \"127.0.0.1:6443\"\n";
    CHECK(error_of(padded) ==
          "t.toml:56: listener[1].address: 127.0.0.1:6443 is already used by listener \"tls\" "
          "(line 3)");
}

TEST_CASE("a missing required key points at its table", "[config][errors]") {
    CHECK(error_of(replace(kBase, "name = \"tls\"\n", "")) ==
          "t.toml:1: listener[0].name: required key is missing");
    CHECK(error_of(replace(kBase, "address = \"127.0.0.1:6443\"\n", "")) ==
          "t.toml:1: listener[0].address: required key is missing");
    CHECK(error_of(replace(kBase, "name = \"r\"\n", "")) ==
          "t.toml:5: route[0].name: required key is missing");
    CHECK(error_of(replace(kBase, "listeners = [\"tls\"]\n", "")) ==
          "t.toml:5: route[0].listeners: required key is missing");
    CHECK(error_of(replace(kBase, "backends = [{ service = \"s\" }]\n", "")) ==
          "t.toml:5: route[0].backends: required key is missing");
    CHECK(error_of(replace(kBase, "[{ service = \"s\" }]", "[{ weight = 1 }]")) ==
          "t.toml:9: route[0].backends[0].service: required key is missing");
    CHECK(error_of(replace(kBase, "name = \"s\"\n", "")) ==
          "t.toml:11: service[0].name: required key is missing");
    CHECK(error_of(replace(kBase, "endpoints = [\"127.0.0.1:8443\"]\n", "")) ==
          "t.toml:11: service[0].endpoints: required key is missing");
    CHECK(error_of(replace(kBase, "[\"127.0.0.1:8443\"]", "[{ weight = 2 }]")) ==
          "t.toml:13: service[0].endpoints[0].address: required key is missing");
}

TEST_CASE("at least one listener is required", "[config][errors]") {
    CHECK(error_of("") == "t.toml:1: listener: at least one [[listener]] is required "
          "(or a [gateway_api] table whose Gateways make them)");
    CHECK(error_of("# nothing\n[runtime]\nworkers = 2\n") ==
          "t.toml:1: listener: at least one [[listener]] is required "
          "(or a [gateway_api] table whose Gateways make them)");
    CHECK(error_of("listener = []\n") == "t.toml:1: listener: at least one [[listener]] is required "
          "(or a [gateway_api] table whose Gateways make them)");
}

TEST_CASE("required lists must not be empty", "[config][errors]") {
    CHECK(error_of(replace(kBase, "listeners = [\"tls\"]", "listeners = []")) ==
          "t.toml:7: route[0].listeners: must name at least one listener");
    CHECK(error_of(replace(kBase, "backends = [{ service = \"s\" }]", "backends = []")) ==
          "t.toml:9: route[0].backends: must list at least one backend");
    CHECK(error_of(replace(kBase, "endpoints = [\"127.0.0.1:8443\"]", "endpoints = []")) ==
          "t.toml:13: service[0].endpoints: must list at least one endpoint");
    CHECK(error_of(route_with("alpn = []")) ==
          "t.toml:10: route[0].alpn: must not be empty (omit the key to match any ALPN)");
    // hostnames = [] is the same as no hostnames.
    CHECK_THAT(error_of(replace(kBase, "hostnames = [\"a.example.com\"]", "hostnames = []")),
               Equals("(no error)"));
}

TEST_CASE("TOML syntax errors carry toml++'s line and description", "[config][errors]") {
    const std::string error = error_of("[runtime]\nworkers = 1\nworkers = 2\n");
    CHECK_THAT(error, StartsWith("t.toml:3: syntax error: "));
    CHECK_THAT(error, Contains("workers"));
    CHECK_THAT(error, Contains("(column "));
    CHECK_THAT(error_of(kBase + "\n\n[[route]\n"), StartsWith("t.toml:16: syntax error: "));
    CHECK_THAT(error_of("a = \"unterminated\n"), StartsWith("t.toml:1: syntax error: "));
    CHECK_THAT(error_of("\n\nx = \xff\n"), StartsWith("t.toml:3: syntax error: "));
    CHECK_THAT(error_of(kBase + "[[listener]]\nname = \"x\"\nname = \"y\"\n"),
               StartsWith("t.toml:16: syntax error: "));
}

// ---------------------------------------------------------------------------------------------
// Unknown keys

TEST_CASE("unknown keys are errors at every level", "[config][errors]") {
    CHECK(error_of("listeners = 1\n" + kBase) ==
          "t.toml:1: listeners: unknown key (did you mean \"listener\"?); allowed keys: runtime, "
          "admin, access_log, dns, kubernetes, gateway_api, listener, route, service");
    CHECK(error_of(kBase + "[frontend]\nx = 1\n") ==
          "t.toml:14: frontend: unknown key; allowed keys: runtime, admin, access_log, dns, kubernetes, gateway_api, listener, route, "
          "service");
    CHECK(error_of("[runtime]\nthreads = 4\n" + kBase) ==
          "t.toml:2: runtime.threads: unknown key; allowed keys: workers, shutdown_timeout, upgrade_timeout, drain_delay, "
          "max_connections_per_worker, pause_accepting_at, max_hello_memory, reuseport_cpu_steering, max_quic_flows_per_worker");
    CHECK(error_of("[admin]\nadress = \"127.0.0.1:1\"\n" + kBase) ==
          "t.toml:2: admin.adress: unknown key (did you mean \"address\"?); allowed keys: "
          "address, departed_series_retention, request_timeout, max_connections, max_connections_per_source");
    CHECK(error_of(listener_with("sni = \"x\"")) ==
          "t.toml:4: listener[0].sni: unknown key; allowed keys: name, address, protocol, quic_flow_idle_timeout, hostname, "
          "client_hello_timeout, defer_accept, max_client_hello_size, idle_timeout, default_route, allow, deny, "
          "max_connections, max_connection_rate, accept_proxy_protocol, trusted_proxies");
    CHECK(error_of(listener_with("hostnames = [\"a.example.com\"]")) ==
          "t.toml:4: listener[0].hostnames: unknown key (did you mean \"hostname\"?); allowed "
          "keys: name, address, protocol, quic_flow_idle_timeout, hostname, client_hello_timeout, defer_accept, "
          "max_client_hello_size, idle_timeout, default_route, allow, deny, max_connections, max_connection_rate, "
          "accept_proxy_protocol, trusted_proxies");
    CHECK(error_of(route_with("hostname = \"a.example.com\"")) ==
          "t.toml:10: route[0].hostname: unknown key (did you mean \"hostnames\"?); allowed "
          "keys: name, listeners, hostnames, hostnames_file, alpn, backends, drain_timeout, allow, deny, "
          "max_connections, max_connection_duration");
    CHECK(error_of(replace(kBase, "{ service = \"s\" }", "{ service = \"s\", wieght = 2 }")) ==
          "t.toml:9: route[0].backends[0].wieght: unknown key (did you mean \"weight\"?); "
          "allowed keys: service, weight");
    CHECK(error_of(service_with("protocol = \"tcp\"")) ==
          "t.toml:14: service[0].protocol: unknown key; allowed keys: name, endpoints, dns, port, "
          "dns_srv, endpoints_file, kubernetes, dns_min_ttl, dns_max_ttl, endpoint_max_connections, balance, "
          "hash_key, health_check, outlier_detection, connect_timeout, connect_attempts, "
          "send_proxy_protocol");
    CHECK(error_of(replace(kBase, "[\"127.0.0.1:8443\"]",
                           "[{ address = \"127.0.0.1:8443\", port = 1 }]")) ==
          "t.toml:13: service[0].endpoints[0].port: unknown key; allowed keys: address, weight, max_connections");
    // Quoted keys are shown quoted; the first unknown key by line is reported.
    CHECK(error_of("\"a b\" = 1\nzzz = 2\n" + kBase) ==
          "t.toml:1: \"a b\": unknown key; allowed keys: runtime, admin, access_log, dns, kubernetes, gateway_api, listener, route, "
          "service");
    CHECK(error_of("zzz = 2\n\"a b\" = 1\n" + kBase) ==
          "t.toml:1: zzz: unknown key; allowed keys: runtime, admin, access_log, dns, kubernetes, gateway_api, listener, route, service");
    // Keys after a [[service]] table belong to it.
    CHECK_THAT(error_of(kBase + "zzz = 2\n"), StartsWith("t.toml:14: service[0].zzz: unknown key;"));
    // A dotted key under a known table is an unknown key of that table.
    CHECK(error_of("runtime.x = 1\n" + kBase) ==
          "t.toml:1: runtime.x: unknown key; allowed keys: workers, shutdown_timeout, upgrade_timeout, drain_delay, "
          "max_connections_per_worker, pause_accepting_at, max_hello_memory, reuseport_cpu_steering, max_quic_flows_per_worker");
}

// ---------------------------------------------------------------------------------------------
// Types

TEST_CASE("wrong types are errors that name the expected type", "[config][errors]") {
    struct Row {
        std::string text;
        std::string expected;
    };
    const Row rows[] = {
        // Top level.
        {"runtime = 1\n" + kBase, "t.toml:1: runtime: expected a table ([runtime] section), got an integer"},
        {"admin = \"127.0.0.1:1\"\n" + kBase, "t.toml:1: admin: expected a table ([admin] section), got a string"},
        {"[listener]\nname = \"tls\"\n", "t.toml:1: listener: expected an array of tables ([[listener]] sections), got a table"},
        {"listener = [\"tls\"]\n", "t.toml:1: listener[0]: expected a table, got a string"},
        {"route = 1\n[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:6443\"\n", "t.toml:1: route: expected an array of tables ([[route]] sections), got an integer"},
        {"service = \"s\"\n" "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:6443\"\n", "t.toml:1: service: expected an array of tables ([[service]] sections), got a string"},
        {"route = [1]\n" "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:6443\"\n", "t.toml:1: route[0]: expected a table, got an integer"},
        // [runtime] / [admin].
        {"[runtime]\nworkers = \"4\"\n" + kBase, "t.toml:2: runtime.workers: expected an integer, got a string"},
        {"[runtime]\nworkers = 4.0\n" + kBase, "t.toml:2: runtime.workers: expected an integer, got a float"},
        {"[runtime]\nworkers = true\n" + kBase, "t.toml:2: runtime.workers: expected an integer, got a boolean"},
        {"[runtime]\nworkers = 1979-05-27\n" + kBase, "t.toml:2: runtime.workers: expected an integer, got a date"},
        {"[admin]\naddress = 9901\n" + kBase, "t.toml:2: admin.address: expected an address string like \"1.2.3.4:443\", got an integer"},
        // [[listener]].
        {replace(kBase, "name = \"tls\"", "name = 1"), "t.toml:2: listener[0].name: expected a string, got an integer"},
        {replace(kBase, "address = \"127.0.0.1:6443\"", "address = [\"127.0.0.1:6443\"]"), "t.toml:3: listener[0].address: expected an address string like \"1.2.3.4:443\", got an array"},
        {listener_with("hostname = [\"a.example.com\"]"), "t.toml:4: listener[0].hostname: expected a hostname string, got an array"},
        {listener_with("client_hello_timeout = 10"), "t.toml:4: listener[0].client_hello_timeout: expected a duration string like \"10s\", got an integer"},
        {listener_with("idle_timeout = 1.5"), "t.toml:4: listener[0].idle_timeout: expected a duration string like \"10s\", got a float"},
        {listener_with("max_client_hello_size = \"64KiB\""), "t.toml:4: listener[0].max_client_hello_size: expected an integer, got a string"},
        {listener_with("default_route = true"), "t.toml:4: listener[0].default_route: expected a string, got a boolean"},
        // [[route]].
        {replace(kBase, "name = \"r\"", "name = [\"r\"]"), "t.toml:6: route[0].name: expected a string, got an array"},
        {replace(kBase, "listeners = [\"tls\"]", "listeners = \"tls\""), "t.toml:7: route[0].listeners: expected an array, got a string"},
        {replace(kBase, "listeners = [\"tls\"]", "listeners = [1]"), "t.toml:7: route[0].listeners[0]: expected a listener name string, got an integer"},
        {replace(kBase, "hostnames = [\"a.example.com\"]", "hostnames = \"a.example.com\""), "t.toml:8: route[0].hostnames: expected an array, got a string"},
        {replace(kBase, "hostnames = [\"a.example.com\"]", "hostnames = [\"a.example.com\", 2]"), "t.toml:8: route[0].hostnames[1]: expected a hostname string, got an integer"},
        {route_with("alpn = \"h2\""), "t.toml:10: route[0].alpn: expected an array, got a string"},
        {route_with("alpn = [\"h2\", [\"x\"]]"), "t.toml:10: route[0].alpn[1]: expected a protocol name string, got an array"},
        {replace(kBase, "backends = [{ service = \"s\" }]", "backends = { service = \"s\" }"), "t.toml:9: route[0].backends: expected an array, got a table"},
        {replace(kBase, "backends = [{ service = \"s\" }]", "backends = [\"s\"]"), "t.toml:9: route[0].backends[0]: expected a table like { service = \"name\", weight = 1 }, got a string"},
        {replace(kBase, "{ service = \"s\" }", "{ service = 1 }"), "t.toml:9: route[0].backends[0].service: expected a string, got an integer"},
        {replace(kBase, "{ service = \"s\" }", "{ service = \"s\", weight = \"1\" }"), "t.toml:9: route[0].backends[0].weight: expected an integer, got a string"},
        // [[service]].
        {replace(kBase, "name = \"s\"", "name = 0"), "t.toml:12: service[0].name: expected a string, got an integer"},
        {replace(kBase, "endpoints = [\"127.0.0.1:8443\"]", "endpoints = \"127.0.0.1:8443\""), "t.toml:13: service[0].endpoints: expected an array, got a string"},
        {replace(kBase, "[\"127.0.0.1:8443\"]", "[8443]"), "t.toml:13: service[0].endpoints[0]: expected an \"ip:port\" string or a table { address = \"ip:port\", weight = N }, got an integer"},
        {replace(kBase, "[\"127.0.0.1:8443\"]", "[{ address = 8443 }]"), "t.toml:13: service[0].endpoints[0].address: expected an address string like \"1.2.3.4:443\", got an integer"},
        {replace(kBase, "[\"127.0.0.1:8443\"]", "[{ address = \"127.0.0.1:8443\", weight = 1.0 }]"), "t.toml:13: service[0].endpoints[0].weight: expected an integer, got a float"},
        {service_with("balance = 1"), "t.toml:14: service[0].balance: expected a string, got an integer"},
        {service_with("connect_timeout = 3"), "t.toml:14: service[0].connect_timeout: expected a duration string like \"10s\", got an integer"},
        {service_with("connect_attempts = \"3\""), "t.toml:14: service[0].connect_attempts: expected an integer, got a string"},
    };
    for (const Row& row : rows) {
        INFO(row.text);
        CHECK(error_of(row.text) == row.expected);
    }
}

// ---------------------------------------------------------------------------------------------
// Names

TEST_CASE("names are non-empty, [A-Za-z0-9_.-]+, unique per kind", "[config][errors]") {
    CHECK(error_of(replace(kBase, "name = \"tls\"", "name = \"\"")) ==
          "t.toml:2: listener[0].name: must not be empty");
    CHECK(error_of(replace(kBase, "name = \"tls\"", "name = \"my listener\"")) ==
          "t.toml:2: listener[0].name: invalid name \"my listener\": use only letters, digits, "
          "'_', '.' and '-'");
    CHECK(error_of(replace(kBase, "name = \"r\"", "name = \"r/1\"")) ==
          "t.toml:6: route[0].name: invalid name \"r/1\": use only letters, digits, '_', '.' and "
          "'-'");
    CHECK(error_of(replace(kBase, "name = \"s\"", "name = \"s\\u00e9\"")) ==
          "t.toml:12: service[0].name: invalid name \"s\xC3\xA9\": use only letters, digits, "
          "'_', '.' and '-'");
    CHECK(error_of(replace(kBase, "name = \"s\"", "name = \"a\\nb\"")) ==
          "t.toml:12: service[0].name: invalid name \"a\\nb\": use only letters, digits, '_', "
          "'.' and '-'");

    CHECK(error_of(kBase + "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:1\"\n") ==
          "t.toml:15: listener[1].name: duplicate listener name \"tls\" (first defined at line 1)");
    CHECK(error_of(kBase + "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [{ service = "
                           "\"s\" }]\n") ==
          "t.toml:15: route[1].name: duplicate route name \"r\" (first defined at line 5)");
    CHECK(error_of(kBase + "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:1\"]\n") ==
          "t.toml:15: service[1].name: duplicate service name \"s\" (first defined at line 11)");
    // The same name in different kinds is fine; names are case-sensitive.
    CHECK(error_of(R"([[listener]]
name = "x"
address = "127.0.0.1:6443"
[[route]]
name = "x"
listeners = ["x"]
hostnames = ["a.example.com"]
backends = [{ service = "x" }]
[[service]]
name = "x"
endpoints = ["127.0.0.1:8443"]
)") == "(no error)");
    CHECK(error_of(kBase + "[[service]]\nname = \"S\"\nendpoints = [\"127.0.0.1:1\"]\n") ==
          "(no error)");
}

// ---------------------------------------------------------------------------------------------
// Addresses

TEST_CASE("bad addresses are rejected everywhere", "[config][errors]") {
    const char* bad[] = {"localhost:6443", "6443",          ":6443",        "0.0.0.0",
                         "0.0.0.0:0",      "0.0.0.0:65536", "[::]",         "::1:6443",
                         "1.2.3:6443",     "",              "0.0.0.0:6443 ", "[fe80::1%lo]:1"};
    for (const char* text : bad) {
        INFO(text);
        const std::string quoted = "\"" + std::string(text) + "\"";
        CHECK_THAT(error_of(replace(kBase, "\"127.0.0.1:6443\"", quoted)),
                   StartsWith("t.toml:3: listener[0].address: invalid address " + quoted + ": "));
        CHECK_THAT(error_of(replace(kBase, "\"127.0.0.1:8443\"", quoted)),
                   StartsWith("t.toml:13: service[0].endpoints[0]: invalid address " + quoted));
        CHECK_THAT(error_of("[admin]\naddress = " + quoted + "\n" + kBase),
                   StartsWith("t.toml:2: admin.address: invalid address " + quoted));
        CHECK_THAT(error_of(replace(kBase, "[\"127.0.0.1:8443\"]",
                                    "[{ address = " + quoted + " }]")),
                   StartsWith("t.toml:13: service[0].endpoints[0].address: invalid address "));
    }
}

TEST_CASE("address conflicts and unusable endpoints", "[config][errors]") {
    CHECK(error_of(kBase + "[[listener]]\nname = \"two\"\naddress = \"127.0.0.1:6443\"\n") ==
          "t.toml:16: listener[1].address: 127.0.0.1:6443 is already used by listener \"tls\" "
          "(line 3)");
    // Same address, different spelling.
    CHECK(error_of(replace(kBase, "\"127.0.0.1:6443\"", "\"[::1]:6443\"") +
                   "[[listener]]\nname = \"two\"\naddress = \"[0:0::1]:6443\"\n") ==
          "t.toml:16: listener[1].address: [::1]:6443 is already used by listener \"tls\" "
          "(line 3)");
    // Different families or ports do not conflict.
    CHECK(error_of(kBase + "[[listener]]\nname = \"two\"\naddress = \"[::1]:6443\"\n" +
                   "[[listener]]\nname = \"three\"\naddress = \"127.0.0.1:6444\"\n")
              .find("already used") == std::string::npos);
    CHECK(error_of(replace(kBase, "\"127.0.0.1:6443\"", "\"127.0.0.1:9901\"")) ==
          "t.toml:3: listener[0].address: 127.0.0.1:9901 is also the admin address (the default)");
    CHECK(error_of("[admin]\naddress = \"127.0.0.1:6443\"\n" + kBase) ==
          "t.toml:5: listener[0].address: 127.0.0.1:6443 is also the admin address (line 2)");

    CHECK(error_of(replace(kBase, "\"127.0.0.1:8443\"", "\"0.0.0.0:8443\"")) ==
          "t.toml:13: service[0].endpoints[0]: invalid endpoint 0.0.0.0:8443: the unspecified "
          "address (0.0.0.0 or ::) cannot be connected to");
    CHECK(error_of(replace(kBase, "[\"127.0.0.1:8443\"]", "[{ address = \"[::]:8443\" }]")) ==
          "t.toml:13: service[0].endpoints[0].address: invalid endpoint [::]:8443: the "
          "unspecified address (0.0.0.0 or ::) cannot be connected to");
    CHECK(error_of(replace(kBase, "[\"127.0.0.1:8443\"]",
                           "[\"127.0.0.1:8443\",\n  { address = \"127.0.0.1:8443\", weight = 2 }]")) ==
          "t.toml:14: service[0].endpoints[1].address: duplicate endpoint 127.0.0.1:8443 (line 13)");
}

// ---------------------------------------------------------------------------------------------
// Durations

TEST_CASE("parse_duration accepts <digits>(ms|s|m|h), > 0, <= 8760h", "[config][duration]") {
    CHECK(parse_duration("1ms") == Duration(1));
    CHECK(parse_duration("250ms") == 250ms);
    CHECK(parse_duration("10s") == 10s);
    CHECK(parse_duration("5m") == 5min);
    CHECK(parse_duration("1h") == 1h);
    CHECK(parse_duration("0010s") == 10s);
    CHECK(parse_duration("8760h") == 8760h);
    CHECK(parse_duration("525600m") == 8760h);
    CHECK(parse_duration("31536000s") == 8760h);
    CHECK(parse_duration("31536000000ms") == 8760h);
}

TEST_CASE("parse_duration rejects everything else", "[config][duration]") {
    const char* bad[] = {
        "",        "10",     "10x",    "-1s",     "+1s",      "1.5s",         "1e3ms",
        "0s",      "0ms",    "000h",   " 10s",    "10s ",     "10 s",         "10S",
        "10Ms",    "s",      "ms",     "1h30m",   "1d",       "1us",          "10sec",
        "8761h",   "525601m", "31536000001ms", "999999999999h", "9999999999999h",
        "99999999999999999999999999s", "1\0s",
    };
    for (const char* text : bad) {
        INFO("\"" << text << "\"");
        CHECK_FALSE(parse_duration(text));
    }
    using namespace std::string_view_literals;
    CHECK_FALSE(parse_duration("1\0s"sv));
    CHECK_FALSE(parse_duration("10s\0"sv));
}

TEST_CASE("bad durations in the config are errors on each duration key", "[config][errors]") {
    const char* bad[] = {"10", "10x", "-1s", "", "1.5s", "0s", "9000h", "99999999999999999999s"};
    for (const char* text : bad) {
        INFO(text);
        const std::string value = "\"" + std::string(text) + "\"";
        const std::string message =
            "invalid duration " + value +
            ": expected a whole number followed by ms, s, m or h (\"250ms\", \"10s\", \"5m\", "
            "\"1h\"), greater than 0 and at most 8760h";
        CHECK(error_of(listener_with("client_hello_timeout = " + value)) ==
              "t.toml:4: listener[0].client_hello_timeout: " + message);
        CHECK(error_of(listener_with("idle_timeout = " + value)) ==
              "t.toml:4: listener[0].idle_timeout: " + message);
        CHECK(error_of(service_with("connect_timeout = " + value)) ==
              "t.toml:14: service[0].connect_timeout: " + message);
    }
}

// ---------------------------------------------------------------------------------------------
// Integer ranges and enums

TEST_CASE("integers outside their range are errors", "[config][errors]") {
    CHECK(error_of("[runtime]\nworkers = 1025\n" + kBase) ==
          "t.toml:2: runtime.workers: must be from 0 to 1024, got 1025");
    CHECK(error_of("[runtime]\nworkers = -1\n" + kBase) ==
          "t.toml:2: runtime.workers: must be from 0 to 1024, got -1");
    CHECK(error_of(listener_with("max_client_hello_size = 511")) ==
          "t.toml:4: listener[0].max_client_hello_size: must be from 512 to 1048576, got 511");
    CHECK(error_of(listener_with("max_client_hello_size = 1048577")) ==
          "t.toml:4: listener[0].max_client_hello_size: must be from 512 to 1048576, got 1048577");
    CHECK(error_of(listener_with("max_client_hello_size = 9223372036854775807")) ==
          "t.toml:4: listener[0].max_client_hello_size: must be from 512 to 1048576, got "
          "9223372036854775807");
    CHECK(error_of(service_with("connect_attempts = 0")) ==
          "t.toml:14: service[0].connect_attempts: must be from 1 to 16, got 0");
    CHECK(error_of(service_with("connect_attempts = 17")) ==
          "t.toml:14: service[0].connect_attempts: must be from 1 to 16, got 17");
    CHECK(error_of(replace(kBase, "{ service = \"s\" }", "{ service = \"s\", weight = -1 }")) ==
          "t.toml:9: route[0].backends[0].weight: must be from 0 to 1000000, got -1");
    CHECK(error_of(replace(kBase, "{ service = \"s\" }", "{ service = \"s\", weight = 1000001 }")) ==
          "t.toml:9: route[0].backends[0].weight: must be from 0 to 1000000, got 1000001");
    CHECK(error_of(replace(kBase, "[\"127.0.0.1:8443\"]",
                           "[{ address = \"127.0.0.1:8443\", weight = 10001 }]")) ==
          "t.toml:13: service[0].endpoints[0].weight: must be from 0 to 10000, got 10001");
    CHECK(error_of(replace(kBase, "[\"127.0.0.1:8443\"]",
                           "[{ address = \"127.0.0.1:8443\", weight = -5 }]")) ==
          "t.toml:13: service[0].endpoints[0].weight: must be from 0 to 10000, got -5");
    CHECK(error_of(service_with("balance = \"least_conn\"")) ==
          "t.toml:14: service[0].balance: unknown balance \"least_conn\"; supported: round_robin, least_connections, "
          "random_two, maglev");
}

// ---------------------------------------------------------------------------------------------
// Hostnames

TEST_CASE("hostnames are lowercased and validated", "[config][errors]") {
    const Config config = parse(replace(listener_with("hostname = \"A.Example.COM\""),
                                        "[\"a.example.com\"]", "[\"A.EXAMPLE.com\"]"));
    CHECK(config.listeners[0].hostname == "a.example.com");
    CHECK(config.routes[0].hostnames == std::vector<std::string>{"a.example.com"});

    struct Row {
        const char* hostname;
        const char* reason;
    };
    const Row rows[] = {
        {"*", "\"*\" alone is not a hostname pattern"},
        {"10.0.0.1", "IP literals are not hostnames"},
        {"::1", "IP literals are not hostnames"},
        {"[::1]", "IP literals are not hostnames"},
        {"a.*.example.com", "\"*\" is only allowed as the entire first label"},
        {"*a.example.com", "\"*\" is only allowed as the entire first label"},
        {"example.com.", "trailing dot is not allowed"},
        {"exa_mple.com", "invalid character '_'"},
        {"", "empty hostname"},
        {"a..b", "empty label"},
        {"-a.com", "starts or ends with '-'"},
        {"b\xC3\xBC" "cher.example", "non-ASCII character"},
    };
    for (const Row& row : rows) {
        INFO(row.hostname);
        const std::string value = "\"" + std::string(row.hostname) + "\"";
        const std::string listener_error = error_of(listener_with("hostname = " + value));
        CHECK_THAT(listener_error,
                   StartsWith("t.toml:4: listener[0].hostname: invalid hostname " + value + ": "));
        CHECK_THAT(listener_error, Contains(row.reason));
        const std::string route_error =
            error_of(replace(kBase, "[\"a.example.com\"]", "[\"a.example.com\", " + value + "]"));
        CHECK_THAT(route_error,
                   StartsWith("t.toml:8: route[0].hostnames[1]: invalid hostname " + value + ": "));
        CHECK_THAT(route_error, Contains(row.reason));
    }
    // Duplicates are detected after lowercasing.
    CHECK(error_of(replace(kBase, "[\"a.example.com\"]", "[\"a.example.com\",\n\"A.example.com\"]")) ==
          "t.toml:9: route[0].hostnames[1]: hostname \"a.example.com\" is listed twice (first at line 8)");
}

TEST_CASE("ALPN lists are validated", "[config][errors]") {
    CHECK(error_of(route_with("alpn = [\"h2\", \"\"]")) ==
          "t.toml:10: route[0].alpn[1]: invalid ALPN protocol \"\": expected 1 to 255 visible "
          "ASCII characters, like \"h2\" or \"http/1.1\"");
    CHECK_THAT(error_of(route_with("alpn = [\"h 2\"]")),
               StartsWith("t.toml:10: route[0].alpn[0]: invalid ALPN protocol \"h 2\""));
    CHECK_THAT(error_of(route_with("alpn = [\"" + std::string(256, 'x') + "\"]")),
               StartsWith("t.toml:10: route[0].alpn[0]: invalid ALPN protocol \"xxxx"));
    CHECK(error_of(route_with("alpn = [\"" + std::string(255, 'x') + "\"]")) == "(no error)");
    CHECK(error_of(route_with("alpn = [\"h2\", \"h2\"]")) ==
          "t.toml:10: route[0].alpn[1]: ALPN protocol \"h2\" is listed twice (first at line 10)");
    // ALPN ids are case-sensitive bytes: not lowercased.
    const Config config = parse(route_with("alpn = [\"H2\", \"h2\"]"));
    CHECK(config.routes[0].alpn == std::vector<std::string>{"H2", "h2"});
}

// ---------------------------------------------------------------------------------------------
// Cross references

TEST_CASE("default_route must exist and list the listener", "[config][errors]") {
    CHECK(error_of(listener_with("default_route = \"nope\"")) ==
          "t.toml:4: listener[0].default_route: unknown route \"nope\"");
    const std::string other_listener =
        listener_with("default_route = \"r\"") +
        "[[listener]]\nname = \"other\"\naddress = \"127.0.0.1:7443\"\n";
    CHECK(error_of(replace(other_listener, "listeners = [\"tls\"]", "listeners = [\"other\"]")) ==
          "t.toml:4: listener[0].default_route: route \"r\" (line 6) does not list listener "
          "\"tls\" in its listeners");
    CHECK(error_of(listener_with("default_route = \"\"")) ==
          "t.toml:4: listener[0].default_route: unknown route \"\"");
}

TEST_CASE("route references: listeners and backends", "[config][errors]") {
    CHECK(error_of(replace(kBase, "listeners = [\"tls\"]", "listeners = [\"TLS\"]")) ==
          "t.toml:7: route[0].listeners[0]: unknown listener \"TLS\"");
    CHECK(error_of(replace(kBase, "listeners = [\"tls\"]", "listeners = [\"tls\", \"tls\"]")) ==
          "t.toml:7: route[0].listeners[1]: listener \"tls\" is listed twice (first at line 7)");
    CHECK(error_of(replace(kBase, "[{ service = \"s\" }]", "[{ service = \"t\" }]")) ==
          "t.toml:9: route[0].backends[0].service: unknown service \"t\" (did you mean \"s\"?)");
    CHECK(error_of(replace(kBase, "[{ service = \"s\" }]",
                           "[{ service = \"s\" },\n  { service = \"s\", weight = 3 }]")) ==
          "t.toml:10: route[0].backends[1].service: service \"s\" is already a backend of this "
          "route (line 9)");
    CHECK(error_of(replace(kBase, "[{ service = \"s\" }]", "[{ service = \"s\", weight = 0 }]")) ==
          "t.toml:9: route[0].backends: all backend weights are 0");
    const std::string two_services =
        replace(kBase, "[{ service = \"s\" }]",
                "[{ service = \"s\", weight = 0 }, { service = \"s2\", weight = 0 }]") +
        "[[service]]\nname = \"s2\"\nendpoints = [\"127.0.0.1:1\"]\n";
    CHECK(error_of(two_services) == "t.toml:9: route[0].backends: all backend weights are 0");
    // One non-zero weight is enough.
    CHECK(error_of(replace(two_services, "\"s2\", weight = 0", "\"s2\", weight = 1")) ==
          "(no error)");
}

// ---------------------------------------------------------------------------------------------
// Warnings

TEST_CASE("warnings: routes that attach nowhere, unused services", "[config][warnings]") {
    SECTION("a route whose hostnames do not intersect the listener hostname") {
        const Config config = parse(listener_with("hostname = \"*.example.org\""));
        REQUIRE(config.warnings.size() == 2);
        CHECK(config.warnings[0] ==
              "t.toml:6: route \"r\" has no hostname that intersects listener \"tls\" hostname "
              "\"*.example.org\"; not attached to \"tls\"");
        CHECK(config.warnings[1] ==
              "t.toml:1: listener \"tls\" has no routes attached and no default_route; every "
              "connection to it is closed");
    }
    SECTION("...unless it is that listener's default_route") {
        const Config config = parse(
            listener_with("hostname = \"*.example.org\"\ndefault_route = \"r\""));
        CHECK(config.warnings.empty());
    }
    SECTION("partial intersection: no warning") {
        const Config config = parse(replace(listener_with("hostname = \"*.example.com\""),
                                            "[\"a.example.com\"]", "[\"a.example.org\", \"a.example.com\"]"));
        CHECK(config.warnings.empty());
    }
    SECTION("a route with no hostnames attaches (it matches every hostname): no warning") {
        const Config config =
            parse(replace(kBase, "hostnames = [\"a.example.com\"]\n", ""));
        CHECK(config.warnings.empty());
    }
    SECTION("a service used by no route") {
        const Config config =
            parse(kBase + "\n[[service]]\nname = \"spare\"\nendpoints = [\"127.0.0.1:9\"]\n");
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0] == "t.toml:15: service \"spare\" is not used by any route");
    }
    SECTION("a service whose endpoints all have weight 0") {
        const Config config = parse(replace(kBase, "[\"127.0.0.1:8443\"]",
                                            "[{ address = \"127.0.0.1:8443\", weight = 0 }]"));
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0] ==
              "t.toml:11: service \"s\": every endpoint has weight 0; connections routed to it "
              "are rejected");
    }
    SECTION("a route on two listeners, attached to one") {
        const Config config = parse(
            listener_with("hostname = \"*.example.com\"") +
            "[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:7443\"\nhostname = \"b.example.net\"\n"
            "default_route = \"r2\"\n" +
            "[[route]]\nname = \"r2\"\nlisteners = [\"b\"]\nbackends = [{ service = \"s\" }]\n");
        // Put route r on both listeners.
        const Config both = parse(replace(
            listener_with("hostname = \"*.example.com\"") +
                "[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:7443\"\nhostname = "
                "\"b.example.net\"\n",
            "listeners = [\"tls\"]", "listeners = [\"tls\", \"b\"]"));
        CHECK(config.warnings.empty());
        REQUIRE(both.warnings.size() == 2);
        CHECK(both.warnings[0] ==
              "t.toml:6: route \"r\" has no hostname that intersects listener \"b\" hostname "
              "\"b.example.net\"; not attached to \"b\"");
        CHECK(both.warnings[1] ==
              "t.toml:15: listener \"b\" has no routes attached and no default_route; every "
              "connection to it is closed");
    }
    SECTION("the source name given to parse_config is used") {
        const Config config =
            parse_config(kBase + "[[service]]\nname = \"x\"\nendpoints = [\"127.0.0.1:9\"]\n",
                         "/etc/passgate/passgate.toml");
        REQUIRE(config.warnings.size() == 1);
        CHECK_THAT(config.warnings[0], StartsWith("/etc/passgate/passgate.toml:14: "));
    }
}

TEST_CASE("warnings: a hostname shadowed by an earlier route on the same listener",
          "[config][warnings]") {
    // kBase's route "r" (line 5, hostname a.example.com, no alpn) comes first; `more` is added
    // after kBase's service, so its first [[route]] is at line 15.
    const auto with_routes = [](const std::string& more) { return parse(kBase + "\n" + more); };
    const std::string shadow_line =
        "t.toml:15: route \"r2\" hostname \"a.example.com\" on listener \"tls\" is shadowed by "
        "route \"r\" (defined first, same hostname); it never matches there";

    SECTION("same hostname, neither route has alpn: the later one is warned about") {
        const Config config = with_routes("[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\n"
                                          "hostnames = [\"a.example.com\"]\nbackends = [{ service = \"s\" }]\n");
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0] == shadow_line);
    }
    SECTION("only the shadowed hostname is named; the route's other hostnames still match") {
        const Config config = with_routes(
            "[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\n"
            "hostnames = [\"b.example.com\", \"a.example.com\"]\nbackends = [{ service = \"s\" }]\n");
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0] == shadow_line);
    }
    SECTION("the later route has an alpn list: it wins when the ALPN matches, no warning") {
        const Config config = with_routes(
            "[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\nhostnames = [\"a.example.com\"]\n"
            "alpn = [\"h2\"]\nbackends = [{ service = \"s\" }]\n");
        CHECK(config.warnings.empty());
    }
    SECTION("the earlier route has an alpn list: the later one takes the other ALPNs, no warning") {
        const Config config = parse(
            route_with("alpn = [\"h2\"]") +
            "\n[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\nhostnames = [\"a.example.com\"]\n"
            "backends = [{ service = \"s\" }]\n");
        CHECK(config.warnings.empty());
    }
    SECTION("the same hostname on different listeners: no warning") {
        const Config config = with_routes(
            "[[listener]]\nname = \"other\"\naddress = \"127.0.0.1:7443\"\n\n"
            "[[route]]\nname = \"r2\"\nlisteners = [\"other\"]\nhostnames = [\"a.example.com\"]\n"
            "backends = [{ service = \"s\" }]\n");
        CHECK(config.warnings.empty());
    }
    SECTION("a wildcard and an exact name are different hostnames: no warning") {
        const Config config = with_routes(
            "[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\nhostnames = [\"*.example.com\"]\n"
            "backends = [{ service = \"s\" }]\n");
        CHECK(config.warnings.empty());
    }
    SECTION("effective hostnames count: both intersect the listener hostname to the same name") {
        // r: a.example.com; r2: *.example.com under listener a.example.com -> a.example.com.
        const Config config = parse(
            listener_with("hostname = \"a.example.com\"") +
            "\n[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\nhostnames = [\"*.example.com\"]\n"
            "backends = [{ service = \"s\" }]\n");
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0] ==
              "t.toml:16: route \"r2\" hostname \"a.example.com\" on listener \"tls\" is shadowed "
              "by route \"r\" (defined first, same hostname); it never matches there");
    }
    SECTION("a route without hostnames takes the listener hostname as its effective hostname") {
        const Config config = parse(
            listener_with("hostname = \"a.example.com\"") +
            "\n[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\nbackends = [{ service = \"s\" }]\n");
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0] ==
              "t.toml:16: route \"r2\" hostname \"a.example.com\" on listener \"tls\" is shadowed "
              "by route \"r\" (defined first, same hostname); it never matches there");
    }
    SECTION("two routes without hostnames on a listener without hostname: \"*\"") {
        const Config config = parse(
            replace(kBase, "hostnames = [\"a.example.com\"]\n", "") +
            "\n[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\nbackends = [{ service = \"s\" }]\n");
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0] ==
              "t.toml:14: route \"r2\" hostname \"*\" on listener \"tls\" is shadowed by route "
              "\"r\" (defined first, same hostname); it never matches there");
    }
    SECTION("three routes: the later two are each shadowed by the first") {
        const Config config = with_routes(
            "[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\nhostnames = [\"a.example.com\"]\n"
            "backends = [{ service = \"s\" }]\n\n"
            "[[route]]\nname = \"r3\"\nlisteners = [\"tls\"]\nhostnames = [\"a.example.com\"]\n"
            "backends = [{ service = \"s\" }]\n");
        REQUIRE(config.warnings.size() == 2);
        CHECK(config.warnings[0] == shadow_line);
        CHECK(config.warnings[1] ==
              "t.toml:21: route \"r3\" hostname \"a.example.com\" on listener \"tls\" is shadowed "
              "by route \"r\" (defined first, same hostname); it never matches there");
    }
    SECTION("the first route without alpn shadows, even behind an earlier route with alpn") {
        // r has alpn; r2 and r3 have none: r3 is shadowed by r2.
        const Config config = parse(
            route_with("alpn = [\"h2\"]") +
            "\n[[route]]\nname = \"r2\"\nlisteners = [\"tls\"]\nhostnames = [\"a.example.com\"]\n"
            "backends = [{ service = \"s\" }]\n\n"
            "[[route]]\nname = \"r3\"\nlisteners = [\"tls\"]\nhostnames = [\"a.example.com\"]\n"
            "backends = [{ service = \"s\" }]\n");
        REQUIRE(config.warnings.size() == 1);
        CHECK(config.warnings[0] ==
              "t.toml:22: route \"r3\" hostname \"a.example.com\" on listener \"tls\" is shadowed "
              "by route \"r2\" (defined first, same hostname); it never matches there");
    }
}

// ---------------------------------------------------------------------------------------------
// Files

TEST_CASE("load_config_file reports read errors as PATH:0", "[config][files]") {
    const std::string missing = "/nonexistent/passgate.toml";
    try {
        (void)load_config_file(missing);
        FAIL("no error");
    } catch (const ConfigError& error) {
        CHECK(std::string(error.what()) ==
              "/nonexistent/passgate.toml:0: cannot read: No such file or directory");
    }
    try {
        (void)load_config_file("/");
        FAIL("no error");
    } catch (const ConfigError& error) {
        CHECK(std::string(error.what()) == "/:0: cannot read: Is a directory");
    }
}

TEST_CASE("load_config_file parses a file and names it in errors", "[config][files]") {
    char directory_template[] = "/tmp/passgate-config-test-XXXXXX";
    REQUIRE(::mkdtemp(directory_template) != nullptr);
    const std::filesystem::path directory(directory_template);
    const std::string path = (directory / "passgate.toml").string();
    {
        std::ofstream out(path);
        out << kBase;
    }
    const Config config = load_config_file(path);
    CHECK(config.source == path);
    CHECK(config.listeners.at(0).name == "tls");
    {
        std::ofstream out(path);
        out << replace(kBase, "\"127.0.0.1:8443\"", "\"nope\"");
    }
    try {
        (void)load_config_file(path);
        FAIL("no error");
    } catch (const ConfigError& error) {
        CHECK_THAT(std::string(error.what()),
                   StartsWith(path + ":13: service[0].endpoints[0]: invalid address \"nope\""));
    }
    std::filesystem::remove_all(directory);
}

TEST_CASE("user text in messages is quoted, escaped and bounded", "[config][errors]") {
    const std::string long_name(300, 'x');
    const std::string error = error_of(replace(kBase, "[{ service = \"s\" }]",
                                               "[{ service = \"" + long_name + "\" }]"));
    CHECK(error == "t.toml:9: route[0].backends[0].service: unknown service \"" +
                       std::string(100, 'x') + "\"...");
    CHECK(error_of(replace(kBase, "\"127.0.0.1:8443\"", "\"\\u0001\\\"\\\\\"")) ==
          "t.toml:13: service[0].endpoints[0]: invalid address \"\\x01\\\"\\\\\": expected "
          "\"a.b.c.d:port\" or \"[ipv6]:port\" with a port from 1 to 65535 (host names are not "
          "resolved)");
}

TEST_CASE("operations keys: shutdown_timeout, drain_timeout, access_log", "[config][operations]") {
    SECTION("defaults") {
        const Config config = parse(kBase);
        CHECK(config.runtime.shutdown_timeout == std::chrono::seconds(30));
        CHECK(config.runtime.upgrade_timeout == std::chrono::seconds(60));
        CHECK(config.runtime.drain_delay == std::chrono::milliseconds(0));
        CHECK_FALSE(config.routes[0].drain_timeout.has_value());
        CHECK(config.access_log.enabled);
        CHECK(config.access_log.format == passgate::config::AccessLogFormat::logfmt);
        CHECK(config.access_log.path == "-");
    }
    SECTION("set") {
        const Config config = parse(
            "[runtime]\nshutdown_timeout = \"5s\"\nupgrade_timeout = \"2s\"\ndrain_delay = \"1500ms\"\n[access_log]\nformat = \"json\"\n"
            "path = \"/var/log/passgate/access.log\"\nenabled = false\n" +
            replace(kBase, "backends = [", "drain_timeout = \"250ms\"\nbackends = ["));
        CHECK(config.runtime.shutdown_timeout == std::chrono::seconds(5));
        CHECK(config.runtime.upgrade_timeout == std::chrono::seconds(2));
        CHECK(config.runtime.drain_delay == std::chrono::milliseconds(1500));
        CHECK(config.routes[0].drain_timeout == std::chrono::milliseconds(250));
        CHECK_FALSE(config.access_log.enabled);
        CHECK(config.access_log.format == passgate::config::AccessLogFormat::json);
        CHECK(config.access_log.path == "/var/log/passgate/access.log");
    }
    SECTION("errors name file, line and key") {
        CHECK(error_of("[access_log]\nformat = \"xml\"\n" + kBase) ==
              "t.toml:2: access_log.format: unknown format \"xml\" (logfmt or json)");
        CHECK(error_of("[access_log]\nformat = \"JSON\"\n" + kBase) ==
              "t.toml:2: access_log.format: unknown format \"JSON\" (logfmt or json)");
        CHECK(error_of("[access_log]\nenabled = \"yes\"\n" + kBase).rfind("t.toml:2: access_log.enabled:", 0) == 0);
        CHECK(error_of("[access_log]\npath = \"\"\n" + kBase).rfind("t.toml:2: access_log.path:", 0) == 0);
        CHECK(error_of("[runtime]\nshutdown_timeout = \"soon\"\n" + kBase)
                  .rfind("t.toml:2: runtime.shutdown_timeout:", 0) == 0);
        // drain_delay alone may be 0 ("off"); the other durations may not.
        CHECK(parse("[runtime]\ndrain_delay = \"0s\"\n" + kBase).runtime.drain_delay == std::chrono::milliseconds(0));
        CHECK(parse("[runtime]\ndrain_delay = \"0ms\"\n" + kBase).runtime.drain_delay == std::chrono::milliseconds(0));
        CHECK(error_of("[runtime]\nshutdown_timeout = \"0s\"\n" + kBase)
                  .find("greater than 0 and at most 8760h") != std::string::npos);
        CHECK(error_of("[runtime]\ndrain_delay = \"-1s\"\n" + kBase) ==
              "t.toml:2: runtime.drain_delay: invalid duration \"-1s\": expected a whole number followed by ms, s, m "
              "or h (\"250ms\", \"10s\", \"5m\", \"1h\"), 0 or more and at most 8760h");
        CHECK(error_of("[runtime]\ndrain_delay = 5\n" + kBase).rfind("t.toml:2: runtime.drain_delay:", 0) == 0);
        CHECK(error_of(replace(kBase, "backends = [", "drain_timeout = 5\nbackends = ["))
                  .rfind("t.toml:9: route[0].drain_timeout:", 0) == 0);
    }
}

TEST_CASE("the config hash is of exactly the bytes parsed", "[config][hash]") {
    // FNV-1a 64 of "" and of "a" (published test vectors).
    CHECK(config_hash("") == "cbf29ce484222325");
    CHECK(config_hash("a") == "af63dc4c8601ec8c");
    const Config parsed = parse_config(kExample, "t.toml");
    CHECK(parsed.source_hash == config_hash(kExample));
    // One byte more (a comment): another hash.
    CHECK(parse_config(kExample + "#\n", "t.toml").source_hash != parsed.source_hash);

    // load_config_file hashes what it read (one read of the file, parsed and hashed).
    char path[] = "/tmp/passgate-hash-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, kExample.data(), kExample.size()) == static_cast<ssize_t>(kExample.size()));
    ::close(fd);
    const Config loaded = load_config_file(path);
    ::unlink(path);
    CHECK(loaded.source_hash == parsed.source_hash);
}

TEST_CASE("[admin] departed_series_retention", "[config][admin]") {
    CHECK(parse_config(kExample, "t.toml").admin.departed_series_retention == std::chrono::seconds(60));
    const Config config = parse_config("[admin]\ndeparted_series_retention = \"5m\"\n" + kExample.substr(kExample.find("[[listener]]")), "t.toml");
    CHECK(config.admin.departed_series_retention == std::chrono::minutes(5));
    CHECK_THROWS_WITH(parse_config("[admin]\ndeparted_series_retention = \"soon\"\n", "t.toml"),
                      Contains("admin.departed_series_retention"));
}

// ---------------------------------------------------------------------------------------------
// Global bounds (issue 13): [runtime] max_connections_per_worker, max_hello_memory; [admin]
// request_timeout, max_connections, max_connections_per_source.

TEST_CASE("bounds keys: defaults, set values and ranges", "[config][bounds]") {
    SECTION("defaults") {
        const Config config = parse_config(kBase, "t.toml");
        CHECK_FALSE(config.runtime.max_connections_per_worker.has_value());
        CHECK(config.runtime.max_hello_memory == 64u * 1024 * 1024);
        CHECK(config.admin.request_timeout == std::chrono::seconds(2));
        CHECK(config.admin.max_connections == 256);
        CHECK(config.admin.max_connections_per_source == 16);
    }
    SECTION("set") {
        const Config config = parse_config(
            "[runtime]\nmax_connections_per_worker = 4000\nmax_hello_memory = 134217728\n"
            "[admin]\nrequest_timeout = \"500ms\"\nmax_connections = 64\nmax_connections_per_source = 4\n" + kBase,
            "t.toml");
        CHECK(config.runtime.max_connections_per_worker == 4000u);
        CHECK(config.runtime.max_hello_memory == 134217728u);
        CHECK(config.admin.request_timeout == std::chrono::milliseconds(500));
        CHECK(config.admin.max_connections == 64);
        CHECK(config.admin.max_connections_per_source == 4);
    }
    SECTION("out of range") {
        CHECK(error_of("[runtime]\nmax_connections_per_worker = 0\n" + kBase)
                  .rfind("t.toml:2: runtime.max_connections_per_worker:", 0) == 0);
        CHECK(error_of("[runtime]\nmax_hello_memory = 1024\n" + kBase)
                  .rfind("t.toml:2: runtime.max_hello_memory:", 0) == 0);
        CHECK(error_of("[admin]\nrequest_timeout = \"61s\"\n" + kBase) ==
              "t.toml:2: admin.request_timeout: must be at most \"60s\"");
        CHECK(error_of("[admin]\nmax_connections = 0\n" + kBase).rfind("t.toml:2: admin.max_connections:", 0) == 0);
        CHECK(error_of("[admin]\nmax_connections_per_source = 70000\n" + kBase)
                  .rfind("t.toml:2: admin.max_connections_per_source:", 0) == 0);
    }
}

TEST_CASE("pause_accepting_at: unset by default, at most max_connections_per_worker", "[config][pause]") {
    CHECK_FALSE(parse_config(kBase, "t.toml").runtime.pause_accepting_at.has_value());
    CHECK(parse_config("[runtime]\npause_accepting_at = 2048\n" + kBase, "t.toml").runtime.pause_accepting_at == 2048u);
    CHECK(parse_config("[runtime]\nmax_connections_per_worker = 100\npause_accepting_at = 100\n" + kBase, "t.toml")
              .runtime.pause_accepting_at == 100u);
    CHECK(error_of("[runtime]\nmax_connections_per_worker = 100\npause_accepting_at = 101\n" + kBase) ==
          "t.toml:3: runtime.pause_accepting_at: 101 is above max_connections_per_worker 100: connections would "
          "be refused before accepting pauses");
    CHECK(error_of("[runtime]\npause_accepting_at = 1\n" + kBase).rfind("t.toml:2: runtime.pause_accepting_at:", 0) == 0);
    CHECK(error_of("[runtime]\npause_accepting_at = \"2k\"\n" + kBase).rfind("t.toml:2: runtime.pause_accepting_at:", 0) == 0);
}

TEST_CASE("reuseport_cpu_steering: off by default, a boolean", "[config][steering]") {
    CHECK_FALSE(parse_config(kBase, "t.toml").runtime.reuseport_cpu_steering);
    CHECK(parse_config("[runtime]\nreuseport_cpu_steering = true\n" + kBase, "t.toml").runtime.reuseport_cpu_steering);
    CHECK(error_of("[runtime]\nreuseport_cpu_steering = \"yes\"\n" + kBase)
              .rfind("t.toml:2: runtime.reuseport_cpu_steering:", 0) == 0);
}

// ---------------------------------------------------------------------------------------------
// Names that do not exist get the unknown-key suggestion rule; a repeat names its first line.

TEST_CASE("unknown names suggest a close one, as unknown keys do", "[config][errors][suggestions]") {
    const std::string two_services =
        replace(kBase, "[{ service = \"s\" }]", "[{ service = \"ss\" }]") +
        "\n[[service]]\nname = \"api-pool\"\nendpoints = [\"127.0.0.1:8444\"]\n";
    CHECK(error_of(two_services) ==
          "t.toml:9: route[0].backends[0].service: unknown service \"ss\" (did you mean \"s\"?)");
    CHECK(error_of(replace(two_services, "service = \"ss\"", "service = \"api-pol\"")) ==
          "t.toml:9: route[0].backends[0].service: unknown service \"api-pol\" (did you mean \"api-pool\"?)");
    // Nothing within 2 edits: no suggestion.
    CHECK(error_of(replace(kBase, "[{ service = \"s\" }]", "[{ service = \"nope\" }]")) ==
          "t.toml:9: route[0].backends[0].service: unknown service \"nope\"");
    CHECK(error_of(replace(kBase, "listeners = [\"tls\"]", "listeners = [\"tlz\"]")) ==
          "t.toml:7: route[0].listeners[0]: unknown listener \"tlz\" (did you mean \"tls\"?)");
    CHECK(error_of(replace(kBase, "listeners = [\"tls\"]", "listeners = [\"public\"]")) ==
          "t.toml:7: route[0].listeners[0]: unknown listener \"public\"");
    CHECK(error_of(listener_with("default_route = \"rr\"")) ==
          "t.toml:4: listener[0].default_route: unknown route \"rr\" (did you mean \"r\"?)");
    CHECK(error_of(listener_with("default_route = \"nope\"")) ==
          "t.toml:4: listener[0].default_route: unknown route \"nope\"");
    // An empty name is never "close" to anything.
    CHECK(error_of(listener_with("default_route = \"\"")) ==
          "t.toml:4: listener[0].default_route: unknown route \"\"");
}

TEST_CASE("\"listed twice\" names the line of the first", "[config][errors][suggestions]") {
    CHECK(error_of(replace(kBase, "listeners = [\"tls\"]", "listeners = [\n  \"tls\",\n  \"tls\",\n]")) ==
          "t.toml:9: route[0].listeners[1]: listener \"tls\" is listed twice (first at line 8)");
    CHECK(error_of(replace(kBase, "[\"a.example.com\"]", "[\n  \"a.example.com\",\n  \"b.example.com\",\n"
                                                          "  \"A.example.com\",\n]")) ==
          "t.toml:11: route[0].hostnames[2]: hostname \"a.example.com\" is listed twice (first at line 9)");
    CHECK(error_of(route_with("alpn = [\n  \"h2\",\n  \"http/1.1\",\n  \"h2\",\n]")) ==
          "t.toml:13: route[0].alpn[2]: ALPN protocol \"h2\" is listed twice (first at line 11)");
    CHECK(error_of(listener_with("allow = [\n  \"10.0.0.0/8\",\n  \"10.0.0.0/8\",\n]")) ==
          "t.toml:6: listener[0].allow[1]: CIDR \"10.0.0.0/8\" is listed twice (first at line 5)");
    CHECK(error_of(listener_with("deny = [\n  \"::1\",\n  \"0:0::1/128\",\n]")) ==
          "t.toml:6: listener[0].deny[1]: CIDR \"0:0::1/128\" is listed twice (first at line 5)");
}

TEST_CASE("listeners and the admin address on overlapping addresses are an error", "[config][errors][overlap]") {
    const auto second_listener = [](const std::string& first, const std::string& second) {
        return replace(kBase, "\"127.0.0.1:6443\"", "\"" + first + "\"") +
               "[[listener]]\nname = \"two\"\naddress = \"" + second + "\"\n";
    };
    const std::string consequence = ": one of them would take the other's connections";
    CHECK(error_of(second_listener("0.0.0.0:6443", "127.0.0.1:6443")) ==
          "t.toml:16: listener[1].address: 127.0.0.1:6443 overlaps 0.0.0.0:6443 of listener \"tls\" (line 3)" +
              consequence);
    CHECK(error_of(second_listener("127.0.0.1:6443", "0.0.0.0:6443")) ==
          "t.toml:16: listener[1].address: 0.0.0.0:6443 overlaps 127.0.0.1:6443 of listener \"tls\" (line 3)" +
              consequence);
    // "::" is bound dual stack: it takes the port on IPv4 too.
    CHECK(error_of(second_listener("[::]:6443", "127.0.0.1:6443")) ==
          "t.toml:16: listener[1].address: 127.0.0.1:6443 overlaps [::]:6443 of listener \"tls\" (line 3)" +
              consequence);
    CHECK(error_of(second_listener("0.0.0.0:6443", "[::]:6443")) ==
          "t.toml:16: listener[1].address: [::]:6443 overlaps 0.0.0.0:6443 of listener \"tls\" (line 3)" +
              consequence);
    CHECK(error_of(second_listener("[::1]:6443", "[::]:6443")) ==
          "t.toml:16: listener[1].address: [::]:6443 overlaps [::1]:6443 of listener \"tls\" (line 3)" +
              consequence);
    // Not overlapping: other ports, two specific addresses, 0.0.0.0 and an IPv6 address.
    CHECK(error_of(second_listener("0.0.0.0:6443", "127.0.0.1:6444")) == "(no error)");
    CHECK(error_of(second_listener("127.0.0.1:6443", "127.0.0.2:6443")) == "(no error)");
    CHECK(error_of(second_listener("127.0.0.1:6443", "[::1]:6443")) == "(no error)");
    CHECK(error_of(second_listener("0.0.0.0:6443", "[::1]:6443")) == "(no error)");

    // The admin address (the default 127.0.0.1:9901, or [admin] address).
    CHECK(error_of(replace(kBase, "\"127.0.0.1:6443\"", "\"0.0.0.0:9901\"")) ==
          "t.toml:3: listener[0].address: 0.0.0.0:9901 overlaps the admin address 127.0.0.1:9901 (the default): "
          "the second of them to bind would fail");
    CHECK(error_of("[admin]\naddress = \"0.0.0.0:6443\"\n" + kBase) ==
          "t.toml:5: listener[0].address: 127.0.0.1:6443 overlaps the admin address 0.0.0.0:6443 (line 2): "
          "the second of them to bind would fail");
    CHECK(error_of("[admin]\naddress = \"[::]:6443\"\n" + kBase) ==
          "t.toml:5: listener[0].address: 127.0.0.1:6443 overlaps the admin address [::]:6443 (line 2): "
          "the second of them to bind would fail");
    CHECK(error_of("[admin]\naddress = \"[::1]:6443\"\n" + kBase) == "(no error)");
}

TEST_CASE("route hostnames_file: a path relative to the config's folder; a file route is not one without hostnames",
          "[config][hostnames_file]") {
    const Config config = parse_config(route_with("hostnames_file = \"tenants.txt\""), "/etc/passgate/passgate.toml");
    CHECK(config.routes.at(0).hostnames_file == "/etc/passgate/tenants.txt");
    CHECK(parse_config(route_with("hostnames_file = \"/srv/t.txt\""), "t.toml").routes.at(0).hostnames_file ==
          "/srv/t.txt");
    CHECK(parse(route_with("hostnames_file = \"t.txt\"")).routes.at(0).hostnames_file == "./t.txt");
    CHECK(error_of(route_with("hostnames_file = \"\"")) == "t.toml:10: route[0].hostnames_file: must not be empty");
    // Its inline hostnames are still its own; the file's names are src/routing's business.
    const Config both = parse(route_with("hostnames_file = \"t.txt\""));
    CHECK(passgate::config::attached_hostnames(both.listeners.at(0), both.routes.at(0)) ==
          both.routes.at(0).hostnames);
    // Without inline hostnames, a file route gets no "every hostname" pattern from the listener.
    const Config only = parse(replace(route_with("hostnames_file = \"t.txt\""), "hostnames = [\"a.example.com\"]\n", ""));
    REQUIRE(only.routes.at(0).hostnames.empty());
    CHECK(passgate::config::attached_hostnames(only.listeners.at(0), only.routes.at(0)).empty());
    // And the config does not warn that the listener has no routes: the file may attach it.
    for (const std::string& warning : only.warnings) CHECK(warning.find("has no routes attached") == std::string::npos);
}
