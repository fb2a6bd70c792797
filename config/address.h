#pragma once
// A socket address as written in the config ("127.0.0.1:8443", "[::1]:8443", "0.0.0.0:6443").
// Only numeric IP literals: name resolution is the endpoint watcher's job, not the parser's.

#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace passgate::config {

struct Address {
    sockaddr_storage storage{};
    socklen_t length = 0;

    int family() const { return storage.ss_family; }
    const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage); }
    std::uint16_t port() const;
    // 0.0.0.0 or :: (any spelling): fine to listen on, impossible to connect to.
    bool is_unspecified() const;
    // Canonical text: "127.0.0.1:8443" or "[::1]:8443".
    std::string to_string() const;

    friend bool operator==(const Address& a, const Address& b);
};

// Parses "a.b.c.d:port" or "[v6]:port". Port 1..65535 (0 allowed only when allow_port_zero).
// Returns nullopt on any malformed input; the caller words the error.
std::optional<Address> parse_address(std::string_view text, bool allow_port_zero = false);

// Do two listening addresses take the same port? The same address; or one is the wildcard
// (0.0.0.0, ::) of the other's family; or either is "::", which passgate binds dual stack
// (IPV6_V6ONLY off), so it takes the port on IPv4 too. Listeners bind with SO_REUSEPORT, so
// such a pair binds without an error and the kernel hands each connection to one of them.
bool addresses_overlap(const Address& a, const Address& b);

// Formats any sockaddr (as returned by accept/getsockname) like Address::to_string.
std::string format_sockaddr(const sockaddr* address, socklen_t length);

}  // namespace passgate::config
