// Encrypted client Initials (see quic_initial_writer.h). Test and benchmark code path: clarity
// over speed, every precondition asserted.

#include "src/wire/quic_initial_writer.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <memory>

namespace passgate::quic {

namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::size_t kTagSize = 16;
constexpr std::size_t kSampleSize = 16;

void put_varint(Bytes& out, std::uint64_t value, std::size_t size = 0) {
    if (size == 0) size = value < 64 ? 1 : value < 16384 ? 2 : value < (1u << 30) ? 4 : 8;
    static constexpr std::array<std::uint8_t, 9> prefix{0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};
    for (std::size_t i = 0; i < size; ++i) {
        auto byte = static_cast<std::uint8_t>(value >> (8 * (size - 1 - i)));
        if (i == 0) byte = static_cast<std::uint8_t>((byte & 0x3f) | prefix[size]);
        out.push_back(byte);
    }
}

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherContext new_context() { return CipherContext(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free); }

}  // namespace

std::vector<std::uint8_t> crypto_frame(std::uint64_t offset, std::span<const std::uint8_t> data) {
    Bytes frame{0x06};
    put_varint(frame, offset);
    put_varint(frame, data.size());
    frame.insert(frame.end(), data.begin(), data.end());
    return frame;
}

std::vector<std::uint8_t> write_initial_packet(const InitialPacketSpec& spec) {
    assert(spec.version == version_1 || spec.version == version_2);
    assert(!spec.dcid.empty() && spec.dcid.size() <= max_cid_length && spec.scid.size() <= max_cid_length);
    assert(spec.packet_number_length >= 1 && spec.packet_number_length <= 4 && spec.reserved_bits <= 3);
    const auto keys = client_initial_keys(spec.version, spec.dcid);
    assert(keys);

    const std::uint8_t type = spec.version == version_1 ? 0 : 1;  // Initial (RFC 9369 §3.2)
    Bytes header{static_cast<std::uint8_t>(0xc0 | (type << 4) | (spec.reserved_bits << 2) |
                                           (spec.packet_number_length - 1))};
    for (int shift = 24; shift >= 0; shift -= 8) header.push_back(static_cast<std::uint8_t>(spec.version >> shift));
    header.push_back(static_cast<std::uint8_t>(spec.dcid.size()));
    header.insert(header.end(), spec.dcid.begin(), spec.dcid.end());
    header.push_back(static_cast<std::uint8_t>(spec.scid.size()));
    header.insert(header.end(), spec.scid.begin(), spec.scid.end());
    put_varint(header, spec.token.size());
    header.insert(header.end(), spec.token.begin(), spec.token.end());

    Bytes payload(spec.frames.begin(), spec.frames.end());
    // The sample needs 4 bytes of packet number and payload before its 16 (RFC 9001 §5.4.2).
    if (spec.packet_number_length + payload.size() < 4) payload.resize(4 - spec.packet_number_length, 0);
    // Length is written in 2 bytes, or 4 for a packet of 16 KiB and more.
    auto length_size = [&] { return spec.packet_number_length + payload.size() + kTagSize < 16384 ? 2u : 4u; };
    auto packet_size = [&] {
        return header.size() + length_size() + spec.packet_number_length + payload.size() + kTagSize;
    };
    while (packet_size() < spec.min_size) payload.resize(payload.size() + (spec.min_size - packet_size()), 0);

    put_varint(header, spec.packet_number_length + payload.size() + kTagSize, length_size());
    const std::size_t pn_offset = header.size();
    for (std::size_t i = spec.packet_number_length; i-- > 0;)
        header.push_back(static_cast<std::uint8_t>(spec.packet_number >> (8 * i)));

    std::array<std::uint8_t, 12> nonce = keys->iv;
    for (std::size_t i = 0; i < 8; ++i)
        nonce[nonce.size() - 1 - i] ^= static_cast<std::uint8_t>(spec.packet_number >> (8 * i));
    Bytes packet = header;
    packet.resize(header.size() + payload.size() + kTagSize);
    std::uint8_t* const sealed = packet.data() + header.size();
    int length = 0;
    const auto aead = new_context();
    [[maybe_unused]] const bool ok =
        aead && EVP_EncryptInit_ex2(aead.get(), EVP_aes_128_gcm(), keys->key.data(), nonce.data(), nullptr) == 1 &&
        EVP_EncryptUpdate(aead.get(), nullptr, &length, header.data(), static_cast<int>(header.size())) == 1 &&
        EVP_EncryptUpdate(aead.get(), sealed, &length, payload.data(), static_cast<int>(payload.size())) == 1 &&
        EVP_EncryptFinal_ex(aead.get(), sealed + length, &length) == 1 &&
        EVP_CIPHER_CTX_ctrl(aead.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize),
                            sealed + payload.size()) == 1;
    assert(ok);

    std::array<std::uint8_t, kSampleSize + 16> mask{};
    const auto hp = new_context();
    [[maybe_unused]] const bool masked =
        hp && EVP_EncryptInit_ex2(hp.get(), EVP_aes_128_ecb(), keys->hp.data(), nullptr, nullptr) == 1 &&
        EVP_EncryptUpdate(hp.get(), mask.data(), &length, packet.data() + pn_offset + 4,
                          static_cast<int>(kSampleSize)) == 1;
    assert(masked);
    packet[0] ^= mask[0] & 0x0f;
    for (std::size_t i = 0; i < spec.packet_number_length; ++i) packet[pn_offset + i] ^= mask[1 + i];
    return packet;
}

