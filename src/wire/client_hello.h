#pragma once
// TLS ClientHello reader over the bytes received so far on a new connection. HelloReader keeps
// its place between arrivals, so a hello that trickles in costs work linear in its size whatever
// its framing; parse_client_hello is the one-shot form. Untrusted input: every length is checked
// against its parent; anything unexpected is a rejection with a reason, never a crash or an
// over-read.

#include <array>
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
    not_tls,
    sslv2,
    not_handshake,
    bad_record_version,
    bad_record_length,
    not_client_hello,
    too_large,
    malformed,
    trailing_bytes,
    duplicate_extension,
    multiple_names,
    bad_sni,
    bad_alpn,
    too_many_records,
};
inline constexpr std::size_t hello_error_count = static_cast<std::size_t>(HelloError::too_many_records) + 1;

// The coarse class of a hello error: the `reason` label of passgate_client_hello_rejected_total.
enum class HelloErrorClass { not_tls, too_large, malformed };

// One row per HelloError, in enum order (checked below): the one place that names them. `name`
// is the access log's hello_error= value and the reject log line's; config/README.md lists the
// same names (tests/observe/close_reason_table_test.cpp holds the two together).
struct HelloErrorInfo {
    HelloError error;
    std::string_view name;  // stable snake_case
    HelloErrorClass metric_class;
    std::string_view description;
};

inline constexpr std::array<HelloErrorInfo, hello_error_count> hello_errors{{
    {HelloError::none, "none", HelloErrorClass::malformed, "not a rejection (never counted)"},
    {HelloError::not_tls, "not_tls", HelloErrorClass::not_tls,
     "the first byte is not a TLS record type at all (e.g. \"GET /\", an SSH banner)"},
    {HelloError::sslv2, "sslv2", HelloErrorClass::not_tls,
     "an SSLv2-compatible hello (the first byte has the high bit set)"},
    {HelloError::not_handshake, "not_handshake", HelloErrorClass::not_tls,
     "a TLS record, but not content type 22 (handshake)"},
    {HelloError::bad_record_version, "bad_record_version", HelloErrorClass::not_tls,
     "the record version's major byte is not 3"},
    {HelloError::bad_record_length, "bad_record_length", HelloErrorClass::malformed,
     "a record length of 0 or over 2^14 (RFC 8446 5.1: plaintext records)"},
    {HelloError::not_client_hello, "not_client_hello", HelloErrorClass::malformed,
     "the handshake message type is not 1 (ClientHello)"},
    {HelloError::too_large, "too_large", HelloErrorClass::too_large,
     "the declared hello is larger than max_client_hello_size"},
    {HelloError::malformed, "malformed", HelloErrorClass::malformed,
     "a length does not fit its parent, or a field is truncated"},
    {HelloError::trailing_bytes, "trailing_bytes", HelloErrorClass::malformed,
     "bytes inside the handshake message beyond the declared extensions"},
    {HelloError::duplicate_extension, "duplicate_extension", HelloErrorClass::malformed,
     "an extension type repeated (RFC 8446 4.2), two SNI extensions included"},
    {HelloError::multiple_names, "multiple_names", HelloErrorClass::malformed,
     "the server_name list carries more than one host_name"},
    {HelloError::bad_sni, "bad_sni", HelloErrorClass::malformed,
     "an empty SNI, one that is not a valid DNS hostname, or an IP literal"},
    {HelloError::bad_alpn, "bad_alpn", HelloErrorClass::malformed,
     "an empty protocol name, a malformed ALPN list, or more than max_alpn_protocols ids or "
     "max_alpn_list_bytes bytes"},
    {HelloError::too_many_records, "too_many_records", HelloErrorClass::too_large,
     "the hello needs more TLS records than max_hello_records"},
}};

constexpr bool hello_errors_in_enum_order() {
    for (std::size_t i = 0; i < hello_errors.size(); ++i)
        if (static_cast<std::size_t>(hello_errors[i].error) != i) return false;
    return true;
}
static_assert(hello_errors_in_enum_order(), "hello_errors: one row per HelloError, in enum order");


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

// Stable snake_case name of the reason, used in logs (hello_errors[error].name); "unknown" for a
// value outside the enum.
constexpr std::string_view hello_error_name(HelloError error) {
    const auto index = static_cast<std::size_t>(error);
    return index < hello_errors.size() ? hello_errors[index].name : "unknown";
}
constexpr std::string_view hello_error_class_name(HelloErrorClass error_class) {
    switch (error_class) {
        case HelloErrorClass::not_tls: return "not_tls";
        case HelloErrorClass::too_large: return "too_large";
        case HelloErrorClass::malformed: return "malformed";
    }
    return "malformed";
}
// Coarse reason for the `passgate_client_hello_rejected_total{reason}` label:
// not_tls, too_large (also too_many_records), or malformed (all other specific errors).
constexpr std::string_view hello_error_metric_reason(HelloError error) {
    const auto index = static_cast<std::size_t>(error);
    return hello_error_class_name(index < hello_errors.size() ? hello_errors[index].metric_class
                                                               : HelloErrorClass::malformed);
}

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

// A bare ClientHello handshake message (type 1, a 24-bit length, the body), as QUIC carries it in
// CRYPTO frames (RFC 9001 §4.1.3: no TLS records). `message` must be exactly that message (its
// length matches the header, else malformed). The body is parsed as parse_client_hello parses a
// record-framed one; record_bytes and records are 0. The caller has bounded the size.
HelloParse parse_client_hello_message(std::span<const std::uint8_t> message);

}  // namespace passgate
