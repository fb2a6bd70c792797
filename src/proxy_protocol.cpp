#include "src/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

namespace passgate {

namespace {

constexpr std::uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                           0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::uint8_t v2_version_proxy = 0x21;  // version 2, command PROXY
constexpr std::uint8_t v2_tcp_over_ipv4 = 0x11;
constexpr std::uint8_t v2_tcp_over_ipv6 = 0x21;
constexpr std::uint8_t v2_unspec = 0x00;
constexpr std::uint8_t pp2_type_alpn = 0x01;
constexpr std::uint8_t pp2_type_authority = 0x02;

bool same_ip_family(const sockaddr* a, const sockaddr* b) {
    return a->sa_family == b->sa_family && (a->sa_family == AF_INET || a->sa_family == AF_INET6);
}

std::string ip_text(const sockaddr* address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address->sa_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof text);
    else
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text, sizeof text);
    return text;
}

std::uint16_t port_of(const sockaddr* address) {
    return ntohs(address->sa_family == AF_INET
                     ? reinterpret_cast<const sockaddr_in*>(address)->sin_port
                     : reinterpret_cast<const sockaddr_in6*>(address)->sin6_port);
}

void append_u16(std::vector<std::uint8_t>& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value >> 8));
    out.push_back(static_cast<std::uint8_t>(value & 0xFF));
}

// resize + memcpy rather than insert: GCC 12 at -O3 reports a false -Wstringop-overflow for
// vector::insert of a range after reserve().
void append_bytes(std::vector<std::uint8_t>& out, const void* data, std::size_t size) {
    if (size == 0) return;
    const std::size_t at = out.size();
    out.resize(at + size);
    std::memcpy(out.data() + at, data, size);
}

void append_tlv(std::vector<std::uint8_t>& out, std::uint8_t type, std::string_view value) {
    // A TLV value is at most 65535 bytes; SNI (253) and ALPN ids (255) are far below.
    out.push_back(type);
    append_u16(out, static_cast<std::uint16_t>(value.size()));
    append_bytes(out, value.data(), value.size());
}

}  // namespace

std::vector<std::uint8_t> encode_proxy_v1(const sockaddr* source, const sockaddr* destination) {
    std::string line;
    if (!same_ip_family(source, destination)) {
        line = "PROXY UNKNOWN\r\n";
    } else {
        line = std::string("PROXY ") + (source->sa_family == AF_INET ? "TCP4 " : "TCP6 ") +
               ip_text(source) + " " + ip_text(destination) + " " +
               std::to_string(port_of(source)) + " " + std::to_string(port_of(destination)) + "\r\n";
    }
    return std::vector<std::uint8_t>(line.begin(), line.end());
}

std::vector<std::uint8_t> encode_proxy_v2(const sockaddr* source, const sockaddr* destination,
                                          std::string_view sni, std::string_view alpn) {
    std::vector<std::uint8_t> addresses;
    std::uint8_t family = v2_unspec;
    if (same_ip_family(source, destination)) {
        if (source->sa_family == AF_INET) {
            family = v2_tcp_over_ipv4;
            append_bytes(addresses, &reinterpret_cast<const sockaddr_in*>(source)->sin_addr, 4);
            append_bytes(addresses, &reinterpret_cast<const sockaddr_in*>(destination)->sin_addr, 4);
        } else {
            family = v2_tcp_over_ipv6;
            append_bytes(addresses, &reinterpret_cast<const sockaddr_in6*>(source)->sin6_addr, 16);
            append_bytes(addresses, &reinterpret_cast<const sockaddr_in6*>(destination)->sin6_addr, 16);
        }
        append_u16(addresses, port_of(source));
        append_u16(addresses, port_of(destination));
    }
    std::vector<std::uint8_t> tlvs;
    if (!alpn.empty()) append_tlv(tlvs, pp2_type_alpn, alpn);
    if (!sni.empty()) append_tlv(tlvs, pp2_type_authority, sni);

    std::vector<std::uint8_t> out;
    out.reserve(16 + addresses.size() + tlvs.size());
    append_bytes(out, v2_signature, sizeof v2_signature);
    out.push_back(v2_version_proxy);
    out.push_back(family);
    append_u16(out, static_cast<std::uint16_t>(addresses.size() + tlvs.size()));
    append_bytes(out, addresses.data(), addresses.size());
    append_bytes(out, tlvs.data(), tlvs.size());
    return out;
}

}  // namespace passgate
