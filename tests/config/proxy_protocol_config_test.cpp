// Config keys for the PROXY protocol from an upstream load balancer: a listener's
// accept_proxy_protocol and trusted_proxies.

#include "config/config.h"
#include "tests/config/config_error.h"

#include <catch2/catch.hpp>

#include <string>

using namespace passgate::config;

namespace {

// Lines: 1 [[listener]] 2 name 3 address, then from line 4 `listener_lines`; then a route and a
// service.
std::string config_with(const std::string& listener_lines) {
    return "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:6443\"\n" + listener_lines + "\n" +
           "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [{ service = \"s\" }]\n" +
           "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:8443\"]\n";
}

using passgate::config::testing::error_of;

}  // namespace

TEST_CASE("accept_proxy_protocol defaults to off with no trusted proxies", "[config][proxy_protocol]") {
    const Config config = parse_config(config_with(""), "t.toml");
    CHECK_FALSE(config.listeners.at(0).accept_proxy_protocol);
    CHECK(config.listeners.at(0).trusted_proxies.empty());
    CHECK(config.warnings.empty());
}

TEST_CASE("accept_proxy_protocol with trusted_proxies", "[config][proxy_protocol]") {
    const Config config = parse_config(
        config_with("accept_proxy_protocol = true\n"
                    "trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\", \"2001:db8::/32\"]"),
        "t.toml");
    const Listener& listener = config.listeners.at(0);
    CHECK(listener.accept_proxy_protocol);
    REQUIRE(listener.trusted_proxies.size() == 3);
    CHECK(listener.trusted_proxies[0].to_string() == "10.0.0.0/8");
    CHECK(listener.trusted_proxies[1].to_string() == "127.0.0.1/32");
    CHECK(listener.trusted_proxies[2].to_string() == "2001:db8::/32");
    CHECK(listener.access.empty());  // allow/deny stay separate lists
    // Explicitly off without trusted_proxies is fine too.
    CHECK_FALSE(parse_config(config_with("accept_proxy_protocol = false"), "t.toml")
                    .listeners.at(0).accept_proxy_protocol);
}

TEST_CASE("trusted_proxies is required with accept_proxy_protocol and only with it",
          "[config][proxy_protocol][errors]") {
    CHECK(error_of(config_with("accept_proxy_protocol = true")) ==
          "t.toml:4: listener[0].accept_proxy_protocol: needs trusted_proxies: the addresses of "
          "the load balancers allowed to send PROXY headers, like [\"10.0.0.0/8\"]");
    CHECK(error_of(config_with("accept_proxy_protocol = true\ntrusted_proxies = []")) ==
          "t.toml:5: listener[0].trusted_proxies: must list at least one CIDR "
          "(accept_proxy_protocol is true)");
    CHECK(error_of(config_with("trusted_proxies = [\"10.0.0.0/8\"]")) ==
          "t.toml:4: listener[0].trusted_proxies: only applies with accept_proxy_protocol = true");
    CHECK(error_of(config_with("accept_proxy_protocol = false\ntrusted_proxies = [\"10.0.0.0/8\"]")) ==
          "t.toml:5: listener[0].trusted_proxies: only applies with accept_proxy_protocol = true");
    // An empty list without the flag is still a key that does nothing.
    CHECK(error_of(config_with("trusted_proxies = []")) ==
          "t.toml:4: listener[0].trusted_proxies: only applies with accept_proxy_protocol = true");
}

TEST_CASE("trusted_proxies entries are strict CIDRs, each once", "[config][proxy_protocol][errors]") {
    CHECK(error_of(config_with("accept_proxy_protocol = true\n"
                               "trusted_proxies = [\"10.0.0.0/8\", \"10.1.0.0/8\"]")) ==
          "t.toml:5: listener[0].trusted_proxies[1]: invalid CIDR \"10.1.0.0/8\": host bits are "
          "set below the /8 prefix; did you mean \"10.0.0.0/8\"?");
    CHECK(error_of(config_with("accept_proxy_protocol = true\n"
                               "trusted_proxies = [\"lb.example.com\"]"))
              .rfind("t.toml:5: listener[0].trusted_proxies[0]: invalid CIDR \"lb.example.com\": ", 0) == 0);
    CHECK(error_of(config_with("accept_proxy_protocol = true\n"
                               "trusted_proxies = [\"::1\", \"0::1/128\"]")) ==
          "t.toml:5: listener[0].trusted_proxies[1]: CIDR \"0::1/128\" is listed twice (first at line 5)");
    CHECK(error_of(config_with("accept_proxy_protocol = true\ntrusted_proxies = [\n  \"10.0.0.0/8\",\n  7,\n]"))
              .rfind("t.toml:7: listener[0].trusted_proxies[1]: ", 0) == 0);
}

TEST_CASE("wrong types for accept_proxy_protocol and trusted_proxies", "[config][proxy_protocol][errors]") {
    CHECK(error_of(config_with("accept_proxy_protocol = \"yes\"\ntrusted_proxies = [\"10.0.0.0/8\"]"))
              .rfind("t.toml:4: listener[0].accept_proxy_protocol: ", 0) == 0);
    CHECK(error_of(config_with("accept_proxy_protocol = true\ntrusted_proxies = \"10.0.0.0/8\""))
              .rfind("t.toml:5: listener[0].trusted_proxies: ", 0) == 0);
    // The key names are a contract: a near miss is an unknown key with a suggestion.
    CHECK(error_of(config_with("accept_proxy = true"))
              .rfind("t.toml:4: listener[0].accept_proxy: unknown key", 0) == 0);
}
