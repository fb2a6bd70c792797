#pragma once
// TLS ClientHello reader: pure functions over the bytes received so far on a new connection.
// Called again each time more bytes arrive. Untrusted input: every length is checked against its
// parent; anything unexpected is a rejection with a reason, never a crash or an over-read.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

enum class HelloError {
    none,
    not_tls,             // first byte is not a TLS record type at all (e.g. "GET /", SSH banner)
    sslv2,               // SSLv2-compatible hello (first byte has the high bit set)
    not_handshake,       // a TLS record but not content type 22 (handshake)
    bad_record_version,  // record version major byte is not 3
    bad_record_length,   // record length 0 or > 2^14 (RFC 8446 5.1: plaintext records)
    not_client_hello,    // handshake message type is not 1
    too_large,           // declared hello larger than the configured cap
    malformed,           // a length does not fit its parent, or a field is truncated
    trailing_bytes,      // bytes inside the handshake message beyond the declared extensions
    duplicate_extension, // any extension type repeated (RFC 8446 4.2), incl. two SNI extensions
    multiple_names,      // server_name list carries more than one host_name
    bad_sni,             // empty, not a valid DNS hostname, or an IP literal
    bad_alpn,            // empty protocol name or malformed list
};

// Stable snake_case name of the reason, used in metrics labels and logs.
std::string_view hello_error_name(HelloError error);
// Coarse reason for the `passgate_client_hello_rejected_total{reason}` label:
// not_tls, too_large, or malformed (all other specific errors).
std::string_view hello_error_metric_reason(HelloError error);

struct ClientHello {
    std::string sni;                // lowercased, one trailing dot removed; empty: no SNI sent
    std::vector<std::string> alpn;  // protocol names in the client's order; may be empty
    std::size_t record_bytes = 0;   // bytes of the TLS records that carry the hello; any bytes
                                    // after that in the buffer are forwarded unchanged
};

struct HelloParse {
    enum class Status { need_more, complete, rejected };
    Status status = Status::need_more;
    HelloError error = HelloError::none;  // set when rejected
    ClientHello hello;                    // set when complete
};

// Parses the bytes received so far. need_more is cheap (only record headers are walked until the
// full handshake message is present), so calling this on every arrival is fine even when the
// hello trickles in one byte at a time. `max_size` caps the total record bytes of the hello:
// a declared handshake length that cannot fit, or received bytes beyond it without a complete
// hello, is too_large.
HelloParse parse_client_hello(std::span<const std::uint8_t> received, std::size_t max_size);

}  // namespace passgate
