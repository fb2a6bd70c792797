#pragma once
// The one ClientHello writer: TLS records carrying a ClientHello handshake message with an SNI,
// ALPN and any further extensions. Used by the `tls` health check (a hello a real server answers,
// health_hello.h) and by `passgate route` (the smallest hello that carries a given SNI and ALPN,
// judged by the data path's own parser). Pure, no I/O. The parser it must agree with is
// client_hello.h; tests/wire/client_hello_writer_test.cpp round-trips through it.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

struct TlsExtension {
    std::uint16_t type = 0;
    std::vector<std::uint8_t> body;
};

// RFC 8446 5.1: a plaintext record carries at most 2^14 bytes.
inline constexpr std::size_t max_tls_record_payload = 16384;

struct ClientHelloSpec {
    std::span<const std::uint8_t> random;       // 32 bytes; empty: 32 zero bytes
    std::span<const std::uint8_t> session_id;   // legacy_session_id, 0..32 bytes
    std::span<const std::uint16_t> cipher_suites;  // at least one
    std::string_view sni;                       // empty: no server_name extension
    std::span<const std::string> alpn;          // empty: no ALPN extension
    // After server_name and ALPN, in this order. With no extension at all the extensions block
    // is omitted (a pre-TLS-1.2 hello), as RFC 8446 4.1.2 does not allow an empty one.
    std::span<const TlsExtension> extensions;
    // The handshake message is cut into records of at most this many bytes (1..2^14).
    std::size_t record_payload = max_tls_record_payload;
};

// Record version 0x0301 (RFC 8446 5.1: an initial ClientHello's record says TLS 1.0),
// legacy_version 0x0303, null compression only.
// Preconditions (asserted): the fields fit their TLS length prefixes: session_id at most 32
// bytes, sni at most 65530 bytes, each ALPN id at most 255 bytes (an empty one is written, for
// tests of the parser) and the whole extensions block at most 65535 bytes; random is empty or 32 bytes; record_payload in 1..2^14.
std::vector<std::uint8_t> write_client_hello(const ClientHelloSpec& spec);

}  // namespace passgate
