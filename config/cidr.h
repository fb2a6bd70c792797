#pragma once
// Client address ranges for access control (`allow` / `deny` on listeners and routes).
// "a.b.c.d/n" (n 0..32), "x:y::/n" (n 0..128); a bare address means /32 or /128. Parsing is
// strict: no host bits set below the prefix, no leading zeros in the prefix, no spaces, no
// brackets, no zone ids. IPv4-mapped IPv6 client addresses (::ffff:a.b.c.d, seen on a "[::]"
// listener) match IPv4 ranges.

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace passgate::config {

struct Cidr {
    int family = 0;                        // AF_INET or AF_INET6
    std::array<std::uint8_t, 16> bytes{};  // network address; IPv4 uses the first 4 bytes
    unsigned prefix = 0;                   // 0..32 or 0..128

    // Canonical text: "10.0.0.0/8", "2001:db8::/32" (always with the prefix).
    std::string to_string() const;
    // Whether the address (family AF_INET / AF_INET6, raw network-order bytes) is in the range.
    bool contains(int address_family, const std::uint8_t* address) const;

    friend bool operator==(const Cidr& a, const Cidr& b) = default;
};

// Parses one range. On failure returns nullopt and sets `error` to a message that can follow
// "invalid CIDR \"...\": " (it says what is wrong and, for host bits, what was probably meant).
std::optional<Cidr> parse_cidr(std::string_view text, std::string& error);

// Whether `address` (from accept()/getpeername(); nullptr or a family other than AF_INET/AF_INET6:
// no) is in one of `ranges` (IPv4-mapped IPv6 addresses match IPv4 ranges). For trusted_proxies.
bool contains_any(const std::vector<Cidr>& ranges, const sockaddr* address);

// allow/deny lists. Deny wins over allow; an empty allow list allows every address not denied.
struct AccessList {
    std::vector<Cidr> allow;
    std::vector<Cidr> deny;

    bool empty() const { return allow.empty() && deny.empty(); }
    // The peer address from accept()/getpeername(). Any family other than AF_INET/AF_INET6
    // (there are none on TCP listeners) is allowed only by an empty list.
    bool permits(const sockaddr* address) const;
    bool permits(int address_family, const std::uint8_t* address) const;
};

}  // namespace passgate::config
