#pragma once
// Parser of an endpoints file: the list of a service's endpoints kept in a file of its own
// (`endpoints_file = "path"` in the service), rewritten by some other program and watched for
// changes. parse_endpoints_file is pure; read_endpoints_file (src/discovery/endpoints_file_reader.h)
// reads the file without ever blocking. The caller decides what
// to do with an error (keep the last good set and log it). Untrusted input: everything is
// bounded and every byte is checked.
//
// Format (config/README.md, "Endpoints file format"):
//
//     # api endpoints, written by deploy.sh
//     10.0.0.11:8443
//     10.0.0.12:8443 weight=2
//     [2001:db8::13]:8443 weight=0 max_connections=500   # drained
//
// - One endpoint per line: `ADDRESS [weight=N] [max_connections=N]`, fields separated by spaces
//   or tabs, options in any order, each at most once, no spaces around `=`.
// - ADDRESS as in the config: "a.b.c.d:port" or "[ipv6]:port", numeric only, port 1-65535; not
//   the unspecified address (0.0.0.0, ::): it cannot be connected to.
// - weight: 0-10000 (the config's bound for an endpoint weight), default 1; 0 means never picked.
//   max_connections: 1-10000000, default unlimited. Decimal digits, no sign, no leading zeros.
// - `#` starts a comment anywhere on a line; blank lines are ignored; lines may end in "\r\n".
// - The same address may not appear twice (IPv6 compared as addresses: [2001:db8::1] and
//   [2001:db8:0::1] are the same).
// - An empty file, or one with only comments, is a valid empty set.
// - Bounds: the file at most 1 MiB, a line at most 4096 bytes (without its line end), at most
//   10000 endpoints.
//
// Errors are one line, "FILE:LINE: MESSAGE" (LINE 1-based; 0 for the file as a whole, i.e. too
// large), with user text quoted and cut like the config's. Only the first error is reported.

#include "src/wire/discovered_endpoint.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace passgate {

inline constexpr std::size_t kEndpointsFileMaxBytes = 1 << 20;
inline constexpr std::size_t kEndpointsFileMaxLineBytes = 4096;
inline constexpr std::size_t kEndpointsFileMaxEndpoints = 10'000;
inline constexpr std::uint32_t kEndpointsFileMaxWeight = 10'000;
inline constexpr std::uint32_t kEndpointsFileMaxConnections = 10'000'000;

struct EndpointsFileParse {
    DiscoveredEndpoints endpoints;  // the whole set, in file order; empty when error is set
    std::string error;              // empty on success, else "FILE:LINE: MESSAGE"

    bool ok() const { return error.empty(); }
};

// `source_name` is only used as FILE in error messages (the path, usually).
EndpointsFileParse parse_endpoints_file(std::string_view text, std::string_view source_name);

}  // namespace passgate
