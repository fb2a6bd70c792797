// libFuzzer target for the PROXY protocol decoder (src/wire/proxy_protocol.h), which reads headers that
// come straight off the network on listeners with accept_proxy_protocol.
//
// For each input it checks:
//  - the result's own invariants (bounds of `consumed`, an error always named, incomplete only
//    below the size cap);
//  - that a decision made on a prefix (ok or error) is the decision on the whole input: bytes
//    arriving later never change it;
//  - that a header carrying addresses re-encodes (encode_proxy_v1 / v2) into one that decodes to
//    the same addresses.
// Invariant violations abort, so libFuzzer reports them as crashes.

#include "src/wire/proxy_protocol.h"

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace {

using passgate::ProxyHeaderError;
using passgate::ProxyHeaderParse;
using Status = ProxyHeaderParse::Status;

void require(bool condition) {
    if (!condition) std::abort();
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
    if (a.ss_family != b.ss_family) return false;
    if (a.ss_family == AF_INET) {
        const auto& x = reinterpret_cast<const sockaddr_in&>(a);
        const auto& y = reinterpret_cast<const sockaddr_in&>(b);
        return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
    }
    if (a.ss_family == AF_INET6) {
        const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
        const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
        return x.sin6_port == y.sin6_port &&
               std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
    }
    return a.ss_family == AF_UNSPEC;
}

bool same_decision(const ProxyHeaderParse& a, const ProxyHeaderParse& b) {
    if (a.status != b.status || a.error != b.error) return false;
    if (a.status != Status::ok) return true;
    return a.header.consumed == b.header.consumed && a.header.version == b.header.version &&
           a.header.local == b.header.local && same_address(a.header.source, b.header.source) &&
           same_address(a.header.destination, b.header.destination);
}

ProxyHeaderParse parse(std::span<const std::uint8_t> bytes) {
    const ProxyHeaderParse result = passgate::parse_proxy_header(bytes);
    require(!passgate::proxy_header_error_name(result.error).empty());
    switch (result.status) {
    case Status::incomplete:
        require(result.error == ProxyHeaderError::none);
        require(bytes.size() < passgate::proxy_header_max_bytes);
        break;
    case Status::error:
        require(result.error != ProxyHeaderError::none);
        break;
    case Status::ok: {
        const auto& header = result.header;
        require(result.error == ProxyHeaderError::none);
        require(header.consumed <= bytes.size());
        require(header.consumed <= passgate::proxy_header_max_bytes);
        require(header.version == 1 || header.version == 2);
        if (header.version == 1) {
            require(header.consumed >= 8 && header.consumed <= passgate::proxy_v1_max_bytes);
            require(bytes[header.consumed - 2] == '\r' && bytes[header.consumed - 1] == '\n');
        } else {
            require(header.consumed >= 16);
        }
        require(header.source.ss_family == header.destination.ss_family);
        require(header.source.ss_family == AF_UNSPEC || header.source.ss_family == AF_INET ||
                header.source.ss_family == AF_INET6);
        if (header.local) require(header.version == 2 && !header.has_addresses());
        break;
    }
    }
    return result;
}

void check_round_trip(const passgate::ProxyHeader& header) {
    const auto* source = reinterpret_cast<const sockaddr*>(&header.source);
    const auto* destination = reinterpret_cast<const sockaddr*>(&header.destination);
    for (const std::vector<std::uint8_t>& encoded :
         {passgate::encode_proxy_v1(source, destination),
          passgate::encode_proxy_v2(source, destination, "a.example", "h2")}) {
        const ProxyHeaderParse again = parse(encoded);
        require(again.status == Status::ok);
        require(again.header.consumed == encoded.size());
        require(same_address(again.header.source, header.source));
        require(same_address(again.header.destination, header.destination));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    const ProxyHeaderParse whole = parse(input);
    // Prefixes: the one the first byte names, the one the decoder consumed, and one short of it.
    std::size_t cuts[3] = {size == 0 ? 0 : data[0] % (size + 1), size / 2, size == 0 ? 0 : size - 1};
    if (whole.status == Status::ok) cuts[1] = whole.header.consumed;
    for (const std::size_t cut : cuts) {
        const ProxyHeaderParse prefix = parse(input.first(cut));
        if (prefix.status != Status::incomplete) require(same_decision(prefix, whole));
    }
    if (whole.status == Status::ok && whole.header.has_addresses()) check_round_trip(whole.header);
    return 0;
}
