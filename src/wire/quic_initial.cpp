// QUIC client Initial reader (see quic_initial.h for the contract).
//
// Per datagram: walk the coalesced long-header packets by their Length fields; for each Initial
// of the flow (same version and first DCID): remove header protection (AES-128-ECB of a 16-byte
// sample), decode the packet number (RFC 9000 A.3), open the payload (AES-128-GCM, the header as
// associated data), walk its frames. CRYPTO data goes into one buffer indexed by offset (bounded
// by max_hello_size); the received ranges are kept sorted and merged. When the bytes from offset
// 0 hold the whole handshake message, it goes to the ClientHello parser (no TLS records in QUIC).
//
// Costs: the keys are derived once per flow (five HKDF operations) into two EVP_CIPHER_CTX that
// keep their key schedules; a packet costs one AES block for the mask, one GCM open of at most a
// datagram, and a copy of the packet. The algorithms are fetched once per process.

#include "src/wire/quic_initial.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <utility>

namespace passgate::quic {

namespace {

using Bytes = std::span<const std::uint8_t>;

// RFC 9001 §5.2 and RFC 9369 §3.3.1.
constexpr std::array<std::uint8_t, 20> kSaltV1{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                                               0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
constexpr std::array<std::uint8_t, 20> kSaltV2{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                                               0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};
constexpr std::size_t kSecretSize = 32;  // SHA-256
constexpr std::size_t kTagSize = 16;
constexpr std::size_t kSampleSize = 16;
constexpr std::size_t kMaxPacketNumberLength = 4;
// RFC 9000 §7.2: a client's first Destination Connection ID is at least 8 bytes; servers drop
// Initials with a shorter one.
constexpr std::size_t kMinClientDcid = 8;
// What the two EVP_CIPHER_CTX of a flow hold on the heap beyond Keys itself, for bytes_held():
// OpenSSL 3.0's EVP_CIPHER_CTX (about 170 bytes) plus the provider's AES-GCM (about 700) and
// AES-ECB (about 300) contexts with their key schedules, rounded up.
constexpr std::size_t kCipherContextBytes = 2048;

constexpr std::uint8_t kFramePadding = 0x00;
constexpr std::uint8_t kFramePing = 0x01;
constexpr std::uint8_t kFrameAck = 0x02;
constexpr std::uint8_t kFrameAckEcn = 0x03;
constexpr std::uint8_t kFrameCrypto = 0x06;
constexpr std::uint8_t kFrameConnectionClose = 0x1c;
constexpr std::uint64_t kMaxVarInt = (std::uint64_t{1} << 62) - 1;

struct VersionInfo {
    const std::array<std::uint8_t, 20>* salt;
    std::string_view key_label;
    std::string_view iv_label;
    std::string_view hp_label;
};

std::optional<VersionInfo> version_info(std::uint32_t version) {
    if (version == version_1) return VersionInfo{&kSaltV1, "quic key", "quic iv", "quic hp"};
    if (version == version_2) return VersionInfo{&kSaltV2, "quicv2 key", "quicv2 iv", "quicv2 hp"};
    return std::nullopt;
}

// Fetched once per process (explicit fetches: OpenSSL 3.0's EVP_aes_128_gcm() would look the
// implementation up again on every init). Never freed: they live as long as the process.
struct Algorithms {
    EVP_KDF* hkdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    EVP_CIPHER* gcm = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
    EVP_CIPHER* ecb = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
};

const Algorithms& algorithms() {
    static const Algorithms instance;
    return instance;
}

// One HKDF context per thread with its digest set once: most of a derivation's cost was the
// context's creation and the digest's lookup (perf/QUIC_INITIAL.md). Freed when the thread ends.
struct KdfContextFree {
    void operator()(EVP_KDF_CTX* ctx) const { EVP_KDF_CTX_free(ctx); }
};

EVP_KDF_CTX* hkdf_context() {
    thread_local const std::unique_ptr<EVP_KDF_CTX, KdfContextFree> ctx = [] {
        EVP_KDF* kdf = algorithms().hkdf;
        std::unique_ptr<EVP_KDF_CTX, KdfContextFree> created(kdf == nullptr ? nullptr : EVP_KDF_CTX_new(kdf));
        char digest[] = "SHA256";
        const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                                     OSSL_PARAM_construct_end()};
        if (created && EVP_KDF_CTX_set_params(created.get(), params) != 1) created.reset();
        return created;
    }();
    return ctx.get();
}

// HKDF-Extract (mode EXTRACT_ONLY) or HKDF-Expand (EXPAND_ONLY) with SHA-256. Every call sets
// the mode, the key and the salt or info, so nothing of a previous call is used.
bool hkdf(int mode, Bytes key, Bytes salt_or_info, std::uint8_t* out, std::size_t out_size) {
    EVP_KDF_CTX* ctx = hkdf_context();
    if (ctx == nullptr || key.empty()) return false;
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(key.data()), key.size()),
        OSSL_PARAM_construct_octet_string(
            mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY ? OSSL_KDF_PARAM_SALT : OSSL_KDF_PARAM_INFO,
            const_cast<std::uint8_t*>(salt_or_info.data()), salt_or_info.size()),
        OSSL_PARAM_construct_end()};
    return EVP_KDF_derive(ctx, out, out_size, params) == 1;
}

// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
bool expand_label(Bytes secret, std::string_view label, std::uint8_t* out, std::size_t out_size) {
    constexpr std::string_view prefix = "tls13 ";
    std::array<std::uint8_t, 2 + 1 + 255 + 1> info{};
    std::size_t n = 0;
    info[n++] = static_cast<std::uint8_t>(out_size >> 8);
    info[n++] = static_cast<std::uint8_t>(out_size);
    info[n++] = static_cast<std::uint8_t>(prefix.size() + label.size());
    for (const char c : prefix) info[n++] = static_cast<std::uint8_t>(c);
    for (const char c : label) info[n++] = static_cast<std::uint8_t>(c);
    info[n++] = 0;  // context: empty
    return hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, secret, Bytes(info.data(), n), out, out_size);
}

std::uint32_t be32(Bytes data) {
    return (std::uint32_t{data[0]} << 24) | (std::uint32_t{data[1]} << 16) | (std::uint32_t{data[2]} << 8) |
           std::uint32_t{data[3]};
}

// RFC 9000 A.3: the full packet number closest to the next expected one.
std::uint64_t decode_packet_number(std::int64_t largest, std::uint64_t truncated, std::size_t length) {
    const std::uint64_t expected = static_cast<std::uint64_t>(largest + 1);
    const std::uint64_t window = std::uint64_t{1} << (length * 8);
    const std::uint64_t half = window / 2;
    const std::uint64_t candidate = (expected & ~(window - 1)) | truncated;
    if (candidate + half <= expected && candidate < (std::uint64_t{1} << 62) - window) return candidate + window;
    if (candidate > expected + half && candidate >= window) return candidate - window;
    return candidate;
}

InitialProgress rejected(InitialError error, HelloError hello_error = HelloError::none) {
    InitialProgress progress;
    progress.status = InitialProgress::Status::rejected;
    progress.error = error;
    progress.hello_error = hello_error;
    return progress;
}

// A frame walk over an opened payload: every read bounded by the payload.
class FrameReader {
public:
    explicit FrameReader(Bytes data) : data_(data) {}
    bool empty() const { return at_ == data_.size(); }
    std::uint8_t byte() { return data_[at_++]; }
    std::optional<std::uint64_t> varint() {
        const auto v = read_varint(data_.subspan(at_));
        if (!v) return std::nullopt;
        at_ += v->size;
        return v->value;
    }
    std::optional<Bytes> bytes(std::uint64_t count) {
        if (count > data_.size() - at_) return std::nullopt;
        const Bytes out = data_.subspan(at_, static_cast<std::size_t>(count));
        at_ += out.size();
        return out;
    }
    bool skip_varints(std::size_t count) {
        for (std::size_t i = 0; i < count; ++i)
            if (!varint()) return false;
        return true;
    }

private:
    Bytes data_;
    std::size_t at_ = 0;
};

}  // namespace

