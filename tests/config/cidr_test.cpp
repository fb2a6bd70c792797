// CIDR parsing and matching for allow/deny (config/cidr.h).

#include "config/cidr.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

using namespace passgate::config;

namespace {

Cidr cidr(const std::string& text) {
    std::string error;
    const std::optional<Cidr> parsed = parse_cidr(text, error);
    INFO(text << ": " << error);
    REQUIRE(parsed);
    CHECK(error.empty());
    return *parsed;
}

std::string error_of(const std::string& text) {
    std::string error;
    const std::optional<Cidr> parsed = parse_cidr(text, error);
    if (parsed) return "(parsed as " + parsed->to_string() + ")";
    return error;
}

sockaddr_in v4(const char* text) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, text, &address.sin_addr) == 1);
    return address;
}

sockaddr_in6 v6(const char* text) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    REQUIRE(inet_pton(AF_INET6, text, &address.sin6_addr) == 1);
    return address;
}

bool permits(const AccessList& list, const char* text) {
    if (std::string(text).find(':') != std::string::npos) {
        const sockaddr_in6 address = v6(text);
        return list.permits(reinterpret_cast<const sockaddr*>(&address));
    }
    const sockaddr_in address = v4(text);
    return list.permits(reinterpret_cast<const sockaddr*>(&address));
}

}  // namespace

TEST_CASE("CIDRs parse to their canonical form", "[config][cidr]") {
    CHECK(cidr("10.0.0.0/8").to_string() == "10.0.0.0/8");
    CHECK(cidr("10.0.0.0/8").family == AF_INET);
    CHECK(cidr("10.0.0.0/8").prefix == 8);
    CHECK(cidr("0.0.0.0/0").to_string() == "0.0.0.0/0");
    CHECK(cidr("127.0.0.9").to_string() == "127.0.0.9/32");
    CHECK(cidr("127.0.0.9/32").to_string() == "127.0.0.9/32");
    CHECK(cidr("192.168.1.128/25").to_string() == "192.168.1.128/25");
    CHECK(cidr("2001:db8::/32").to_string() == "2001:db8::/32");
    CHECK(cidr("2001:DB8::/32").to_string() == "2001:db8::/32");
    CHECK(cidr("::/0").to_string() == "::/0");
    CHECK(cidr("::1").to_string() == "::1/128");
    CHECK(cidr("fe80::/10").prefix == 10);
    CHECK(cidr("::ffff:10.0.0.0/104").family == AF_INET6);
    CHECK(cidr("10.0.0.0/8") == cidr("10.0.0.0/8"));
    CHECK_FALSE(cidr("10.0.0.0/8") == cidr("10.0.0.0/9"));
}

TEST_CASE("malformed CIDRs are rejected with a reason", "[config][cidr]") {
    using Catch::Matchers::Contains;
    CHECK_THAT(error_of(""), Contains("empty"));
    for (const char* text : {"10.0.0/8", "10.0.0.256/32", "010.0.0.0/8", "10.0.0.0.0/8",
                             "1.2.3.4 ", " 1.2.3.4", "localhost", "10.0.0.0/", "/8", "a.b.c.d/8"}) {
        INFO(text);
        CHECK_THAT(error_of(text), Contains("") && !Contains("parsed as"));
    }
    CHECK_THAT(error_of("10.0.0.0/33"), Contains("from 0 to 32"));
    CHECK_THAT(error_of("10.0.0.0/08"), Contains("without leading zeros"));
    CHECK_THAT(error_of("10.0.0.0/-1"), Contains("from 0 to 32"));
    CHECK_THAT(error_of("10.0.0.0/8/8"), Contains("from 0 to 32"));
    CHECK_THAT(error_of("10.0.0.0/+8"), Contains("from 0 to 32"));
    CHECK_THAT(error_of("::/129"), Contains("from 0 to 128"));
    CHECK_THAT(error_of("::1/1280"), Contains("from 0 to 128"));
    CHECK_THAT(error_of("[::1]/128"), Contains("not an IPv6 address"));
    CHECK_THAT(error_of("fe80::1%eth0/128"), Contains("not an IPv6 address"));
    CHECK_THAT(error_of("2001:db8:::/48"), Contains("not an IPv6 address"));
    CHECK_THAT(error_of("1.2.3.4:80"), Contains("not an IPv6 address"));
    CHECK_THAT(error_of("300.0.0.0/8"), Contains("not an IPv4 address"));
    CHECK_THAT(error_of(std::string(100, '1')), Contains("too long"));
    CHECK(error_of("10.1.2.3/8") ==
          "host bits are set below the /8 prefix; did you mean \"10.0.0.0/8\"?");
    CHECK(error_of("192.168.1.129/25") ==
          "host bits are set below the /25 prefix; did you mean \"192.168.1.128/25\"?");
    CHECK(error_of("2001:db8::1/32") ==
          "host bits are set below the /32 prefix; did you mean \"2001:db8::/32\"?");
    CHECK(error_of("0.0.0.1/0") == "host bits are set below the /0 prefix; did you mean \"0.0.0.0/0\"?");
}

