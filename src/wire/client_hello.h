#pragma once
// TLS ClientHello reader over the bytes received so far on a new connection. HelloReader keeps
// its place between arrivals, so a hello that trickles in costs work linear in its size whatever
// its framing; parse_client_hello is the one-shot form. Untrusted input: every length is checked
// against its parent; anything unexpected is a rejection with a reason, never a crash or an
// over-read.

#include <cstddef>
#include <cstdint>
#include <optional>
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
    bad_alpn,            // empty protocol name, malformed list, or over the ALPN caps below
    too_many_records,    // the hello needs more than the record limit's TLS records
};

// Bounds on what a hello may carry, whatever max_client_hello_size allows (config/README.md).
//
// Records: a real client sends its hello in one record. A ClientHello's variable fields are 8- and
// 16-bit vectors, so even the largest valid one (about 128 KiB) needs only 9 full 16 KiB
// records; 64 leaves room for clients that fragment on purpose. More is a hello cut into tiny
// records: refused, so that a client cannot make passgate step over ~175,000 one-byte records
// of a 1 MiB hello (and wake up once for each, sent one per segment).
inline constexpr std::size_t max_hello_records = 64;
// ALPN: browsers and HTTP stacks offer 1 to 3 protocol ids (h2, http/1.1), gRPC one, ACME one;
// 16 leaves ample room. 512 bytes of ProtocolNameList (each id with its length byte) keeps any
// id of the RFC's maximum length (255 bytes) possible alongside others. What a connection keeps,
// logs and matches on is then at most 512 bytes; a hello over either cap is refused (bad_alpn),
// so the route never depends on protocol ids that were not kept.
inline constexpr std::size_t max_alpn_protocols = 16;
inline constexpr std::size_t max_alpn_list_bytes = 512;

// Stable snake_case name of the reason, used in metrics labels and logs.
std::string_view hello_error_name(HelloError error);
// Coarse reason for the `passgate_client_hello_rejected_total{reason}` label:
// not_tls, too_large (also too_many_records), or malformed (all other specific errors).
std::string_view hello_error_metric_reason(HelloError error);

struct ClientHello {
    std::string sni;                // lowercased, one trailing dot removed; empty: no SNI sent
    std::vector<std::string> alpn;  // protocol names in the client's order; may be empty
    std::size_t record_bytes = 0;   // bytes of the TLS records that carry the hello; any bytes
                                    // after that in the buffer are forwarded unchanged
    std::size_t records = 0;        // how many TLS records carry it (1..max_records)
};

struct HelloParse {
    enum class Status { need_more, complete, rejected };
    Status status = Status::need_more;
    HelloError error = HelloError::none;  // set when rejected
    ClientHello hello;                    // set when complete
};

// Reads one connection's hello as its bytes arrive. Each parse() call gets every byte received so
// far (the same buffer, only ever appended to) and the same `max_size`; the reader resumes the
// record walk where the previous call stopped, so the walk over all calls examines each record
// header a bounded number of times (a header split across arrivals is looked at again, at most 5
// bytes) and each byte of the handshake header once. When the records carrying the whole
// handshake message are present, they are reassembled and the body is parsed, once.
//
// `max_size` caps the total record bytes of the hello: a declared handshake length that cannot
// fit, or received bytes reaching it without a complete hello, is too_large. `max_records` caps
// how many TLS records may carry it (too_many_records); only tests and benchmarks lift it.
// After a complete or rejected result the verdict is final: later calls return it again.
class HelloReader {
public:
    explicit HelloReader(std::size_t max_records = max_hello_records);

    HelloParse parse(std::span<const std::uint8_t> received, std::size_t max_size);

    // Work done so far, in bytes looked at: record-header bytes inspected (again when a header
    // was split), handshake-header bytes collected, and, once complete, the record bytes
    // reassembled plus the message bytes parsed. At most 5 times the bytes received, plus 4 (see
    // client_hello.cpp), whatever the framing and the split of arrivals; tests and the fuzz
    // target hold it to that.
    std::uint64_t bytes_examined() const { return bytes_examined_; }

private:
    struct Outcome;
    Outcome walk(std::span<const std::uint8_t> received, std::size_t max_size);
    void collect_handshake_header(std::span<const std::uint8_t> received);
    std::optional<HelloError> check_message_bounds(std::size_t max_size) const;
    HelloParse finish(std::span<const std::uint8_t> received, std::size_t record_bytes);
    HelloParse decide(HelloParse verdict);

    // Offsets fit 32 bits: parse() refuses a buffer beyond that as too_large (max_size is at
    // most 1 MiB). Kept small: every connection carries one of these while it lives.
    std::uint64_t bytes_examined_ = 0;
    std::uint32_t max_records_;
    std::uint32_t record_at_ = 0;         // offset of the record being walked (its header)
    std::uint32_t record_end_ = 0;        // offset just past that record, once in_record_
    std::uint32_t scanned_to_ = 0;        // its payload before this offset was collected from
    std::uint32_t records_ = 0;           // records accounted for
    std::uint32_t declared_payload_ = 0;  // sum of the record lengths accounted for
    std::uint32_t message_size_ = 0;      // 4 + declared handshake length, once known (else 0)
    std::uint32_t received_before_ = 0;   // buffer size at the previous call
    std::uint32_t complete_at_ = 0;       // record_bytes of a complete hello (else 0)
    std::uint8_t handshake_header_[4] = {};
    std::uint8_t handshake_header_have_ = 0;
    bool in_record_ = false;              // that record's header is complete and accounted for
    // The verdict, once there is one: final. Only the error is kept, not the parsed hello (the
    // caller has it); a call after `complete` parses the same records again.
    HelloParse::Status decided_ = HelloParse::Status::need_more;
    HelloError decided_error_ = HelloError::none;
};

// One-shot: a fresh HelloReader's parse(). Kept for callers that have the whole input at once
// (the `passgate route --hello FILE` explainer, tests); a connection uses one HelloReader.
HelloParse parse_client_hello(std::span<const std::uint8_t> received, std::size_t max_size,
                              std::size_t max_records = max_hello_records);

}  // namespace passgate
