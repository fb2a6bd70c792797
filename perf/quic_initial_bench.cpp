// passgate-quic-initial-bench: what reading a QUIC client Initial costs (src/wire/quic_initial.h;
// figures in perf/QUIC_INITIAL.md).
//
//   passgate-quic-initial-bench [--iterations N]
//
// Measured in this process, CPU time of the calling thread, per operation:
//   keys        client_initial_keys(): HKDF-Extract and four HKDF-Expand-Label (OpenSSL EVP_KDF)
//   flow_1      a new InitialAssembler fed one 1200-byte Initial with a 300-byte hello: the
//               flow's keys and contexts, header protection, AES-128-GCM open, frames, parse
//   flow_2      the same with a 1,960-byte hello in two Initials (a post-quantum-sized hello)
//   packet      one more Initial of an existing flow (keys ready): a PING in 1200 bytes
//   foreign     a datagram whose Initial has another DCID (skipped after the header walk)
//   ping_flow   a new flow fed one Initial carrying a PING (keys, contexts, one open)
//   forged      ping_flow, then an Initial of the flow's DCID with a wrong tag (header
//               protection + the GCM refusal): forged - ping_flow is a forged packet's cost
// Output: one JSON object per measurement on stdout.

#include "src/wire/client_hello_writer.h"
#include "src/wire/quic_initial.h"
#include "src/wire/quic_initial_writer.h"

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

using namespace passgate::quic;
using Bytes = std::vector<std::uint8_t>;

double thread_cpu_ns() {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec);
}

Bytes hello_message(std::size_t size) {
    const std::vector<std::string> alpn{"h3"};
    const std::vector<std::uint16_t> ciphers{0x1301, 0x1302, 0x1303};
    const std::vector<passgate::TlsExtension> extensions{{0xfe02, Bytes(size - 200, 0x5a)}};
    passgate::ClientHelloSpec spec;
    spec.cipher_suites = ciphers;
    spec.sni = "bench.example";
    spec.alpn = alpn;
    spec.extensions = extensions;
    const Bytes records = passgate::write_client_hello(spec);
    return Bytes(records.begin() + 5, records.end());  // one record: its header stripped
}

const Bytes kDcid{0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
const Bytes kScid{1, 2, 3, 4};

std::vector<Bytes> flight(const Bytes& hello, std::size_t packets) {
    return write_initial_flight(initial_flight(kDcid, kScid, hello, packets));
}

Bytes packet(const Bytes& dcid, const Bytes& frames, std::uint64_t number) {
    return write_padded_initial(dcid, kScid, frames, number);
}

void report(const char* name, std::size_t iterations, const std::function<void(std::size_t)>& body) {
    body(0);  // warm: the algorithms fetched, pages touched
    const double start = thread_cpu_ns();
    for (std::size_t i = 0; i < iterations; ++i) body(i);
    const double per = (thread_cpu_ns() - start) / static_cast<double>(iterations);
    std::printf("{\"case\":\"%s\",\"iterations\":%zu,\"us_per_op\":%.2f}\n", name, iterations, per / 1000.0);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t iterations = 20000;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
            iterations = static_cast<std::size_t>(std::strtoull(argv[++i], nullptr, 10));
        } else {
            std::fprintf(stderr, "usage: %s [--iterations N]\n", argv[0]);
            return 2;
        }
    }
    if (iterations == 0) return 2;
    const auto one = flight(hello_message(300), 1);
    const auto two = flight(hello_message(1960), 2);
    std::size_t failures = 0;

    report("keys", iterations, [&](std::size_t) {
        if (!client_initial_keys(version_1, kDcid)) ++failures;
    });
    report("flow_1", iterations, [&](std::size_t) {
        InitialAssembler assembler(64 * 1024, 16);
        if (assembler.feed(one[0]).status != InitialProgress::Status::complete) ++failures;
    });
    report("flow_2", iterations, [&](std::size_t) {
        InitialAssembler assembler(64 * 1024, 16);
        assembler.feed(two[0]);
        if (assembler.feed(two[1]).status != InitialProgress::Status::complete) ++failures;
    });

    // Per-packet costs on one flow: max_packets lifted so that it never ends.
    std::vector<Bytes> pings;
    for (std::uint64_t n = 0; n < 64; ++n) pings.push_back(packet(kDcid, Bytes{0x01}, n));
    const Bytes foreign = packet(Bytes{9, 9, 9, 9, 9, 9, 9, 9}, Bytes{0x01}, 0);
    Bytes forged = pings[1];
    forged.back() ^= 1;
    {
        InitialAssembler assembler(64 * 1024, static_cast<std::size_t>(-1));
        assembler.feed(pings[0]);
        // Packet numbers beyond the 64 written decode to other numbers (a wrong nonce): the
        // same 64 are replayed, which a reader that does not track duplicates opens again.
        report("packet", iterations, [&](std::size_t i) {
            if (assembler.feed(pings[i % 64]).status != InitialProgress::Status::need_more) ++failures;
        });
        report("foreign", iterations, [&](std::size_t) {
            if (assembler.feed(foreign).status != InitialProgress::Status::need_more) ++failures;
        });
    }
    report("ping_flow", iterations, [&](std::size_t) {
        InitialAssembler assembler(64 * 1024, 16);
        if (assembler.feed(pings[0]).status != InitialProgress::Status::need_more) ++failures;
    });
    report("forged", iterations, [&](std::size_t) {
        InitialAssembler assembler(64 * 1024, 16);
        assembler.feed(pings[0]);
        if (assembler.feed(forged).error != InitialError::undecryptable) ++failures;
    });
    if (failures != 0) {
        std::fprintf(stderr, "%zu operations gave an unexpected verdict\n", failures);
        return 1;
    }
    return 0;
}
