#include "src/control/check.h"

#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <string>

using passgate::config::Config;
using test_config::listener;
using test_config::route;

TEST_CASE("--check summary: a discovered service names its source", "[check]") {
    const Config config = test_config::make_config(
        listener("l", 6443) +
            route("r", {"l"}, {"app.example.com"}, {},
                  "[{ service = \"by-dns\" }, { service = \"by-srv\" }, { service = \"by-file\" }]") +
            "[[service]]\nname = \"by-dns\"\ndns = \"app.internal\"\nport = 8443\n"
            "[[service]]\nname = \"by-srv\"\ndns_srv = \"_https._tcp.app.internal\"\n"
            "[[service]]\nname = \"by-file\"\nendpoints_file = \"/etc/passgate/pool.endpoints\"\n",
        "check_test.toml");
    const std::string described = passgate::describe_config(config);
    INFO(described);
    CHECK(described.find("  by-dns: dns app.internal port 8443\n") != std::string::npos);
    CHECK(described.find("  by-file: endpoints_file /etc/passgate/pool.endpoints\n") != std::string::npos);
}
