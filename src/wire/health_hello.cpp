// Bytes of the `tls` health check (see health_hello.h). Field layouts: RFC 8446 4.1.2 (ClientHello)
// and 4.2 (extensions), RFC 6066 3 (server_name), RFC 8422 5.1 (ec_point_formats),
// RFC 7627 (extended_master_secret), RFC 5746 (renegotiation_info).

#include "src/wire/health_hello.h"

#include <cassert>
#include <random>

namespace passgate {

namespace {

using Bytes = std::vector<std::uint8_t>;

void put_u8(Bytes& out, unsigned value) { out.push_back(static_cast<std::uint8_t>(value & 0xff)); }
void put_u16(Bytes& out, unsigned value) {
    put_u8(out, value >> 8);
    put_u8(out, value);
}
void put_bytes(Bytes& out, std::span<const std::uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

// Reserves a length field of `width` bytes; `close_length` fills it with the bytes written since.
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
    assert(length == 0);
}

void put_extension(Bytes& out, unsigned type, std::span<const std::uint8_t> body) {
    put_u16(out, type);
    put_u16(out, static_cast<unsigned>(body.size()));
    put_bytes(out, body);
}

// What browsers and OpenSSL offer first; the ECDHE suites let a TLS 1.2-only server answer.
constexpr unsigned kCipherSuites[] = {
    0x1301, 0x1302, 0x1303,  // TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256
    0xc02b, 0xc02f,          // ECDHE-{ECDSA,RSA}-AES128-GCM-SHA256
    0xc02c, 0xc030,          // ECDHE-{ECDSA,RSA}-AES256-GCM-SHA384
    0xcca9, 0xcca8,          // ECDHE-{ECDSA,RSA}-CHACHA20-POLY1305
};
// secp384r1 too: a TLS 1.2 server with a P-384 certificate needs it offered, and a TLS 1.3
// server that only takes P-384 answers with a HelloRetryRequest, which passes.
constexpr unsigned kGroups[] = {0x001d, 0x0017, 0x0018};  // x25519, secp256r1, secp384r1
constexpr unsigned kSignatureAlgorithms[] = {
    0x0403, 0x0804, 0x0401,  // ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    0x0503, 0x0805, 0x0501,  // ecdsa_secp384r1_sha384, rsa_pss_rsae_sha384, rsa_pkcs1_sha384
    0x0806, 0x0601, 0x0807,  // rsa_pss_rsae_sha512, rsa_pkcs1_sha512, ed25519
};

constexpr unsigned kExtServerName = 0;
constexpr unsigned kExtSupportedGroups = 10;
constexpr unsigned kExtEcPointFormats = 11;
constexpr unsigned kExtSignatureAlgorithms = 13;
constexpr unsigned kExtExtendedMasterSecret = 23;
constexpr unsigned kExtSupportedVersions = 43;
constexpr unsigned kExtKeyShare = 51;
constexpr unsigned kExtRenegotiationInfo = 0xff01;

constexpr std::uint8_t kContentAlert = 21;
constexpr std::uint8_t kContentHandshake = 22;
constexpr std::uint8_t kHandshakeClientHello = 1;
constexpr std::uint8_t kHandshakeServerHello = 2;

void put_u16_list(Bytes& out, std::span<const unsigned> values) {
    put_u16(out, static_cast<unsigned>(values.size() * 2));
    for (const unsigned value : values) put_u16(out, value);
}

Bytes extensions(std::string_view sni, const HelloEntropy& entropy) {
    Bytes out;
    Bytes body;
    if (!sni.empty()) {
        const std::size_t list = open_length(body, 2);
        put_u8(body, 0);  // name_type host_name
        put_u16(body, static_cast<unsigned>(sni.size()));
        body.insert(body.end(), sni.begin(), sni.end());
        close_length(body, list, 2);
        put_extension(out, kExtServerName, body);
    }
    body.clear();
    put_u16_list(body, kGroups);
    put_extension(out, kExtSupportedGroups, body);

    body = {1, 0};  // one format: uncompressed
    put_extension(out, kExtEcPointFormats, body);

    body.clear();
    put_u16_list(body, kSignatureAlgorithms);
    put_extension(out, kExtSignatureAlgorithms, body);

    put_extension(out, kExtExtendedMasterSecret, {});

    body = {4, 0x03, 0x04, 0x03, 0x03};  // TLS 1.3, TLS 1.2
    put_extension(out, kExtSupportedVersions, body);

    body.clear();
    const std::size_t shares = open_length(body, 2);
    put_u16(body, kGroups[0]);  // x25519
    put_u16(body, static_cast<unsigned>(entropy.key_share.size()));
    put_bytes(body, entropy.key_share);
    close_length(body, shares, 2);
    put_extension(out, kExtKeyShare, body);

    body = {0};  // empty renegotiated_connection: "this is an initial handshake"
    put_extension(out, kExtRenegotiationInfo, body);
    return out;
}

}  // namespace

std::vector<std::uint8_t> make_health_client_hello(std::string_view sni, const HelloEntropy& entropy) {
    assert(sni.size() <= 253);
    Bytes out;
    put_u8(out, kContentHandshake);
    put_u16(out, 0x0301);  // RFC 8446 5.1: an initial ClientHello's record says TLS 1.0
    const std::size_t record = open_length(out, 2);
    put_u8(out, kHandshakeClientHello);
    const std::size_t message = open_length(out, 3);
    put_u16(out, 0x0303);  // legacy_version: TLS 1.2; 1.3 is offered in supported_versions
    put_bytes(out, entropy.random);
    put_u8(out, static_cast<unsigned>(entropy.session_id.size()));
    put_bytes(out, entropy.session_id);
    put_u16_list(out, kCipherSuites);
    put_u8(out, 1);  // compression methods: null only
    put_u8(out, 0);
    const Bytes extension_bytes = extensions(sni, entropy);
    put_u16(out, static_cast<unsigned>(extension_bytes.size()));
    put_bytes(out, extension_bytes);
    close_length(out, message, 3);
    close_length(out, record, 2);
    return out;
}

std::vector<std::uint8_t> make_health_client_hello(std::string_view sni) {
    std::random_device device;
    HelloEntropy entropy;
    for (auto* field : {&entropy.random, &entropy.session_id, &entropy.key_share})
        for (std::uint8_t& byte : *field) byte = static_cast<std::uint8_t>(device());
    return make_health_client_hello(sni, entropy);
}

ServerReply classify_server_reply(std::span<const std::uint8_t> received) {
    if (received.empty()) return ServerReply::need_more;
    if (received[0] == kContentAlert) return ServerReply::alert;
    if (received[0] != kContentHandshake) return ServerReply::not_server_hello;
    if (received.size() >= 2 && received[1] != 3) return ServerReply::not_server_hello;  // version major
    if (received.size() >= 5 && received[3] == 0 && received[4] == 0)
        return ServerReply::not_server_hello;  // an empty handshake record is invalid
    if (received.size() < kServerReplyBytes) return ServerReply::need_more;
    return received[5] == kHandshakeServerHello ? ServerReply::server_hello
                                                : ServerReply::not_server_hello;
}

}  // namespace passgate
