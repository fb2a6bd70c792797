#include "config/config_json.h"

#include <catch2/catch.hpp>

#include <set>
#include <sstream>
#include <string>

using namespace passgate::config;
using Json = nlohmann::ordered_json;

namespace {

const std::string kFull = R"([runtime]
workers = 3
[admin]
address = "127.0.0.1:9901"
[access_log]
format = "json"
[dns]
servers = ["127.0.0.53:53"]
[kubernetes]
api_server = "https://10.0.0.1:6443"
ca_file = "/etc/passgate/ca.crt"
token_file = "/etc/passgate/token"
[[listener]]
name = "tls"
address = "0.0.0.0:6443"
default_route = "fallback"
allow = ["10.0.0.0/8"]
max_connections = 100
[[route]]
name = "fallback"
listeners = ["tls"]
backends = [ { service = "web" } ]
[[route]]
name = "api"
listeners = ["tls"]
hostnames = ["api.example.com"]
backends = [ { service = "web", weight = 2 }, { service = "files" } ]
drain_timeout = "90s"
[[service]]
name = "web"
endpoints = [ { address = "127.0.0.1:8443", weight = 3 }, "127.0.0.2:8443" ]
balance = "least_connections"
health_check = { interval = "250ms", kind = "tls", sni = "web.example.com" }
[[service]]
name = "files"
endpoints_file = "/etc/passgate/files.endpoints"
send_proxy_protocol = "v2"
)";

// The keys the config reader allows in one table, from its own unknown-key error.
std::set<std::string> allowed_keys(const std::string& text) {
    try {
        (void)parse_config(text, "t.toml");
    } catch (const ConfigError& error) {
        const std::string message = error.what();
        const std::string marker = "allowed keys: ";
        const std::size_t at = message.find(marker);
        INFO(message);
        REQUIRE(at != std::string::npos);
        std::set<std::string> keys;
        std::stringstream list(message.substr(at + marker.size()));
        std::string key;
        while (std::getline(list, key, ',')) {
            while (!key.empty() && key.front() == ' ') key.erase(0, 1);
            keys.insert(key);
        }
        return keys;
    }
    FAIL("no error for an unknown key");
    return {};
}

std::set<std::string> keys_of(const Json& object) {
    std::set<std::string> keys;
    for (const auto& item : object.items()) keys.insert(item.key());
    keys.erase("origin");  // not a TOML key: where a Gateway API item came from
    return keys;
}

}  // namespace

TEST_CASE("effective config JSON: defaults filled in, TOML names, durations as text, unset as null",
          "[config][config_json]") {
    const Json json = effective_config_json(parse_config(kFull, "t.toml"));
    CHECK(json["runtime"]["workers"] == 3);
    CHECK(json["runtime"]["shutdown_timeout"] == "30s");
    CHECK(json["runtime"]["upgrade_timeout"] == "1m");
    CHECK(json["runtime"]["drain_delay"] == "0s");  // the default, written as in config/README.md
    CHECK(json["runtime"]["max_connections_per_worker"].is_null());
    CHECK(json["runtime"]["max_hello_memory"] == 64ull * 1024 * 1024);
    CHECK(json["runtime"]["reuseport_cpu_steering"] == false);
    CHECK(json["admin"]["address"] == "127.0.0.1:9901");
    CHECK(json["admin"]["request_timeout"] == "2s");
    CHECK(json["access_log"] == Json::parse(R"({"enabled":true,"format":"json","path":"-"})"));
    CHECK(json["dns"]["servers"] == Json::parse(R"(["127.0.0.53:53"])"));
    CHECK(json["dns"]["tries"] == 2);
    CHECK(json["gateway_api"].is_null());

    const Json& listener = json["listener"][0];
    CHECK(listener["name"] == "tls");
    CHECK(listener["address"] == "0.0.0.0:6443");
    CHECK(listener["hostname"].is_null());
    CHECK(listener["client_hello_timeout"] == "10s");
    CHECK(listener["idle_timeout"] == "1h");
    CHECK(listener["max_client_hello_size"] == 65536);
    CHECK(listener["defer_accept"] == true);
    CHECK(listener["default_route"] == "fallback");
    CHECK(listener["allow"] == Json::parse(R"(["10.0.0.0/8"])"));
    CHECK(listener["deny"] == Json::array());
    CHECK(listener["max_connections"] == 100);
    CHECK(listener["max_connection_rate"].is_null());
    CHECK_FALSE(listener.contains("origin"));

    REQUIRE(json["route"].size() == 2);
    CHECK(json["route"][0]["name"] == "fallback");  // config order
    CHECK(json["route"][0]["drain_timeout"].is_null());
    CHECK(json["route"][1]["drain_timeout"] == "90s");
    CHECK(json["route"][1]["backends"] ==
          Json::parse(R"([{"service":"web","weight":2},{"service":"files","weight":1}])"));

    const Json& web = json["service"][0];
    CHECK(web["endpoints"] == Json::parse(R"([{"address":"127.0.0.1:8443","weight":3,"max_connections":null},
                                              {"address":"127.0.0.2:8443","weight":1,"max_connections":null}])"));
    CHECK(web["endpoints_file"].is_null());
    CHECK(web["balance"] == "least_connections");
    CHECK(web["health_check"] == Json::parse(R"({"interval":"250ms","timeout":"2s","healthy_threshold":2,
        "unhealthy_threshold":3,"kind":"tls","sni":"web.example.com"})"));
    CHECK(web["outlier_detection"] ==
          Json::parse(R"({"consecutive_failures":5,"base_ejection_time":"5s","max_ejection_time":"5m"})"));
    CHECK(web["send_proxy_protocol"].is_null());
    const Json& files = json["service"][1];
    CHECK(files["endpoints"].is_null());
    CHECK(files["endpoints_file"] == "/etc/passgate/files.endpoints");
    CHECK(files["send_proxy_protocol"] == "v2");
    CHECK(files["health_check"].is_null());
}

