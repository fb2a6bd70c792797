// TLS ClientHello reader (see client_hello.h for the contract).
//
// Two phases:
//  1. Walk (cheap, resumes on every call where the previous one stopped): step over record
//     headers only, validating each one, and count the handshake bytes they carry. The 4-byte
//     handshake header (type + u24 length) may itself be split across records, so its bytes are
//     collected as they go by. Nothing is copied and nothing beyond the record headers and the
//     handshake header is looked at. Each record header is accounted once; one still incomplete
//     is validated again on the next call (at most 5 bytes), so the walk's total work over all
//     calls is linear in the bytes received, however they are framed and split.
//  2. Parse (once the records carrying the whole handshake message are present): concatenate the
//     record fragments into one contiguous buffer and parse the ClientHello body strictly.
//
// bytes_examined() counts that work: record-header bytes inspected (at most 1+2+3+4+5 = 15 for
// a header that arrives byte by byte, 3 per header byte), the 4 handshake-header bytes, then the
// record bytes reassembled and the message bytes parsed (each at most the bytes received). So at
// most 3 + 1 + 1 = 5 per byte received, plus the 4 header bytes.
//
// All reads go through `Reader`, which never reads past its span; every length-prefixed vector
// becomes a sub-reader bounded by its parent.

#include "src/wire/client_hello.h"

#include "config/hostname.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <limits>
#include <new>
#include <optional>
#include <utility>

namespace passgate {

namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::uint8_t kContentHandshake = 22;
constexpr std::uint8_t kFirstContentType = 20;  // change_cipher_spec
constexpr std::uint8_t kLastContentType = 24;   // heartbeat
constexpr std::size_t kRecordHeaderSize = 5;
// RFC 8446 5.1: a plaintext record fragment MUST NOT exceed 2^14 bytes.
constexpr std::size_t kMaxRecordPayload = 16384;
constexpr std::size_t kHandshakeHeaderSize = 4;
constexpr std::uint8_t kHandshakeClientHello = 1;

constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint16_t kExtAlpn = 16;
constexpr std::uint8_t kNameTypeHostName = 0;
constexpr std::size_t kMaxSessionId = 32;
constexpr std::size_t kRandomSize = 32;

// Bounds-checked big-endian reader over a span. Every read either succeeds completely and advances,
// or fails (nullopt / false) without advancing.
class Reader {
public:
    explicit Reader(Bytes data) : data_(data) {}

    std::size_t remaining() const { return data_.size() - offset_; }
    bool empty() const { return remaining() == 0; }

    std::optional<std::uint8_t> u8() {
        if (remaining() < 1) return std::nullopt;
        return data_[offset_++];
    }

    std::optional<std::uint16_t> u16() {
        if (remaining() < 2) return std::nullopt;
        const auto value = static_cast<std::uint16_t>((data_[offset_] << 8) | data_[offset_ + 1]);
        offset_ += 2;
        return value;
    }

    std::optional<Bytes> bytes(std::size_t count) {
        if (remaining() < count) return std::nullopt;
        const Bytes out = data_.subspan(offset_, count);
        offset_ += count;
        return out;
    }

    // A vector with a 1-byte length prefix, as a reader bounded by that length.
    std::optional<Reader> vec8() {
        const std::size_t saved = offset_;
        const auto length = u8();
        if (!length) return std::nullopt;
        const auto body = bytes(*length);
        if (!body) {
            offset_ = saved;
            return std::nullopt;
        }
        return Reader(*body);
    }

    // A vector with a 2-byte length prefix, as a reader bounded by that length.
    std::optional<Reader> vec16() {
        const std::size_t saved = offset_;
        const auto length = u16();
        if (!length) return std::nullopt;
        const auto body = bytes(*length);
        if (!body) {
            offset_ = saved;
            return std::nullopt;
        }
        return Reader(*body);
    }

