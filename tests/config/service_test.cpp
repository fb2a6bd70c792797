// Config keys of [[service]] for balancing, discovery, health and outlier detection, and [dns].

#include "config/config.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

using namespace passgate::config;
using namespace std::chrono_literals;

namespace {

// Lines: 1-3 [[listener]], 4-7 [[route]], 8 [[service]], 9 name, 10.. the service's lines.
std::string config_with(const std::string& service_lines, const std::string& tail = "") {
    return "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:6443\"\n"
           "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [{ service = \"s\" }]\n"
           "[[service]]\nname = \"s\"\n" +
           service_lines + "\n" + tail;
}

std::string error_of(const std::string& text, const std::string& source = "t.toml") {
    try {
        (void)parse_config(text, source);
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "(no error)";
}

Config parse(const std::string& text, const std::string& source = "t.toml") {
    return parse_config(text, source);
}

}  // namespace

TEST_CASE("a static service: round robin, no health check, outlier detection on", "[config][service]") {
    const Config service_config = parse(config_with("endpoints = [\"127.0.0.1:8443\"]"));
    const Service& service = service_config.services.at(0);
    CHECK(service.discovery == Discovery::static_list);
    CHECK(service.balance == Balance::round_robin);
    CHECK_FALSE(service.health_check.has_value());
    CHECK(service.outlier_detection.consecutive_failures == 5);
    CHECK(service.outlier_detection.base_ejection_time == 5s);
    CHECK(service.outlier_detection.max_ejection_time == 300s);
}

TEST_CASE("balance algorithms and maglev's hash_key", "[config][service]") {
    for (const auto& [text, balance] : {std::pair{"round_robin", Balance::round_robin},
                                        std::pair{"least_connections", Balance::least_connections},
                                        std::pair{"random_two", Balance::random_two},
                                        std::pair{"maglev", Balance::maglev}}) {
        const Config config = parse(config_with("endpoints = [\"127.0.0.1:8443\"]\nbalance = \"" +
                                                std::string(text) + "\""));
        CHECK(config.services.at(0).balance == balance);
    }
    const Config sni = parse(config_with(
        "endpoints = [\"127.0.0.1:8443\"]\nbalance = \"maglev\"\nhash_key = \"sni\""));
    CHECK(sni.services.at(0).hash_key == HashKey::sni);
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]\nhash_key = \"sni\"")) ==
          "t.toml:11: service[0].hash_key: hash_key goes with balance = \"maglev\"");
    CHECK(error_of(config_with(
              "endpoints = [\"127.0.0.1:8443\"]\nbalance = \"maglev\"\nhash_key = \"port\"")) ==
          "t.toml:12: service[0].hash_key: unknown hash_key \"port\" (\"source_ip\" or \"sni\")");
}

TEST_CASE("per-endpoint max_connections", "[config][service]") {
    const Config service_config = parse(config_with(
        "endpoints = [{ address = \"127.0.0.1:8443\", max_connections = 7 }, \"127.0.0.1:8444\"]"))
                                 ;
    const Service& service = service_config.services.at(0);
    CHECK(service.endpoints.at(0).max_connections == 7u);
    CHECK_FALSE(service.endpoints.at(1).max_connections.has_value());
    CHECK(error_of(config_with("endpoints = [{ address = \"127.0.0.1:8443\", max_connections = 0 }]")) ==
          "t.toml:10: service[0].endpoints[0].max_connections: must be from 1 to 10000000, got 0");
}

