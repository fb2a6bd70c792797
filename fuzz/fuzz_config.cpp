// libFuzzer target for the config loader: parse_config over arbitrary bytes.
// A ConfigError is the only acceptable failure; any other exception escaping, a crash, a hang,
// or a broken invariant of an accepted config is a bug. (toml++ parse errors must already be
// ConfigErrors by the time they leave parse_config.)
//
// Also builds the routing table of every listener of an accepted config and checks that each
// exact effective hostname finds a route.

#include "config/config.h"
#include "src/routing/routing.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

void check_invariants(const passgate::config::Config& config) {
    using namespace passgate::config;
    check(!config.listeners.empty());
    for (const Listener& listener : config.listeners) {
        check(!listener.name.empty());
        check(listener.address.port() != 0);
        check(parse_address(listener.address.to_string()).has_value());
        if (listener.hostname) check(validate_hostname_pattern(*listener.hostname).empty());
        if (listener.default_route) check(config.find_route(*listener.default_route) != nullptr);
        check(listener.client_hello_timeout.count() > 0 && listener.idle_timeout.count() > 0);
        check(listener.max_client_hello_size >= 512 && listener.max_client_hello_size <= 1 << 20);
    }
    for (const Route& route : config.routes) {
        check(!route.listeners.empty() && !route.backends.empty());
        for (const auto& name : route.listeners) check(config.find_listener(name) != nullptr);
        for (const auto& hostname : route.hostnames) check(validate_hostname_pattern(hostname).empty());
        bool any_weight = false;
        for (const BackendRef& backend : route.backends) {
            check(config.find_service(backend.service) != nullptr);
            any_weight = any_weight || backend.weight > 0;
        }
        check(any_weight);
    }
    for (const Service& service : config.services) {
        check(!service.endpoints.empty());
        check(service.connect_attempts >= 1 && service.connect_attempts <= 16);
    }
    for (const std::string& warning : config.warnings) {
        check(warning.rfind(config.source + ":", 0) == 0);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    passgate::config::Config config;
    try {
        config = passgate::config::parse_config(text, "fuzz.toml");
    } catch (const passgate::config::ConfigError& error) {
        // "FILE:LINE: KEY: MESSAGE" with LINE >= 1.
        const std::string_view what = error.what();
        check(what.rfind("fuzz.toml:", 0) == 0);
        check(what.size() > 10 && what[10] >= '1' && what[10] <= '9');
        return 0;
    }
    check_invariants(config);
    // The hash identifies exactly the bytes that were parsed.
    check(config.source_hash == passgate::config::config_hash(text));

    for (const auto& listener : config.listeners) {
        const passgate::ListenerRoutes routes(config, listener);
        for (const auto& attached : routes.attached()) {
            for (const std::string& hostname : attached.effective_hostnames) {
                if (hostname.rfind("*.", 0) == 0) continue;
                const auto match = routes.match(hostname, attached.route->alpn);
                check(match.route != nullptr);
            }
        }
        (void)routes.match("", {});
        (void)routes.match("x.example.com", {});
    }
    return 0;
}
