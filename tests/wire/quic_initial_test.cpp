// Tests for the QUIC client Initial reader (src/wire/quic_initial.h) and its test writer
// (src/wire/quic_initial_writer.h): the RFC 9001 / RFC 9369 vectors, every real ClientHello of
// tests/data/clienthellos carried in Initials of several shapes, and one crafted input per
// refusal reason.

#include "src/wire/quic_initial.h"

#include "src/wire/client_hello_writer.h"
#include "src/wire/quic_initial_writer.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace passgate::quic;
using passgate::HelloError;
using passgate::HelloParse;
using Bytes = std::vector<std::uint8_t>;
using Status = InitialProgress::Status;

namespace {

constexpr std::size_t kMaxHello = 64 * 1024;
constexpr std::size_t kMaxPackets = 16;

std::string env_or_fail(const char* name) {
    const char* value = std::getenv(name);
    INFO(name << " must be set (meson test sets it)");
    REQUIRE(value != nullptr);
    return value;
}

Bytes read_binary(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Bytes from_hex(std::string_view text) {
    Bytes out;
    int high = -1;
    for (const char c : text) {
        int value = -1;
        if (c >= '0' && c <= '9') value = c - '0';
        if (c >= 'a' && c <= 'f') value = c - 'a' + 10;
        if (value < 0) continue;  // newlines
        if (high < 0) {
            high = value;
        } else {
            out.push_back(static_cast<std::uint8_t>(high * 16 + value));
            high = -1;
        }
    }
    return out;
}

Bytes vector_file(const std::string& name) {
    std::ifstream in(std::filesystem::path(env_or_fail("PASSGATE_SOURCE_ROOT")) / "tests/data/quic" / name);
    REQUIRE(in);
    return from_hex(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
}

const Bytes kRfcDcid = from_hex("8394c8f03e515708");

// The handshake message inside the captures' TLS records (record headers stripped).
Bytes strip_records(const Bytes& records) {
    Bytes message;
    std::size_t at = 0;
    while (at + 5 <= records.size()) {
        const std::size_t length = (std::size_t{records[at + 3]} << 8) | records[at + 4];
        REQUIRE(at + 5 + length <= records.size());
        message.insert(message.end(), records.begin() + static_cast<long>(at + 5),
                       records.begin() + static_cast<long>(at + 5 + length));
        at += 5 + length;
    }
    return message;
}

struct Capture {
    std::string name;
    Bytes message;            // the ClientHello handshake message
    passgate::ClientHello tcp;  // what the TCP reader makes of the capture
};

std::vector<Capture> captures() {
    std::vector<Capture> out;
    for (const auto& entry : std::filesystem::directory_iterator(env_or_fail("PASSGATE_CLIENTHELLOS"))) {
        if (entry.path().extension() != ".bin") continue;
        const Bytes records = read_binary(entry.path());
        const HelloParse tcp = passgate::parse_client_hello(records, kMaxHello);
        REQUIRE(tcp.status == HelloParse::Status::complete);
        out.push_back({entry.path().filename().string(), strip_records(records), tcp.hello});
    }
    REQUIRE(out.size() >= 8);
    return out;
}

// Feeds datagrams until a verdict; need_more after the last one is returned as is.
InitialProgress feed_all(InitialAssembler& assembler, const std::vector<Bytes>& datagrams) {
    InitialProgress progress;
    for (const Bytes& datagram : datagrams) {
        progress = assembler.feed(datagram);
        if (progress.status != Status::need_more) break;
    }
    return progress;
}

const Bytes kDcid = from_hex("0011223344556677");
const Bytes kScid = from_hex("a1a2a3a4");

// A ClientHello message for `sni` with ALPN h3, padded by an extension to about `size` bytes.
Bytes hello_message(std::string_view sni, std::size_t size = 300) {
    const Bytes records = [&] {
        const std::vector<std::string> alpn{"h3"};
        const std::vector<std::uint16_t> ciphers{0x1301};
        std::vector<passgate::TlsExtension> extensions;
        extensions.push_back({0xfe02, Bytes(size > 200 ? size - 200 : 1, 0x5a)});  // unknown: ignored
        passgate::ClientHelloSpec spec;
        spec.cipher_suites = ciphers;
        spec.sni = sni;
        spec.alpn = alpn;
        spec.extensions = extensions;
        return passgate::write_client_hello(spec);
    }();
    return strip_records(records);
}

InitialFlightSpec flight(const Bytes& hello, std::size_t frames = 1, std::size_t packets = 1) {
    InitialFlightSpec spec = initial_flight(kDcid, kScid, hello, packets);
    spec.crypto_frames = frames;
    return spec;
}

// One Initial packet of the test flow carrying `frames`, padded to 1200 bytes.
Bytes packet_with(const Bytes& frames, std::uint64_t packet_number = 0) {
    return write_padded_initial(kDcid, kScid, frames, packet_number);
}

InitialProgress feed_one(const Bytes& datagram, std::size_t max_hello = kMaxHello) {
    InitialAssembler assembler(max_hello, kMaxPackets);
    return assembler.feed(datagram);
}

}  // namespace

TEST_CASE("RFC 9001 A.1 and RFC 9369 A.1: client Initial keys from DCID 0x8394c8f03e515708", "[quic]") {
    const auto v1 = client_initial_keys(version_1, kRfcDcid);
    REQUIRE(v1);
    CHECK(Bytes(v1->key.begin(), v1->key.end()) == from_hex("1f369613dd76d5467730efcbe3b1a22d"));
    CHECK(Bytes(v1->iv.begin(), v1->iv.end()) == from_hex("fa044b2f42a3fd3b46fb255c"));
    CHECK(Bytes(v1->hp.begin(), v1->hp.end()) == from_hex("9f50449e04a0e810283a1e9933adedd2"));
    const auto v2 = client_initial_keys(version_2, kRfcDcid);
    REQUIRE(v2);
    CHECK(Bytes(v2->key.begin(), v2->key.end()) == from_hex("8b1a0bc121284290a29e0971b5cd045d"));
    CHECK(Bytes(v2->iv.begin(), v2->iv.end()) == from_hex("91f73e2351d8fa91660e909f"));
    CHECK(Bytes(v2->hp.begin(), v2->hp.end()) == from_hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    CHECK_FALSE(client_initial_keys(0xff00001d, kRfcDcid));
}

TEST_CASE("RFC 9001 A.2 and RFC 9369 A.2: the client Initial decrypts to the example.com hello", "[quic]") {
    const auto [file, version] = GENERATE(std::pair{"rfc9001_a2_client_initial.hex", version_1},
                                          std::pair{"rfc9369_a2_client_initial.hex", version_2});
    const Bytes packet = vector_file(file);
    REQUIRE(packet.size() == 1200);
    const auto header = read_header(packet, 0);
    REQUIRE(header);
    CHECK(header->form == PacketForm::initial);
    CHECK(header->version == version);
    CHECK(Bytes(header->dcid.begin(), header->dcid.end()) == kRfcDcid);
    CHECK(header->scid.empty());

    InitialAssembler assembler(kMaxHello, kMaxPackets);
    const InitialProgress progress = assembler.feed(packet);
    REQUIRE(progress.status == Status::complete);
    CHECK(progress.hello.sni == "example.com");
    CHECK(progress.hello.alpn == std::vector<std::string>{"alpn"});
    CHECK(assembler.version() == version);
    CHECK(Bytes(assembler.original_dcid().begin(), assembler.original_dcid().end()) == kRfcDcid);
    CHECK(assembler.client_scid().empty());
    CHECK(assembler.packets_seen() == 1);

    // The writer seals A.2's plaintext (its CRYPTO frame, PADDING to 1162 bytes, packet number 2
    // in 4 bytes) to the very same 1200 bytes: the writer and the reader agree with the RFC.
    const Bytes frame = vector_file("rfc9001_a2_crypto_frame.hex");
    InitialPacketSpec spec;
    spec.version = version;
    spec.dcid = kRfcDcid;
    spec.packet_number = 2;
    spec.packet_number_length = 4;
    spec.frames = frame;
    spec.min_size = 1200;
    CHECK(write_initial_packet(spec) == packet);

    // A tampered byte anywhere in the protected payload: undecryptable.
    Bytes tampered = packet;
    tampered[600] ^= 0x01;
    CHECK(feed_one(tampered).error == InitialError::undecryptable);
}

TEST_CASE("read_header: invariants, v1 and v2 packet types, short headers", "[quic]") {
    CHECK_FALSE(read_header({}, 0));
    const Bytes short_packet = from_hex("4001020304050607080900");
    const auto short_header = read_header(short_packet, 8);
    REQUIRE(short_header);
    CHECK(short_header->form == PacketForm::short_header);
    CHECK(Bytes(short_header->dcid.begin(), short_header->dcid.end()) == from_hex("0102030405060708"));
    CHECK_FALSE(read_header(short_packet, 11));               // shorter than its DCID
    CHECK_FALSE(read_header(from_hex("0001020304"), 0));      // fixed bit clear
    CHECK_FALSE(read_header(from_hex("c0000000"), 0));        // truncated invariants
    CHECK_FALSE(read_header(from_hex("c00000000115"), 0));    // a 21-byte DCID
    CHECK_FALSE(read_header(from_hex("c000000001020102"), 0));  // SCID length missing

    // First byte, version: the form (RFC 9000 §17.2, RFC 9369 §3.2).
    const auto form = [](std::string_view first_and_version) {
        const Bytes packet = from_hex(std::string(first_and_version) + "0401020304" + "00");
        const auto header = read_header(packet, 0);
        REQUIRE(header);
        return header->form;
    };
    CHECK(form("c000000001") == PacketForm::initial);
    CHECK(form("d000000001") == PacketForm::zero_rtt);
    CHECK(form("e000000001") == PacketForm::handshake);
    CHECK(form("f000000001") == PacketForm::retry);
    CHECK(form("d06b3343cf") == PacketForm::initial);
    CHECK(form("e06b3343cf") == PacketForm::zero_rtt);
    CHECK(form("f06b3343cf") == PacketForm::handshake);
    CHECK(form("c06b3343cf") == PacketForm::retry);
    CHECK(form("8000000000") == PacketForm::version_negotiation);  // fixed bit not an invariant
    CHECK(form("c0ff00001d") == PacketForm::unsupported_version);
    CHECK_FALSE(read_header(from_hex("8000000001" "0401020304" "00"), 0));  // v1, fixed bit clear
}

TEST_CASE("Every captured ClientHello, in 1, 2 and 3 Initials, any order, retransmitted: as over TCP", "[quic]") {
    for (const Capture& capture : captures()) {
        for (const std::uint32_t version : {version_1, version_2}) {
            struct Shape {
                std::size_t frames, packets;
                std::vector<std::size_t> order;
                bool reverse, coalesce;
            };
            const std::vector<Shape> shapes{
                {1, 1, {}, false, false},
                {2, 2, {1, 0}, false, false},
                {3, 3, {2, 0, 0, 1}, true, true},      // a retransmitted packet, coalesced Handshake
                {7, 3, {1, 2, 1, 0}, true, false},     // frames out of order inside packets too
            };
            for (const Shape& shape : shapes) {
                INFO(capture.name << " version " << version << " frames " << shape.frames << " packets "
                                  << shape.packets);
                InitialFlightSpec spec = flight(capture.message, shape.frames, shape.packets);
                spec.version = version;
                spec.order = shape.order;
                spec.reverse_frames = shape.reverse;
                spec.coalesce_trailing = shape.coalesce;
                const auto datagrams = write_initial_flight(spec);
                InitialAssembler assembler(kMaxHello, kMaxPackets);
                const InitialProgress progress = feed_all(assembler, datagrams);
                REQUIRE(progress.status == Status::complete);
                CHECK(progress.hello.sni == capture.tcp.sni);
                CHECK(progress.hello.alpn == capture.tcp.alpn);
                CHECK(assembler.version() == version);
                CHECK(Bytes(assembler.client_scid().begin(), assembler.client_scid().end()) == kScid);
                // The verdict is final, and what was held for reassembly is released.
                CHECK(assembler.feed(datagrams.front()).status == Status::complete);
                CHECK(assembler.bytes_held() < 1024);
            }
        }
    }
}

TEST_CASE("Reassembly: overlaps with the same bytes are fine, with different bytes malformed", "[quic]") {
    const Bytes hello = hello_message("overlap.example", 600);
    const auto piece = [&](std::size_t begin, std::size_t end) {
        return crypto_frame(begin, std::span<const std::uint8_t>(hello).subspan(begin, end - begin));
    };
    SECTION("overlapping retransmissions") {
        InitialAssembler assembler(kMaxHello, kMaxPackets);
        CHECK(assembler.feed(packet_with(piece(100, 300), 0)).status == Status::need_more);
        CHECK(assembler.feed(packet_with(piece(250, 400), 1)).status == Status::need_more);
        CHECK(assembler.feed(packet_with(piece(0, 120), 2)).status == Status::need_more);
        CHECK(assembler.packets_seen() == 3);
        const InitialProgress progress = assembler.feed(packet_with(piece(50, hello.size()), 3));
        REQUIRE(progress.status == Status::complete);
        CHECK(progress.hello.sni == "overlap.example");
        CHECK(progress.hello.alpn == std::vector<std::string>{"h3"});
    }
    SECTION("an overlap that changes a byte") {
        InitialAssembler assembler(kMaxHello, kMaxPackets);
        CHECK(assembler.feed(packet_with(piece(100, 300), 0)).status == Status::need_more);
        Bytes changed(hello.begin() + 200, hello.begin() + 350);
        changed[99] ^= 0xff;  // offset 299: inside what was received
        const InitialProgress progress = assembler.feed(packet_with(crypto_frame(200, changed), 1));
        CHECK(progress.status == Status::rejected);
        CHECK(progress.error == InitialError::malformed);
        CHECK(assembler.bytes_held() < 1024);
    }
}

TEST_CASE("Frames: PADDING, PING, ACK, ACK_ECN, CONNECTION_CLOSE skipped; others malformed", "[quic]") {
    const Bytes hello = hello_message("frames.example");
    Bytes frames = from_hex("0001"                          // PADDING, PING
                            "02" "05" "00" "02" "01" "00" "01" "00" "00"  // ACK, 2 ranges
                            "03" "04" "00" "00" "00" "01" "02" "03"       // ACK_ECN
                            "1c" "00" "00" "03" "616263");              // CONNECTION_CLOSE "abc"
    const Bytes crypto = crypto_frame(0, hello);
    frames.insert(frames.end(), crypto.begin(), crypto.end());
    const InitialProgress progress = feed_one(packet_with(frames));
    REQUIRE(progress.status == Status::complete);
    CHECK(progress.hello.sni == "frames.example");

    // STREAM (0x08), NEW_TOKEN (0x07), HANDSHAKE_DONE (0x1e), CONNECTION_CLOSE 0x1d, a 2-byte
    // type, an ACK whose 16383 ranges run past the payload.
    for (const char* bad : {"08000100", "070100", "1e", "1d000000", "4006", "0200007fff00"}) {
        INFO(bad);
        Bytes with_bad = crypto_frame(0, std::span<const std::uint8_t>(hello).first(10));
        const Bytes tail = from_hex(bad);
        with_bad.insert(with_bad.end(), tail.begin(), tail.end());
        CHECK(feed_one(packet_with(with_bad)).error == InitialError::malformed);
    }
    CHECK(feed_one(packet_with(from_hex("06" "00" "7fff" "0102"))).error == InitialError::malformed);  // short data
}

TEST_CASE("Each refusal reason from a crafted input", "[quic]") {
    const Bytes hello = hello_message("reasons.example");
    const auto datagrams = write_initial_flight(flight(hello));
    const Bytes& good = datagrams.front();

    CHECK(feed_one(from_hex("474554202f20485454502f312e310d0a")).error == InitialError::not_quic);  // "GET / HTTP/1.1"
    CHECK(feed_one(from_hex("4001020304050607080900")).error == InitialError::not_quic);  // a short header
    Bytes other_version = good;
    other_version[4] = 0x02;  // version 0x00000002
    CHECK(feed_one(other_version).error == InitialError::unsupported_version);
    CHECK(feed_one(from_hex("80000000000401020304000000000001")).error == InitialError::unsupported_version);

    InitialFlightSpec small = flight(hello);
    small.datagram_size = 1199;
    const auto small_datagrams = write_initial_flight(small);
    REQUIRE(small_datagrams.front().size() == 1199);
    CHECK(feed_one(small_datagrams.front()).error == InitialError::short_datagram);
    CHECK(feed_one(Bytes(good.begin(), good.begin() + 1199)).error == InitialError::short_datagram);

    Bytes wrong_dcid = good;
    wrong_dcid[6] ^= 0x01;  // the keys come from the DCID: these are not the client's keys
    CHECK(feed_one(wrong_dcid).error == InitialError::undecryptable);

    Bytes padded = good;
    padded.insert(padded.end(), 10, 0);  // zero bytes after the packet: fine (ignored)
    CHECK(feed_one(padded).status == Status::complete);
    Bytes long_length = good;
    long_length[7 + kDcid.size() + kScid.size() + 1] = 0x7f;  // Length 0x3fxx: beyond the datagram
    CHECK(feed_one(long_length).error == InitialError::malformed);

    const Bytes four = from_hex("01020304");
    const Bytes crypto = crypto_frame(0, hello);
    CHECK(feed_one(write_padded_initial(four, {}, crypto, 0)).error == InitialError::malformed);  // DCID < 8
    InitialPacketSpec reserved;
    reserved.dcid = kDcid;
    reserved.frames = crypto;
    reserved.min_size = min_initial_datagram;
    reserved.reserved_bits = 2;
    CHECK(feed_one(write_initial_packet(reserved)).error == InitialError::malformed);

    // too_large: CRYPTO data beyond max_hello_size, or a hello that declares more.
    CHECK(feed_one(packet_with(crypto_frame(5000, Bytes(10, 1))), 5005).error == InitialError::too_large);
    CHECK(feed_one(packet_with(crypto_frame(4995, Bytes(10, 1))), 5005).status == Status::need_more);
    CHECK(feed_one(packet_with(crypto_frame(0, from_hex("01001400"))), 5000).error == InitialError::too_large);
    CHECK(feed_one(good, hello.size() - 1).error == InitialError::too_large);
    CHECK(feed_one(good, hello.size()).status == Status::complete);

    // too_many_packets: packets that never complete the hello.
    {
        InitialAssembler assembler(kMaxHello, 3);
        for (std::uint64_t pn = 0; pn < 3; ++pn)
            CHECK(assembler.feed(packet_with(from_hex("01"), pn)).status == Status::need_more);
        CHECK(assembler.feed(packet_with(from_hex("01"), 3)).error == InitialError::too_many_packets);
        CHECK(assembler.packets_seen() == 3);
    }
    // hello: the ClientHello parser's own reasons.
    const InitialProgress not_hello = feed_one(packet_with(crypto_frame(0, from_hex("02000002aabb"))));
    CHECK(not_hello.error == InitialError::hello);
    CHECK(not_hello.hello_error == HelloError::not_client_hello);
    Bytes bad_body = hello;
    bad_body.resize(60);
    bad_body[1] = 0;
    bad_body[2] = 0;
    bad_body[3] = 56;  // the length says 56: the body ends inside the session id or ciphers
    const InitialProgress malformed_hello = feed_one(packet_with(crypto_frame(0, bad_body)));
    CHECK(malformed_hello.error == InitialError::hello);
    CHECK(malformed_hello.hello_error == HelloError::malformed);
    Bytes trailing = hello;
    trailing.push_back(0x14);
    const InitialProgress trailing_hello = feed_one(packet_with(crypto_frame(0, trailing)));
    CHECK(trailing_hello.error == InitialError::hello);
    CHECK(trailing_hello.hello_error == HelloError::trailing_bytes);

    // Final: another good datagram does not change a verdict.
    InitialAssembler assembler(kMaxHello, kMaxPackets);
    CHECK(assembler.feed(wrong_dcid).error == InitialError::undecryptable);
    CHECK(assembler.feed(good).error == InitialError::undecryptable);

    for (const InitialError error :
         {InitialError::none, InitialError::not_quic, InitialError::unsupported_version, InitialError::short_datagram,
          InitialError::undecryptable, InitialError::malformed, InitialError::too_large,
          InitialError::too_many_packets, InitialError::hello})
        CHECK(initial_error_name(error) != "unknown");
    CHECK(initial_error_name(InitialError::too_many_packets) == "too_many_packets");
}

TEST_CASE("Skipped, not refused: other DCIDs, other packet types, and what follows a flow", "[quic]") {
    const Bytes hello = hello_message("skip.example", 1500);
    const auto datagrams = write_initial_flight(flight(hello, 2, 2));
    REQUIRE(datagrams.size() == 2);
    InitialAssembler assembler(kMaxHello, kMaxPackets);
    CHECK(assembler.feed(datagrams[0]).status == Status::need_more);
    // An Initial of another connection ID (another attempt, or someone else's) in between.
    const Bytes other_dcid = from_hex("ffeeddccbbaa9988");
    const Bytes other_hello = hello_message("other.example");  // the spec holds spans: kept alive
    InitialFlightSpec other = flight(other_hello);
    other.dcid = other_dcid;
    CHECK(assembler.feed(write_initial_flight(other).front()).status == Status::need_more);
    // A datagram with only a 0-RTT packet.
    Bytes zero_rtt = from_hex("d000000001080011223344556677" "04a1a2a3a4" "4010");
    zero_rtt.resize(1200, 0x33);
    CHECK(assembler.feed(zero_rtt).status == Status::need_more);
    CHECK(assembler.packets_seen() == 1);
    const InitialProgress progress = assembler.feed(datagrams[1]);
    REQUIRE(progress.status == Status::complete);
    CHECK(progress.hello.sni == "skip.example");
    CHECK(Bytes(assembler.original_dcid().begin(), assembler.original_dcid().end()) == kDcid);
}

TEST_CASE("Bounds: bytes_held stays within max_hello_size plus a constant; CRYPTO pieces capped", "[quic]") {
    constexpr std::size_t max_hello = 16 * 1024;
    InitialAssembler assembler(max_hello, 100);
    const std::size_t empty = assembler.bytes_held();
    CHECK(empty < 1024);
    // Pieces spread over the whole window, the last byte first: the buffer reaches its bound.
    std::uint64_t pn = 0;
    CHECK(assembler.feed(packet_with(crypto_frame(max_hello - 1, Bytes(1, 7)), pn++)).status == Status::need_more);
    const std::size_t held = assembler.bytes_held();
    CHECK(held >= max_hello);
    CHECK(held <= max_hello + 4096);
    // Disjoint pieces, one per 100 bytes: over max_crypto_ranges of them is malformed.
    InitialProgress progress;
    for (std::size_t i = 0; i < max_crypto_ranges + 1 && progress.status == Status::need_more; ++i)
        progress = assembler.feed(packet_with(crypto_frame(100 + 100 * i, Bytes(1, 7)), pn++));
    CHECK(progress.error == InitialError::malformed);
    CHECK(assembler.bytes_held() < 1024);  // released with the verdict
}
