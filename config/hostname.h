#pragma once
// Gateway API hostname rules (see ../shared/design.md "Routing rules"). Pure functions, used by
// config validation (to warn about routes that attach nowhere) and by src/routing.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace passgate::config {

// Does `pattern` ("exact.name" or "*.suffix") match the concrete `host`? Both already lowercase,
// host without a trailing dot. "*.example.com" matches "a.example.com" and "a.b.example.com"
// but not "example.com".
bool hostname_matches(std::string_view pattern, std::string_view host);

// The effective hostname of a route hostname under a listener hostname (Gateway API
// intersection): nullopt when they do not intersect. Examples:
//   listener "*.example.com", route "foo.example.com" -> "foo.example.com"
//   listener "foo.example.com", route "*.example.com" -> "foo.example.com"
//   listener "*.example.com", route "*.a.example.com" -> "*.a.example.com"
//   listener "*.a.example.com", route "*.example.com" -> "*.a.example.com"
//   listener "a.example.com", route "b.example.com" -> nullopt
std::optional<std::string> intersect_hostnames(std::string_view listener_hostname,
                                               std::string_view route_hostname);

// The effective hostname that stands for "every hostname": a route without hostnames on a
// listener without hostname. Never valid in a config file (validate_hostname_pattern rejects it).
inline constexpr std::string_view match_all_hostnames = "*";

// A route's effective hostnames on a listener (Gateway API): each route hostname intersected
// with the listener hostname (the route hostnames unchanged when the listener has none),
// duplicates removed, in the route's order. A route without hostnames gets the listener's
// hostname, or {match_all_hostnames} when the listener has none. Empty: the route's hostnames
// do not intersect the listener's, so it is not attached (it can still be the default_route).
std::vector<std::string> effective_hostnames(const std::optional<std::string>& listener_hostname,
                                             const std::vector<std::string>& route_hostnames);

}  // namespace passgate::config
