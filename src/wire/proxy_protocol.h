#pragma once
// PROXY protocol headers (HAProxy's "The PROXY protocol" specification, versions 1 and 2), both
// ways: encoders for the header passgate writes to backends (in passthrough the backend cannot
// see the client, so the header tells it), and a decoder for the header an upstream load
// balancer writes to passgate (listener `accept_proxy_protocol`). Pure.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace passgate {

// "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" (or TCP6). Addresses of different families,
// or neither IPv4 nor IPv6, give "PROXY UNKNOWN\r\n" (spec 2.1).
std::vector<std::uint8_t> encode_proxy_v1(const sockaddr* source, const sockaddr* destination);

// Binary v2 header: signature, PROXY command, TCP over IPv4/IPv6 (or UNSPEC when the families
// differ), addresses, then TLVs: PP2_TYPE_AUTHORITY (0x02) with the SNI when there is one, and
// PP2_TYPE_ALPN (0x01) with `alpn` when it is not empty. In passthrough the ALPN the backend
// will negotiate is not known yet; callers pass the client's first offer.
std::vector<std::uint8_t> encode_proxy_v2(const sockaddr* source, const sockaddr* destination,
                                          std::string_view sni, std::string_view alpn);

// ---- Decoding a header received from an upstream proxy -----------------------------------------

// Upper bound on a whole header passgate accepts. v1 lines are at most 107 bytes (spec 2.1). A
// v2 header may announce up to 16 + 65535 bytes, but what real senders put there (addresses, a
// few TLVs: AWS and GCP ids, HAProxy's SSL and unique-id TLVs) is far below 1 KiB; a connection
// that has not finished its header within 4 KiB is not worth buffering for.
inline constexpr std::size_t proxy_v1_max_bytes = 107;
inline constexpr std::size_t proxy_header_max_bytes = 4096;

enum class ProxyHeaderError {
    none,
    not_proxy,            // the first bytes are neither "PROXY " nor the v2 signature
    v1_too_long,          // no CRLF within 107 bytes
    v1_bad_line,          // a bare CR or LF, an empty field, too many or too few fields
    v1_bad_protocol,      // not TCP4, TCP6 or UNKNOWN
    v1_bad_address,       // not a strict dotted quad (TCP4) or IPv6 literal (TCP6)
    v1_bad_port,          // not 0..65535 in decimal without leading zeros
    v2_bad_version,       // version nibble is not 2
    v2_bad_command,       // command nibble is neither LOCAL (0) nor PROXY (1)
    v2_bad_family,        // family / transport byte is not one the specification defines
    v2_too_large,         // announces more than proxy_header_max_bytes in all
    v2_short_addresses,   // the length is below what the address family needs
    v2_bad_tlv,           // a TLV runs past the end of the header
};
// Stable snake_case name of the error (logs, tests).
std::string_view proxy_header_error_name(ProxyHeaderError error);

struct ProxyHeader {
    std::size_t consumed = 0;  // header bytes; every byte after them is the client's own
    int version = 0;           // 1 or 2
    bool local = false;        // v2 LOCAL command: the proxy's own connection (a health check)
    // The client's address and the address it connected to, as the proxy saw them. AF_UNSPEC
    // when the header carries none that applies (v1 UNKNOWN; v2 LOCAL, UNSPEC, UNIX and UDP):
    // then the socket's own addresses stand.
    sockaddr_storage source{};
    sockaddr_storage destination{};

    bool has_addresses() const { return source.ss_family != AF_UNSPEC; }
};

struct ProxyHeaderParse {
    enum class Status { incomplete, ok, error };
    Status status = Status::incomplete;
    ProxyHeaderError error = ProxyHeaderError::none;  // set when error
    ProxyHeader header;                               // set when ok
};

// Parses the bytes received so far on a connection that must start with a PROXY header (v1 or
// v2, told apart by the first byte). incomplete: nothing is wrong yet, more bytes are needed;
// never returned once proxy_header_max_bytes have arrived. A decision (ok or error) never
// changes when more bytes arrive. Strict: v1 exactly as specified (single spaces, CRLF, decimal
// dotted quads and ports without leading zeros, at most 107 bytes); v2 version, command and
// family checked, the address block's length checked against the family, TLVs walked for their
// bounds and otherwise skipped; for LOCAL and UNSPEC the block is skipped unread.
ProxyHeaderParse parse_proxy_header(std::span<const std::uint8_t> received);

}  // namespace passgate