std::optional<VarInt> read_varint(std::span<const std::uint8_t> data) {
    if (data.empty()) return std::nullopt;
    const std::size_t size = std::size_t{1} << (data[0] >> 6);
    if (data.size() < size) return std::nullopt;
    std::uint64_t value = data[0] & 0x3f;
    for (std::size_t i = 1; i < size; ++i) value = (value << 8) | data[i];
    return VarInt{value, size};
}

std::optional<InitialKeys> client_initial_keys(std::uint32_t version, std::span<const std::uint8_t> dcid) {
    const auto info = version_info(version);
    if (!info || dcid.empty()) return std::nullopt;
    std::array<std::uint8_t, kSecretSize> initial{};
    std::array<std::uint8_t, kSecretSize> client{};
    InitialKeys keys;
    const bool ok = hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, dcid, Bytes(*info->salt), initial.data(), initial.size()) &&
                    expand_label(initial, "client in", client.data(), client.size()) &&
                    expand_label(client, info->key_label, keys.key.data(), keys.key.size()) &&
                    expand_label(client, info->iv_label, keys.iv.data(), keys.iv.size()) &&
                    expand_label(client, info->hp_label, keys.hp.data(), keys.hp.size());
    if (!ok) return std::nullopt;
    return keys;
}

std::optional<PacketHeader> read_header(std::span<const std::uint8_t> datagram, std::size_t short_dcid_length) {
    if (datagram.empty()) return std::nullopt;
    const std::uint8_t first = datagram[0];
    PacketHeader header;
    if ((first & 0x80) == 0) {
        if ((first & 0x40) == 0 || short_dcid_length > max_cid_length || datagram.size() < 1 + short_dcid_length)
            return std::nullopt;
        header.form = PacketForm::short_header;
        header.dcid = datagram.subspan(1, short_dcid_length);
        return header;
    }
    // RFC 8999 §5.1: flags(1) version(4) dcid_len(1) dcid scid_len(1) scid.
    if (datagram.size() < 6) return std::nullopt;
    const std::size_t dcid_length = datagram[5];
    if (dcid_length > max_cid_length || datagram.size() < 7 + dcid_length) return std::nullopt;
    const std::size_t scid_length = datagram[6 + dcid_length];
    if (scid_length > max_cid_length || datagram.size() < 7 + dcid_length + scid_length) return std::nullopt;
    header.version = be32(datagram.subspan(1, 4));
    header.dcid = datagram.subspan(6, dcid_length);
    header.scid = datagram.subspan(7 + dcid_length, scid_length);
    if (header.version == 0) {
        // Version Negotiation: the fixed bit is not part of the invariants (RFC 8999 §6).
        header.form = PacketForm::version_negotiation;
        return header;
    }
    if (header.version != version_1 && header.version != version_2) {
        // Nor for an unknown version: only its invariant fields are read.
        header.form = PacketForm::unsupported_version;
        return header;
    }
    if ((first & 0x40) == 0) return std::nullopt;
    const unsigned type = (first >> 4) & 0x03;
    // RFC 9000 §17.2 and RFC 9369 §3.2 (v2 rotates the type codes).
    static constexpr std::array<PacketForm, 4> v1_types{PacketForm::initial, PacketForm::zero_rtt,
                                                        PacketForm::handshake, PacketForm::retry};
    static constexpr std::array<PacketForm, 4> v2_types{PacketForm::retry, PacketForm::initial,
                                                        PacketForm::zero_rtt, PacketForm::handshake};
    header.form = header.version == version_1 ? v1_types[type] : v2_types[type];
    return header;
}

