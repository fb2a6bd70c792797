// libFuzzer target for the ClientHello reader (src/client_hello.h).
//
// The input is used two ways:
//  - as the raw bytes received on a connection, parsed under several caps and also at a prefix
//    (checking that a decision on a prefix never changes with more bytes);
//  - wrapped as the body of a ClientHello handshake message, framed into records whose size comes
//    from the first input byte, so that the fuzzer reaches extension parsing without first having
//    to discover consistent record and handshake lengths.
// Invariant violations abort, so libFuzzer reports them as crashes.

#include "src/client_hello.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

using passgate::HelloError;
using passgate::HelloParse;
using Status = HelloParse::Status;

void require(bool condition) {
    if (!condition) std::abort();
}

void check_invariants(const HelloParse& result, std::size_t size, std::size_t max_size) {
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
        for (const auto& name : hello.alpn) require(!name.empty() && name.size() <= 255);
        break;
    }
    }
}

HelloParse parse(std::span<const std::uint8_t> bytes, std::size_t max_size) {
    const HelloParse result = passgate::parse_client_hello(bytes, max_size);
    check_invariants(result, bytes.size(), max_size);
    return result;
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
    const HelloParse result = parse(records, 1u << 20);
    // Well-framed: the walk always finishes, so the result is a verdict on the body.
    require(result.status != Status::need_more);
    if (result.status == Status::complete) require(result.hello.record_bytes == records.size());
    parse(records, 64 * 1024);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    for (const std::size_t max_size : {std::size_t{64 * 1024}, std::size_t{512}, std::size_t{16}}) {
        parse(bytes, max_size);
    }
    parse(bytes, size);
    if (size > 0) {
        const std::size_t cut = size > 1 ? std::size_t{data[size - 1]} * 31 % size : 0;
        check_prefix_consistency(bytes, 64 * 1024, cut);
        check_prefix_consistency(bytes, 300, cut);
    }
    fuzz_as_body(data, size);
    return 0;
}
