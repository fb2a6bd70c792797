#pragma once
// The bytes of a `tls` health check: the ClientHello the checker sends, and the reading of the
// first bytes a backend answers with. Pure functions (no I/O), unit-tested alone.
//
// The check only asks "does a TLS server answer here?": the handshake is abandoned as soon as
// the first record of the answer shows a ServerHello, so the hello is built to be accepted by
// common servers (TLS 1.3 and 1.2, ECDSA and RSA certificates), not to complete a handshake.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace passgate {

// The random-looking fields of the hello. They need not be secret: no key is ever derived from
// them (the handshake stops at the ServerHello), so they only have to look like a real client's.
struct HelloEntropy {
    std::array<std::uint8_t, 32> random{};
    std::array<std::uint8_t, 32> session_id{};  // TLS 1.3 middlebox compatibility mode
    std::array<std::uint8_t, 32> key_share{};   // an x25519 public value
};

// A ClientHello in one TLS record (record version 0x0301, legacy_version 0x0303) offering TLS 1.3
// and 1.2: TLS 1.3 suites and ECDHE AES-GCM/ChaCha20 suites, groups x25519, secp256r1 and
// secp384r1, an x25519 key share, ECDSA/RSA-PSS/RSA/Ed25519 signature algorithms, and a
// server_name extension when `sni` is not empty.
// Precondition: `sni` is empty or a hostname the config accepted (DNS labels, at most 253 bytes).
std::vector<std::uint8_t> make_health_client_hello(std::string_view sni, const HelloEntropy& entropy);
// The same with fresh entropy (std::random_device).
std::vector<std::uint8_t> make_health_client_hello(std::string_view sni);

// What the first bytes a server sent say about the check.
enum class ServerReply {
    need_more,         // fewer bytes than kServerReplyBytes and no verdict yet
    server_hello,      // handshake record whose first message is type 2 (ServerHello or HRR)
    alert,             // alert record (content type 21)
    not_server_hello,  // anything else: another record type, another message, not TLS at all
};
// The verdict never needs more than this many bytes (record header + handshake type).
inline constexpr std::size_t kServerReplyBytes = 6;
ServerReply classify_server_reply(std::span<const std::uint8_t> received);

}  // namespace passgate