TEST_CASE("effective config JSON: [kubernetes] shows file paths, never what they hold", "[config][config_json]") {
    const Json json = effective_config_json(parse_config(kFull, "t.toml"));
    CHECK(json["kubernetes"]["token_file"] == "/etc/passgate/token");
    CHECK(json["kubernetes"]["api_server"] == "https://10.0.0.1:6443");
    CHECK(json["kubernetes"]["kubeconfig"].is_null());
    CHECK(json["kubernetes"]["watch_timeout"] == "5m");
}

TEST_CASE("effective config JSON: every key the reader accepts, table by table", "[config][config_json]") {
    const Json json = effective_config_json(parse_config(kFull, "t.toml"));
    CHECK(keys_of(json) == allowed_keys("zz_unknown = 1\n"));
    CHECK(keys_of(json["runtime"]) == allowed_keys("[runtime]\nzz_unknown = 1\n"));
    CHECK(keys_of(json["admin"]) == allowed_keys("[admin]\nzz_unknown = 1\n"));
    CHECK(keys_of(json["access_log"]) == allowed_keys("[access_log]\nzz_unknown = 1\n"));
    CHECK(keys_of(json["dns"]) == allowed_keys("[dns]\nzz_unknown = 1\n"));
    CHECK(keys_of(json["kubernetes"]) == allowed_keys("[kubernetes]\nzz_unknown = 1\n"));
    CHECK(keys_of(json["listener"][0]) == allowed_keys("[[listener]]\nzz_unknown = 1\n"));
    const std::string listener = "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:1\"\n";
    CHECK(keys_of(json["route"][0]) == allowed_keys(listener + "[[route]]\nzz_unknown = 1\n"));
    CHECK(keys_of(json["route"][0]["backends"][0]) ==
          allowed_keys(listener + "[[route]]\nname = \"r\"\nlisteners = [\"l\"]\nbackends = [ { zz_unknown = 1 } ]\n"));
    CHECK(keys_of(json["service"][0]) == allowed_keys(listener + "[[service]]\nzz_unknown = 1\n"));
    CHECK(keys_of(json["service"][0]["endpoints"][0]) ==
          allowed_keys(listener + "[[service]]\nname = \"s\"\nendpoints = [ { zz_unknown = 1 } ]\n"));
    CHECK(keys_of(json["service"][0]["health_check"]) ==
          allowed_keys(listener + "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:2\"]\nhealth_check = { zz_unknown = 1 }\n"));
    CHECK(keys_of(json["service"][0]["outlier_detection"]) ==
          allowed_keys(listener + "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:2\"]\noutlier_detection = { zz_unknown = 1 }\n"));

    const Json gateway = effective_config_json(parse_config(
        "[gateway_api]\ngateway_class = [\"passgate\"]\nmanifests = [\"/etc/passgate/gateway.yaml\"]\n", "t.toml"));
    CHECK(keys_of(gateway["gateway_api"]) == allowed_keys("[gateway_api]\nzz_unknown = 1\n"));
    CHECK(gateway["gateway_api"]["manifests"] == Json::parse(R"(["/etc/passgate/gateway.yaml"])"));
}

TEST_CASE("duration text: the largest exact unit, as the TOML writes it", "[config][config_json]") {
    using namespace std::chrono_literals;
    CHECK(duration_text(250ms) == "250ms");
    CHECK(duration_text(1500ms) == "1500ms");
    CHECK(duration_text(10s) == "10s");
    CHECK(duration_text(90s) == "90s");
    CHECK(duration_text(5min) == "5m");
    CHECK(duration_text(2h) == "2h");
    CHECK(duration_text(0ms) == "0s");  // drain_delay's "off", as config/README.md writes its default
    CHECK(parse_duration(duration_text(90s)) == Duration(90s));
    CHECK(parse_duration(duration_text(0ms), true) == Duration(0ms));
    CHECK_FALSE(parse_duration(duration_text(0ms)).has_value());
}
