#include "config/address.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace passgate::config {

namespace {

// Strict decimal port: 1..5 digits, no sign, no leading zero (so the text round-trips).
std::optional<std::uint16_t> parse_port(std::string_view text, bool allow_port_zero) {
    if (text.empty() || text.size() > 5) return std::nullopt;
    if (text.size() > 1 && text[0] == '0') return std::nullopt;
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return std::nullopt;
    if (value == 0 && !allow_port_zero) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

std::string format_v4(const sockaddr_in& sin) {
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(sin.sin_port));
}

std::string format_v6(const sockaddr_in6& sin6) {
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
    std::string out = "[";
    out += text;
    if (sin6.sin6_scope_id != 0) {
        out += '%';
        out += std::to_string(sin6.sin6_scope_id);
    }
    out += "]:";
    out += std::to_string(ntohs(sin6.sin6_port));
    return out;
}

}  // namespace

std::uint16_t Address::port() const {
    switch (storage.ss_family) {
        case AF_INET: return ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port);
        case AF_INET6: return ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port);
        default: return 0;
    }
}

bool Address::is_unspecified() const {
    switch (storage.ss_family) {
        case AF_INET:
            return reinterpret_cast<const sockaddr_in&>(storage).sin_addr.s_addr == INADDR_ANY;
        case AF_INET6:
            return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6&>(storage).sin6_addr);
        default: return false;
    }
}

std::string Address::to_string() const { return format_sockaddr(sockaddr_ptr(), length); }

bool operator==(const Address& a, const Address& b) {
    if (a.family() != b.family()) return false;
    switch (a.family()) {
        case AF_INET: {
            const auto& x = reinterpret_cast<const sockaddr_in&>(a.storage);
            const auto& y = reinterpret_cast<const sockaddr_in&>(b.storage);
            return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
        }
        case AF_INET6: {
            const auto& x = reinterpret_cast<const sockaddr_in6&>(a.storage);
            const auto& y = reinterpret_cast<const sockaddr_in6&>(b.storage);
            return x.sin6_port == y.sin6_port && x.sin6_scope_id == y.sin6_scope_id &&
                   std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
        }
        default:
            // Never produced by parse_address; compare the bytes that were filled in.
            return a.length == b.length &&
                   std::memcmp(&a.storage, &b.storage, static_cast<std::size_t>(a.length)) == 0;
    }
}

std::optional<Address> parse_address(std::string_view text, bool allow_port_zero) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const auto port = parse_port(text.substr(colon + 1), allow_port_zero);
    if (!port) return std::nullopt;
    std::string_view host = text.substr(0, colon);

    Address address;
    if (!host.empty() && host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') return std::nullopt;
        host = host.substr(1, host.size() - 2);
        if (host.size() >= INET6_ADDRSTRLEN) return std::nullopt;
        char buffer[INET6_ADDRSTRLEN] = {};
        std::memcpy(buffer, host.data(), host.size());
        if (std::memchr(buffer, '\0', host.size()) != nullptr) return std::nullopt;
        auto& sin6 = reinterpret_cast<sockaddr_in6&>(address.storage);
        // inet_pton rejects zone ids ("%eth0"), IPv4 without brackets, and anything not numeric.
        if (::inet_pton(AF_INET6, buffer, &sin6.sin6_addr) != 1) return std::nullopt;
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(*port);
        address.length = sizeof(sockaddr_in6);
        return address;
    }

    // IPv4: dotted quad only. inet_pton(AF_INET) already rejects "1.2.3", "01.2.3.4", "0x7f.1.1.1".
    if (host.empty() || host.size() >= INET_ADDRSTRLEN) return std::nullopt;
    for (char c : host) {
        if ((c < '0' || c > '9') && c != '.') return std::nullopt;
    }
    char buffer[INET_ADDRSTRLEN] = {};
    std::memcpy(buffer, host.data(), host.size());
    auto& sin = reinterpret_cast<sockaddr_in&>(address.storage);
    if (::inet_pton(AF_INET, buffer, &sin.sin_addr) != 1) return std::nullopt;
    sin.sin_family = AF_INET;
    sin.sin_port = htons(*port);
    address.length = sizeof(sockaddr_in);
    return address;
}

bool addresses_overlap(const Address& a, const Address& b) {
    if (a.port() != b.port()) return false;
    if (a == b) return true;
    const auto dual_stack = [](const Address& x) { return x.family() == AF_INET6 && x.is_unspecified(); };
    if (dual_stack(a) || dual_stack(b)) return true;
    return a.family() == b.family() && (a.is_unspecified() || b.is_unspecified());
}

std::string format_sockaddr(const sockaddr* address, socklen_t length) {
    if (address == nullptr || length < static_cast<socklen_t>(sizeof(sa_family_t))) {
        return "<none>";
    }
    sockaddr_storage copy{};
    std::memcpy(&copy, address,
                std::min(static_cast<std::size_t>(length), sizeof(sockaddr_storage)));
    switch (copy.ss_family) {
        case AF_INET:
            if (length < static_cast<socklen_t>(sizeof(sockaddr_in))) return "<invalid AF_INET>";
            return format_v4(reinterpret_cast<const sockaddr_in&>(copy));
        case AF_INET6:
            if (length < static_cast<socklen_t>(sizeof(sockaddr_in6))) return "<invalid AF_INET6>";
            return format_v6(reinterpret_cast<const sockaddr_in6&>(copy));
        case AF_UNIX: {
            const auto& sun = reinterpret_cast<const sockaddr_un&>(copy);
            const std::size_t header = offsetof(sockaddr_un, sun_path);
            const std::size_t path_bytes =
                std::min(static_cast<std::size_t>(length), sizeof(sockaddr_un)) > header
                    ? std::min(static_cast<std::size_t>(length), sizeof(sockaddr_un)) - header
                    : 0;
            if (path_bytes == 0) return "unix:<unnamed>";
            if (sun.sun_path[0] == '\0') {
                return "unix:@" + std::string(sun.sun_path + 1, path_bytes - 1);
            }
            return "unix:" + std::string(sun.sun_path, strnlen(sun.sun_path, path_bytes));
        }
        default:
            return "<family " + std::to_string(copy.ss_family) + ">";
    }
}

}  // namespace passgate::config