std::string_view initial_error_name(InitialError error) {
    switch (error) {
        case InitialError::none: return "none";
        case InitialError::not_quic: return "not_quic";
        case InitialError::unsupported_version: return "unsupported_version";
        case InitialError::short_datagram: return "short_datagram";
        case InitialError::undecryptable: return "undecryptable";
        case InitialError::malformed: return "malformed";
        case InitialError::too_large: return "too_large";
        case InitialError::too_many_packets: return "too_many_packets";
        case InitialError::hello: return "hello";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------------------------
// InitialAssembler

struct InitialAssembler::Keys {
    EVP_CIPHER_CTX* aead = nullptr;  // AES-128-GCM, decrypting, key set; the nonce per packet
    EVP_CIPHER_CTX* hp = nullptr;    // AES-128-ECB, encrypting (the mask), key set
    std::array<std::uint8_t, 12> iv{};
};

void InitialAssembler::KeysFree::operator()(Keys* keys) const {
    EVP_CIPHER_CTX_free(keys->aead);
    EVP_CIPHER_CTX_free(keys->hp);
    delete keys;
}

InitialAssembler::InitialAssembler(std::size_t max_hello_size, std::size_t max_packets)
    : max_hello_size_(std::min<std::size_t>(max_hello_size, std::numeric_limits<std::uint32_t>::max())),
      max_packets_(max_packets) {}

InitialAssembler::~InitialAssembler() = default;
InitialAssembler::InitialAssembler(InitialAssembler&&) noexcept = default;
InitialAssembler& InitialAssembler::operator=(InitialAssembler&&) noexcept = default;

std::uint32_t InitialAssembler::version() const { return version_; }
std::span<const std::uint8_t> InitialAssembler::original_dcid() const { return {dcid_.data(), dcid_length_}; }
std::span<const std::uint8_t> InitialAssembler::client_scid() const { return {scid_.data(), scid_length_}; }
std::size_t InitialAssembler::packets_seen() const { return packets_; }

std::size_t InitialAssembler::bytes_held() const {
    std::size_t held = sizeof(*this) + crypto_.capacity() + ranges_.capacity() * sizeof(Range);
    if (keys_) held += sizeof(Keys) + kCipherContextBytes;
    if (verdict_) {
        held += verdict_->hello.sni.capacity() + verdict_->hello.alpn.capacity() * sizeof(std::string);
        for (const auto& name : verdict_->hello.alpn) held += name.capacity();
    }
    return held;
}

InitialProgress InitialAssembler::decide(InitialProgress verdict) {
    // Final: what was held for the reassembly is released (bytes_held drops to the verdict).
    keys_.reset();
    std::vector<std::uint8_t>().swap(crypto_);
    std::vector<Range>().swap(ranges_);
    verdict_ = std::move(verdict);
    return *verdict_;
}

InitialProgress InitialAssembler::feed(std::span<const std::uint8_t> datagram) {
    if (verdict_) return *verdict_;
    try {
        const auto first = read_header(datagram, 0);
        if (!first || first->form == PacketForm::short_header) return decide(rejected(InitialError::not_quic));
        if (first->form == PacketForm::version_negotiation || first->form == PacketForm::unsupported_version)
            return decide(rejected(InitialError::unsupported_version));
        std::size_t at = 0;
        // Coalesced packets (RFC 9000 §12.2): long headers, each delimited by its Length; a short
        // header (or trailing zero padding, which reads as one) can only be last and ends the walk.
        while (at < datagram.size() && (datagram[at] & 0x80) != 0) {
            const Bytes rest = datagram.subspan(at);
            const auto header = read_header(rest, 0);
            if (!header || header->form == PacketForm::version_negotiation ||
                header->form == PacketForm::unsupported_version || header->form == PacketForm::retry)
                break;  // nothing a client coalesces: the rest of the datagram is ignored
            std::size_t offset = 7 + header->dcid.size() + header->scid.size();
            if (header->form == PacketForm::initial) {
                if (datagram.size() < min_initial_datagram) return decide(rejected(InitialError::short_datagram));
                const auto token_length = read_varint(rest.subspan(offset));
                if (!token_length || token_length->value > rest.size() - offset - token_length->size)
                    return decide(rejected(InitialError::malformed));
                offset += token_length->size + static_cast<std::size_t>(token_length->value);
            }
            const auto length = read_varint(rest.subspan(offset));
            if (!length || length->value > rest.size() - offset - length->size)
                return decide(rejected(InitialError::malformed));
            const std::size_t pn_offset = offset + length->size;
            const std::size_t packet_end = pn_offset + static_cast<std::size_t>(length->value);
            if (header->form == PacketForm::initial) {
                if (const auto error = feed_packet(rest.first(packet_end), pn_offset); error != InitialError::none)
                    return decide(rejected(error));
                if (auto verdict = check_hello()) return decide(std::move(*verdict));
            }
            at += packet_end;
        }
    } catch (const std::bad_alloc&) {
        return decide(rejected(InitialError::too_large));  // bounded by max_hello_size: no room for it
    }
    return InitialProgress{};
}

// One Initial packet, [0, pn_offset) its header up to the packet number. The first one sets the
// flow (version, CIDs, keys); later ones of another version or DCID are skipped (none).
InitialError InitialAssembler::feed_packet(std::span<const std::uint8_t> packet, std::size_t pn_offset) {
    const auto header = read_header(packet, 0);  // read before by feed(): cannot fail
    if (have_flow_) {
        if (header->version != version_ || !std::ranges::equal(header->dcid, original_dcid()))
            return InitialError::none;
    } else {
        if (header->dcid.size() < kMinClientDcid) return InitialError::malformed;
        const auto derived = client_initial_keys(header->version, header->dcid);
        if (!derived) return InitialError::undecryptable;
        std::unique_ptr<Keys, KeysFree> keys(new Keys);
        keys->aead = EVP_CIPHER_CTX_new();
        keys->hp = EVP_CIPHER_CTX_new();
        keys->iv = derived->iv;
        const Algorithms& algs = algorithms();
        if (keys->aead == nullptr || keys->hp == nullptr || algs.gcm == nullptr || algs.ecb == nullptr ||
            EVP_DecryptInit_ex2(keys->aead, algs.gcm, derived->key.data(), nullptr, nullptr) != 1 ||
            EVP_EncryptInit_ex2(keys->hp, algs.ecb, derived->hp.data(), nullptr, nullptr) != 1 ||
            EVP_CIPHER_CTX_set_padding(keys->hp, 0) != 1)
            throw std::bad_alloc();  // OpenSSL out of memory (the algorithms are always there)
        keys_ = std::move(keys);
        version_ = header->version;
        dcid_length_ = static_cast<std::uint8_t>(header->dcid.size());
        scid_length_ = static_cast<std::uint8_t>(header->scid.size());
        std::ranges::copy(header->dcid, dcid_.begin());
        std::ranges::copy(header->scid, scid_.begin());
        have_flow_ = true;
    }
    if (packets_ >= max_packets_) return InitialError::too_many_packets;
    ++packets_;
    return open_and_walk(packet, pn_offset);
}

// Removes header protection, opens the payload and walks its frames.
InitialError InitialAssembler::open_and_walk(std::span<const std::uint8_t> packet, std::size_t pn_offset) {

    // RFC 9001 §5.4.2: the sample starts 4 bytes after the packet number's first byte.
    if (packet.size() < pn_offset + kMaxPacketNumberLength + kSampleSize) return InitialError::malformed;
    std::array<std::uint8_t, kSampleSize + 16> mask{};
    int mask_length = 0;
    if (EVP_EncryptUpdate(keys_->hp, mask.data(), &mask_length, packet.data() + pn_offset + kMaxPacketNumberLength,
                          static_cast<int>(kSampleSize)) != 1 ||
        mask_length != static_cast<int>(kSampleSize))
        return InitialError::undecryptable;
    std::vector<std::uint8_t> buffer(packet.begin(), packet.end());
    buffer[0] ^= mask[0] & 0x0f;
    const std::size_t pn_length = (buffer[0] & 0x03) + 1;
    std::uint64_t truncated = 0;
    for (std::size_t i = 0; i < pn_length; ++i) {
        buffer[pn_offset + i] ^= mask[1 + i];
        truncated = (truncated << 8) | buffer[pn_offset + i];
    }
    const std::uint64_t packet_number = decode_packet_number(largest_pn_, truncated, pn_length);
    const std::size_t header_length = pn_offset + pn_length;
    const std::size_t ciphertext_length = buffer.size() - header_length - kTagSize;  // >= 0: checked above

    std::array<std::uint8_t, 12> nonce = keys_->iv;
    for (std::size_t i = 0; i < 8; ++i) nonce[nonce.size() - 1 - i] ^= static_cast<std::uint8_t>(packet_number >> (8 * i));
    std::uint8_t* const ciphertext = buffer.data() + header_length;
    int out_length = 0;
    int final_length = 0;
    const bool opened =
        EVP_DecryptInit_ex2(keys_->aead, nullptr, nullptr, nonce.data(), nullptr) == 1 &&
        EVP_DecryptUpdate(keys_->aead, nullptr, &out_length, buffer.data(), static_cast<int>(header_length)) == 1 &&
        EVP_DecryptUpdate(keys_->aead, ciphertext, &out_length, ciphertext, static_cast<int>(ciphertext_length)) == 1 &&
        EVP_CIPHER_CTX_ctrl(keys_->aead, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize),
                            ciphertext + ciphertext_length) == 1 &&
        EVP_DecryptFinal_ex(keys_->aead, ciphertext + out_length, &final_length) == 1;
    if (!opened) return InitialError::undecryptable;
    // RFC 9000 §17.2: reserved bits that are not 0 after removing protection: a protocol violation.
    if ((buffer[0] & 0x0c) != 0) return InitialError::malformed;
    largest_pn_ = std::max<std::int64_t>(largest_pn_, static_cast<std::int64_t>(packet_number));

    return walk_frames(Bytes(ciphertext, ciphertext_length));
}

InitialError InitialAssembler::walk_frames(std::span<const std::uint8_t> payload) {
    FrameReader frames(payload);
    if (frames.empty()) return InitialError::malformed;  // RFC 9000 §12.4: at least one frame
    while (!frames.empty()) {
        // Frame types are varints in their shortest encoding (RFC 9000 §12.4): each type allowed
        // in an Initial is one byte under 0x40, so any other first byte is a refusal.
        const std::uint8_t type = frames.byte();
        switch (type) {
            case kFramePadding:
            case kFramePing: break;
            case kFrameAck:
            case kFrameAckEcn: {
                // Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range, the ranges
                // (Gap, Length), and for 0x03 three ECN counts. Each varint is at least a byte, so
                // the range loop ends within the payload.
                if (!frames.skip_varints(2)) return InitialError::malformed;
                const auto count = frames.varint();
                if (!count || !frames.skip_varints(1)) return InitialError::malformed;
                for (std::uint64_t i = 0; i < *count; ++i)
                    if (!frames.skip_varints(2)) return InitialError::malformed;
                if (type == kFrameAckEcn && !frames.skip_varints(3)) return InitialError::malformed;
                break;
            }
            case kFrameCrypto: {
                const auto offset = frames.varint();
                const auto length = frames.varint();
                if (!offset || !length) return InitialError::malformed;
                const auto data = frames.bytes(*length);
                if (!data || *offset + *length > kMaxVarInt) return InitialError::malformed;
                if (const auto error = add_crypto(*offset, *data); error != InitialError::none) return error;
                break;
            }
            case kFrameConnectionClose: {
                // The client gives up; its reason phrase is skipped. The flow stays undecided
                // (its state is bounded and the data path's deadline ends it).
                if (!frames.skip_varints(2)) return InitialError::malformed;
                const auto reason = frames.varint();
                if (!reason || !frames.bytes(*reason)) return InitialError::malformed;
                break;
            }
            default: return InitialError::malformed;  // RFC 9000 §17.2.2, table 3
        }
    }
    return InitialError::none;
}

InitialError InitialAssembler::add_crypto(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (data.empty()) return InitialError::none;
    if (offset > max_hello_size_ || data.size() > max_hello_size_ - offset) return InitialError::too_large;
    const auto begin = static_cast<std::uint32_t>(offset);
    const auto end = static_cast<std::uint32_t>(offset + data.size());
    // Bytes received before must match (a retransmission carries the same stream bytes).
    for (const Range& range : ranges_) {
        const std::uint32_t from = std::max(range.begin, begin);
        const std::uint32_t to = std::min(range.end, end);
        if (from < to && !std::equal(crypto_.begin() + from, crypto_.begin() + to, data.begin() + (from - begin)))
            return InitialError::malformed;
    }
    if (end > crypto_.size()) {
        // Grows geometrically but never past max_hello_size, so bytes_held stays within the bound.
        if (end > crypto_.capacity())
            crypto_.reserve(std::min<std::size_t>(std::max<std::size_t>(end, 2 * crypto_.capacity()), max_hello_size_));
        crypto_.resize(end);
    }
    std::copy(data.begin(), data.end(), crypto_.begin() + begin);
    // Merge [begin, end) with the ranges it overlaps or touches.
    auto first = std::lower_bound(ranges_.begin(), ranges_.end(), begin,
                                  [](const Range& range, std::uint32_t value) { return range.end < value; });
    auto last = first;
    Range merged{begin, end};
    while (last != ranges_.end() && last->begin <= end) {
        merged.begin = std::min(merged.begin, last->begin);
        merged.end = std::max(merged.end, last->end);
        ++last;
    }
    first = ranges_.erase(first, last);
    ranges_.insert(first, merged);
    if (ranges_.size() > max_crypto_ranges) return InitialError::malformed;
    return InitialError::none;
}

// A verdict once the CRYPTO bytes from offset 0 say enough: the hello complete (parsed), or
// refused by its header.
std::optional<InitialProgress> InitialAssembler::check_hello() {
    if (ranges_.empty() || ranges_.front().begin != 0) return std::nullopt;
    const std::size_t contiguous = ranges_.front().end;
    if (crypto_[0] != 1) return rejected(InitialError::hello, HelloError::not_client_hello);
    if (contiguous < 4) return std::nullopt;
    const std::size_t size = 4 + ((std::size_t{crypto_[1]} << 16) | (std::size_t{crypto_[2]} << 8) | crypto_[3]);
    if (size > max_hello_size_) return rejected(InitialError::too_large);
    if (contiguous < size) return std::nullopt;
    // The ClientHello is the only message of the client's Initial CRYPTO stream (RFC 9001 §4.1.3);
    // bytes after it are refused, as the TCP reader refuses a second message in the hello's record.
    if (ranges_.back().end > size) return rejected(InitialError::hello, HelloError::trailing_bytes);
    HelloParse parse = parse_client_hello_message(Bytes(crypto_.data(), size));
    if (parse.status != HelloParse::Status::complete) return rejected(InitialError::hello, parse.error);
    InitialProgress progress;
    progress.status = InitialProgress::Status::complete;
    progress.hello = std::move(parse.hello);
    return progress;
}

}  // namespace passgate::quic