std::vector<std::vector<std::uint8_t>> write_initial_flight(const InitialFlightSpec& spec) {
    assert(spec.packets >= 1 && spec.crypto_frames >= spec.packets && spec.crypto_frames <= spec.hello.size());
    // The frames of each packet, as plaintext.
    std::vector<Bytes> payloads(spec.packets);
    std::vector<std::vector<Bytes>> frames(spec.packets);
    for (std::size_t i = 0; i < spec.crypto_frames; ++i) {
        const std::size_t begin = spec.hello.size() * i / spec.crypto_frames;
        const std::size_t end = spec.hello.size() * (i + 1) / spec.crypto_frames;
        frames[i * spec.packets / spec.crypto_frames].push_back(
            crypto_frame(begin, spec.hello.subspan(begin, end - begin)));
    }
    for (std::size_t p = 0; p < spec.packets; ++p) {
        if (spec.reverse_frames) std::reverse(frames[p].begin(), frames[p].end());
        for (const Bytes& frame : frames[p]) payloads[p].insert(payloads[p].end(), frame.begin(), frame.end());
    }
    std::vector<std::size_t> order = spec.order;
    if (order.empty())
        for (std::size_t p = 0; p < spec.packets; ++p) order.push_back(p);

    // A Handshake packet (type 2 in v1, 3 in v2) whose payload the reader never opens.
    Bytes trailing;
    if (spec.coalesce_trailing) {
        trailing.push_back(spec.version == version_1 ? 0xe1 : 0xf1);
        for (int shift = 24; shift >= 0; shift -= 8) trailing.push_back(static_cast<std::uint8_t>(spec.version >> shift));
        trailing.push_back(static_cast<std::uint8_t>(spec.dcid.size()));
        trailing.insert(trailing.end(), spec.dcid.begin(), spec.dcid.end());
        trailing.push_back(static_cast<std::uint8_t>(spec.scid.size()));
        trailing.insert(trailing.end(), spec.scid.begin(), spec.scid.end());
        put_varint(trailing, 40, 2);
        for (std::uint8_t i = 0; i < 40; ++i) trailing.push_back(static_cast<std::uint8_t>(0xa5 ^ i));
    }

    std::vector<std::vector<std::uint8_t>> datagrams;
    for (std::size_t sent = 0; sent < order.size(); ++sent) {
        assert(order[sent] < spec.packets);
        InitialPacketSpec packet;
        packet.version = spec.version;
        packet.dcid = spec.dcid;
        packet.scid = spec.scid;
        packet.token = spec.token;
        packet.packet_number = sent;  // a retransmission gets a new number, as from a real client
        packet.frames = payloads[order[sent]];
        packet.min_size = spec.datagram_size > trailing.size() ? spec.datagram_size - trailing.size() : 0;
        Bytes datagram = write_initial_packet(packet);
        datagram.insert(datagram.end(), trailing.begin(), trailing.end());
        datagrams.push_back(std::move(datagram));
    }
    return datagrams;
}

InitialFlightSpec initial_flight(std::span<const std::uint8_t> dcid, std::span<const std::uint8_t> scid,
                                 std::span<const std::uint8_t> hello, std::size_t packets) {
    InitialFlightSpec spec;
    spec.dcid = dcid;
    spec.scid = scid;
    spec.hello = hello;
    spec.crypto_frames = spec.packets = packets;
    return spec;
}

std::vector<std::uint8_t> write_padded_initial(std::span<const std::uint8_t> dcid, std::span<const std::uint8_t> scid,
                                               std::span<const std::uint8_t> frames, std::uint64_t packet_number) {
    InitialPacketSpec spec;
    spec.dcid = dcid;
    spec.scid = scid;
    spec.frames = frames;
    spec.packet_number = packet_number;
    spec.min_size = min_initial_datagram;
    return write_initial_packet(spec);
}

}  // namespace passgate::quic
