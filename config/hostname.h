#pragma once
// Hostnames: the one rule for what a hostname is (config files, ClientHello SNI, DNS names to
// resolve), the one ASCII lowercaser, and Gateway API hostname matching and intersection. Pure
// functions, used by config validation, by the ClientHello parser (src/wire) and by src/routing,
// so that a name the config accepts is a name the data path accepts and matches.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace passgate::config {

// ---------------------------------------------------------------------------------------------
// Lowercasing. Hostnames compare case-insensitively in ASCII only (RFC 4343); bytes >= 0x80 are
// left unchanged (and then rejected by every syntax below: internationalized names are written
// in their "xn--" form).
constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
std::string ascii_lower(std::string_view text);

// ---------------------------------------------------------------------------------------------
// The hostname rule. Every syntax: a lowercase name (callers lowercase first) of 1..253 bytes, no
// trailing dot (callers that allow one strip it), dot-separated labels of 1..63 bytes.
//
// "IP literals are not hostnames" (RFC 6066 3 for SNI, Gateway API for route hostnames): a name
// that is an IPv6 address, or whose last label is a number as inet_aton and the WHATWG URL host
// parser read one: all digits ("10.0.0.1", "127.1", "example.123") or "0x" and hex digits
// ("0x7f.1", "api.0x1f", "x.0x"). A browser treats such a name as an IPv4 address (or refuses it),
// so no client sends it as an SNI; a route naming it could never match.
enum class HostnameSyntax {
    // A route or listener hostname, a health check's SNI: Gateway API's Hostname, labels of
    // [a-z0-9-] starting and ending with a letter or digit; not an IP literal.
    route,
    // A name a client sends as SNI: as `route`, but '_' and '-' anywhere in a label
    // ("_acme-challenge.example.com", "a-.b"), as real clients send; not an IP literal. Every
    // `route` name is a valid `sni` name; an `sni` name outside `route` can still be caught by a
    // wildcard ("*.example.com" takes "a_b.example.com") or a default_route.
    sni,
    // A name to resolve (service `dns` / `dns_srv`): labels of [a-z0-9_-] ("_https._tcp.x");
    // IP literals are not checked.
    dns_query,
};

// The first thing wrong with a name, or kind none.
struct HostnameFault {
    enum class Kind {
        none,
        empty,
        too_long,        // over 253 bytes
        ip_literal,
        empty_label,     // ".x", "a..b", or a trailing dot
        wildcard_label,  // `route` only: a '*' in a label ("*." is not part of the name)
        label_too_long,  // over 63 bytes
        bad_character,   // outside the syntax's alphabet
        hyphen_at_edge,  // `route` only: a label starting or ending with '-'
    };
    Kind kind = Kind::none;
    std::string_view label;  // the offending label (empty_label .. hyphen_at_edge)
    char character = 0;      // bad_character: the offending byte
};
HostnameFault check_hostname(std::string_view name, HostnameSyntax syntax);
inline bool is_valid_hostname(std::string_view name, HostnameSyntax syntax) {
    return check_hostname(name, syntax).kind == HostnameFault::Kind::none;
}

// "*.suffix": a wildcard pattern (the '*' stands for one or more labels).
constexpr bool is_wildcard_hostname(std::string_view pattern) {
    return pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.';
}

// A hostname pattern in a config file: "*." optionally, then a `route` name; "*" alone is not a
// pattern. Returns an error message, or empty when valid.
std::string validate_hostname_pattern(std::string_view pattern);
// A DNS name to resolve (`dns_query`). Returns an error message, or empty when valid.
std::string validate_dns_name(std::string_view name);

// ---------------------------------------------------------------------------------------------
// Gateway API matching.

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