TEST_CASE("CIDR matching by prefix, any family", "[config][cidr]") {
    const Cidr ten = cidr("10.0.0.0/8");
    const auto in = [](const Cidr& range, const char* text) {
        if (std::string(text).find(':') != std::string::npos) {
            const sockaddr_in6 address = v6(text);
            return range.contains(AF_INET6, reinterpret_cast<const std::uint8_t*>(&address.sin6_addr));
        }
        const sockaddr_in address = v4(text);
        return range.contains(AF_INET, reinterpret_cast<const std::uint8_t*>(&address.sin_addr));
    };
    CHECK(in(ten, "10.0.0.0"));
    CHECK(in(ten, "10.255.255.255"));
    CHECK_FALSE(in(ten, "11.0.0.0"));
    CHECK_FALSE(in(ten, "9.255.255.255"));
    CHECK(in(cidr("192.168.1.128/25"), "192.168.1.200"));
    CHECK_FALSE(in(cidr("192.168.1.128/25"), "192.168.1.127"));
    CHECK(in(cidr("0.0.0.0/0"), "1.2.3.4"));
    CHECK_FALSE(in(cidr("0.0.0.0/0"), "::1"));
    CHECK(in(cidr("127.0.0.9"), "127.0.0.9"));
    CHECK_FALSE(in(cidr("127.0.0.9"), "127.0.0.10"));
    // IPv4-mapped IPv6 clients (a "[::]" listener) match IPv4 ranges.
    CHECK(in(ten, "::ffff:10.1.2.3"));
    CHECK_FALSE(in(ten, "::ffff:11.1.2.3"));
    CHECK_FALSE(in(ten, "::10.1.2.3"));
    CHECK(in(cidr("2001:db8::/32"), "2001:db8:ffff::1"));
    CHECK_FALSE(in(cidr("2001:db8::/32"), "2001:db9::1"));
    CHECK(in(cidr("fe80::/10"), "febf::1"));
    CHECK_FALSE(in(cidr("fe80::/10"), "fec0::1"));
    CHECK(in(cidr("::/0"), "::1"));
    CHECK_FALSE(in(cidr("::/0"), "10.0.0.1"));
    CHECK(in(cidr("::1"), "::1"));
}

TEST_CASE("access lists: deny wins, an empty allow list allows all", "[config][cidr]") {
    AccessList list;
    CHECK(list.empty());
    CHECK(permits(list, "1.2.3.4"));
    CHECK(permits(list, "::1"));
    CHECK(list.permits(nullptr));

    list.deny = {cidr("127.0.0.9")};
    CHECK(permits(list, "127.0.0.1"));
    CHECK_FALSE(permits(list, "127.0.0.9"));
    CHECK_FALSE(permits(list, "::ffff:127.0.0.9"));
    CHECK(permits(list, "::1"));

    list.allow = {cidr("127.0.0.0/8")};
    CHECK(permits(list, "127.0.0.1"));
    CHECK(permits(list, "127.0.0.10"));
    CHECK_FALSE(permits(list, "127.0.0.9"));  // deny wins
    CHECK_FALSE(permits(list, "10.0.0.1"));
    CHECK_FALSE(permits(list, "::1"));
    CHECK_FALSE(list.permits(nullptr));

    list.allow.push_back(cidr("::1"));
    CHECK(permits(list, "::1"));
    list.deny.push_back(cidr("::/0"));
    CHECK_FALSE(permits(list, "::1"));
    CHECK(permits(list, "127.0.0.1"));

    AccessList deny_all;
    deny_all.deny = {cidr("0.0.0.0/0"), cidr("::/0")};
    CHECK_FALSE(permits(deny_all, "1.2.3.4"));
    CHECK_FALSE(permits(deny_all, "2001:db8::1"));
}

TEST_CASE("contains_any: trusted_proxies against a socket peer", "[config][cidr]") {
    const std::vector<Cidr> trusted = {cidr("10.0.0.0/8"), cidr("127.0.0.1"), cidr("2001:db8::/32")};
    const auto contains = [&](const char* text) {
        if (std::string(text).find(':') == std::string::npos) {
            const sockaddr_in address = v4(text);
            return contains_any(trusted, reinterpret_cast<const sockaddr*>(&address));
        }
        const sockaddr_in6 address = v6(text);
        return contains_any(trusted, reinterpret_cast<const sockaddr*>(&address));
    };
    CHECK(contains("10.20.30.40"));
    CHECK(contains("127.0.0.1"));
    CHECK_FALSE(contains("127.0.0.2"));
    CHECK(contains("::ffff:10.0.0.1"));  // an IPv4 balancer seen on a "[::]" listener
    CHECK(contains("2001:db8:ffff::1"));
    CHECK_FALSE(contains("2001:db9::1"));
    CHECK_FALSE(contains("::1"));
    CHECK_FALSE(contains_any(trusted, nullptr));
    const sockaddr_in ten = v4("10.0.0.1");
    CHECK_FALSE(contains_any({}, reinterpret_cast<const sockaddr*>(&ten)));
    sockaddr unix_address{};
    unix_address.sa_family = AF_UNIX;
    CHECK_FALSE(contains_any(trusted, &unix_address));
}
