#pragma once
// Encrypted QUIC client Initial datagrams, for tests, benchmarks and the fuzz corpus: the writer
// the Initial reader (quic_initial.h) must agree with, as client_hello_writer is for the TLS
// parser. Pure, no I/O; OpenSSL's AES-128-GCM and AES-128-ECB with the keys of
// client_initial_keys(). Not used by the data path.

#include "src/wire/quic_initial.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace passgate::quic {

// One protected client Initial packet (RFC 9000 §17.2.2, RFC 9001 §5).
struct InitialPacketSpec {
    std::uint32_t version = version_1;  // v1 or v2 (asserted)
    std::span<const std::uint8_t> dcid;  // 1..20 bytes: the keys come from it
    std::span<const std::uint8_t> scid;  // 0..20 bytes
    std::span<const std::uint8_t> token;
    std::uint64_t packet_number = 0;
    std::size_t packet_number_length = 4;  // 1..4 bytes on the wire
    std::span<const std::uint8_t> frames;  // the plaintext payload, as given (not checked)
    // PADDING appended to the payload so that the packet is at least this long. The payload is
    // always padded enough for the header-protection sample (RFC 9001 §5.4.2).
    std::size_t min_size = 0;
    std::uint8_t reserved_bits = 0;  // 0..3; not 0 only to test the reader
};
std::vector<std::uint8_t> write_initial_packet(const InitialPacketSpec& spec);

// A CRYPTO frame (RFC 9000 §19.6).
std::vector<std::uint8_t> crypto_frame(std::uint64_t offset, std::span<const std::uint8_t> data);

// A client's first flight: a ClientHello handshake message cut into `crypto_frames` CRYPTO frames
// of about equal size, frame i in packet i * packets / crypto_frames, each packet in its own
// datagram padded to `datagram_size`.
struct InitialFlightSpec {
    std::uint32_t version = version_1;
    std::span<const std::uint8_t> dcid;
    std::span<const std::uint8_t> scid;
    std::span<const std::uint8_t> token;
    std::span<const std::uint8_t> hello;  // the handshake message: type 1, u24 length, body
    std::size_t crypto_frames = 1;        // >= packets
    std::size_t packets = 1;              // >= 1
    bool reverse_frames = false;          // the frames of each packet in reverse offset order
    // Which packet each datagram carries, in sending order; a packet may repeat (a retransmission:
    // the same frames under a new packet number, as a real client sends it). Empty: 0..packets-1.
    std::vector<std::size_t> order;
    std::size_t datagram_size = min_initial_datagram;  // each datagram padded to at least this
    // A Handshake packet of the same connection coalesced after each Initial (to be skipped).
    bool coalesce_trailing = false;
};
std::vector<std::vector<std::uint8_t>> write_initial_flight(const InitialFlightSpec& spec);

// The common cases: a v1 flight of `packets` Initials with one CRYPTO frame each, and one v1
// Initial carrying `frames`, padded to a 1200-byte datagram.
InitialFlightSpec initial_flight(std::span<const std::uint8_t> dcid, std::span<const std::uint8_t> scid,
                                 std::span<const std::uint8_t> hello, std::size_t packets = 1);
std::vector<std::uint8_t> write_padded_initial(std::span<const std::uint8_t> dcid, std::span<const std::uint8_t> scid,
                                               std::span<const std::uint8_t> frames, std::uint64_t packet_number);

}  // namespace passgate::quic
