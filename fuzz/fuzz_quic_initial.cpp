// libFuzzer target for the QUIC client Initial reader (src/wire/quic_initial.h).
//
// Random bytes do not get past AES-GCM, so the input is used two ways, chosen by its first byte:
//  - even: datagrams as received (header reading, the coalesced-packet walk, length checks,
//    header protection and the AEAD refusing them);
//  - odd: the plaintext payloads of Initial packets, each sealed with the flow's real keys by the
//    test writer (src/wire/quic_initial_writer.h) and fed in order: the frame walk, CRYPTO
//    reassembly (offsets, overlaps, bounds) and the ClientHello parser behind it.
// After the first byte the input is a sequence of records: a 2-byte big-endian length, then that
// many bytes (cut short at the end of the input). At most 24 records.
// Invariants (a violation aborts, which libFuzzer reports as a crash): bytes_held() within
// max_hello_size plus 4 KiB, packets_seen() within max_packets, a verdict is final (the next feed
// returns it), need_more carries no error, a complete hello's SNI is lowercase without a
// trailing dot, a released assembler holds under 1 KiB.

#include "src/wire/quic_initial.h"
#include "src/wire/quic_initial_writer.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

using namespace passgate::quic;
using Status = InitialProgress::Status;

void require(bool condition) {
    if (!condition) std::abort();
}

constexpr std::size_t kMaxHello = 8 * 1024;  // small, so that the bound is reached often
constexpr std::size_t kMaxPackets = 12;
constexpr std::size_t kMaxRecords = 24;
constexpr std::uint8_t kDcid[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
constexpr std::uint8_t kScid[4] = {1, 2, 3, 4};

std::vector<std::span<const std::uint8_t>> records(std::span<const std::uint8_t> data) {
    std::vector<std::span<const std::uint8_t>> out;
    while (data.size() >= 2 && out.size() < kMaxRecords) {
        const std::size_t length = std::min<std::size_t>((std::size_t{data[0]} << 8) | data[1], data.size() - 2);
        out.push_back(data.subspan(2, length));
        data = data.subspan(2 + length);
    }
    return out;
}

void check(const InitialAssembler& assembler, const InitialProgress& progress) {
    require(assembler.bytes_held() <= kMaxHello + 4096);
    require(assembler.packets_seen() <= kMaxPackets);
    require(!initial_error_name(progress.error).empty());
    switch (progress.status) {
        case Status::need_more: require(progress.error == InitialError::none); break;
        case Status::rejected:
            require(progress.error != InitialError::none);
            require((progress.error == InitialError::hello) == (progress.hello_error != passgate::HelloError::none));
            require(assembler.bytes_held() < 1024);
            break;
        case Status::complete:
            require(progress.error == InitialError::none);
            require(progress.hello.sni.size() <= 253);
            if (!progress.hello.sni.empty()) require(progress.hello.sni.back() != '.');
            for (const char c : progress.hello.sni) require(!(c >= 'A' && c <= 'Z'));
            require(assembler.bytes_held() < 4096);
            break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const bool sealed = (data[0] & 1) != 0;
    InitialAssembler assembler(kMaxHello, kMaxPackets);
    InitialProgress progress;
    std::uint64_t packet_number = 0;
    for (const auto record : records(std::span<const std::uint8_t>(data + 1, size - 1))) {
        std::vector<std::uint8_t> datagram;
        if (sealed) {
            InitialPacketSpec spec;
            spec.dcid = kDcid;
            spec.scid = kScid;
            spec.packet_number = packet_number++;
            spec.packet_number_length = 1 + (packet_number & 3);
            spec.frames = record;
            spec.min_size = min_initial_datagram;
            datagram = write_initial_packet(spec);
        } else {
            datagram.assign(record.begin(), record.end());
        }
        const InitialProgress next = assembler.feed(datagram);
        check(assembler, next);
        if (progress.status != Status::need_more) {
            // Final: the same verdict again.
            require(next.status == progress.status && next.error == progress.error &&
                    next.hello_error == progress.hello_error && next.hello.sni == progress.hello.sni);
        }
        progress = next;
    }
    // Read the header of the whole input too (any prefix length for short headers).
    const std::span<const std::uint8_t> whole(data, size);
    if (const auto header = read_header(whole, data[0] % 21)) {
        require(header->dcid.size() <= max_cid_length && header->scid.size() <= max_cid_length);
        require(header->dcid.data() >= data && header->dcid.data() + header->dcid.size() <= data + size);
    }
    return 0;
}
