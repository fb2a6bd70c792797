// The hostname rule, the ASCII lowercaser and Gateway API hostname matching (see hostname.h).

#include "config/hostname.h"

#include "config/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace passgate::config {

namespace {

bool is_route_label_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

bool is_label_char(char c, HostnameSyntax syntax) {
    return is_route_label_char(c) || (c == '_' && syntax != HostnameSyntax::route);
}

std::string describe_char(char c) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) return "non-ASCII character (use the IDNA \"xn--\" form)";
    if (c >= 'A' && c <= 'Z') return "uppercase character '" + std::string(1, c) + "'";
    if (byte < 0x20 || byte == 0x7f) {
        static const char hex[] = "0123456789abcdef";
        return std::string("control character 0x") + hex[byte >> 4] + hex[byte & 0xf];
    }
    return "invalid character '" + std::string(1, c) + "'";
}

// "::1" or "[::1]".
bool is_ipv6_literal(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
        text = text.substr(1, text.size() - 2);
    }
    if (text.find(':') == std::string_view::npos || text.size() >= INET6_ADDRSTRLEN) return false;
    char buffer[INET6_ADDRSTRLEN] = {};
    std::memcpy(buffer, text.data(), text.size());
    in6_addr address{};
    return std::memchr(buffer, '\0', text.size()) == nullptr &&
           ::inet_pton(AF_INET6, buffer, &address) == 1;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }

// A label that inet_aton and the WHATWG URL host parser read as a number: all digits (decimal,
// or octal with a leading 0), or "0x" and zero or more hex digits.
bool is_numeric_label(std::string_view label) {
    if (label.size() >= 2 && label[0] == '0' && label[1] == 'x') {
        return std::all_of(label.begin() + 2, label.end(), is_hex_digit);
    }
    return !label.empty() && std::all_of(label.begin(), label.end(), is_digit);
}

HostnameFault fault_of(HostnameFault::Kind kind, std::string_view label, char character = 0) {
    return HostnameFault{kind, label, character};
}

HostnameFault check_label(std::string_view label, HostnameSyntax syntax) {
    using Kind = HostnameFault::Kind;
    if (label.empty()) return fault_of(Kind::empty_label, label);
    // In a config pattern a '*' elsewhere than "*." gets its own message; elsewhere it is just
    // a character outside the alphabet.
    if (syntax == HostnameSyntax::route && label.find('*') != std::string_view::npos) {
        return fault_of(Kind::wildcard_label, label);
    }
    if (label.size() > 63) return fault_of(Kind::label_too_long, label);
    for (const char c : label) {
        if (!is_label_char(c, syntax)) return fault_of(Kind::bad_character, label, c);
    }
    if (syntax == HostnameSyntax::route && (label.front() == '-' || label.back() == '-')) {
        return fault_of(Kind::hyphen_at_edge, label);
    }
    return {};
}

}  // namespace

HostnameFault check_hostname(std::string_view name, HostnameSyntax syntax) {
    using Kind = HostnameFault::Kind;
    if (name.empty()) return fault_of(Kind::empty, {});
    if (name.size() > 253) return fault_of(Kind::too_long, {});
    const bool ip_literals_rejected = syntax != HostnameSyntax::dns_query;
    if (ip_literals_rejected && is_ipv6_literal(name)) return fault_of(Kind::ip_literal, {});
    std::string_view last_label;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = name.find('.', start);
        last_label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (const HostnameFault fault = check_label(last_label, syntax); fault.kind != Kind::none) {
            return fault;
        }
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    if (ip_literals_rejected && is_numeric_label(last_label)) return fault_of(Kind::ip_literal, {});
    return {};
}

bool hostname_matches(std::string_view pattern, std::string_view host) {
    if (is_wildcard_hostname(pattern)) {
        const std::string_view suffix = pattern.substr(1);  // ".example.com"
        // One or more labels before the suffix: the host must be strictly longer.
        return host.size() > suffix.size() && host.ends_with(suffix);
    }
    return pattern == host;
}

