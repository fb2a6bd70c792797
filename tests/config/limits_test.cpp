// Config keys for access control and limits: allow, deny, max_connections, max_connection_rate
// (listeners), allow, deny, max_connections, max_connection_duration (routes).

#include "config/config.h"
#include "tests/config/config_error.h"

#include <catch2/catch.hpp>

#include <string>

using namespace passgate::config;
using namespace std::chrono_literals;

namespace {

// Lines: 1 [[listener]] 2 name 3 address 4 (listener extra)
//        5 [[route]] 6 name 7 listeners 8 backends 9 (route extra)
//        10 [[service]] 11 name 12 endpoints
std::string config_with(const std::string& listener_line, const std::string& route_line) {
    return "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:6443\"\n" + listener_line + "\n" +
           "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [{ service = \"s\" }]\n" +
           route_line + "\n" + "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:8443\"]\n";
}

using passgate::config::testing::error_of;

Config parse(const std::string& text) { return parse_config(text, "t.toml"); }

}  // namespace

TEST_CASE("limits and access lists default to none", "[config][limits]") {
    const Config config = parse(config_with("", ""));
    const Listener& listener = config.listeners.at(0);
    CHECK(listener.access.empty());
    CHECK_FALSE(listener.max_connections);
    CHECK_FALSE(listener.max_connection_rate);
    const Route& route = config.routes.at(0);
    CHECK(route.access.empty());
    CHECK_FALSE(route.max_connections);
    CHECK_FALSE(route.max_connection_duration);
}

TEST_CASE("listener allow, deny, max_connections, max_connection_rate", "[config][limits]") {
    const Config config = parse(config_with(
        "allow = [\"127.0.0.0/8\", \"::1\", \"2001:db8::/32\"]\ndeny = [\"127.0.0.9/32\"]\n"
        "max_connections = 4\nmax_connection_rate = 100",
        ""));
    const Listener& listener = config.listeners.at(0);
    REQUIRE(listener.access.allow.size() == 3);
    CHECK(listener.access.allow[0].to_string() == "127.0.0.0/8");
    CHECK(listener.access.allow[1].to_string() == "::1/128");
    CHECK(listener.access.allow[2].to_string() == "2001:db8::/32");
    REQUIRE(listener.access.deny.size() == 1);
    CHECK(listener.access.deny[0].to_string() == "127.0.0.9/32");
    CHECK(listener.max_connections == 4u);
    CHECK(listener.max_connection_rate == 100u);
}

TEST_CASE("route allow, deny, max_connections, max_connection_duration", "[config][limits]") {
    const Config config = parse(config_with(
        "", "allow = []\ndeny = [\"127.0.0.10\"]\nmax_connections = 1000\n"
            "max_connection_duration = \"300ms\""));
    const Route& route = config.routes.at(0);
    CHECK(route.access.allow.empty());
    REQUIRE(route.access.deny.size() == 1);
    CHECK(route.access.deny[0].to_string() == "127.0.0.10/32");
    CHECK(route.max_connections == 1000u);
    CHECK(route.max_connection_duration == 300ms);
    CHECK(parse(config_with("", "max_connection_duration = \"2h\"")).routes.at(0).max_connection_duration == 2h);
}