TEST_CASE("dns discovery: name, port, TTL bounds", "[config][service][dns]") {
    const Config service_config = parse(config_with(
        "dns = \"App.Example.COM.\"\nport = 8443\ndns_min_ttl = \"2s\"\ndns_max_ttl = \"1m\"\n"
        "endpoint_max_connections = 50"));
    const Service& service = service_config.services.at(0);
    CHECK(service.discovery == Discovery::dns);
    CHECK(service.dns_name == "app.example.com");
    CHECK(service.port == 8443);
    CHECK(service.dns_min_ttl == 2s);
    CHECK(service.dns_max_ttl == 60s);
    CHECK(service.endpoint_max_connections == 50u);
    CHECK(service.endpoints.empty());

    const Config srv_config = parse(config_with("dns_srv = \"_https._tcp.example.com\""));
    const Service& srv = srv_config.services.at(0);
    CHECK(srv.discovery == Discovery::dns_srv);
    CHECK(srv.dns_name == "_https._tcp.example.com");

    CHECK(error_of(config_with("dns = \"app.example.com\"")) ==
          "t.toml:8: service[0].port: required key is missing");
    CHECK(error_of(config_with("dns_srv = \"_x._tcp.example.com\"\nport = 1")) ==
          "t.toml:11: service[0].port: port goes with dns (dns_srv answers carry their own ports)");
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]\ndns = \"a.example.com\"")) ==
          "t.toml:11: service[0].dns: a service takes its endpoints from one source; endpoints is "
          "already given");
    CHECK(error_of(config_with("dns = \"bad name.example.com\"\nport = 1")) .find(
              "t.toml:10: service[0].dns: invalid name \"bad name.example.com\"") == 0);
    CHECK(error_of(config_with("dns = \"a.example.com\"\nport = 1\ndns_min_ttl = \"1m\"\n"
                               "dns_max_ttl = \"10s\"")) ==
          "t.toml:13: service[0].dns_max_ttl: must not be less than dns_min_ttl");
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]\ndns_min_ttl = \"1s\"")) ==
          "t.toml:11: service[0].dns_min_ttl: dns_min_ttl goes with dns or dns_srv");
    CHECK(error_of(config_with("")) == "t.toml:8: service[0].endpoints: required key is missing");
}

TEST_CASE("endpoints_file: relative paths are relative to the config's folder", "[config][service]") {
    CHECK(parse(config_with("endpoints_file = \"pool.txt\""), "/etc/passgate/passgate.toml")
              .services.at(0).endpoints_file == "/etc/passgate/pool.txt");
    CHECK(parse(config_with("endpoints_file = \"/srv/pool.txt\""), "/etc/passgate/passgate.toml")
              .services.at(0).endpoints_file == "/srv/pool.txt");
    const Config service_config = parse(config_with("endpoints_file = \"pool.txt\""), "t.toml");
    const Service& service = service_config.services.at(0);
    CHECK(service.discovery == Discovery::file);
    CHECK(service.endpoints_file == "./pool.txt");
    CHECK(error_of(config_with("endpoints_file = \"\"")) ==
          "t.toml:10: service[0].endpoints_file: must not be empty");
}

TEST_CASE("[service.health_check]", "[config][service][health]") {
    const Config service_config = parse(config_with(
        "endpoints = [\"127.0.0.1:8443\"]\n[service.health_check]\ninterval = \"500ms\"\n"
        "timeout = \"200ms\"\nhealthy_threshold = 1\nunhealthy_threshold = 2\nkind = \"tls\"\n"
        "sni = \"Health.Example.com\""));
    const Service& service = service_config.services.at(0);
    REQUIRE(service.health_check.has_value());
    CHECK(service.health_check->interval == 500ms);
    CHECK(service.health_check->timeout == 200ms);
    CHECK(service.health_check->healthy_threshold == 1);
    CHECK(service.health_check->unhealthy_threshold == 2);
    CHECK(service.health_check->kind == HealthCheck::Kind::tls);
    CHECK(service.health_check->sni == "health.example.com");

    const Config defaults_config = parse(config_with("endpoints = [\"127.0.0.1:8443\"]\n[service.health_check]"))
                                  ;
    const Service& defaults = defaults_config.services.at(0);
    REQUIRE(defaults.health_check.has_value());
    CHECK(defaults.health_check->interval == 5s);
    CHECK(defaults.health_check->kind == HealthCheck::Kind::tcp);

    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]\n[service.health_check]\nkind = \"http\"")) ==
          "t.toml:12: service[0].health_check.kind: unknown kind \"http\" (\"tcp\" or \"tls\")");
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]\n[service.health_check]\nsni = \"a.example.com\"")) ==
          "t.toml:12: service[0].health_check.sni: sni goes with kind = \"tls\"");
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]\n[service.health_check]\nunhealthy_threshold = 0")) ==
          "t.toml:12: service[0].health_check.unhealthy_threshold: must be from 1 to 100, got 0");
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]\n[service.health_check]\ninterval = \"1ms\"")) ==
          "t.toml:12: service[0].health_check.interval: must be at least 10ms");
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]\n[service.health_check]\nport = 1")) .find(
              "t.toml:12: service[0].health_check.port: unknown key") == 0);
}

