#pragma once
// Long-lived, checksummed connections through passgate while it reloads or upgrades (the reload
// and upgrade tests), and short echo connections beside them.
//
// One backend protocol for both kinds of connection, behind the ClientHello (one TLS record):
//   echo:   hello | echo_magic | bytes...       -> every byte echoed back (hello included), EOF
//           after the client's EOF;
//   stream: hello | StreamPreamble | up bytes | FIN and, at the same time,
//           backend -> client: down bytes | FIN, both paced over `pace_ms`. The backend records the
//           count and FNV-1a of the up bytes per stream id; the client checks the down bytes byte
//           for byte (ByteStream with the stream's seed).

#include "tests/support/net.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace integration {

constexpr std::uint64_t echo_magic = 0x73686f72'74636f6eull;    // "shortcon"
constexpr std::uint64_t stream_magic = 0x73747265'616d2121ull;  // "stream!!"

struct StreamPreamble {
    std::uint64_t magic;
    std::uint64_t id;
    std::uint64_t up_bytes;
    std::uint64_t down_bytes;
    std::uint64_t pace_ms;
};

inline std::uint64_t up_seed(std::uint64_t id) { return 0x5eed0000 + id * 7919; }
inline std::uint64_t down_seed(std::uint64_t id) { return 0xd0e50000 + id * 104729; }

// Sends `bytes` of ByteStream(seed) in 32 KiB pieces spread evenly over `pace`; adds them to
// `hash` when given. False when a send fails or the deadline passes.
bool send_paced(int fd, std::uint64_t seed, std::uint64_t bytes, Millis pace, Deadline deadline, Fnv1a64* hash);

// What the backend saw of one stream.
struct StreamRecord {
    bool down_sent = false;  // the backend sent every down byte
    bool eof = false;        // the backend saw the client's FIN
    std::uint64_t bytes = 0;
    std::uint64_t hash = 0;
};

// The backend side, for one or more TcpServers: serve(fd) is their handler.
class PacedStreamBackend {
public:
    void serve(int fd);
    int streams_started() const { return streams_started_.load(); }
    std::map<std::uint64_t, StreamRecord> records();

private:
    void echo(int fd, const std::vector<std::uint8_t>& hello, std::uint64_t magic, Deadline deadline);
    void stream(int fd, Deadline deadline);

    std::atomic<int> streams_started_{0};
    std::mutex mutex_;
    std::map<std::uint64_t, StreamRecord> records_;
};

// The client side of one stream (its hello: corpus_hellos()[id % size]).
struct StreamOutcome {
    std::string problem;  // empty: the client's side was byte-exact
    std::uint64_t up_hash = 0;
    std::uint64_t up_bytes = 0;
    Clock::time_point ended;
};
StreamOutcome run_stream(std::uint16_t port, std::uint64_t id, std::uint64_t up_bytes, std::uint64_t down_bytes,
                         Millis pace, Deadline deadline);

}  // namespace integration
