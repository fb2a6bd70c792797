#include "config/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace passgate::config {

namespace {

bool prefix_matches(const std::uint8_t* network, const std::uint8_t* address, unsigned prefix) {
    const unsigned whole = prefix / 8;
    if (std::memcmp(network, address, whole) != 0) return false;
    const unsigned rest = prefix % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (network[whole] & mask) == (address[whole] & mask);
}

// Clears the bits below `prefix`; true when some were set.
bool clear_host_bits(std::uint8_t* bytes, std::size_t size, unsigned prefix) {
    bool had = false;
    for (std::size_t i = 0; i < size; ++i) {
        const unsigned first_bit = static_cast<unsigned>(i) * 8;
        std::uint8_t keep = 0;
        if (first_bit + 8 <= prefix) keep = 0xff;
        else if (first_bit < prefix) keep = static_cast<std::uint8_t>(0xff << (8 - (prefix - first_bit)));
        if ((bytes[i] & static_cast<std::uint8_t>(~keep)) != 0) had = true;
        bytes[i] = static_cast<std::uint8_t>(bytes[i] & keep);
    }
    return had;
}

const std::uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

std::string Cidr::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(family, bytes.data(), text, sizeof text);
    return std::string(text) + "/" + std::to_string(prefix);
}

bool Cidr::contains(int address_family, const std::uint8_t* address) const {
    if (address_family == AF_INET6 && family == AF_INET &&
        std::memcmp(address, mapped_prefix, sizeof mapped_prefix) == 0) {
        return prefix_matches(bytes.data(), address + 12, prefix);
    }
    if (address_family != family) return false;
    return prefix_matches(bytes.data(), address, prefix);
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string& error) {
    error.clear();
    if (text.empty()) {
        error = "empty; expected \"a.b.c.d/n\", \"x::/n\" or a bare address";
        return std::nullopt;
    }
    if (text.size() > 64) {
        error = "too long";
        return std::nullopt;
    }
    const std::size_t slash = text.find('/');
    const std::string_view host = text.substr(0, slash);
    const bool v6 = host.find(':') != std::string_view::npos;
    Cidr cidr;
    cidr.family = v6 ? AF_INET6 : AF_INET;
    const unsigned max_prefix = v6 ? 128 : 32;
    const std::string host_text(host);
    if (host.empty() || ::inet_pton(cidr.family, host_text.c_str(), cidr.bytes.data()) != 1) {
        error = v6 ? "not an IPv6 address (expected \"x:y::/n\"; no brackets or zone ids)"
                   : "not an IPv4 address (expected \"a.b.c.d/n\" with four decimal numbers "
                     "0-255, no leading zeros)";
        return std::nullopt;
    }
    cidr.prefix = max_prefix;
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        const bool numeric = !digits.empty() && digits.size() <= 3 &&
                             std::all_of(digits.begin(), digits.end(),
                                         [](char c) { return c >= '0' && c <= '9'; });
        unsigned value = 0;
        if (numeric) {
            for (const char c : digits) value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (!numeric || (digits.size() > 1 && digits[0] == '0') || value > max_prefix) {
            error = "the prefix length after '/' must be a number from 0 to " +
                    std::to_string(max_prefix) + " without leading zeros";
            return std::nullopt;
        }
        cidr.prefix = value;
    }
    if (clear_host_bits(cidr.bytes.data(), v6 ? 16 : 4, cidr.prefix)) {
        error = "host bits are set below the /" + std::to_string(cidr.prefix) + " prefix; did you mean \"" +
                cidr.to_string() + "\"?";
        return std::nullopt;
    }
    return cidr;
}

bool contains_any(const std::vector<Cidr>& ranges, const sockaddr* address) {
    if (address == nullptr) return false;
    const std::uint8_t* bytes = nullptr;
    if (address->sa_family == AF_INET)
        bytes = reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in*>(address)->sin_addr);
    else if (address->sa_family == AF_INET6)
        bytes = reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr);
    else
        return false;
    return std::any_of(ranges.begin(), ranges.end(),
                       [&](const Cidr& cidr) { return cidr.contains(address->sa_family, bytes); });
}

bool AccessList::permits(int address_family, const std::uint8_t* address) const {
    for (const Cidr& cidr : deny) {
        if (cidr.contains(address_family, address)) return false;
    }
    if (allow.empty()) return true;
    for (const Cidr& cidr : allow) {
        if (cidr.contains(address_family, address)) return true;
    }
    return false;
}

bool AccessList::permits(const sockaddr* address) const {
    if (empty()) return true;
    if (address == nullptr) return allow.empty() && deny.empty();
    if (address->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(address);
        return permits(AF_INET, reinterpret_cast<const std::uint8_t*>(&in->sin_addr));
    }
    if (address->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        return permits(AF_INET6, reinterpret_cast<const std::uint8_t*>(&in6->sin6_addr));
    }
    return false;
}

}  // namespace passgate::config
