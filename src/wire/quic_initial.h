#pragma once
// QUIC client Initial packets, read without any key of the backend's (RFC 9001 §5.2: Initial keys
// come from the client's first Destination Connection ID and a public per-version salt). Pure: no
// I/O; untrusted input, every length checked. OpenSSL 3.0 primitives for the crypto (EVP_KDF
// HKDF, AES-128-ECB for the header-protection mask, AES-128-GCM), none written by hand.
//
// CONTRACT (session 12, lead): the data path (src/proxy/, branch quic-proxy) codes against the
// names below. The implementer (branch quic-wire) may ADD to this header freely; a change to a
// name or meaning below must be agreed with the lead first.

#include "src/wire/client_hello.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace passgate::quic {

inline constexpr std::uint32_t version_1 = 0x00000001;  // RFC 9000
inline constexpr std::uint32_t version_2 = 0x6b3343cf;  // RFC 9369
inline constexpr std::size_t max_cid_length = 20;       // RFC 9000 §17.2 (v1, v2)
inline constexpr std::size_t min_initial_datagram = 1200;  // RFC 9000 §14.1

// The header of the first packet in a datagram, read without decryption: what the data path
// needs to find a flow or to decide that a datagram is worth decrypting.
enum class PacketForm {
    short_header,         // 1-RTT: only the DCID (of a length the reader must know) identifies it
    version_negotiation,  // long header, version 0
    initial,
    zero_rtt,
    handshake,
    retry,
    unsupported_version,  // long header, a version other than 0, v1 and v2
};

struct PacketHeader {
    PacketForm form = PacketForm::short_header;
    std::uint32_t version = 0;             // long header only
    std::span<const std::uint8_t> dcid;    // short header: the first `short_dcid_length` bytes
    std::span<const std::uint8_t> scid;    // long header only
};

// nullopt: not a QUIC packet at all (fixed bit clear, truncated invariant header, CID over 20
// bytes). Short headers take their DCID length from the caller (the length of the server's CIDs
// learned for a flow; 0 when none is known).
std::optional<PacketHeader> read_header(std::span<const std::uint8_t> datagram,
                                        std::size_t short_dcid_length);

// Why a client's first datagrams were refused before routing; the reasons the data path counts.
enum class InitialError {
    none,
    not_quic,             // read_header failed, or a packet that is not a long header
    unsupported_version,  // a long header with a version this reader does not decrypt
    short_datagram,       // an Initial-carrying datagram under 1200 bytes (RFC 9000 §14.1)
    undecryptable,        // header protection or AEAD failed (wrong DCID, tampered, not Initial keys)
    malformed,            // bad varint/length, a frame not allowed in an Initial, bad CRYPTO bounds
    too_large,            // CRYPTO data beyond max_hello_size, or a hello that declares more
    too_many_packets,     // more Initial packets than max_packets without a complete hello
    hello,                // CRYPTO data complete but the ClientHello parser rejected it (see hello_error)
};
std::string_view initial_error_name(InitialError error);  // snake_case, stable (metrics, logs)

struct InitialProgress {
    enum class Status { need_more, complete, rejected };
    Status status = Status::need_more;
    InitialError error = InitialError::none;
    HelloError hello_error = HelloError::none;  // when error == hello
    ClientHello hello;                          // when complete: sni, alpn (record_* fields unused)
};

// One client flow's Initial packets until its ClientHello is complete. feed() takes each
// datagram the client sends (coalesced packets allowed; packets that are not Initials, or whose
// DCID differs from the first Initial's, are skipped, not errors). CRYPTO frames are reassembled
// by offset: out of order, overlapping and retransmitted ranges are fine (overlaps must carry the
// same bytes, else malformed). Memory held is bounded by max_hello_size plus a small constant.
// After complete or rejected the verdict is final.
class InitialAssembler {
public:
    InitialAssembler(std::size_t max_hello_size, std::size_t max_packets);

    InitialProgress feed(std::span<const std::uint8_t> datagram);

    std::uint32_t version() const;                          // of the first Initial
    std::span<const std::uint8_t> original_dcid() const;    // the first Initial's DCID
    std::span<const std::uint8_t> client_scid() const;      // the first Initial's SCID
    std::size_t packets_seen() const;
    std::size_t bytes_held() const;                         // for the per-worker memory bound

    // Added by the implementer (quic-wire): not copyable (it owns OpenSSL contexts), movable.
    ~InitialAssembler();
    InitialAssembler(InitialAssembler&&) noexcept;
    InitialAssembler& operator=(InitialAssembler&&) noexcept;
    InitialAssembler(const InitialAssembler&) = delete;
    InitialAssembler& operator=(const InitialAssembler&) = delete;

private:
    struct Keys;       // the flow's Initial keys as ready OpenSSL contexts (quic_initial.cpp)
    struct KeysFree {
        void operator()(Keys* keys) const;
    };
    struct Range {     // received CRYPTO bytes [begin, end), sorted, disjoint, not adjacent
        std::uint32_t begin;
        std::uint32_t end;
    };
    InitialProgress decide(InitialProgress verdict);
    InitialError feed_packet(std::span<const std::uint8_t> packet, std::size_t pn_offset);
    InitialError open_and_walk(std::span<const std::uint8_t> packet, std::size_t pn_offset);
    InitialError walk_frames(std::span<const std::uint8_t> payload);
    InitialError add_crypto(std::uint64_t offset, std::span<const std::uint8_t> data);
    std::optional<InitialProgress> check_hello();

    std::size_t max_hello_size_;
    std::size_t max_packets_;
    std::uint32_t version_ = 0;
    std::array<std::uint8_t, max_cid_length> dcid_{};
    std::array<std::uint8_t, max_cid_length> scid_{};
    std::uint8_t dcid_length_ = 0;
    std::uint8_t scid_length_ = 0;
    bool have_flow_ = false;        // the first Initial was seen: version, CIDs and keys are set
    std::size_t packets_ = 0;
    std::int64_t largest_pn_ = -1;  // largest packet number opened (RFC 9000 A.3 decoding)
    std::unique_ptr<Keys, KeysFree> keys_;
    std::vector<std::uint8_t> crypto_;  // the CRYPTO stream, indexed by offset
    std::vector<Range> ranges_;
    std::optional<InitialProgress> verdict_;
};

// The client's Initial packet-protection keys for a version and a first DCID (RFC 9001 §5.2,
// RFC 9369 §3.3). nullopt for a version other than v1 and v2. Exposed for tests and the writer.
struct InitialKeys {
    std::array<std::uint8_t, 16> key{};
    std::array<std::uint8_t, 12> iv{};
    std::array<std::uint8_t, 16> hp{};
};
std::optional<InitialKeys> client_initial_keys(std::uint32_t version,
                                               std::span<const std::uint8_t> dcid);

// Client Initials whose ClientHello needs more than this many CRYPTO pieces (disjoint received
// ranges at once) are refused as malformed: real clients send a hello in a handful of frames
// (Chrome's "chaos protection" shuffles it into a few); this bounds the reassembly's work.
inline constexpr std::size_t max_crypto_ranges = 64;

// QUIC variable-length integer (RFC 9000 §16) at the start of `data`: the value and its size.
struct VarInt {
    std::uint64_t value = 0;
    std::size_t size = 0;
};
std::optional<VarInt> read_varint(std::span<const std::uint8_t> data);

}  // namespace passgate::quic
