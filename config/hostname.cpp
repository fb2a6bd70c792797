// Gateway API hostname rules, plus the hostname helpers declared in config.h.

#include "config/hostname.h"

#include "config/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace passgate::config {

namespace {

bool is_wildcard(std::string_view pattern) {
    return pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.';
}

bool is_label_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
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

}  // namespace

bool hostname_matches(std::string_view pattern, std::string_view host) {
    if (is_wildcard(pattern)) {
        const std::string_view suffix = pattern.substr(1);  // ".example.com"
        // One or more labels before the suffix: the host must be strictly longer.
        return host.size() > suffix.size() && host.ends_with(suffix);
    }
    return pattern == host;
}

std::optional<std::string> intersect_hostnames(std::string_view listener_hostname,
                                               std::string_view route_hostname) {
    const bool listener_wild = is_wildcard(listener_hostname);
    const bool route_wild = is_wildcard(route_hostname);
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
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

std::string validate_hostname_pattern(std::string_view pattern) {
    if (pattern.empty()) return "empty hostname";
    if (pattern == "*") {
        return "\"*\" alone is not a hostname pattern (use a listener default_route to catch "
               "every hostname)";
    }
    if (pattern.size() > 253) return "longer than 253 characters";
    if (is_ipv6_literal(pattern)) return "IP literals are not hostnames";
    if (pattern.back() == '.') return "trailing dot is not allowed";

    const bool wild = is_wildcard(pattern);
    const std::string_view body = wild ? pattern.substr(2) : pattern;  // not empty: no trailing dot

    std::size_t start = 0;
    std::string_view last_label;
    while (true) {
        const std::size_t dot = body.find('.', start);
        const std::string_view label =
            body.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty()) return "empty label";
        if (label.find('*') != std::string_view::npos) {
            return "\"*\" is only allowed as the entire first label (\"*.example.com\")";
        }
        if (label.size() > 63) return "label longer than 63 characters";
        for (char c : label) {
            if (!is_label_char(c)) return describe_char(c);
        }
        if (label.front() == '-' || label.back() == '-') {
            return "label \"" + std::string(label) + "\" starts or ends with '-'";
        }
        last_label = label;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    // No top-level domain is all digits; such a name is an IPv4 literal ("10.0.0.1", "127.1").
    bool all_digits = true;
    for (char c : last_label) all_digits = all_digits && c >= '0' && c <= '9';
    if (all_digits) return "IP literals are not hostnames";
    return {};
}

std::string validate_dns_name(std::string_view name) {
    if (name.empty()) return "empty name";
    if (name.size() > 253) return "longer than 253 characters";
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = name.find('.', start);
        const std::string_view label =
            name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty()) return "empty label";
        if (label.size() > 63) return "label longer than 63 characters";
        for (char c : label) {
            // '_' for SRV names ("_https._tcp.example.com").
            if (!is_label_char(c) && c != '_') return describe_char(c);
        }
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return {};
}

}  // namespace passgate::config

namespace passgate::config {

std::vector<std::string> attached_hostnames(const Listener& listener, const Route& route) {
    if (route.hostnames.empty() && listener.default_route == route.name) return {};
    return effective_hostnames(listener.hostname, route.hostnames);
}

}  // namespace passgate::config
