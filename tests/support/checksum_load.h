#pragma once
// Byte-exact bulk load through passgate, checked end to end by checksums (used by the transfer
// and fault-injection tests).
//
// Protocol between the test client and the test backend (all behind the captured ClientHello):
//   client -> backend: ClientHello (one TLS record) | preamble | N pseudo-random bytes | FIN
//   backend -> client: reply header | M pseudo-random bytes | FIN
// The backend answers only after it has seen the client's FIN, so a half-close that does not pass
// through shows up as a timeout.

#include "tests/support/net.h"
#include "tests/support/passgate.h"

#include <cstdint>
#include <string>
#include <vector>

namespace integration {

constexpr std::uint64_t preamble_magic = 0x70617373'67617465ull;  // "passgate"

struct Preamble {
    std::uint64_t magic;
    std::uint64_t connection;
    std::uint64_t hello_index;   // into corpus_hellos()
    std::uint64_t reply_bytes;   // M
    std::uint64_t read_delay_ms; // the backend waits this long before it reads the client's bytes
};
struct ReplyHeader {
    std::uint64_t hash;          // FNV-1a 64 of the N bytes received after the preamble
    std::uint64_t bytes;         // N as counted by the backend
    std::uint64_t hello_exact;   // 1: the backend received the hello bytes unchanged
    std::uint64_t preamble_ok;   // 1: the preamble followed, intact
};

inline std::uint64_t upstream_seed(std::uint64_t connection) { return 0x1000 + connection * 7919; }
inline std::uint64_t downstream_seed(std::uint64_t connection) { return 0xdead0000 + connection * 104729; }

// Sends `bytes` bytes of ByteStream(seed) on `fd`; false if a send fails or the deadline passes.
bool send_stream(int fd, std::uint64_t seed, std::uint64_t bytes, Deadline deadline);

// The captured hellos that carry an SNI under corpus.test (each one TLS record).
const std::vector<const CapturedHello*>& corpus_hellos();

// The backend side (a TcpServer handler): reads the hello (one TLS record) and the preamble,
// hashes the client's stream until EOF, then sends the reply header and M bytes, and closes.
void checksum_backend(int fd, Deadline deadline);

struct LoadOptions {
    int connections = 40;
    Millis budget{60000};
    Millis backend_read_delay{0};  // the backend starts reading the client's stream late
    Millis client_read_delay{0};   // the client starts reading the reply late
};

struct LoadResult {
    int succeeded = 0;
    std::vector<std::string> failures;
    std::uint64_t bytes_up = 0;
    std::uint64_t bytes_down = 0;
    double seconds = 0;
};


// One client connection: returns an empty string on success, else what went wrong.
std::string run_client(std::uint16_t port, std::uint64_t connection, std::uint64_t up_bytes,
                       std::uint64_t down_bytes, const LoadOptions& options, Deadline deadline);
// `options.connections` clients at once, 1 MiB to 2 MiB each way.
LoadResult run_load(std::uint16_t port, const LoadOptions& options);
// One listener "tls" on 127.0.0.1:listen_port, route "corpus" (*.corpus.test) to service
// "checksum" at 127.0.0.1:backend_port, admin at "@ADMIN@".
std::string transfer_config(std::uint16_t listen_port, std::uint16_t backend_port);
// Catch2 checks: every connection succeeded, within 60 s.
void check_load(const LoadResult& load, int connections);

}  // namespace integration
