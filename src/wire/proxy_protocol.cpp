#include "src/wire/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <optional>
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

// ---- Decoding ---------------------------------------------------------------------------------

namespace passgate {

namespace {

using Bytes = std::span<const std::uint8_t>;
using Status = ProxyHeaderParse::Status;

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::size_t v2_fixed_bytes = 16;  // signature, version/command, family, length
constexpr std::uint8_t v2_command_local = 0x0;
constexpr std::uint8_t v2_command_proxy = 0x1;
constexpr std::uint8_t v2_udp_over_ipv4 = 0x12;
constexpr std::uint8_t v2_udp_over_ipv6 = 0x22;
constexpr std::uint8_t v2_unix_stream = 0x31;
constexpr std::uint8_t v2_unix_datagram = 0x32;

ProxyHeaderParse incomplete() { return {}; }

ProxyHeaderParse failed(ProxyHeaderError error) {
    ProxyHeaderParse parse;
    parse.status = Status::error;
    parse.error = error;
    return parse;
}

ProxyHeaderParse parsed(const ProxyHeader& header) {
    ProxyHeaderParse parse;
    parse.status = Status::ok;
    parse.header = header;
    return parse;
}

// The received bytes agree with `expected` as far as both go.
bool prefix_matches(Bytes received, const std::uint8_t* expected, std::size_t expected_size) {
    const std::size_t n = std::min(received.size(), expected_size);
    return std::memcmp(received.data(), expected, n) == 0;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Decimal 0..max, 1 to `max_digits` digits, no leading zeros ("0" itself is fine).
std::optional<unsigned> decimal(std::string_view text, std::size_t max_digits, unsigned max) {
    if (text.empty() || text.size() > max_digits) return std::nullopt;
    if (text.size() > 1 && text[0] == '0') return std::nullopt;
    unsigned value = 0;
    for (const char c : text) {
        if (!is_digit(c)) return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > max) return std::nullopt;
    return value;
}

// Exactly four decimal numbers 0..255 separated by single dots, no leading zeros (spec 2.1: a
// leading zero could be read as octal).
bool parse_ipv4(std::string_view text, in_addr& out) {
    std::uint8_t bytes[4] = {};
    for (int part = 0; part < 4; ++part) {
        const std::size_t dot = part < 3 ? text.find('.') : text.size();
        if (dot == std::string_view::npos) return false;
        const std::optional<unsigned> value = decimal(text.substr(0, dot), 3, 255);
        if (!value) return false;
        bytes[part] = static_cast<std::uint8_t>(*value);
        text.remove_prefix(part < 3 ? dot + 1 : dot);
    }
    std::memcpy(&out, bytes, sizeof bytes);
    return true;
}

// An IPv6 literal as inet_pton reads it (hex groups, one "::", an optional dotted-quad tail, as
// HAProxy itself writes "::ffff:a.b.c.d"); nothing else: no zone, no brackets.
bool parse_ipv6(std::string_view text, in6_addr& out) {
    char buffer[INET6_ADDRSTRLEN] = {};
    if (text.empty() || text.size() >= sizeof buffer) return false;
    for (const char c : text) {
        const bool hex = is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != ':' && c != '.') return false;
    }
    std::memcpy(buffer, text.data(), text.size());
    return ::inet_pton(AF_INET6, buffer, &out) == 1;
}

// "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", "PROXY TCP6 ...", "PROXY UNKNOWN...\r\n".
// `received` starts with "PROXY ".
ProxyHeaderParse parse_v1(Bytes received) {
    // The line ends at the first CR, which must be followed by LF, all within 107 bytes.
    const std::size_t limit = std::min(received.size(), proxy_v1_max_bytes);
    std::size_t end = v1_prefix.size();
    while (end < limit && received[end] != '\r' && received[end] != '\n') ++end;
    if (end == limit)
        return limit == proxy_v1_max_bytes ? failed(ProxyHeaderError::v1_too_long) : incomplete();
    if (received[end] == '\n') return failed(ProxyHeaderError::v1_bad_line);  // LF without CR
    if (end + 2 > proxy_v1_max_bytes) return failed(ProxyHeaderError::v1_too_long);
    if (end + 1 == received.size()) return incomplete();
    if (received[end + 1] != '\n') return failed(ProxyHeaderError::v1_bad_line);

    const std::string_view line(reinterpret_cast<const char*>(received.data()) + v1_prefix.size(),
                                end - v1_prefix.size());
    // Fields separated by exactly one space. At most 6 are looked at: a TCP line has 5.
    std::string_view fields[6];
    std::size_t count = 0;
    std::string_view rest = line;
    while (count < std::size(fields)) {
        const std::size_t space = rest.find(' ');
        fields[count++] = rest.substr(0, space);
        if (space == std::string_view::npos) break;
        rest.remove_prefix(space + 1);
    }
    ProxyHeader header;
    header.version = 1;
    header.consumed = end + 2;
    // UNKNOWN: the receiver ignores everything up to the CRLF and keeps the socket's addresses.
    if (fields[0] == "UNKNOWN") return parsed(header);
    const bool tcp4 = fields[0] == "TCP4";
    if (!tcp4 && fields[0] != "TCP6") {
        return failed(fields[0].empty() ? ProxyHeaderError::v1_bad_line
                                        : ProxyHeaderError::v1_bad_protocol);
    }
    if (count != 5) return failed(ProxyHeaderError::v1_bad_line);
    for (std::size_t i = 1; i < count; ++i)
        if (fields[i].empty()) return failed(ProxyHeaderError::v1_bad_line);
    const std::optional<unsigned> source_port = decimal(fields[3], 5, 65535);
    const std::optional<unsigned> destination_port = decimal(fields[4], 5, 65535);
    if (tcp4) {
        auto& source = reinterpret_cast<sockaddr_in&>(header.source);
        auto& destination = reinterpret_cast<sockaddr_in&>(header.destination);
        if (!parse_ipv4(fields[1], source.sin_addr) || !parse_ipv4(fields[2], destination.sin_addr))
            return failed(ProxyHeaderError::v1_bad_address);
        if (!source_port || !destination_port) return failed(ProxyHeaderError::v1_bad_port);
        source.sin_family = destination.sin_family = AF_INET;
        source.sin_port = htons(static_cast<std::uint16_t>(*source_port));
        destination.sin_port = htons(static_cast<std::uint16_t>(*destination_port));
    } else {
        auto& source = reinterpret_cast<sockaddr_in6&>(header.source);
        auto& destination = reinterpret_cast<sockaddr_in6&>(header.destination);
        if (!parse_ipv6(fields[1], source.sin6_addr) || !parse_ipv6(fields[2], destination.sin6_addr))
            return failed(ProxyHeaderError::v1_bad_address);
        if (!source_port || !destination_port) return failed(ProxyHeaderError::v1_bad_port);
        source.sin6_family = destination.sin6_family = AF_INET6;
        source.sin6_port = htons(static_cast<std::uint16_t>(*source_port));
        destination.sin6_port = htons(static_cast<std::uint16_t>(*destination_port));
    }
    return parsed(header);
}

// Bytes of the address block a v2 family needs; nullopt for values the spec does not define
// (they "must be rejected as invalid by receivers").
std::optional<std::size_t> v2_address_bytes(std::uint8_t family) {
    switch (family) {
        case v2_unspec: return 0;
        case v2_tcp_over_ipv4:
        case v2_udp_over_ipv4: return 12;
        case v2_tcp_over_ipv6:
        case v2_udp_over_ipv6: return 36;
        case v2_unix_stream:
        case v2_unix_datagram: return 216;
        default: return std::nullopt;
    }
}

// `received` starts with the 12-byte signature.
ProxyHeaderParse parse_v2(Bytes received) {
    if (received.size() < v2_fixed_bytes) return incomplete();
    const std::uint8_t version = received[12] >> 4;
    const std::uint8_t command = received[12] & 0x0F;
    const std::uint8_t family = received[13];
    const std::size_t length = (std::size_t{received[14]} << 8) | received[15];
    if (version != 2) return failed(ProxyHeaderError::v2_bad_version);
    if (command != v2_command_local && command != v2_command_proxy)
        return failed(ProxyHeaderError::v2_bad_command);
    if (v2_fixed_bytes + length > proxy_header_max_bytes)
        return failed(ProxyHeaderError::v2_too_large);
    // LOCAL: "the receiver must ... use the real connection endpoints and discard the protocol
    // block including the family". So the family is not even checked.
    std::size_t address_bytes = 0;
    if (command == v2_command_proxy) {
        const std::optional<std::size_t> needed = v2_address_bytes(family);
        if (!needed) return failed(ProxyHeaderError::v2_bad_family);
        if (length < *needed) return failed(ProxyHeaderError::v2_short_addresses);
        address_bytes = *needed;
    }
    const std::size_t total = v2_fixed_bytes + length;
    if (received.size() < total) return incomplete();

    ProxyHeader header;
    header.version = 2;
    header.consumed = total;
    if (command == v2_command_local) {
        header.local = true;
        return parsed(header);
    }
    if (family == v2_unspec) return parsed(header);  // the block is not ours to read
    // TLVs follow the addresses: type (1), length (2), value. Skipped, but they must fit.
    std::size_t at = v2_fixed_bytes + address_bytes;
    while (at < total) {
        if (total - at < 3) return failed(ProxyHeaderError::v2_bad_tlv);
        const std::size_t value_bytes = (std::size_t{received[at + 1]} << 8) | received[at + 2];
        if (total - at - 3 < value_bytes) return failed(ProxyHeaderError::v2_bad_tlv);
        at += 3 + value_bytes;
    }
    const std::uint8_t* addresses = received.data() + v2_fixed_bytes;
    if (family == v2_tcp_over_ipv4) {
        auto& source = reinterpret_cast<sockaddr_in&>(header.source);
        auto& destination = reinterpret_cast<sockaddr_in&>(header.destination);
        source.sin_family = destination.sin_family = AF_INET;
        std::memcpy(&source.sin_addr, addresses, 4);
        std::memcpy(&destination.sin_addr, addresses + 4, 4);
        std::memcpy(&source.sin_port, addresses + 8, 2);  // both in network order
        std::memcpy(&destination.sin_port, addresses + 10, 2);
    } else if (family == v2_tcp_over_ipv6) {
        auto& source = reinterpret_cast<sockaddr_in6&>(header.source);
        auto& destination = reinterpret_cast<sockaddr_in6&>(header.destination);
        source.sin6_family = destination.sin6_family = AF_INET6;
        std::memcpy(&source.sin6_addr, addresses, 16);
        std::memcpy(&destination.sin6_addr, addresses + 16, 16);
        std::memcpy(&source.sin6_port, addresses + 32, 2);
        std::memcpy(&destination.sin6_port, addresses + 34, 2);
    }
    // UDP and UNIX families: well formed, but no TCP client address to take; keep the socket's.
    return parsed(header);
}

}  // namespace

std::string_view proxy_header_error_name(ProxyHeaderError error) {
    switch (error) {
        case ProxyHeaderError::none: return "none";
        case ProxyHeaderError::not_proxy: return "not_proxy";
        case ProxyHeaderError::v1_too_long: return "v1_too_long";
        case ProxyHeaderError::v1_bad_line: return "v1_bad_line";
        case ProxyHeaderError::v1_bad_protocol: return "v1_bad_protocol";
        case ProxyHeaderError::v1_bad_address: return "v1_bad_address";
        case ProxyHeaderError::v1_bad_port: return "v1_bad_port";
        case ProxyHeaderError::v2_bad_version: return "v2_bad_version";
        case ProxyHeaderError::v2_bad_command: return "v2_bad_command";
        case ProxyHeaderError::v2_bad_family: return "v2_bad_family";
        case ProxyHeaderError::v2_too_large: return "v2_too_large";
        case ProxyHeaderError::v2_short_addresses: return "v2_short_addresses";
        case ProxyHeaderError::v2_bad_tlv: return "v2_bad_tlv";
    }
    return "unknown";
}

ProxyHeaderParse parse_proxy_header(std::span<const std::uint8_t> received) {
    if (received.empty()) return incomplete();
    const auto* prefix = reinterpret_cast<const std::uint8_t*>(v1_prefix.data());
    if (received[0] == v1_prefix[0]) {
        if (!prefix_matches(received, prefix, v1_prefix.size())) return failed(ProxyHeaderError::not_proxy);
        if (received.size() < v1_prefix.size()) return incomplete();
        return parse_v1(received);
    }
    if (received[0] == v2_signature[0]) {
        if (!prefix_matches(received, v2_signature, sizeof v2_signature))
            return failed(ProxyHeaderError::not_proxy);
        if (received.size() < sizeof v2_signature) return incomplete();
        return parse_v2(received);
    }
    return failed(ProxyHeaderError::not_proxy);
}

}  // namespace passgate
