// [gateway_api]: every rule, with errors at FILE:LINE and key; and the service name a TLSRoute
// backendRef refers to ("namespace/service:port").

#include "config/config.h"

#include <catch2/catch.hpp>

#include <string>

using namespace passgate::config;
using namespace std::chrono_literals;

namespace {

const std::string kKubernetes = "[kubernetes]\nkubeconfig = \"/etc/passgate/kubeconfig\"\n";

std::string error_of(const std::string& text) {
    try {
        (void)parse_config(text, "/etc/passgate/passgate.toml");
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "";
}

}  // namespace

TEST_CASE("[gateway_api]: the issue's table, and no [[listener]] needed beside it", "[gateway_api]") {
    const Config config = parse_config(
        "[gateway_api]\n"
        "gateway_class = \"eg\"\n"
        "manifests = [\"/etc/passgate/gateway/\", \"more.yaml\"]\n"
        "listen_address = \"0.0.0.0\"\n",
        "/etc/passgate/passgate.toml");
    REQUIRE(config.gateway_api.configured);
    CHECK(config.gateway_api.gateway_classes == std::vector<std::string>{"eg"});
    CHECK(config.gateway_api.manifests ==
          std::vector<std::string>{"/etc/passgate/gateway/", "/etc/passgate/more.yaml"});
    CHECK_FALSE(config.gateway_api.watch);
    CHECK(config.gateway_api.listen_address == "0.0.0.0");
    CHECK(config.gateway_api.controller_name == "passgate.io/gateway-controller");
    CHECK(config.gateway_api.line == 1);
    CHECK(config.listeners.empty());
}

TEST_CASE("[gateway_api]: watch mode with its status settings", "[gateway_api]") {
    const Config config = parse_config(kKubernetes +
        "[gateway_api]\n"
        "gateway_class = [\"eg\", \"edge\"]\n"
        "watch = true\n"
        "listen_address = \"::\"\n"
        "status_address = \"192.0.2.10\"\n"
        "controller_name = \"example.com/edge\"\n"
        "lease_namespace = \"passgate-system\"\n"
        "lease_name = \"edge-status\"\n"
        "lease_duration = \"30s\"\n",
        "/etc/passgate/passgate.toml");
    const GatewayApi& g = config.gateway_api;
    CHECK(g.gateway_classes == std::vector<std::string>{"eg", "edge"});
    CHECK(g.watch);
    CHECK(g.manifests.empty());
    CHECK(g.listen_address == "::");
    CHECK(g.status_address == "192.0.2.10");
    CHECK(g.controller_name == "example.com/edge");
    CHECK(g.lease_namespace == "passgate-system");
    CHECK(g.lease_name == "edge-status");
    CHECK(g.lease_duration == 30s);
}

TEST_CASE("[gateway_api]: errors name the file, the line and the key", "[gateway_api]") {
    const std::string file = "/etc/passgate/passgate.toml:";
    CHECK(error_of("[gateway_api]\nmanifests = [\"a.yaml\"]\n") ==
          file + "1: gateway_api.gateway_class: required key is missing");
    CHECK(error_of("[gateway_api]\ngateway_class = []\nmanifests = [\"a.yaml\"]\n") ==
          file + "2: gateway_api.gateway_class: must name at least one GatewayClass");
    CHECK(error_of("[gateway_api]\ngateway_class = [\"eg\", \"Eg\"]\nmanifests = [\"a.yaml\"]\n") ==
          file + "2: gateway_api.gateway_class[1]: invalid GatewayClass name \"Eg\": a DNS-1123 subdomain has "
                 "only lowercase letters, digits, '-' and '.'");
    CHECK(error_of("[gateway_api]\ngateway_class = [\"eg\", \"eg\"]\nmanifests = [\"a.yaml\"]\n") ==
          file + "2: gateway_api.gateway_class[1]: GatewayClass \"eg\" is listed twice (first at line 2)");
    CHECK(error_of("[gateway_api]\ngateway_class = \"eg\"\n") ==
          file + "1: gateway_api.manifests: [gateway_api] needs manifests (files or folders of YAML) or watch = true");
    CHECK(error_of(kKubernetes + "[gateway_api]\ngateway_class = \"eg\"\nmanifests = [\"a\"]\nwatch = true\n") ==
          file + "5: gateway_api.manifests: [gateway_api] takes manifests or watch = true, not both");
    CHECK(error_of("[gateway_api]\ngateway_class = \"eg\"\nwatch = true\n") ==
          file + "3: gateway_api.watch: watch = true reads the objects from the API server: it needs a [kubernetes] table");
    CHECK(error_of("[gateway_api]\ngateway_class = \"eg\"\nmanifests = []\n") ==
          file + "3: gateway_api.manifests: must list at least one file or folder");
    CHECK(error_of("[gateway_api]\ngateway_class = \"eg\"\nmanifests = [\"a\"]\nlisten_address = \"0.0.0.0:443\"\n") ==
          file + "4: gateway_api.listen_address: invalid address \"0.0.0.0:443\": an IP address without a port, "
                 "like \"0.0.0.0\", \"192.0.2.10\", \"::\" or \"2001:db8::10\"");
    CHECK(error_of("[gateway_api]\ngateway_class = \"eg\"\nmanifests = [\"a\"]\ncontroller_name = \"passgate\"\n") ==
          file + "4: gateway_api.controller_name: invalid controller name \"passgate\": expected DOMAIN/PATH, like "
                 "\"passgate.io/gateway-controller\"");
    CHECK(error_of("[gateway_api]\ngateway_class = \"eg\"\nmanifests = [\"a\"]\nlease_duration = \"1500ms\"\n") ==
          file + "4: gateway_api.lease_duration: must be whole seconds (a Lease counts seconds)");
    CHECK(error_of("[gateway_api]\ngateway_class = \"eg\"\nmanifests = [\"a\"]\nlease = \"x\"\n").find(
              "4: gateway_api.lease: unknown key") != std::string::npos);
}

TEST_CASE("without [gateway_api] a config still needs a [[listener]]", "[gateway_api]") {
    CHECK(error_of("[runtime]\nworkers = 1\n") ==
          "/etc/passgate/passgate.toml:1: listener: at least one [[listener]] is required (or a [gateway_api] "
          "table whose Gateways make them)");
}

TEST_CASE("a [[service]] may be named for a TLSRoute backendRef, namespace/service:port", "[gateway_api]") {
    const std::string head = "[gateway_api]\ngateway_class = \"eg\"\nmanifests = [\"a.yaml\"]\n[[service]]\nname = ";
    const Config config = parse_config(head + "\"default/passthrough-echoserver:443\"\nendpoints = [\"127.0.0.1:8443\"]\n",
                                       "/etc/passgate/passgate.toml");
    REQUIRE(config.services.size() == 1);
    CHECK(config.services[0].name == "default/passthrough-echoserver:443");
    const std::string at = "/etc/passgate/passgate.toml:5: service[0].name: invalid name ";
    CHECK(error_of(head + "\"default/echo\"\nendpoints = [\"127.0.0.1:1\"]\n") ==
          at + "\"default/echo\": a name with '/' is a Gateway API backend, \"namespace/service:port\" (like "
               "\"default/echo:443\")");
    CHECK(error_of(head + "\"Default/echo:443\"\nendpoints = [\"127.0.0.1:1\"]\n").find(
              at + "\"Default/echo:443\": its namespace:") == 0);
    CHECK(error_of(head + "\"default/echo:https\"\nendpoints = [\"127.0.0.1:1\"]\n") ==
          at + "\"default/echo:https\": its port must be a number from 1 to 65535");
    CHECK(error_of(head + "\"default/echo:65536\"\nendpoints = [\"127.0.0.1:1\"]\n") ==
          at + "\"default/echo:65536\": its port must be a number from 1 to 65535");
    CHECK(error_of(head + "\"default/echo:0443\"\nendpoints = [\"127.0.0.1:1\"]\n") ==
          at + "\"default/echo:0443\": its port must be a number from 1 to 65535");
}
