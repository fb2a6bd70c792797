// Bytes of the `tls` health check (see health_hello.h), written by the one ClientHello writer
// (client_hello_writer.h). Extension layouts: RFC 8446 4.2, RFC 8422 5.1 (ec_point_formats),
// RFC 7627 (extended_master_secret), RFC 5746 (renegotiation_info).

#include "src/wire/health_hello.h"

#include "src/wire/client_hello_writer.h"

#include <cassert>
#include <random>

namespace passgate {

namespace {

using Bytes = std::vector<std::uint8_t>;

void put_u16(Bytes& out, unsigned value) {
    out.push_back(static_cast<std::uint8_t>((value >> 8) & 0xff));
    out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

// What browsers and OpenSSL offer first; the ECDHE suites let a TLS 1.2-only server answer.
constexpr std::uint16_t kCipherSuites[] = {
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

constexpr std::uint16_t kExtSupportedGroups = 10;
constexpr std::uint16_t kExtEcPointFormats = 11;
constexpr std::uint16_t kExtSignatureAlgorithms = 13;
constexpr std::uint16_t kExtExtendedMasterSecret = 23;
constexpr std::uint16_t kExtSupportedVersions = 43;
constexpr std::uint16_t kExtKeyShare = 51;
constexpr std::uint16_t kExtRenegotiationInfo = 0xff01;

constexpr std::uint8_t kContentAlert = 21;
constexpr std::uint8_t kContentHandshake = 22;
constexpr std::uint8_t kHandshakeServerHello = 2;

Bytes u16_list(std::span<const unsigned> values) {
    Bytes out;
    put_u16(out, static_cast<unsigned>(values.size() * 2));
    for (const unsigned value : values) put_u16(out, value);
    return out;
}

// Everything after server_name (which the writer puts first).
std::vector<TlsExtension> extensions(const HelloEntropy& entropy) {
    Bytes key_share;
    put_u16(key_share, static_cast<unsigned>(2 + 2 + entropy.key_share.size()));  // client_shares
    put_u16(key_share, kGroups[0]);  // x25519
    put_u16(key_share, static_cast<unsigned>(entropy.key_share.size()));
    key_share.insert(key_share.end(), entropy.key_share.begin(), entropy.key_share.end());
    return {
        {kExtSupportedGroups, u16_list(kGroups)},
        {kExtEcPointFormats, {1, 0}},  // one format: uncompressed
        {kExtSignatureAlgorithms, u16_list(kSignatureAlgorithms)},
        {kExtExtendedMasterSecret, {}},
        {kExtSupportedVersions, {4, 0x03, 0x04, 0x03, 0x03}},  // TLS 1.3, TLS 1.2
        {kExtKeyShare, std::move(key_share)},
        {kExtRenegotiationInfo, {0}},  // empty renegotiated_connection: an initial handshake
    };
}

}  // namespace

std::vector<std::uint8_t> make_health_client_hello(std::string_view sni, const HelloEntropy& entropy) {
    assert(sni.size() <= 253);
    const std::vector<TlsExtension> rest = extensions(entropy);
    ClientHelloSpec spec;
    spec.random = entropy.random;
    spec.session_id = entropy.session_id;
    spec.cipher_suites = kCipherSuites;
    spec.sni = sni;
    spec.extensions = rest;
    return write_client_hello(spec);  // one record: the hello is far below 2^14 bytes
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
