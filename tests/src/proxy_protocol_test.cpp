#include "src/proxy_protocol.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <string>
#include <vector>

using passgate::encode_proxy_v1;
using passgate::encode_proxy_v2;
using Bytes = std::vector<std::uint8_t>;

namespace {
sockaddr_in v4(const char* ip, std::uint16_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, ip, &address.sin_addr) == 1);
    return address;
}
sockaddr_in6 v6(const char* ip, std::uint16_t port) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_port = htons(port);
    REQUIRE(inet_pton(AF_INET6, ip, &address.sin6_addr) == 1);
    return address;
}
const sockaddr* sa(const sockaddr_in& a) { return reinterpret_cast<const sockaddr*>(&a); }
const sockaddr* sa(const sockaddr_in6& a) { return reinterpret_cast<const sockaddr*>(&a); }
std::string text(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }
const Bytes signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
Bytes concat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
    return out;
}
}  // namespace

TEST_CASE("PROXY v1: the specification's examples, byte for byte", "[proxy_protocol]") {
    // Spec 2.1: "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n" is the longest TCP4.
    CHECK(text(encode_proxy_v1(sa(v4("192.168.0.1", 56324)), sa(v4("192.168.0.11", 443)))) ==
          "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    CHECK(text(encode_proxy_v1(sa(v4("255.255.255.255", 65535)), sa(v4("255.255.255.255", 65535)))) ==
          "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
    CHECK(text(encode_proxy_v1(sa(v6("2001:db8::1", 40000)), sa(v6("::1", 6443)))) ==
          "PROXY TCP6 2001:db8::1 ::1 40000 6443\r\n");
    // Mixed families cannot be expressed: UNKNOWN (the receiver then uses the real addresses).
    CHECK(text(encode_proxy_v1(sa(v4("127.0.0.1", 1)), sa(v6("::1", 2)))) == "PROXY UNKNOWN\r\n");
    // Every v1 header fits the spec's 107-byte bound.
    CHECK(encode_proxy_v1(sa(v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)),
                          sa(v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535))).size() <= 107);
}

TEST_CASE("PROXY v2: IPv4 with authority and ALPN TLVs, byte for byte", "[proxy_protocol]") {
    const Bytes header = encode_proxy_v2(sa(v4("192.0.2.1", 56324)), sa(v4("198.51.100.2", 443)),
                                         "passthrough.example.com", "h2");
    const Bytes addresses = {192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB};
    const Bytes alpn_tlv = {0x01, 0x00, 0x02, 'h', '2'};
    Bytes authority_tlv = {0x02, 0x00, 23};
    for (char c : std::string("passthrough.example.com")) authority_tlv.push_back(static_cast<std::uint8_t>(c));
    const std::uint16_t length = static_cast<std::uint16_t>(addresses.size() + alpn_tlv.size() + authority_tlv.size());
    const Bytes expected = concat({signature, {0x21, 0x11, static_cast<std::uint8_t>(length >> 8),
                                               static_cast<std::uint8_t>(length & 0xFF)},
                                   addresses, alpn_tlv, authority_tlv});
    CHECK(header == expected);
    CHECK(length == 12 + 5 + 26);
}

TEST_CASE("PROXY v2: IPv6 without TLVs, and mixed families as UNSPEC", "[proxy_protocol]") {
    const Bytes header = encode_proxy_v2(sa(v6("2001:db8::1", 1)), sa(v6("::1", 6443)), "", "");
    Bytes addresses = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x01, 0x19, 0x2B};
    CHECK(header == concat({signature, {0x21, 0x21, 0x00, 36}, addresses}));
    // UNSPEC: no address block; the receiver must ignore the (absent) addresses. TLVs still go.
    CHECK(encode_proxy_v2(sa(v4("127.0.0.1", 1)), sa(v6("::1", 2)), "a.b", "") ==
          concat({signature, {0x21, 0x00, 0x00, 6}, {0x02, 0x00, 0x03, 'a', '.', 'b'}}));
}
