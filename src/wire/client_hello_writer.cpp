// The one ClientHello writer (see client_hello_writer.h). Field layouts: RFC 8446 4.1.2
// (ClientHello) and 4.2 (extensions), RFC 6066 3 (server_name), RFC 7301 3.1 (ALPN).

#include "src/wire/client_hello_writer.h"

#include <algorithm>
#include <cassert>

namespace passgate {

namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint8_t kContentHandshake = 22;
constexpr std::uint8_t kHandshakeClientHello = 1;
constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint16_t kExtAlpn = 16;
constexpr std::uint8_t kNameTypeHostName = 0;
constexpr std::size_t kRandomSize = 32;

void put_u8(Bytes& out, std::size_t value) { out.push_back(static_cast<std::uint8_t>(value & 0xff)); }
void put_u16(Bytes& out, std::size_t value) {
    put_u8(out, value >> 8);
    put_u8(out, value);
}
void put_bytes(Bytes& out, std::span<const std::uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}
void put_text(Bytes& out, std::string_view text) { out.insert(out.end(), text.begin(), text.end()); }

// Reserves a big-endian length field of `width` bytes; close_length fills it with the number of
// bytes written after it.
std::size_t open_length(Bytes& out, std::size_t width) {
    const std::size_t at = out.size();
    out.resize(out.size() + width, 0);
    return at;
}
void close_length(Bytes& out, std::size_t at, std::size_t width) {
    std::size_t length = out.size() - at - width;
    for (std::size_t i = width; i > 0; --i) {
        out[at + i - 1] = static_cast<std::uint8_t>(length & 0xff);
        length >>= 8;
    }
    assert(length == 0);  // the field was too narrow for what was written
}

void put_server_name(Bytes& out, std::string_view sni) {
    put_u16(out, kExtServerName);
    const std::size_t extension = open_length(out, 2);
    const std::size_t list = open_length(out, 2);
    put_u8(out, kNameTypeHostName);
    const std::size_t name = open_length(out, 2);
    put_text(out, sni);
    close_length(out, name, 2);
    close_length(out, list, 2);
    close_length(out, extension, 2);
}

void put_alpn(Bytes& out, std::span<const std::string> protocols) {
    put_u16(out, kExtAlpn);
    const std::size_t extension = open_length(out, 2);
    const std::size_t list = open_length(out, 2);
    for (const std::string& protocol : protocols) {
        assert(protocol.size() <= 255);  // an empty id is written: the parser rejects it
        const std::size_t name = open_length(out, 1);
        put_text(out, protocol);
        close_length(out, name, 1);
    }
    close_length(out, list, 2);
    close_length(out, extension, 2);
}

Bytes extensions_block(const ClientHelloSpec& spec) {
    Bytes out;
    if (!spec.sni.empty()) put_server_name(out, spec.sni);
    if (!spec.alpn.empty()) put_alpn(out, spec.alpn);
    for (const TlsExtension& extension : spec.extensions) {
        put_u16(out, extension.type);
        const std::size_t length = open_length(out, 2);
        put_bytes(out, extension.body);
        close_length(out, length, 2);
    }
    return out;
}

Bytes handshake_message(const ClientHelloSpec& spec) {
    assert(spec.random.empty() || spec.random.size() == kRandomSize);
    assert(spec.session_id.size() <= 32);
    assert(!spec.cipher_suites.empty());
    Bytes out;
    put_u8(out, kHandshakeClientHello);
    const std::size_t message = open_length(out, 3);
    put_u16(out, 0x0303);  // legacy_version: TLS 1.2; 1.3 is offered in supported_versions
    if (spec.random.empty()) {
        out.resize(out.size() + kRandomSize, 0);
    } else {
        put_bytes(out, spec.random);
    }
    put_u8(out, spec.session_id.size());
    put_bytes(out, spec.session_id);
    put_u16(out, spec.cipher_suites.size() * 2);
    for (const std::uint16_t suite : spec.cipher_suites) put_u16(out, suite);
    put_u8(out, 1);  // compression methods: null only
    put_u8(out, 0);
    const Bytes extensions = extensions_block(spec);
    if (!extensions.empty()) {
        const std::size_t block = open_length(out, 2);
        put_bytes(out, extensions);
        close_length(out, block, 2);
    }
    close_length(out, message, 3);
    return out;
}

}  // namespace

std::vector<std::uint8_t> write_client_hello(const ClientHelloSpec& spec) {
    assert(spec.record_payload >= 1 && spec.record_payload <= max_tls_record_payload);
    const Bytes message = handshake_message(spec);
    const std::size_t per_record = std::clamp<std::size_t>(spec.record_payload, 1, max_tls_record_payload);
    Bytes records;
    records.reserve(message.size() + (message.size() / per_record + 1) * 5);
    for (std::size_t at = 0; at < message.size(); at += per_record) {
        const std::size_t length = std::min(per_record, message.size() - at);
        put_u8(records, kContentHandshake);
        put_u16(records, 0x0301);
        put_u16(records, length);
        put_bytes(records, std::span(message).subspan(at, length));
    }
    return records;
}

}  // namespace passgate
