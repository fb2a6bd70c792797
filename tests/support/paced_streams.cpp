#include "tests/support/paced_streams.h"

#include "tests/support/checksum_load.h"  // corpus_hellos()

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>
#include <vector>

namespace integration {

bool send_paced(int fd, std::uint64_t seed, std::uint64_t bytes, Millis pace, Deadline deadline, Fnv1a64* hash) {
    constexpr std::size_t piece = 32 * 1024;
    std::vector<std::uint8_t> buffer(piece);
    ByteStream stream(seed);
    const std::uint64_t pieces = (bytes + piece - 1) / piece;
    const Clock::time_point start = Clock::now();
    std::uint64_t sent = 0;
    for (std::uint64_t index = 0; index < pieces; ++index) {
        std::this_thread::sleep_until(
            std::min(deadline, start + pace * static_cast<long>(index) / static_cast<long>(pieces)));
        const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(piece, bytes - sent));
        stream.fill(buffer.data(), chunk);
        if (hash != nullptr) hash->add(buffer.data(), chunk);
        if (!send_all(fd, buffer.data(), chunk, deadline)) return false;
        sent += chunk;
    }
    return true;
}

std::map<std::uint64_t, StreamRecord> PacedStreamBackend::records() {
    std::lock_guard lock(mutex_);
    return records_;
}

void PacedStreamBackend::serve(int fd) {
    const Deadline deadline = deadline_in(Millis(60000));
    std::uint8_t header[5];
    if (!recv_exact(fd, header, sizeof header, deadline)) return;
    const std::size_t length = (std::size_t{header[3]} << 8) | header[4];
    std::vector<std::uint8_t> hello(header, header + 5);
    hello.resize(5 + length);
    if (!recv_exact(fd, hello.data() + 5, length, deadline)) return;
    std::uint64_t magic = 0;
    if (!recv_exact(fd, &magic, sizeof magic, deadline)) return;
    if (magic == echo_magic) return echo(fd, hello, magic, deadline);
    if (magic == stream_magic) return stream(fd, deadline);
}

void PacedStreamBackend::echo(int fd, const std::vector<std::uint8_t>& hello, std::uint64_t magic,
                              Deadline deadline) {
    if (!send_all(fd, hello, deadline) || !send_all(fd, &magic, sizeof magic, deadline)) return;
    std::vector<std::uint8_t> buffer(16 * 1024);
    for (int round = 0; round < 1000000; ++round) {
        const std::optional<std::size_t> got = recv_some(fd, buffer.data(), buffer.size(), deadline);
        if (!got || *got == 0) break;
        if (!send_all(fd, buffer.data(), *got, deadline)) return;
    }
    ::shutdown(fd, SHUT_WR);
}

void PacedStreamBackend::stream(int fd, Deadline deadline) {
    ++streams_started_;
    StreamPreamble preamble{};
    preamble.magic = stream_magic;
    if (!recv_exact(fd, reinterpret_cast<std::uint8_t*>(&preamble) + sizeof preamble.magic,
                    sizeof preamble - sizeof preamble.magic, deadline) ||
        preamble.down_bytes > (64u << 20) || preamble.pace_ms > 20000)
        return;
    StreamRecord record;
    std::thread sender([&] {
        record.down_sent = send_paced(fd, down_seed(preamble.id), preamble.down_bytes, Millis(preamble.pace_ms),
                                      deadline, nullptr);
        ::shutdown(fd, SHUT_WR);
    });
    const HashedStream received = read_to_eof_hashing(fd, deadline);
    record.eof = received.eof;
    record.bytes = received.bytes;
    record.hash = received.hash;
    sender.join();
    std::lock_guard lock(mutex_);
    records_[preamble.id] = record;
}

StreamOutcome run_stream(std::uint16_t port, std::uint64_t id, std::uint64_t up_bytes, std::uint64_t down_bytes,
                         Millis pace, Deadline deadline) {
    StreamOutcome outcome;
    outcome.up_bytes = up_bytes;
    const auto done = [&](std::string problem) {
        outcome.problem = std::move(problem);
        outcome.ended = Clock::now();
        return outcome;
    };
    Socket socket = connect_to(port);
    if (!socket) return done("connect failed");
    const int fd = socket.get();
    const std::vector<std::uint8_t>& hello = corpus_hellos()[id % corpus_hellos().size()]->bytes;
    const StreamPreamble preamble{stream_magic, id, up_bytes, down_bytes, static_cast<std::uint64_t>(pace.count())};
    if (!send_all(fd, hello, deadline) || !send_all(fd, &preamble, sizeof preamble, deadline))
        return done("sending the hello and preamble failed");
    Fnv1a64 up_hash;
    bool up_ok = false;
    std::thread writer([&] {
        up_ok = send_paced(fd, up_seed(id), up_bytes, pace, deadline, &up_hash);
        ::shutdown(fd, SHUT_WR);
    });
    std::ostringstream problems;
    ByteStream down(down_seed(id));
    std::vector<std::uint8_t> buffer(64 * 1024), expected(buffer.size());
    std::uint64_t received = 0;
    for (std::size_t round = 0; round < (1u << 20); ++round) {
        const std::optional<std::size_t> got = recv_some(fd, buffer.data(), buffer.size(), deadline);
        if (!got) {
            problems << "reading failed after " << received << " bytes: " << std::strerror(errno) << "; ";
            break;
        }
        if (*got == 0) break;
        if (received + *got > down_bytes) {
            problems << "more bytes than the backend sent; ";
            break;
        }
        down.fill(expected.data(), *got);
        if (std::memcmp(expected.data(), buffer.data(), *got) != 0) {
            problems << "down stream differs near byte " << received << "; ";
            break;
        }
        received += *got;
    }
    writer.join();
    if (!up_ok) problems << "sending the up stream failed: " << std::strerror(errno) << "; ";
    if (received != down_bytes) problems << "received " << received << " of " << down_bytes << " bytes; ";
    outcome.up_hash = up_hash.value;
    return done(problems.str());
}

}  // namespace integration
