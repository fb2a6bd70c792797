// libFuzzer target for the ClientHello reader (src/wire/client_hello.h).
//
// The input is used two ways:
//  - as the raw bytes received on a connection, parsed under several caps and also at a prefix
//    (checking that a decision on a prefix never changes with more bytes);
//  - wrapped as the body of a ClientHello handshake message, framed into records whose size comes
//    from the first input byte, so that the fuzzer reaches extension parsing without first having
//    to discover consistent record and handshake lengths;
//  - fed to one HelloReader in arrivals whose sizes are derived from the input (and byte by byte,
//    and record by record for the framed body), as a connection feeds it: the verdict must equal
//    the one-shot parse (the same hello, or a rejection), and the reader's total work
//    (bytes_examined) must stay linear,
//    at most 5 x the bytes + 4 (client_hello.h), however the bytes are split.
// Bounds checked on every complete hello: at most max_records records, at most
// max_alpn_protocols ALPN ids and max_alpn_list_bytes bytes of list.
// Invariant violations abort, so libFuzzer reports them as crashes.

#include "src/wire/client_hello.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <span>
#include <vector>

namespace {

using passgate::HelloError;
using passgate::HelloParse;
using Status = HelloParse::Status;

void require(bool condition) {
    if (!condition) std::abort();
}

constexpr std::size_t kAnyRecords = static_cast<std::size_t>(-1);

void check_invariants(const HelloParse& result, std::size_t size, std::size_t max_size,
                      std::size_t max_records) {
    require(!passgate::hello_error_name(result.error).empty());
    require(!passgate::hello_error_metric_reason(result.error).empty());
    switch (result.status) {
    case Status::need_more:
        require(result.error == HelloError::none);
        require(size < max_size);
        break;
    case Status::rejected:
        require(result.error != HelloError::none);
        break;
    case Status::complete: {
        require(result.error == HelloError::none);
        const auto& hello = result.hello;
        require(hello.record_bytes <= size);
        require(hello.record_bytes <= max_size);
        require(hello.record_bytes >= 5 + 4);
        require(hello.sni.size() <= 253);
        if (!hello.sni.empty()) require(hello.sni.back() != '.');
        for (const char c : hello.sni) require(!(c >= 'A' && c <= 'Z'));
        std::size_t alpn_list_bytes = 0;
        for (const auto& name : hello.alpn) {
            require(!name.empty() && name.size() <= 255);
            alpn_list_bytes += 1 + name.size();
        }
        require(hello.alpn.size() <= passgate::max_alpn_protocols);
        require(alpn_list_bytes <= passgate::max_alpn_list_bytes);
        require(hello.records >= 1 && hello.records <= max_records);
        break;
    }
    }
}

HelloParse parse(std::span<const std::uint8_t> bytes, std::size_t max_size,
                 std::size_t max_records = passgate::max_hello_records) {
    const HelloParse result = passgate::parse_client_hello(bytes, max_size, max_records);
    check_invariants(result, bytes.size(), max_size, max_records);
    return result;
}

bool same_result(const HelloParse& a, const HelloParse& b) {
    return a.status == b.status && a.error == b.error && a.hello.sni == b.hello.sni &&
           a.hello.alpn == b.hello.alpn && a.hello.record_bytes == b.hello.record_bytes &&
           a.hello.records == b.hello.records;
}

// The same decision. A rejection's reason may depend on where the bytes were split, as it always
// has: a record whose declared end lies beyond max_size is too_large as soon as its header is in,
// while with its first payload byte present the not_client_hello check comes first.
bool same_verdict(const HelloParse& a, const HelloParse& b) {
    if (a.status == Status::rejected) return b.status == Status::rejected;
    return same_result(a, b);
}

// xorshift64 seeded from the input: arrival sizes the fuzzer steers through the bytes it writes.
std::uint64_t seed_of(std::span<const std::uint8_t> bytes) {
    std::uint64_t hash = 0xcbf29ce484222325;  // FNV-1a
    for (const std::uint8_t byte : bytes) hash = (hash ^ byte) * 0x100000001b3;
    return hash | 1;
}

std::uint64_t next(std::uint64_t& state) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

// Feeds `bytes` to one reader in arrivals ending at `ends` (increasing), as a connection does,
// stopping at the first verdict; that verdict must be the one-shot one, for the work the
// reader documents.
void check_incremental(std::span<const std::uint8_t> bytes, const std::vector<std::size_t>& ends,
                       std::size_t max_size, std::size_t max_records, const HelloParse& whole) {
    passgate::HelloReader reader(max_records);
    HelloParse result;
    for (const std::size_t end : ends) {
        result = reader.parse(bytes.first(end), max_size);
        check_invariants(result, end, max_size, max_records);
        // A repeated arrival with nothing new (EAGAIN after a short read) changes nothing.
        const std::uint64_t examined = reader.bytes_examined();
        require(same_result(reader.parse(bytes.first(end), max_size), result));
        require(reader.bytes_examined() == examined);
        if (result.status != Status::need_more) break;
    }
    if (!ends.empty() && ends.back() == bytes.size()) require(same_verdict(result, whole));
    require(reader.bytes_examined() <= 5 * std::uint64_t{bytes.size()} + 4);
}

// Arrival ends derived from the input: sizes 1 .. 2^k, k from the input too.
std::vector<std::size_t> derived_ends(std::span<const std::uint8_t> bytes) {
    std::uint64_t state = seed_of(bytes);
    const std::uint64_t span_bits = next(state) % 12;
    std::vector<std::size_t> ends;
    for (std::size_t end = 0; end < bytes.size();) {
        end = std::min(bytes.size(), end + 1 + static_cast<std::size_t>(next(state) % (std::uint64_t{1} << span_bits)));
        ends.push_back(end);
    }
    return ends;
}

std::vector<std::size_t> byte_by_byte(std::size_t size) {
    std::vector<std::size_t> ends;
    for (std::size_t end = 1; end <= size; ++end) ends.push_back(end);
    return ends;
}

void check_incremental_all(std::span<const std::uint8_t> bytes, std::size_t max_size,
                           std::size_t max_records) {
    const HelloParse whole = parse(bytes, max_size, max_records);
    check_incremental(bytes, derived_ends(bytes), max_size, max_records, whole);
    if (bytes.size() <= 1024) check_incremental(bytes, byte_by_byte(bytes.size()), max_size, max_records, whole);
}

// A decision on a prefix must hold for the whole input.
void check_prefix_consistency(std::span<const std::uint8_t> bytes, std::size_t max_size,
                              std::size_t cut) {
    const HelloParse full = parse(bytes, max_size);
    const HelloParse prefix = parse(bytes.first(cut), max_size);
    if (prefix.status == Status::complete) {
        require(full.status == Status::complete);
        require(full.hello.record_bytes == prefix.hello.record_bytes);
        require(full.hello.sni == prefix.hello.sni);
        require(full.hello.alpn == prefix.hello.alpn);
    } else if (prefix.status == Status::rejected) {
        require(full.status == Status::rejected);
    }
}

void put_u16(std::vector<std::uint8_t>& out, std::size_t value) {
    out.push_back(static_cast<std::uint8_t>(value >> 8));
    out.push_back(static_cast<std::uint8_t>(value));
}

// Input after the first byte becomes a ClientHello body, framed into records of 1 + data[0]*64
// bytes (so 1 .. 16321).
void fuzz_as_body(const std::uint8_t* data, std::size_t size) {
    if (size < 1 || size > 200000) return;
    const std::size_t chunk = 1 + std::size_t{data[0]} * 64;
    const std::span<const std::uint8_t> body(data + 1, size - 1);
    std::vector<std::uint8_t> message;
    message.reserve(body.size() + 4);
    message.push_back(1);
    message.push_back(static_cast<std::uint8_t>(body.size() >> 16));
    put_u16(message, body.size());
    message.insert(message.end(), body.begin(), body.end());

    std::vector<std::uint8_t> records;
    for (std::size_t at = 0; at < message.size(); at += chunk) {
        const std::size_t n = message.size() - at < chunk ? message.size() - at : chunk;
        records.push_back(22);
        put_u16(records, 0x0301);
        put_u16(records, n);
        records.insert(records.end(), message.begin() + static_cast<std::ptrdiff_t>(at),
                       message.begin() + static_cast<std::ptrdiff_t>(at + n));
    }
    // Without the record limit (records of 1 byte would rarely get past it) the walk always
    // finishes: the result is a verdict on the body.
    const HelloParse result = parse(records, 1u << 20, kAnyRecords);
    require(result.status != Status::need_more);
    if (result.status == Status::complete) require(result.hello.record_bytes == records.size());
    // With it, as a connection parses: the same verdict within 64 records, too_many_records past.
    const HelloParse limited = parse(records, 1u << 20);
    const std::size_t record_count = (message.size() + chunk - 1) / chunk;
    if (record_count <= passgate::max_hello_records)
        require(same_verdict(limited, result));
    else
        require(limited.error == HelloError::too_many_records);
    parse(records, 64 * 1024);
    // One record per arrival, the shape of the quadratic attack: linear work, same verdict.
    std::vector<std::size_t> ends;
    for (std::size_t at = 0; at < records.size();) {
        at += 5 + ((std::size_t{records[at + 3]} << 8) | records[at + 4]);
        ends.push_back(at);
    }
    check_incremental(records, ends, 1u << 20, kAnyRecords, result);
    check_incremental(records, ends, 1u << 20, passgate::max_hello_records, limited);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    for (const std::size_t max_size : {std::size_t{64 * 1024}, std::size_t{512}, std::size_t{16}}) {
        parse(bytes, max_size);
    }
    parse(bytes, size);
    parse(bytes, 64 * 1024, kAnyRecords);
    check_incremental_all(bytes, 64 * 1024, passgate::max_hello_records);
    check_incremental_all(bytes, 300, kAnyRecords);
    check_incremental_all(bytes, 64 * 1024, 3);
    if (size > 0) {
        const std::size_t cut = size > 1 ? std::size_t{data[size - 1]} * 31 % size : 0;
        check_prefix_consistency(bytes, 64 * 1024, cut);
        check_prefix_consistency(bytes, 300, cut);
    }
    fuzz_as_body(data, size);
    return 0;
}