std::optional<std::string> intersect_hostnames(std::string_view listener_hostname,
                                               std::string_view route_hostname) {
    const bool listener_wild = is_wildcard_hostname(listener_hostname);
    const bool route_wild = is_wildcard_hostname(route_hostname);
    if (!listener_wild && !route_wild) {
        if (listener_hostname == route_hostname) return std::string(route_hostname);
        return std::nullopt;
    }
    if (listener_wild && !route_wild) {
        if (hostname_matches(listener_hostname, route_hostname)) return std::string(route_hostname);
        return std::nullopt;
    }
    if (!listener_wild && route_wild) {
        if (hostname_matches(route_hostname, listener_hostname)) {
            return std::string(listener_hostname);
        }
        return std::nullopt;
    }
    // Both wildcards: the more specific one, when the less specific one covers it.
    if (listener_hostname == route_hostname) return std::string(route_hostname);
    const std::string_view longer =
        listener_hostname.size() > route_hostname.size() ? listener_hostname : route_hostname;
    const std::string_view shorter =
        listener_hostname.size() > route_hostname.size() ? route_hostname : listener_hostname;
    // "*.example.com" covers "*.a.example.com": the longer pattern, read as a name, ends in
    // the shorter one's suffix with at least one label before it.
    if (hostname_matches(shorter, longer)) return std::string(longer);
    return std::nullopt;
}

std::vector<std::string> effective_hostnames(const std::optional<std::string>& listener_hostname,
                                             const std::vector<std::string>& route_hostnames) {
    std::vector<std::string> out;
    // Gateway API: a route without hostnames takes its listener's hostname, or every hostname
    // when the listener has none either.
    if (route_hostnames.empty()) {
        out.push_back(listener_hostname ? *listener_hostname : std::string(match_all_hostnames));
        return out;
    }
    for (const std::string& route_hostname : route_hostnames) {
        std::optional<std::string> effective =
            listener_hostname ? intersect_hostnames(*listener_hostname, route_hostname)
                              : std::optional<std::string>(route_hostname);
        if (!effective) continue;
        if (std::find(out.begin(), out.end(), *effective) != out.end()) continue;
        out.push_back(std::move(*effective));
    }
    return out;
}

std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

std::string validate_hostname_pattern(std::string_view pattern) {
    if (pattern.empty()) return "empty hostname";
    if (pattern == "*") {
        return "\"*\" alone is not a hostname pattern (use a listener default_route to catch "
               "every hostname)";
    }
    if (pattern.size() > 253) return "longer than 253 characters";
    if (pattern.back() == '.') return "trailing dot is not allowed";
    // Not empty: no trailing dot.
    const std::string_view name = is_wildcard_hostname(pattern) ? pattern.substr(2) : pattern;
    const HostnameFault fault = check_hostname(name, HostnameSyntax::route);
    using Kind = HostnameFault::Kind;
    switch (fault.kind) {
        case Kind::none: return {};
        case Kind::empty: return "empty hostname";
        case Kind::too_long: return "longer than 253 characters";
        case Kind::ip_literal: return "IP literals are not hostnames";
        case Kind::empty_label: return "empty label";
        case Kind::wildcard_label:
            return "\"*\" is only allowed as the entire first label (\"*.example.com\")";
        case Kind::label_too_long: return "label longer than 63 characters";
        case Kind::bad_character: return describe_char(fault.character);
        case Kind::hyphen_at_edge:
            return "label \"" + std::string(fault.label) + "\" starts or ends with '-'";
    }
    return "invalid hostname";
}

std::string validate_dns_name(std::string_view name) {
    const HostnameFault fault = check_hostname(name, HostnameSyntax::dns_query);
    using Kind = HostnameFault::Kind;
    switch (fault.kind) {
        case Kind::none: return {};
        case Kind::empty: return "empty name";
        case Kind::too_long: return "longer than 253 characters";
        case Kind::empty_label: return "empty label";
        case Kind::label_too_long: return "label longer than 63 characters";
        case Kind::bad_character: return describe_char(fault.character);
        case Kind::ip_literal:      // not checked for dns_query
        case Kind::wildcard_label:  // `route` only
        case Kind::hyphen_at_edge:  // `route` only
            break;
    }
    return "invalid name";
}

}  // namespace passgate::config

namespace passgate::config {

std::vector<std::string> attached_hostnames(const Listener& listener, const Route& route) {
    // A route whose names are all in its hostnames_file: those are intersected by src/routing.
    if (route.hostnames.empty() && (listener.default_route == route.name || !route.hostnames_file.empty())) return {};
    return effective_hostnames(listener.hostname, route.hostnames);
}

}  // namespace passgate::config
