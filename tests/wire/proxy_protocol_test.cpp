#include "src/wire/proxy_protocol.h"

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

// ---- Decoding: headers from an upstream proxy -------------------------------------------------

using passgate::parse_proxy_header;
using passgate::proxy_header_max_bytes;
using passgate::ProxyHeader;
using passgate::ProxyHeaderError;
using passgate::ProxyHeaderParse;
using Status = passgate::ProxyHeaderParse::Status;

namespace {
Bytes bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

ProxyHeaderParse parse(const Bytes& received) { return parse_proxy_header(received); }

ProxyHeaderError error_of(const Bytes& received) {
    const ProxyHeaderParse result = parse(received);
    CHECK(result.status == Status::error);
    return result.error;
}
ProxyHeaderError error_of(std::string_view text) { return error_of(bytes(text)); }

// "ip:port" of an address the decoder produced; "-" for AF_UNSPEC.
std::string name(const sockaddr_storage& address) {
    char ip[INET6_ADDRSTRLEN] = {};
    if (address.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(address);
        inet_ntop(AF_INET, &in.sin_addr, ip, sizeof ip);
        return std::string(ip) + ":" + std::to_string(ntohs(in.sin_port));
    }
    if (address.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(address);
        inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof ip);
        return "[" + std::string(ip) + "]:" + std::to_string(ntohs(in6.sin6_port));
    }
    return address.ss_family == AF_UNSPEC ? "-" : "family " + std::to_string(address.ss_family);
}

// Parses `header` followed by some hello bytes: ok, consuming exactly the header. Also checks
// that every proper prefix of the header is incomplete (a header may arrive a byte at a time).
ProxyHeader parse_ok(const Bytes& header) {
    for (std::size_t size = 0; size < header.size(); ++size) {
        INFO("prefix of " << size << " bytes");
        CHECK(parse(Bytes(header.begin(), header.begin() + static_cast<std::ptrdiff_t>(size))).status ==
              Status::incomplete);
    }
    const Bytes received = concat({header, {0x16, 0x03, 0x01, 0x02, 0x00}});
    const ProxyHeaderParse result = parse(received);
    REQUIRE(result.status == Status::ok);
    CHECK(result.error == ProxyHeaderError::none);
    CHECK(result.header.consumed == header.size());
    // The same decision on the header alone.
    const ProxyHeaderParse alone = parse(header);
    REQUIRE(alone.status == Status::ok);
    CHECK(alone.header.consumed == header.size());
    return result.header;
}
ProxyHeader parse_ok(std::string_view text) { return parse_ok(bytes(text)); }

Bytes v2(std::uint8_t version_command, std::uint8_t family, const Bytes& block) {
    return concat({signature,
                   {version_command, family, static_cast<std::uint8_t>(block.size() >> 8),
                    static_cast<std::uint8_t>(block.size() & 0xFF)},
                   block});
}
const Bytes ipv4_block = {192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB};  // :56324 :443
}  // namespace