TEST_CASE("bad CIDRs are errors at their line and index", "[config][limits][errors]") {
    CHECK(error_of(config_with("allow = [\"127.0.0.0/8\", \"10.1.0.0/8\"]", "")) ==
          "t.toml:4: listener[0].allow[1]: invalid CIDR \"10.1.0.0/8\": host bits are set below "
          "the /8 prefix; did you mean \"10.0.0.0/8\"?");
    CHECK(error_of(config_with("deny = [\"10.0.0.0/33\"]", "")) ==
          "t.toml:4: listener[0].deny[0]: invalid CIDR \"10.0.0.0/33\": the prefix length after "
          "'/' must be a number from 0 to 32 without leading zeros");
    CHECK(error_of(config_with("", "deny = [\"localhost\"]")) ==
          "t.toml:9: route[0].deny[0]: invalid CIDR \"localhost\": not an IPv4 address (expected "
          "\"a.b.c.d/n\" with four decimal numbers 0-255, no leading zeros)");
    CHECK(error_of(config_with("", "allow = [\"[::1]/128\"]")) ==
          "t.toml:9: route[0].allow[0]: invalid CIDR \"[::1]/128\": not an IPv6 address "
          "(expected \"x:y::/n\"; no brackets or zone ids)");
    CHECK(error_of(config_with("allow = [\"\"]", "")) ==
          "t.toml:4: listener[0].allow[0]: invalid CIDR \"\": empty; expected \"a.b.c.d/n\", "
          "\"x::/n\" or a bare address");
    CHECK(error_of(config_with("allow = [\"10.0.0.0/8\", \"10.0.0.0/8\"]", "")) ==
          "t.toml:4: listener[0].allow[1]: CIDR \"10.0.0.0/8\" is listed twice (first at line 4)");
    // The same range written two ways is still a repeat.
    CHECK(error_of(config_with("deny = [\"::1\", \"0:0::1/128\"]", "")) ==
          "t.toml:4: listener[0].deny[1]: CIDR \"0:0::1/128\" is listed twice (first at line 4)");
}

TEST_CASE("wrong types for the new keys", "[config][limits][errors]") {
    using Catch::Matchers::Contains;
    using Catch::Matchers::StartsWith;
    CHECK_THAT(error_of(config_with("allow = \"10.0.0.0/8\"", "")),
               StartsWith("t.toml:4: listener[0].allow: "));
    CHECK_THAT(error_of(config_with("deny = [8]", "")),
               StartsWith("t.toml:4: listener[0].deny[0]: ") && Contains("CIDR string"));
    CHECK_THAT(error_of(config_with("max_connections = \"4\"", "")),
               StartsWith("t.toml:4: listener[0].max_connections: ") && Contains("integer"));
    CHECK_THAT(error_of(config_with("max_connection_rate = 1.5", "")),
               StartsWith("t.toml:4: listener[0].max_connection_rate: ") && Contains("integer"));
    CHECK_THAT(error_of(config_with("", "max_connection_duration = 300")),
               StartsWith("t.toml:9: route[0].max_connection_duration: "));
    // Keys of the other table kind are unknown.
    CHECK_THAT(error_of(config_with("max_connection_duration = \"1s\"", "")),
               StartsWith("t.toml:4: listener[0]"));
    CHECK_THAT(error_of(config_with("", "max_connection_rate = 5")),
               StartsWith("t.toml:9: route[0]"));
}

TEST_CASE("limits must be in range", "[config][limits][errors]") {
    CHECK(error_of(config_with("max_connections = 0", "")) ==
          "t.toml:4: listener[0].max_connections: must be from 1 to 10000000, got 0");
    CHECK(error_of(config_with("max_connections = -1", "")) ==
          "t.toml:4: listener[0].max_connections: must be from 1 to 10000000, got -1");
    CHECK(error_of(config_with("max_connection_rate = 0", "")) ==
          "t.toml:4: listener[0].max_connection_rate: must be from 1 to 10000000, got 0");
    CHECK(error_of(config_with("", "max_connections = 10000001")) ==
          "t.toml:9: route[0].max_connections: must be from 1 to 10000000, got 10000001");
    using Catch::Matchers::StartsWith;
    CHECK_THAT(error_of(config_with("", "max_connection_duration = \"0s\"")),
               StartsWith("t.toml:9: route[0].max_connection_duration: "));
    CHECK_THAT(error_of(config_with("", "max_connection_duration = \"10\"")),
               StartsWith("t.toml:9: route[0].max_connection_duration: "));
    CHECK(parse(config_with("max_connections = 10000000\nmax_connection_rate = 1", ""))
              .listeners.at(0).max_connections == 10000000u);
}
