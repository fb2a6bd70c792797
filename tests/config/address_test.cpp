#include "config/address.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <catch2/catch.hpp>

#include <cstring>

using passgate::config::Address;
using passgate::config::format_sockaddr;
using passgate::config::parse_address;

TEST_CASE("parse_address accepts IPv4 literals with a port", "[address]") {
    const auto address = parse_address("127.0.0.1:8443");
    REQUIRE(address);
    CHECK(address->family() == AF_INET);
    CHECK(address->length == sizeof(sockaddr_in));
    CHECK(address->port() == 8443);
    CHECK(address->to_string() == "127.0.0.1:8443");
    const auto& sin = reinterpret_cast<const sockaddr_in&>(address->storage);
    CHECK(sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK));

    CHECK(parse_address("0.0.0.0:6443")->to_string() == "0.0.0.0:6443");
    CHECK(parse_address("255.255.255.255:65535")->to_string() == "255.255.255.255:65535");
    CHECK(parse_address("10.1.2.3:1")->port() == 1);
}

TEST_CASE("parse_address accepts bracketed IPv6 literals", "[address]") {
    const auto address = parse_address("[::1]:8443");
    REQUIRE(address);
    CHECK(address->family() == AF_INET6);
    CHECK(address->length == sizeof(sockaddr_in6));
    CHECK(address->port() == 8443);
    CHECK(address->to_string() == "[::1]:8443");

    CHECK(parse_address("[::]:6443")->to_string() == "[::]:6443");
    // Canonical text is inet_ntop's: lowercase, zeros compressed.
    CHECK(parse_address("[2001:DB8:0:0:0:0:0:1]:443")->to_string() == "[2001:db8::1]:443");
    CHECK(parse_address("[::ffff:192.0.2.1]:443")->to_string() == "[::ffff:192.0.2.1]:443");
}

TEST_CASE("parse_address rejects everything else", "[address]") {
    const char* bad[] = {
        "",
        ":",
        ":443",
        "127.0.0.1",          // no port
        "127.0.0.1:",         // empty port
        "127.0.0.1:0",        // port 0 (not allowed by default)
        "127.0.0.1:65536",    // port too large
        "127.0.0.1:99999999999999999999",
        "127.0.0.1:-1",
        "127.0.0.1:+443",
        "127.0.0.1:0443",     // leading zero
        "127.0.0.1:44 3",
        "127.0.0.1: 443",
        " 127.0.0.1:443",
        "127.0.0.1:443 ",
        "127.0.0.1:443x",
        "127.0.0.1:0x1bb",
        "127.0.0.01:443",     // leading zero in an octet
        "127.0.1:443",        // not a dotted quad
        "127.1:443",
        "2130706433:443",
        "0x7f.0.0.1:443",
        "256.0.0.1:443",
        "1.2.3.4.5:443",
        "1.2.3.:443",
        "localhost:443",      // names are not resolved here
        "example.com:443",
        "::1:443",            // IPv6 without brackets
        "[::1]",              // no port
        "[::1]:",
        "[::1]443",
        "[]:443",
        "[::1:443",
        "::1]:443",
        "[fe80::1%eth0]:443", // zone ids are not supported
        "[127.0.0.1]:443",    // IPv4 in brackets
        "[::1]:0",
        "[[::1]]:443",
        "[::g]:443",
        "[1:2:3:4:5:6:7:8:9]:443",
    };
    for (const char* text : bad) {
        INFO("input: \"" << text << "\"");
        CHECK_FALSE(parse_address(text));
    }
    // Embedded NUL bytes never reach inet_pton as a shorter string.
    using namespace std::string_view_literals;
    CHECK_FALSE(parse_address("127.0.0.1\0:443"sv));
    CHECK_FALSE(parse_address("[::1\0]:443"sv));
    CHECK_FALSE(parse_address("127.0.0.1:44\0"sv));
}

TEST_CASE("parse_address allows port 0 only on request", "[address]") {
    CHECK_FALSE(parse_address("127.0.0.1:0"));
    const auto v4 = parse_address("127.0.0.1:0", true);
    REQUIRE(v4);
    CHECK(v4->port() == 0);
    CHECK(v4->to_string() == "127.0.0.1:0");
    const auto v6 = parse_address("[::1]:0", true);
    REQUIRE(v6);
    CHECK(v6->to_string() == "[::1]:0");
    CHECK_FALSE(parse_address("127.0.0.1:00", true));
}

TEST_CASE("Address equality compares family, address and port", "[address]") {
    CHECK(*parse_address("127.0.0.1:80") == *parse_address("127.0.0.1:80"));
    CHECK_FALSE(*parse_address("127.0.0.1:80") == *parse_address("127.0.0.1:81"));
    CHECK_FALSE(*parse_address("127.0.0.1:80") == *parse_address("127.0.0.2:80"));
    CHECK_FALSE(*parse_address("0.0.0.0:80") == *parse_address("[::]:80"));
    CHECK(*parse_address("[::1]:80") == *parse_address("[0:0:0:0:0:0:0:1]:80"));
    CHECK_FALSE(*parse_address("[::1]:80") == *parse_address("[::2]:80"));
    CHECK(Address{} == Address{});
}

TEST_CASE("Address::is_unspecified is true for 0.0.0.0 and :: only", "[address]") {
    CHECK(parse_address("0.0.0.0:80")->is_unspecified());
    CHECK(parse_address("[::]:80")->is_unspecified());
    CHECK(parse_address("[0:0::0]:80")->is_unspecified());
    CHECK_FALSE(parse_address("0.0.0.1:80")->is_unspecified());
    CHECK_FALSE(parse_address("[::1]:80")->is_unspecified());
    CHECK_FALSE(parse_address("[::ffff:0.0.0.0]:80")->is_unspecified());
    CHECK_FALSE(Address{}.is_unspecified());
}

TEST_CASE("format_sockaddr formats what accept() returns", "[address]") {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(40000);
    sin.sin_addr.s_addr = htonl(0xC0000201);  // 192.0.2.1
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof sin) == "192.0.2.1:40000");
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof sin - 1) == "<invalid AF_INET>");

    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    sin6.sin6_addr = in6addr_loopback;
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof sin6) == "[::1]:443");
    sin6.sin6_scope_id = 2;
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof sin6) == "[::1%2]:443");
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof(sockaddr_in)) ==
          "<invalid AF_INET6>");

    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, "/run/passgate.sock");
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&sun), sizeof sun) ==
          "unix:/run/passgate.sock");
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&sun), sizeof(sa_family_t)) ==
          "unix:<unnamed>");

    CHECK(format_sockaddr(nullptr, 0) == "<none>");
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&sin), 1) == "<none>");
    sockaddr_storage other{};
    other.ss_family = AF_PACKET;
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&other), sizeof other) ==
          "<family " + std::to_string(AF_PACKET) + ">");

    const auto parsed = parse_address("[2001:db8::7]:8443");
    CHECK(format_sockaddr(parsed->sockaddr_ptr(), parsed->length) == parsed->to_string());
}