TEST_CASE("[service.outlier_detection]", "[config][service]") {
    const Config service_config = parse(config_with(
        "endpoints = [\"127.0.0.1:8443\"]\n[service.outlier_detection]\nconsecutive_failures = 0\n"
        "base_ejection_time = \"1s\"\nmax_ejection_time = \"4s\""));
    const Service& service = service_config.services.at(0);
    CHECK(service.outlier_detection.consecutive_failures == 0);
    CHECK(service.outlier_detection.base_ejection_time == 1s);
    CHECK(service.outlier_detection.max_ejection_time == 4s);
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]\n[service.outlier_detection]\n"
                               "base_ejection_time = \"10s\"\nmax_ejection_time = \"1s\"")) ==
          "t.toml:13: service[0].outlier_detection.max_ejection_time: must not be less than "
          "base_ejection_time");
}

TEST_CASE("[dns] servers, timeout and tries", "[config][dns]") {
    const Config config = parse(config_with("endpoints = [\"127.0.0.1:8443\"]",
                                            "[dns]\nservers = [\"127.0.0.1:5353\", \"[::1]:53\"]\n"
                                            "timeout = \"500ms\"\ntries = 3\n"));
    REQUIRE(config.dns.servers.size() == 2);
    CHECK(config.dns.servers[0].to_string() == "127.0.0.1:5353");
    CHECK(config.dns.servers[1].to_string() == "[::1]:53");
    CHECK(config.dns.timeout == 500ms);
    CHECK(config.dns.tries == 3);
    CHECK(parse(config_with("endpoints = [\"127.0.0.1:8443\"]")).dns.servers.empty());
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]", "[dns]\nservers = [\"10.0.0.1\"]\n"))
              .find("t.toml:12: dns.servers[0]: invalid address \"10.0.0.1\"") == 0);
    CHECK(error_of(config_with("endpoints = [\"127.0.0.1:8443\"]", "[dns]\ntries = 0\n")) ==
          "t.toml:12: dns.tries: must be from 1 to 10, got 0");
}

namespace {
std::string readme_block_after(const std::string& heading) {
    const char* root = std::getenv("PASSGATE_SOURCE_ROOT");
    std::ifstream in(std::string(root != nullptr ? root : PASSGATE_SOURCE_ROOT) + "/config/README.md");
    const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto section = readme.find(heading);
    if (section == std::string::npos) return "";
    const auto start = readme.find("```toml\n", section);
    if (start == std::string::npos) return "";
    const auto end = readme.find("```", start + 8);
    return readme.substr(start + 8, end - start - 8);
}
}  // namespace

TEST_CASE("the [[service]] and [dns] examples in config/README.md parse as documented", "[config][service]") {
    const std::string services = readme_block_after("## `[[service]]`");
    const std::string dns = readme_block_after("## `[dns]`");
    REQUIRE(!services.empty());
    REQUIRE(!dns.empty());
    const std::string text = dns +
        "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:6443\"\n"
        "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [{ service = \"api-v1\" }, "
        "{ service = \"app\" }, { service = \"legacy\" }, { service = \"pool\" }]\n" + services;
    const Config config = parse(text, "/etc/passgate/passgate.toml");
    CHECK(config.warnings.empty());
    CHECK(config.dns.servers.size() == 1);
    const Service* api = config.find_service("api-v1");
    REQUIRE(api != nullptr);
    CHECK(api->balance == Balance::least_connections);
    CHECK(api->endpoints.at(1).max_connections == 1000u);
    REQUIRE(api->health_check.has_value());
    CHECK(api->health_check->kind == HealthCheck::Kind::tls);
    const Service* app = config.find_service("app");
    REQUIRE(app != nullptr);
    CHECK(app->discovery == Discovery::dns);
    CHECK(app->balance == Balance::maglev);
    CHECK(app->outlier_detection.consecutive_failures == 3);
    CHECK(config.find_service("legacy")->discovery == Discovery::dns_srv);
    CHECK(config.find_service("pool")->endpoints_file == "/etc/passgate/pool.endpoints");
}
