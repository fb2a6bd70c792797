// [kubernetes] and a service's `kubernetes` key: every rule, with errors at FILE:LINE and key.

#include "config/config.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace passgate::config;
using namespace std::chrono_literals;

namespace {

// Lines: 1-3 [[listener]], 4-7 [[route]], 8 [[service]], 9 name, 10 the service's line,
// 11.. `tail` (the [kubernetes] table: its header on line 11).
std::string config_with(const std::string& service_line, const std::string& tail) {
    return "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:6443\"\n"
           "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [{ service = \"s\" }]\n"
           "[[service]]\nname = \"s\"\n" +
           service_line + "\n" + tail;
}

const std::string kService = "kubernetes = { namespace = \"default\", service = \"passthrough-echoserver\", port = 443 }";
const std::string kKubeconfig = "[kubernetes]\nkubeconfig = \"/etc/passgate/kubeconfig\"\n";

// A config whose [kubernetes] table has `lines` (from line 12 on) and whose service follows
// the guide's Service.
std::string with_table(const std::string& lines) { return config_with(kService, "[kubernetes]\n" + lines); }
// The guide's [kubernetes] table and a service whose kubernetes key is `table`.
std::string with_backend(const std::string& table) { return config_with("kubernetes = " + table, kKubeconfig); }

std::string error_of(const std::string& text, const std::string& source = "t.toml") {
    try {
        (void)parse_config(text, source);
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "(no error)";
}

Kubernetes table_of(const std::string& lines, const std::string& source = "t.toml") {
    return parse_config(with_table(lines), source).kubernetes;
}

}  // namespace

TEST_CASE("[kubernetes] absent: not configured, services cannot use it", "[config][kubernetes]") {
    const Config config = parse_config(config_with("endpoints = [\"127.0.0.1:8443\"]", ""), "t.toml");
    CHECK_FALSE(config.kubernetes.configured);
    CHECK(config.kubernetes == Kubernetes{});
    CHECK(error_of(config_with(kService, "")) ==
          "t.toml:10: service[0].kubernetes: service \"s\" (line 8) follows a Kubernetes Service, but there is no "
          "[kubernetes] table (the API server and credentials)");
}

TEST_CASE("[kubernetes] kubeconfig: relative to the config's folder; context; defaults", "[config][kubernetes]") {
    const Kubernetes kubernetes = table_of("kubeconfig = \"kube/config\"\ncontext = \"edge\"\n", "/etc/passgate/passgate.toml");
    CHECK(kubernetes.configured);
    CHECK(kubernetes.line == 11);
    CHECK(kubernetes.kubeconfig == "/etc/passgate/kube/config");
    CHECK(kubernetes.context == "edge");
    CHECK(kubernetes.api_server.empty());
    CHECK_FALSE(kubernetes.in_cluster);
    CHECK(kubernetes.request_timeout == 10s);
    CHECK(kubernetes.watch_timeout == 5min);
    CHECK(kubernetes.retry_initial_delay == 500ms);
    CHECK(kubernetes.retry_max_delay == 30s);
    CHECK(table_of("kubeconfig = \"/k\"\nin_cluster = false\n").kubeconfig == "/k");
    CHECK(error_of(with_table("kubeconfig = \"\"\n")) == "t.toml:12: kubernetes.kubeconfig: must not be empty");
    CHECK(error_of(with_table("kubeconfig = \"/k\"\ncontext = \"\"\n")) ==
          "t.toml:13: kubernetes.context: must not be empty (omit it for the current-context)");
}

TEST_CASE("[kubernetes] api_server with its files; in_cluster with service_account_dir", "[config][kubernetes]") {
    const Kubernetes api = table_of(
        "api_server = \"https://10.0.0.1:6443\"\nca_file = \"k8s-ca.crt\"\ntoken_file = \"/etc/passgate/token\"\n"
        "client_cert_file = \"c.crt\"\nclient_key_file = \"c.key\"\n",
        "/etc/passgate/passgate.toml");
    CHECK(api.api_server == "https://10.0.0.1:6443");
    CHECK(api.ca_file == "/etc/passgate/k8s-ca.crt");
    CHECK(api.token_file == "/etc/passgate/token");
    CHECK(api.client_cert_file == "/etc/passgate/c.crt");
    CHECK(api.client_key_file == "/etc/passgate/c.key");
    CHECK(api.kubeconfig.empty());
    const Kubernetes pod = table_of("in_cluster = true\n");
    CHECK(pod.in_cluster);
    CHECK(pod.service_account_dir == "/var/run/secrets/kubernetes.io/serviceaccount");
    CHECK(table_of("in_cluster = true\nservice_account_dir = \"/run/sa\"\n").service_account_dir == "/run/sa");
    const Kubernetes timings = table_of("in_cluster = true\nrequest_timeout = \"3s\"\nwatch_timeout = \"30m\"\n"
                                        "retry_initial_delay = \"1s\"\nretry_max_delay = \"1s\"\n");
    CHECK(timings.request_timeout == 3s);
    CHECK(timings.watch_timeout == 30min);
    CHECK(timings.retry_initial_delay == 1s);
    CHECK(timings.retry_max_delay == 1s);
}

TEST_CASE("[kubernetes] exactly one of kubeconfig, api_server and in_cluster = true", "[config][kubernetes]") {
    CHECK(error_of(with_table("request_timeout = \"5s\"\n")) ==
          "t.toml:11: kubernetes.kubeconfig: [kubernetes] needs one of kubeconfig, api_server or in_cluster = true");
    CHECK(error_of(with_table("in_cluster = false\n")) ==
          "t.toml:11: kubernetes.kubeconfig: [kubernetes] needs one of kubeconfig, api_server or in_cluster = true");
    CHECK(error_of(with_table("kubeconfig = \"/k\"\napi_server = \"https://10.0.0.1\"\n")) ==
          "t.toml:13: kubernetes.api_server: [kubernetes] takes one of kubeconfig, api_server and in_cluster = "
          "true; kubeconfig is already given");
    CHECK(error_of(with_table("api_server = \"https://10.0.0.1\"\nin_cluster = true\n")) ==
          "t.toml:13: kubernetes.in_cluster: [kubernetes] takes one of kubeconfig, api_server and in_cluster = "
          "true; api_server is already given");
}

TEST_CASE("[kubernetes] keys that go with one mode only", "[config][kubernetes]") {
    CHECK(error_of(with_table("api_server = \"https://10.0.0.1\"\ncontext = \"edge\"\n")) ==
          "t.toml:13: kubernetes.context: context goes with kubeconfig");
    CHECK(error_of(with_table("in_cluster = true\ncontext = \"edge\"\n")) ==
          "t.toml:13: kubernetes.context: context goes with kubeconfig");
    for (const char* key : {"ca_file", "token_file", "client_cert_file", "client_key_file"}) {
        CHECK(error_of(with_table("kubeconfig = \"/k\"\n" + std::string(key) + " = \"/x\"\n")) ==
              "t.toml:13: kubernetes." + std::string(key) + ": " + key + " goes with api_server");
        CHECK(error_of(with_table("in_cluster = true\n" + std::string(key) + " = \"/x\"\n")) ==
              "t.toml:13: kubernetes." + std::string(key) + ": " + key + " goes with api_server");
    }
    CHECK(error_of(with_table("api_server = \"https://a.example\"\nclient_cert_file = \"/c\"\n")) ==
          "t.toml:13: kubernetes.client_cert_file: client_cert_file needs client_key_file");
    CHECK(error_of(with_table("api_server = \"https://a.example\"\nclient_key_file = \"/k\"\n")) ==
          "t.toml:13: kubernetes.client_key_file: client_key_file needs client_cert_file");
    CHECK(error_of(with_table("kubeconfig = \"/k\"\nservice_account_dir = \"/sa\"\n")) ==
          "t.toml:13: kubernetes.service_account_dir: service_account_dir goes with in_cluster = true");
    const std::string unknown = error_of(with_table("in_cluster = true\ntoken = \"abc\"\n"));
    CHECK(unknown.find("t.toml:13: kubernetes.token: unknown key") == 0);
    CHECK(unknown.find("allowed keys: kubeconfig, context, api_server, ca_file, token_file, client_cert_file, "
                       "client_key_file, in_cluster, service_account_dir, request_timeout, watch_timeout, "
                       "retry_initial_delay, retry_max_delay") != std::string::npos);
}

TEST_CASE("[kubernetes] api_server is https://host[:port] without a path", "[config][kubernetes]") {
    for (const char* good : {"https://10.0.0.1:6443", "https://10.0.0.1", "https://[::1]:6443", "https://[fd00::1]",
                             "https://api.example.com:443", "https://kubernetes.default.svc"}) {
        INFO(good);
        CHECK(table_of("api_server = \"" + std::string(good) + "\"\n").api_server == good);
    }
    const std::pair<const char*, const char*> bad[] = {
        {"http://10.0.0.1:6443", "expected \"https://host[:port]\" (https only)"},
        {"10.0.0.1:6443", "expected \"https://host[:port]\" (https only)"},
        {"https://10.0.0.1:6443/", "expected \"https://host[:port]\" without a path"},
        {"https://10.0.0.1:6443/k8s/clusters/c-1", "expected \"https://host[:port]\" without a path"},
        {"https://10.0.0.1:6443?x=1", "expected \"https://host[:port]\" without a path"},
        {"https://user:pw@10.0.0.1", "credentials do not go in the URL"},
        {"https://", "no host"},
        {"https://:6443", "no host"},
        {"https://10.0.0.1:", "empty port"},
        {"https://10.0.0.1:0", "the port must be a number from 1 to 65535"},
        {"https://10.0.0.1:65536", "the port must be a number from 1 to 65535"},
        {"https://10.0.0.1:https", "the port must be a number from 1 to 65535"},
        {"https://[::1", "an IPv6 address in brackets lacks its ']'"},
        {"https://[::1]x", "expected ':port' after ']'"},
        {"https://[not-v6]:6443", "invalid IPv6 address in brackets"},
        {"https://API.example.com", "the host must be lowercase"},
    };
    for (const auto& [url, reason] : bad) {
        INFO(url);
        CHECK(error_of(with_table("api_server = \"" + std::string(url) + "\"\n")) ==
              "t.toml:12: kubernetes.api_server: invalid API server \"" + std::string(url) + "\": " + reason);
    }
    CHECK(error_of(with_table("api_server = \"https://fd00::1:6443\"\n")) ==
          "t.toml:12: kubernetes.api_server: invalid API server \"https://fd00::1:6443\": an IPv6 address goes in "
          "brackets (\"https://[fd00::1]:6443\")");
    CHECK(error_of(with_table("api_server = \"https://a..b\"\n")).find("invalid API server \"https://a..b\": invalid host: ") !=
          std::string::npos);
}

TEST_CASE("[kubernetes] durations positive; retry_initial_delay at most retry_max_delay", "[config][kubernetes]") {
    for (const char* key : {"request_timeout", "watch_timeout", "retry_initial_delay", "retry_max_delay"}) {
        CHECK(error_of(with_table("in_cluster = true\n" + std::string(key) + " = \"0s\"\n"))
                  .find("t.toml:13: kubernetes." + std::string(key) + ": invalid duration \"0s\"") == 0);
    }
    CHECK(error_of(with_table("in_cluster = true\nretry_initial_delay = \"10s\"\nretry_max_delay = \"5s\"\n")) ==
          "t.toml:14: kubernetes.retry_max_delay: retry_max_delay must not be less than retry_initial_delay");
    // Against the default maximum (30s), the error is at the key that was given.
    CHECK(error_of(with_table("in_cluster = true\nretry_initial_delay = \"1m\"\n")) ==
          "t.toml:13: kubernetes.retry_initial_delay: retry_max_delay must not be less than retry_initial_delay");
}

TEST_CASE("service kubernetes: namespace, Service and port by number or name", "[config][kubernetes][service]") {
    const Config config = parse_config(config_with(kService + "\nendpoint_max_connections = 100", kKubeconfig), "t.toml");
    const Service& service = config.services.at(0);
    CHECK(service.discovery == Discovery::kubernetes);
    REQUIRE(service.kubernetes.has_value());
    CHECK(service.kubernetes->namespace_name == "default");
    CHECK(service.kubernetes->service == "passthrough-echoserver");
    CHECK(service.kubernetes->port == std::variant<std::uint16_t, std::string>(std::uint16_t{443}));
    CHECK(service.endpoint_max_connections == 100u);
    CHECK(service.endpoints.empty());
    CHECK(describe_discovery(service) == "kubernetes default/passthrough-echoserver port 443");

    const Config named = parse_config(with_backend("{ namespace = \"edge-1\", service = \"web\", port = \"https\" }"), "t.toml");
    CHECK(named.services.at(0).kubernetes->port == std::variant<std::uint16_t, std::string>(std::string("https")));
    CHECK(describe_discovery(named.services.at(0)) == "kubernetes edge-1/web port https");
    // As a [service.kubernetes] sub-table too.
    const Config sub_table = parse_config(
        config_with("[service.kubernetes]\nnamespace = \"default\"\nservice = \"echo\"\nport = 8443", kKubeconfig), "t.toml");
    CHECK(describe_discovery(sub_table.services.at(0)) == "kubernetes default/echo port 8443");
}

TEST_CASE("service kubernetes: one source of endpoints; no port, dns_min_ttl or dns_max_ttl", "[config][kubernetes][service]") {
    for (const char* other : {"endpoints = [\"127.0.0.1:8443\"]", "dns = \"app.internal\"", "dns_srv = \"_https._tcp.a\"",
                              "endpoints_file = \"/p\""}) {
        INFO(other);
        const std::string error = error_of(config_with(std::string(other) + "\n" + kService, kKubeconfig));
        CHECK(error == "t.toml:11: service[0].kubernetes: a service takes its endpoints from one source; " +
                           std::string(other).substr(0, std::string(other).find(' ')) + " is already given");
    }
    CHECK(error_of(config_with(kService + "\nport = 443", kKubeconfig)) ==
          "t.toml:11: service[0].port: port goes with dns (a kubernetes service names the Service's port in its "
          "kubernetes table)");
    CHECK(error_of(config_with(kService + "\ndns_min_ttl = \"5s\"", kKubeconfig)) ==
          "t.toml:11: service[0].dns_min_ttl: dns_min_ttl goes with dns or dns_srv");
    CHECK(error_of(config_with(kService + "\ndns_max_ttl = \"5s\"", kKubeconfig)) ==
          "t.toml:11: service[0].dns_max_ttl: dns_max_ttl goes with dns or dns_srv");
}

TEST_CASE("service kubernetes: namespace and Service are DNS-1123 labels", "[config][kubernetes][service]") {
    CHECK(error_of(with_backend("{ namespace = \"kube-system\", service = \"a\", port = 1 }")) == "(no error)");
    CHECK(error_of(with_backend("{ namespace = \"0abc\", service = \"" + std::string(63, 'a') + "\", port = 65535 }")) ==
          "(no error)");
    const std::pair<std::string, std::string> bad[] = {
        {"", "must not be empty"},
        {std::string(64, 'a'), "at most 63 characters (a DNS-1123 label)"},
        {"Default", "a DNS-1123 label has only lowercase letters, digits and '-'"},
        {"a.b", "a DNS-1123 label has only lowercase letters, digits and '-'"},
        {"a_b", "a DNS-1123 label has only lowercase letters, digits and '-'"},
        {"-ab", "a DNS-1123 label starts and ends with a lowercase letter or digit"},
        {"ab-", "a DNS-1123 label starts and ends with a lowercase letter or digit"},
    };
    for (const auto& [name, reason] : bad) {
        INFO(name);
        CHECK(error_of(with_backend("{ namespace = \"" + name + "\", service = \"a\", port = 1 }")) ==
              "t.toml:10: service[0].kubernetes.namespace: invalid namespace \"" + name + "\": " + reason);
        CHECK(error_of(with_backend("{ namespace = \"a\", service = \"" + name + "\", port = 1 }")) ==
              "t.toml:10: service[0].kubernetes.service: invalid Service name \"" + name + "\": " + reason);
    }
}

TEST_CASE("service kubernetes: port 1..65535 or an IANA service name", "[config][kubernetes][service]") {
    const auto port_error = [](const std::string& port) {
        return error_of(with_backend("{ namespace = \"a\", service = \"b\", port = " + port + " }"));
    };
    for (const char* good : {"1", "65535", "\"https\"", "\"h2c\"", "\"a-b-c\"", "\"abcdefghijklmno\"", "\"8443-tls\""}) {
        INFO(good);
        CHECK(port_error(good) == "(no error)");
    }
    CHECK(port_error("0") == "t.toml:10: service[0].kubernetes.port: must be from 1 to 65535, got 0");
    CHECK(port_error("65536") == "t.toml:10: service[0].kubernetes.port: must be from 1 to 65535, got 65536");
    const std::pair<const char*, const char*> bad[] = {
        {"", "expected 1 to 15 characters (an IANA service name)"},
        {"abcdefghijklmnop", "expected 1 to 15 characters (an IANA service name)"},
        {"HTTPS", "an IANA service name has only lowercase letters, digits and '-'"},
        {"web_tls", "an IANA service name has only lowercase letters, digits and '-'"},
        {"443", "an IANA service name has at least one letter (a number is written without quotes)"},
        {"-https", "an IANA service name does not start or end with '-' nor have \"--\""},
        {"https-", "an IANA service name does not start or end with '-' nor have \"--\""},
        {"a--b", "an IANA service name does not start or end with '-' nor have \"--\""},
    };
    for (const auto& [name, reason] : bad) {
        INFO(name);
        CHECK(port_error("\"" + std::string(name) + "\"") ==
              "t.toml:10: service[0].kubernetes.port: invalid port name \"" + std::string(name) + "\": " + reason);
    }
    CHECK(port_error("4.5").find("t.toml:10: service[0].kubernetes.port: expected the Service's port: a number from 1 to "
                                 "65535 or its name (\"https\")") == 0);
}

TEST_CASE("service kubernetes: an inline table with exactly namespace, service and port", "[config][kubernetes][service]") {
    CHECK(error_of(with_backend("{ namespace = \"a\", service = \"b\", port = 1, name = \"x\" }")) ==
          "t.toml:10: service[0].kubernetes.name: unknown key; allowed keys: namespace, service, port");
    CHECK(error_of(with_backend("{ namespace = \"a\", service = \"b\" }")) ==
          "t.toml:10: service[0].kubernetes.port: required key is missing");
    CHECK(error_of(with_backend("{ service = \"b\", port = 1 }")) ==
          "t.toml:10: service[0].kubernetes.namespace: required key is missing");
    CHECK(error_of(with_backend("\"default/echo\"")).find(
              "t.toml:10: service[0].kubernetes: expected a table like { namespace = \"default\", service = "
              "\"echo\", port = 443 }") == 0);
}

namespace {
// The ```toml blocks of config/README.md between `heading` and the next "\n## " heading.
std::vector<std::string> readme_blocks(const std::string& heading) {
    const char* root = std::getenv("PASSGATE_SOURCE_ROOT");
    std::ifstream in(std::string(root != nullptr ? root : PASSGATE_SOURCE_ROOT) + "/config/README.md");
    const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> blocks;
    const std::size_t section = readme.find(heading);
    if (section == std::string::npos) return blocks;
    const std::size_t section_end = readme.find("\n## ", section + heading.size());
    for (std::size_t start = readme.find("```toml\n", section); start < section_end;
         start = readme.find("```toml\n", start + 1)) {
        const std::size_t end = readme.find("```", start + 8);
        blocks.push_back(readme.substr(start + 8, end - start - 8));
    }
    return blocks;
}
}  // namespace

TEST_CASE("the [kubernetes] examples of config/README.md parse as documented", "[config][kubernetes]") {
    const std::vector<std::string> blocks = readme_blocks("## `[kubernetes]`");
    REQUIRE(blocks.size() == 4);
    const std::string rest = config_with(kService, "");
    const Kubernetes kubeconfig = parse_config(rest + blocks[0], "t.toml").kubernetes;
    CHECK(kubeconfig.kubeconfig == "/etc/passgate/kubeconfig");
    CHECK(kubeconfig.context == "edge");
    const Kubernetes token = parse_config(rest + blocks[1], "t.toml").kubernetes;
    CHECK(token.api_server == "https://10.0.0.1:6443");
    CHECK(token.token_file == "/etc/passgate/token");
    const Kubernetes certs = parse_config(rest + blocks[2], "t.toml").kubernetes;
    CHECK(certs.client_key_file == "/etc/passgate/passgate.key");
    CHECK(certs.retry_max_delay == 10s);
    const Kubernetes pod = parse_config(rest + blocks[3], "t.toml").kubernetes;
    CHECK(pod.in_cluster);
    CHECK(pod.watch_timeout == 10min);

    const std::vector<std::string> guide = readme_blocks("### Endpoints from a Kubernetes Service");
    REQUIRE_FALSE(guide.empty());
    const Config config = parse_config(
        "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:6443\"\n[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\n"
        "backends = [{ service = \"passthrough-echoserver\" }]\n" + guide[0],
        "t.toml");
    CHECK(config.warnings.empty());
    CHECK(describe_discovery(config.services.at(0)) == "kubernetes default/passthrough-echoserver port 443");
}