TEST_CASE("PROXY v1 decoding: the specification's examples", "[proxy_protocol]") {
    // Spec 2.1, the example of a TCP4 line.
    ProxyHeader header = parse_ok("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    CHECK(header.version == 1);
    CHECK_FALSE(header.local);
    CHECK(name(header.source) == "192.168.0.1:56324");
    CHECK(name(header.destination) == "192.168.0.11:443");
    // The worst cases the spec lists: 56, 104 and 107 bytes.
    const std::string tcp4_max = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    CHECK(tcp4_max.size() == 56);
    header = parse_ok(tcp4_max);
    CHECK(name(header.source) == "255.255.255.255:65535");
    const std::string all_f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const std::string tcp6_max = "PROXY TCP6 " + all_f + " " + all_f + " 65535 65535\r\n";
    CHECK(tcp6_max.size() == 104);
    header = parse_ok(tcp6_max);
    CHECK(name(header.source) == "[" + all_f + "]:65535");
    const std::string unknown_max = "PROXY UNKNOWN " + all_f + " " + all_f + " 65535 65535\r\n";
    CHECK(unknown_max.size() == 107);
    header = parse_ok(unknown_max);
    CHECK_FALSE(header.has_addresses());  // UNKNOWN: the receiver keeps the socket's addresses
    header = parse_ok("PROXY UNKNOWN\r\n");
    CHECK_FALSE(header.has_addresses());
    CHECK(header.consumed == 15);
    // TCP6 in its compressed forms, and the IPv4-mapped form HAProxy writes.
    header = parse_ok("PROXY TCP6 2001:db8::1 ::1 40000 6443\r\n");
    CHECK(name(header.source) == "[2001:db8::1]:40000");
    CHECK(name(header.destination) == "[::1]:6443");
    header = parse_ok("PROXY TCP6 ::ffff:192.0.2.1 ::FFFF:C000:0202 0 1\r\n");
    CHECK(name(header.source) == "[::ffff:192.0.2.1]:0");  // port 0 is in the spec's range
    CHECK(name(header.destination) == "[::ffff:192.0.2.2]:1");
    CHECK(parse_ok("PROXY TCP4 0.0.0.0 10.0.0.255 0 65535\r\n").version == 1);
}

TEST_CASE("PROXY v1 decoding: a line without CRLF within 107 bytes is an error", "[proxy_protocol]") {
    // 107 bytes, none of them CR or LF.
    const std::string long_line = "PROXY UNKNOWN " + std::string(93, 'x');
    REQUIRE(long_line.size() == 107);
    CHECK(parse(bytes(long_line.substr(0, 106))).status == Status::incomplete);
    CHECK(error_of(long_line) == ProxyHeaderError::v1_too_long);
    CHECK(error_of(long_line + "\r\n") == ProxyHeaderError::v1_too_long);
    // The CR as byte 107: its LF would be byte 108.
    CHECK(error_of(long_line.substr(0, 106) + "\r") == ProxyHeaderError::v1_too_long);
    CHECK(error_of(long_line.substr(0, 106) + "\r\n") == ProxyHeaderError::v1_too_long);
    // CRLF as bytes 106 and 107 is the longest valid line.
    CHECK(parse_ok(long_line.substr(0, 105) + "\r\n").consumed == 107);
}

TEST_CASE("PROXY v1 decoding: strict syntax", "[proxy_protocol]") {
    // Line structure.
    CHECK(error_of("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n") == ProxyHeaderError::v1_bad_line);
    CHECK(error_of("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX") == ProxyHeaderError::v1_bad_line);
    CHECK(error_of("PROXY UNKNOWN\n") == ProxyHeaderError::v1_bad_line);
    CHECK(error_of("PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n") == ProxyHeaderError::v1_bad_line);
    CHECK(error_of("PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n") == ProxyHeaderError::v1_bad_line);
    CHECK(error_of("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n") == ProxyHeaderError::v1_bad_line);
    CHECK(error_of("PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n") == ProxyHeaderError::v1_bad_line);
    CHECK(error_of("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n") == ProxyHeaderError::v1_bad_line);
    CHECK(error_of("PROXY TCP4\r\n") == ProxyHeaderError::v1_bad_line);
    CHECK(error_of("PROXY \r\n") == ProxyHeaderError::v1_bad_line);
    // Protocol: exactly TCP4, TCP6 or UNKNOWN, upper case.
    CHECK(error_of("PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n") == ProxyHeaderError::v1_bad_protocol);
    CHECK(error_of("PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n") == ProxyHeaderError::v1_bad_protocol);
    CHECK(error_of("PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n") == ProxyHeaderError::v1_bad_protocol);
    CHECK(error_of("PROXY UNKNOWNX\r\n") == ProxyHeaderError::v1_bad_protocol);
    // IPv4: four decimal numbers 0..255, no leading zeros.
    for (const char* address : {"192.0.2.01", "256.0.0.1", "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.",
                                "0x1.2.3.4", "1.2.3.4a", "::1", "-1.2.3.4", "1.2.3.1234"}) {
        INFO(address);
        CHECK(error_of("PROXY TCP4 " + std::string(address) + " 192.0.2.2 1 2\r\n") ==
              ProxyHeaderError::v1_bad_address);
        CHECK(error_of("PROXY TCP4 192.0.2.2 " + std::string(address) + " 1 2\r\n") ==
              ProxyHeaderError::v1_bad_address);
    }
    // IPv6: a literal, no zone, no brackets, not IPv4.
    for (const char* address : {"192.0.2.1", "fe80::1%eth0", "[::1]", "1:2:3:4:5:6:7:8:9", "::g",
                                "1:::2", "12345::1"}) {
        INFO(address);
        CHECK(error_of("PROXY TCP6 " + std::string(address) + " ::1 1 2\r\n") ==
              ProxyHeaderError::v1_bad_address);
    }
    // Ports: decimal 0..65535, no leading zeros, no sign.
    for (const char* port : {"65536", "0443", "00", "-1", "+1", "1e3", "999999", "0x10"}) {
        INFO(port);
        CHECK(error_of("PROXY TCP4 192.0.2.1 192.0.2.2 " + std::string(port) + " 443\r\n") ==
              ProxyHeaderError::v1_bad_port);
        CHECK(error_of("PROXY TCP4 192.0.2.1 192.0.2.2 443 " + std::string(port) + "\r\n") ==
              ProxyHeaderError::v1_bad_port);
    }
    // Not a PROXY header at all: a TLS record, HTTP, the HTTP/2 preface, near misses.
    CHECK(error_of(Bytes{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) == ProxyHeaderError::not_proxy);
    CHECK(error_of("GET / HTTP/1.1\r\n") == ProxyHeaderError::not_proxy);
    CHECK(error_of("PRI * HTTP/2.0\r\n") == ProxyHeaderError::not_proxy);
    CHECK(error_of("PROXZ") == ProxyHeaderError::not_proxy);
    CHECK(error_of("proxy TCP4") == ProxyHeaderError::not_proxy);
    CHECK(error_of("PROXY\r\n") == ProxyHeaderError::not_proxy);
    CHECK(parse(bytes("PROX")).status == Status::incomplete);
    CHECK(parse(Bytes{}).status == Status::incomplete);
}

TEST_CASE("PROXY v2 decoding: PROXY over IPv4 and IPv6, with and without TLVs", "[proxy_protocol]") {
    // Spec 2.2: \x21 = version 2, PROXY; \x11 = TCP over IPv4; then src, dst, sport, dport.
    ProxyHeader header = parse_ok(v2(0x21, 0x11, ipv4_block));
    CHECK(header.version == 2);
    CHECK_FALSE(header.local);
    CHECK(header.consumed == 16 + 12);
    CHECK(name(header.source) == "192.0.2.1:56324");
    CHECK(name(header.destination) == "198.51.100.2:443");
    // TLVs after the addresses are skipped: ALPN, AUTHORITY, an empty NOOP, a CRC32C, a custom one.
    const Bytes tlvs = {0x01, 0x00, 0x02, 'h', '2',
                        0x02, 0x00, 0x03, 'a', '.', 'b',
                        0x04, 0x00, 0x00,
                        0x03, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF,
                        0xE0, 0x00, 0x01, 0x7F};
    header = parse_ok(v2(0x21, 0x11, concat({ipv4_block, tlvs})));
    CHECK(header.consumed == 16 + 12 + tlvs.size());
    CHECK(name(header.source) == "192.0.2.1:56324");
    // \x21 = TCP over IPv6.
    const Bytes ipv6_block = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                              0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x9C, 0x40, 0x19, 0x2B};
    header = parse_ok(v2(0x21, 0x21, ipv6_block));
    CHECK(name(header.source) == "[2001:db8::1]:40000");
    CHECK(name(header.destination) == "[::1]:6443");
    // A large but allowed header: one TLV filling it to exactly proxy_header_max_bytes.
    Bytes padding = {0x04, 0x00, 0x00};
    const std::size_t value = proxy_header_max_bytes - 16 - 12 - 3;
    padding[1] = static_cast<std::uint8_t>(value >> 8);
    padding[2] = static_cast<std::uint8_t>(value & 0xFF);
    padding.resize(3 + value, 0);
    const Bytes largest = v2(0x21, 0x11, concat({ipv4_block, padding}));
    CHECK(largest.size() == proxy_header_max_bytes);
    CHECK(parse(largest).status == Status::ok);
}

TEST_CASE("PROXY v2 decoding: LOCAL, UNSPEC, UNIX and UDP keep the socket's addresses", "[proxy_protocol]") {
    // LOCAL (\x20): health checks from the proxy itself. The block is ignored, family included.
    ProxyHeader header = parse_ok(v2(0x20, 0x00, {}));
    CHECK(header.local);
    CHECK_FALSE(header.has_addresses());
    CHECK(header.consumed == 16);
    header = parse_ok(v2(0x20, 0x11, ipv4_block));
    CHECK(header.local);
    CHECK_FALSE(header.has_addresses());
    CHECK(parse_ok(v2(0x20, 0xFF, {1, 2, 3})).local);
    // UNSPEC: PROXY, but no addresses; whatever the block holds is skipped unread.
    header = parse_ok(v2(0x21, 0x00, {}));
    CHECK_FALSE(header.local);
    CHECK_FALSE(header.has_addresses());
    CHECK(parse_ok(v2(0x21, 0x00, {0xFF, 0xFF})).consumed == 18);
    // UNIX stream / datagram: 2 x 108 bytes of paths.
    header = parse_ok(v2(0x21, 0x31, Bytes(216, 'x')));
    CHECK_FALSE(header.has_addresses());
    CHECK(parse_ok(v2(0x21, 0x32, Bytes(216, 0))).consumed == 16 + 216);
    // UDP over IPv4 / IPv6: no TCP client to take the address of.
    CHECK_FALSE(parse_ok(v2(0x21, 0x12, ipv4_block)).has_addresses());
    CHECK_FALSE(parse_ok(v2(0x21, 0x22, Bytes(36, 1))).has_addresses());
}

TEST_CASE("PROXY v2 decoding: bad signature, version, command, family, length, TLVs", "[proxy_protocol]") {
    // Signature: any byte off.
    for (std::size_t i = 0; i < signature.size(); ++i) {
        Bytes header = v2(0x21, 0x11, ipv4_block);
        header[i] ^= 0x20;
        INFO("signature byte " << i);
        CHECK(error_of(header) == ProxyHeaderError::not_proxy);
    }
    // Version nibble: only 2.
    for (std::uint8_t version_command : {0x01, 0x11, 0x31, 0xF1, 0x10}) {
        INFO("version/command " << int(version_command));
        CHECK(error_of(v2(version_command, 0x11, ipv4_block)) == ProxyHeaderError::v2_bad_version);
    }
    // Command nibble: LOCAL or PROXY.
    for (std::uint8_t version_command : {0x22, 0x2F}) {
        CHECK(error_of(v2(version_command, 0x11, ipv4_block)) == ProxyHeaderError::v2_bad_command);
    }
    // Families the spec does not define.
    for (std::uint8_t family : {0x01, 0x02, 0x10, 0x13, 0x20, 0x23, 0x30, 0x33, 0x41, 0xFF}) {
        INFO("family " << int(family));
        CHECK(error_of(v2(0x21, family, Bytes(216, 0))) == ProxyHeaderError::v2_bad_family);
    }
    // Longer than proxy_header_max_bytes in all: decided from the 16 fixed bytes.
    Bytes too_large = v2(0x21, 0x11, ipv4_block);
    const std::size_t length = proxy_header_max_bytes - 16 + 1;
    too_large[14] = static_cast<std::uint8_t>(length >> 8);
    too_large[15] = static_cast<std::uint8_t>(length & 0xFF);
    CHECK(error_of(too_large) == ProxyHeaderError::v2_too_large);
    too_large[14] = too_large[15] = 0xFF;
    CHECK(error_of(Bytes(too_large.begin(), too_large.begin() + 16)) == ProxyHeaderError::v2_too_large);
    // The address block shorter than the family needs.
    CHECK(error_of(v2(0x21, 0x11, Bytes(ipv4_block.begin(), ipv4_block.end() - 1))) ==
          ProxyHeaderError::v2_short_addresses);
    CHECK(error_of(v2(0x21, 0x21, ipv4_block)) == ProxyHeaderError::v2_short_addresses);
    CHECK(error_of(v2(0x21, 0x31, Bytes(215, 0))) == ProxyHeaderError::v2_short_addresses);
    // TLVs must fit: a value running past the end, a TLV header cut short.
    CHECK(error_of(v2(0x21, 0x11, concat({ipv4_block, {0x01, 0x00, 0x03, 'h', '2'}}))) ==
          ProxyHeaderError::v2_bad_tlv);
    CHECK(error_of(v2(0x21, 0x11, concat({ipv4_block, {0x01, 0x00}}))) == ProxyHeaderError::v2_bad_tlv);
    CHECK(error_of(v2(0x21, 0x11, concat({ipv4_block, {0x04, 0x00, 0x00, 0x04}}))) ==
          ProxyHeaderError::v2_bad_tlv);
    // Every error has a name.
    CHECK(passgate::proxy_header_error_name(ProxyHeaderError::v2_bad_tlv) == "v2_bad_tlv");
}

TEST_CASE("PROXY decoding round-trips the encoders", "[proxy_protocol]") {
    const sockaddr_in client4 = v4("203.0.113.7", 51000);
    const sockaddr_in server4 = v4("10.1.2.3", 443);
    const sockaddr_in6 client6 = v6("2001:db8:1::7", 51001);
    const sockaddr_in6 server6 = v6("2001:db8:2::3", 8443);

    ProxyHeader header = parse_ok(encode_proxy_v1(sa(client4), sa(server4)));
    CHECK(name(header.source) == "203.0.113.7:51000");
    CHECK(name(header.destination) == "10.1.2.3:443");
    header = parse_ok(encode_proxy_v1(sa(client6), sa(server6)));
    CHECK(name(header.source) == "[2001:db8:1::7]:51001");
    CHECK(name(header.destination) == "[2001:db8:2::3]:8443");
    CHECK_FALSE(parse_ok(encode_proxy_v1(sa(client4), sa(server6))).has_addresses());

    header = parse_ok(encode_proxy_v2(sa(client4), sa(server4), "passthrough.example.com", "h2"));
    CHECK(header.version == 2);
    CHECK(name(header.source) == "203.0.113.7:51000");
    CHECK(name(header.destination) == "10.1.2.3:443");
    header = parse_ok(encode_proxy_v2(sa(client6), sa(server6), "", "http/1.1"));
    CHECK(name(header.source) == "[2001:db8:1::7]:51001");
    CHECK(name(header.destination) == "[2001:db8:2::3]:8443");
    header = parse_ok(encode_proxy_v2(sa(client6), sa(server4), "a.example", "h2"));
    CHECK_FALSE(header.local);
    CHECK_FALSE(header.has_addresses());
}
