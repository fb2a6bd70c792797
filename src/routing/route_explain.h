#pragma once
// `passgate route --config FILE --sni NAME [--alpn P]...`: which route and service a ClientHello
// with this SNI and ALPN would take on every listener, and why. Pure: reads the config only.

#include "config/config.h"
#include "src/routing/routing.h"

#include <string>
#include <string_view>
#include <vector>

namespace passgate {

// `sni` as a client would send it (any case, optionally one trailing dot; empty: no SNI);
// `alpn`: offered protocols in the client's order. The SNI and ALPN are judged by the data
// path's own ClientHello parser, so a name it would reject (an IP literal, a bad label) is
// reported as rejected before routing. Then, per listener in config order: the decision
// (route and the rule that chose it, or the rejection), every other attached route whose
// hostnames match and why it lost, the routes that do not match or do not attach there, and the
// chosen route's backends with their weights and endpoints. Deterministic text, ends in '\n'.
std::string explain_route(const config::Config& config, std::string_view sni,
                          const std::vector<std::string>& alpn);

// The verdict of `passgate route`, its exit status (README.md, "Exit codes"). Over several
// listeners the highest applies.
enum class RouteOutcome {
    routed = 0,    // a route takes the hello (a default_route counts)
    no_route = 3,  // SNI sent, no route matches, no default_route (or no listener at all)
    no_sni = 4,    // no SNI and no default_route
    rejected = 5,  // the hello is rejected before routing: bad_sni (IP literal, bad label), bad_alpn
};

struct RouteExplanation {
    std::string text;  // as explain_route
    RouteOutcome outcome = RouteOutcome::routed;
};

// explain_route on the listeners named `only_listener` (nullptr: every listener), with the
// verdict. `only_listener` must name a listener of `config`. `files`: the routes' hostnames
// files as read (nullptr: none; a route with a file then matches no name).
RouteExplanation judge_route(const config::Config& config, std::string_view sni, const std::vector<std::string>& alpn,
                             const std::string* only_listener = nullptr, const HostnameFiles* files = nullptr);

}  // namespace passgate