    Bytes rest() const { return data_.subspan(offset_); }

private:
    Bytes data_;
    std::size_t offset_ = 0;
};

HelloParse rejected(HelloError error) {
    HelloParse result;
    result.status = HelloParse::Status::rejected;
    result.error = error;
    return result;
}

HelloParse need_more() { return HelloParse{}; }

std::size_t u16_at(Bytes data, std::size_t at) {
    return (std::size_t{data[at]} << 8) | std::size_t{data[at + 1]};
}

// Smallest number of record bytes (headers included) that can carry `payload` handshake bytes.
std::size_t min_record_bytes(std::size_t payload) {
    const std::size_t records = (payload + kMaxRecordPayload - 1) / kMaxRecordPayload;
    return payload + records * kRecordHeaderSize;
}

// ---------------------------------------------------------------------------------------------
// Phase 1: record walk (HelloReader::walk below keeps its place between calls).

// Validates whatever part of the record header starting at `at` is present (1 to 5 bytes).
// `first`: the first record of the connection, where a non-TLS first byte is told apart.
std::optional<HelloError> check_record_header(Bytes received, std::size_t at, bool first) {
    const std::size_t present = std::min(received.size() - at, kRecordHeaderSize);
    const std::uint8_t type = received[at];
    if (type != kContentHandshake) {
        if (!first) return HelloError::not_handshake;
        if (type & 0x80) return HelloError::sslv2;
        if (type >= kFirstContentType && type <= kLastContentType) return HelloError::not_handshake;
        return HelloError::not_tls;
    }
    if (present >= 2 && received[at + 1] != 3) return HelloError::bad_record_version;
    if (present == kRecordHeaderSize) {
        const std::size_t length = u16_at(received, at + 3);
        if (length == 0 || length > kMaxRecordPayload) return HelloError::bad_record_length;
    }
    return std::nullopt;
}

// Concatenates the fragments of the (fully present, already validated) records in
// [0, record_bytes) into the handshake message.
std::vector<std::uint8_t> reassemble(Bytes received, std::size_t record_bytes) {
    std::vector<std::uint8_t> message;
    message.reserve(record_bytes);
    std::size_t at = 0;
    while (at + kRecordHeaderSize <= record_bytes) {
        const std::size_t length = u16_at(received, at + 3);
        const auto fragment = received.subspan(at + kRecordHeaderSize, length);
        message.insert(message.end(), fragment.begin(), fragment.end());
        at += kRecordHeaderSize + length;
    }
    return message;
}

// ---------------------------------------------------------------------------------------------
// Phase 2: ClientHello body.

// Lowercases, strips one trailing dot and validates with the one hostname rule
// (config/hostname.h, HostnameSyntax::sni: the rule route hostnames are checked with, plus '_'
// and '-' anywhere in a label; IP literals rejected). nullopt: bad_sni.
std::optional<std::string> normalize_sni(Bytes raw) {
    std::string name(raw.begin(), raw.end());
    for (char& c : name) c = config::ascii_lower(c);
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (!config::is_valid_hostname(name, config::HostnameSyntax::sni)) return std::nullopt;
    return name;
}

// server_name extension (RFC 6066 3): ServerNameList server_name_list<1..2^16-1>, each entry
// NameType(1) + opaque HostName<1..2^16-1>. Only host_name (0) is defined; anything else is
// malformed. The list must fill the extension exactly.
std::optional<HelloError> parse_server_name(Bytes data, std::string& sni) {
    Reader ext(data);
    auto list = ext.vec16();
    if (!list || !ext.empty() || list->empty()) return HelloError::malformed;
    std::optional<Bytes> host;
    while (!list->empty()) {
        const auto type = list->u8();
        auto name = list->vec16();
        if (!type || !name) return HelloError::malformed;
        if (*type != kNameTypeHostName) return HelloError::malformed;
        if (host) return HelloError::multiple_names;
        host = name->rest();
    }
    auto normalized = normalize_sni(*host);
    if (!normalized) return HelloError::bad_sni;
    sni = std::move(*normalized);
    return std::nullopt;
}

// ALPN extension (RFC 7301 3.1): ProtocolNameList protocol_name_list<2..2^16-1>, each entry
// opaque ProtocolName<1..2^8-1>. Any defect inside it is bad_alpn, and so is a list over
// max_alpn_protocols ids or max_alpn_list_bytes bytes.
std::optional<HelloError> parse_alpn(Bytes data, std::vector<std::string>& alpn) {
    Reader ext(data);
    auto list = ext.vec16();
    if (!list || !ext.empty() || list->empty()) return HelloError::bad_alpn;
    // Over the caps (client_hello.h): refused, not truncated, so that no route ever matches on a
    // list that was cut short.
    if (list->remaining() > max_alpn_list_bytes) return HelloError::bad_alpn;
    std::vector<std::string> names;
    while (!list->empty()) {
        if (names.size() == max_alpn_protocols) return HelloError::bad_alpn;
        auto name = list->vec8();
        if (!name || name->empty()) return HelloError::bad_alpn;
        const Bytes bytes = name->rest();
        names.emplace_back(bytes.begin(), bytes.end());
    }
    alpn = std::move(names);
    return std::nullopt;
}

std::optional<HelloError> parse_extensions(Reader& block, ClientHello& hello) {
    std::vector<bool> seen(65536, false);
    while (!block.empty()) {
        const auto type = block.u16();
        auto data = block.vec16();
        if (!type || !data) return HelloError::malformed;
        if (seen[*type]) return HelloError::duplicate_extension;
        seen[*type] = true;
        std::optional<HelloError> error;
        if (*type == kExtServerName) error = parse_server_name(data->rest(), hello.sni);
        if (*type == kExtAlpn) error = parse_alpn(data->rest(), hello.alpn);
        if (error) return error;
    }
    return std::nullopt;
}

// ClientHello body (RFC 8446 4.1.2, also valid for TLS 1.0-1.2):
//   legacy_version(2) random(32) legacy_session_id<0..32> cipher_suites<2..2^16-2>
//   legacy_compression_methods<1..2^8-1> [extensions<8..2^16-1>]
// The extensions block is optional (pre-TLS-1.2 clients may omit it); if present, it must end
// exactly where the handshake message ends.
std::optional<HelloError> parse_body(Bytes body, ClientHello& hello) {
    Reader reader(body);
    if (!reader.u16() || !reader.bytes(kRandomSize)) return HelloError::malformed;
    const auto session_id = reader.vec8();
    if (!session_id || session_id->remaining() > kMaxSessionId) return HelloError::malformed;
    const auto ciphers = reader.vec16();
    if (!ciphers || ciphers->empty() || ciphers->remaining() % 2 != 0) return HelloError::malformed;
    const auto compression = reader.vec8();
    if (!compression || compression->empty()) return HelloError::malformed;
    if (reader.empty()) return std::nullopt;  // legacy hello without extensions
    auto extensions = reader.vec16();
    if (!extensions) return HelloError::malformed;
    if (!reader.empty()) return HelloError::trailing_bytes;
    return parse_extensions(*extensions, hello);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// HelloReader

// Where a walk stopped: rejected, need_more, or the end offset of the hello's last record.
struct HelloReader::Outcome {
    std::optional<HelloError> error;
    std::size_t record_bytes = 0;  // 0: need more
};

namespace {

// Offsets and sizes the reader stores: parse() has checked that the buffer fits 32 bits (and a
// record adds at most 16 KiB + 5 beyond it).
std::uint32_t narrow(std::size_t value) {
    assert(value <= std::numeric_limits<std::uint32_t>::max());
    return static_cast<std::uint32_t>(value);
}

// Buffers beyond this are refused as too_large before any walking (max_size is at most 1 MiB).
constexpr std::size_t kMaxBuffer = std::numeric_limits<std::uint32_t>::max() / 2;

}  // namespace

HelloReader::HelloReader(std::size_t max_records)
    : max_records_(narrow(std::min<std::size_t>(max_records, std::numeric_limits<std::uint32_t>::max()))) {}

// Steps over the records from where the previous call stopped. Per record: its header is
// validated (again on a later call while it is incomplete) and accounted once; the handshake
// header's 4 bytes are collected from the payload as they arrive (the header may itself be split
// across records); nothing else of the payload is looked at until the message is complete.
HelloReader::Outcome HelloReader::walk(Bytes received, std::size_t max_size) {
    while (record_at_ < received.size()) {
        if (!in_record_) {
            const std::size_t present = std::min(received.size() - record_at_, kRecordHeaderSize);
            bytes_examined_ += present;
            if (const auto error = check_record_header(received, record_at_, record_at_ == 0))
                return {error, 0};
            if (present < kRecordHeaderSize) break;  // the rest of the header is still to come
            const std::size_t length = u16_at(received, record_at_ + 3);
            in_record_ = true;
            ++records_;
            declared_payload_ = narrow(declared_payload_ + length);
            scanned_to_ = narrow(record_at_ + kRecordHeaderSize);
            record_end_ = narrow(scanned_to_ + length);
        }
        collect_handshake_header(received);
        if (const auto error = check_message_bounds(max_size)) return {error, 0};
        if (record_end_ > received.size()) break;  // the rest of the record is still to come
        if (message_size_ != 0 && declared_payload_ == message_size_) return {std::nullopt, record_end_};
        record_at_ = record_end_;
        in_record_ = false;
    }
    // The hello is incomplete and needs more than what was received.
    if (received.size() >= max_size) return {HelloError::too_large, 0};
    return {};
}

// Collects handshake-header bytes from the part of the current record's payload that arrived
// since the last call, until all 4 are there.
void HelloReader::collect_handshake_header(Bytes received) {
    const std::size_t available_end = std::min<std::size_t>(record_end_, received.size());
    while (scanned_to_ < available_end && handshake_header_have_ < kHandshakeHeaderSize) {
        handshake_header_[handshake_header_have_++] = received[scanned_to_++];
        ++bytes_examined_;
    }
    if (handshake_header_have_ == kHandshakeHeaderSize && message_size_ == 0) {
        const std::size_t length = (std::size_t{handshake_header_[1]} << 16) |
                                   (std::size_t{handshake_header_[2]} << 8) |
                                   std::size_t{handshake_header_[3]};
        message_size_ = narrow(kHandshakeHeaderSize + length);
    }
}

// Checks that can be made once some of the handshake header is known, after the record being
// walked (which ends at record_end_) has been accounted for.
std::optional<HelloError> HelloReader::check_message_bounds(std::size_t max_size) const {
    if (handshake_header_have_ >= 1 && handshake_header_[0] != kHandshakeClientHello) {
        return HelloError::not_client_hello;
    }
    if (record_end_ > max_size) return HelloError::too_large;
    const bool message_known = message_size_ != 0;
    // The records carry more handshake bytes than the ClientHello: another handshake message is
    // coalesced after it in the same record. In every TLS version the ClientHello is the only
    // handshake message of the client's first flight (anything else follows the server's reply),
    // so this is rejected as trailing_bytes, to be strict, rather than forwarded unexamined.
    // Bytes in later records (early data, change_cipher_spec) are outside the hello and fine.
    if (message_known && declared_payload_ > message_size_) return HelloError::trailing_bytes;
    if (message_known &&
        min_record_bytes(message_size_ - declared_payload_) > max_size - record_end_) {
        return HelloError::too_large;
    }
    // The last record allowed is accounted for and the message needs more than the records so
    // far declare (or they cannot even hold its 4-byte header): it would need another record.
    if (records_ >= max_records_) {
        const bool needs_more = message_known ? declared_payload_ < message_size_
                                              : declared_payload_ < kHandshakeHeaderSize;
        if (needs_more) return HelloError::too_many_records;
    }
    return std::nullopt;
}

HelloParse HelloReader::finish(Bytes received, std::size_t record_bytes) {
    const std::vector<std::uint8_t> message = reassemble(received, record_bytes);
    HelloParse result;
    const auto error = parse_body(Bytes(message).subspan(kHandshakeHeaderSize), result.hello);
    if (error) return rejected(*error);
    result.status = HelloParse::Status::complete;
    result.hello.record_bytes = record_bytes;
    result.hello.records = records_;
    return result;
}

HelloParse HelloReader::parse(std::span<const std::uint8_t> received, std::size_t max_size) {
    if (decided_ == HelloParse::Status::rejected) return rejected(decided_error_);
    if (decided_ == HelloParse::Status::complete) return finish(received, complete_at_);
    assert(received.size() >= received_before_);
    // Nothing new since the last call: the same bytes give the same answer, need_more (a
    // verdict would have been final).
    if (received.size() == received_before_ && received_before_ != 0) return need_more();
    HelloParse result;
    try {
        if (received.size() > kMaxBuffer) return decide(rejected(HelloError::too_large));
        received_before_ = narrow(received.size());
        const Outcome outcome = walk(received, max_size);
        if (outcome.error) return decide(rejected(*outcome.error));
        if (outcome.record_bytes == 0) return need_more();
        complete_at_ = narrow(outcome.record_bytes);
        // The records are reassembled and the message parsed once (a call after the verdict
        // repeats it, at no counted cost: that is outside the arrivals' work).
        bytes_examined_ += outcome.record_bytes + message_size_;
        result = finish(received, outcome.record_bytes);
    } catch (const std::bad_alloc&) {
        // The only possible exception (buffers are bounded by max_size). Out of memory while
        // holding a hello: treat it as too large for us rather than letting it escape.
        result = rejected(HelloError::too_large);
    }
    return decide(std::move(result));
}

// Records a verdict as final and passes it on.
HelloParse HelloReader::decide(HelloParse verdict) {
    decided_ = verdict.status;
    decided_error_ = verdict.error;
    return verdict;
}

HelloParse parse_client_hello(std::span<const std::uint8_t> received, std::size_t max_size,
                              std::size_t max_records) {
    HelloReader reader(max_records);
    return reader.parse(received, max_size);
}

HelloParse parse_client_hello_message(std::span<const std::uint8_t> message) {
    if (message.empty() || message[0] != kHandshakeClientHello) return rejected(HelloError::not_client_hello);
    if (message.size() < kHandshakeHeaderSize) return rejected(HelloError::malformed);
    const std::size_t length = (std::size_t{message[1]} << 16) | (std::size_t{message[2]} << 8) |
                               std::size_t{message[3]};
    if (length != message.size() - kHandshakeHeaderSize) return rejected(HelloError::malformed);
    HelloParse result;
    try {
        if (const auto error = parse_body(message.subspan(kHandshakeHeaderSize), result.hello))
            return rejected(*error);
    } catch (const std::bad_alloc&) {
        return rejected(HelloError::too_large);  // as HelloReader::parse does
    }
    result.status = HelloParse::Status::complete;
    return result;
}

}  // namespace passgate
