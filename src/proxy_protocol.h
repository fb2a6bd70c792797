#pragma once
// PROXY protocol headers for backends (HAProxy's "The PROXY protocol" specification, versions 1
// and 2): in passthrough the backend cannot see the client, so the header tells it. Pure.

#include <sys/socket.h>

#include <cstdint>
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

}  // namespace passgate
