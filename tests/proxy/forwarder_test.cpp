// The forwarder driven directly, over real TCP connections on 127.0.0.1: a "client" socket
// connected to the forwarder's source, and the forwarder's destination connected to a "backend"
// socket. The test plays the worker's loop: it waits with poll(2) and calls forward() again.

#include "src/proxy/forwarder.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>
#include <vector>

using passgate::copy_chunk;
using passgate::Direction;
using passgate::DirectionEnds;
using passgate::ForwardResult;
using passgate::PipePool;
using Outcome = passgate::ForwardResult::Outcome;

namespace {

constexpr int poll_timeout_ms = 5000;  // a step that takes this long has failed

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        std::swap(fd_, other.fd_);
        return *this;
    }
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

void set_nonblocking(int fd) { REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0); }

// A connected TCP pair on 127.0.0.1, both ends non-blocking. `small_buffers`: the receiving side
// (second) gets a small receive buffer, so that a reader that stops reading fills it quickly.
std::pair<Fd, Fd> tcp_pair(bool small_buffers = false) {
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener.get() >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
    REQUIRE(::listen(listener.get(), 1) == 0);
    Fd first(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(first.get() >= 0);
    if (small_buffers) {
        const int size = 16 * 1024;
        REQUIRE(::setsockopt(first.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
        REQUIRE(::setsockopt(listener.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0);
    }
    REQUIRE(::connect(first.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    Fd second(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(second.get() >= 0);
    set_nonblocking(first.get());
    set_nonblocking(second.get());
    return {std::move(first), std::move(second)};
}

bool wait_for(int fd, short events) {
    pollfd entry{fd, events, 0};
    return ::poll(&entry, 1, poll_timeout_ms) == 1;
}

// The four sockets: client -> source (forwarder) -> destination -> backend.
struct Link {
    Link(bool small_buffers = false) {
        auto [c, s] = tcp_pair();
        client = std::move(c);
        source = std::move(s);
        auto [d, b] = tcp_pair(small_buffers);
        destination = std::move(d);
        backend = std::move(b);
    }
    DirectionEnds ends() const { return {source.get(), destination.get()}; }
    Fd client, source, destination, backend;
};

std::vector<std::uint8_t> pattern(std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    std::uint32_t state = 2463534242u;  // xorshift32: bytes that differ everywhere
    for (std::uint8_t& byte : bytes) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        byte = static_cast<std::uint8_t>(state);
    }
    return bytes;
}

std::uint64_t checksum(const std::vector<std::uint8_t>& bytes) {  // FNV-1a
    std::uint64_t hash = 14695981039346656037ull;
    for (const std::uint8_t byte : bytes) hash = (hash ^ byte) * 1099511628211ull;
    return hash;
}

// Calls forward() whenever it may move something (the source readable, the destination writable
// after destination_full, or at once after budget_spent), the way the worker's watches do, while
// the client writes `payload` (from byte `written` on) and then shuts down its side, and the
// backend reads. Stops when the
// direction finished, or a step fails (the result says which).
struct Transfer {
    std::vector<std::uint8_t> received;
    std::vector<ForwardResult> results;
    bool backend_saw_end = false;
};

Transfer run_transfer(Link& link, PipePool& pipes, Direction& direction, const std::vector<std::uint8_t>& payload,
                      std::size_t written = 0, std::size_t backend_read_size = 64 * 1024) {
    Transfer transfer;
    bool client_shut = false;
    for (int step = 0; step < 1'000'000; ++step) {
        // The client writes what its socket takes; then its end.
        if (written < payload.size()) {
            const ssize_t sent = ::send(link.client.get(), payload.data() + written, payload.size() - written,
                                        MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent > 0) written += static_cast<std::size_t>(sent);
            else REQUIRE(errno == EAGAIN);
        } else if (!client_shut) {
            REQUIRE(::shutdown(link.client.get(), SHUT_WR) == 0);
            client_shut = true;
        }
        // The backend reads what has arrived, up to its end.
        std::vector<std::uint8_t> chunk(backend_read_size);
        const ssize_t got = ::recv(link.backend.get(), chunk.data(), chunk.size(), MSG_DONTWAIT);
        if (got > 0) transfer.received.insert(transfer.received.end(), chunk.begin(), chunk.begin() + got);
        else if (got == 0) transfer.backend_saw_end = true;
        else REQUIRE(errno == EAGAIN);
        if (transfer.backend_saw_end) return transfer;
        if (direction.finished) continue;  // the backend reads on to its end
        // The forwarder's turn, when its watch would have fired.
        if (direction.waiting_writable) {
            pollfd entry{link.destination.get(), POLLOUT, 0};
            if (::poll(&entry, 1, 0) != 1) {
                if (got <= 0) REQUIRE(wait_for(link.backend.get(), POLLIN));
                continue;
            }
            direction.on_writable();
        }
        const ForwardResult result = passgate::forward(direction, link.ends(), pipes, false);
        transfer.results.push_back(result);
        if (result.outcome == Outcome::source_error || result.outcome == Outcome::destination_error ||
            result.outcome == Outcome::out_of_pipes)
            return transfer;
        if (result.outcome == Outcome::source_empty && got <= 0 && written == payload.size())
            REQUIRE(wait_for(link.source.get(), POLLIN | POLLRDHUP));
    }
    FAIL("the transfer did not end");
    return transfer;
}

bool any_outcome(const Transfer& transfer, Outcome outcome) {
    for (const ForwardResult& result : transfer.results)
        if (result.outcome == outcome) return true;
    return false;
}

std::uint64_t moved_in_total(const Transfer& transfer) {
    std::uint64_t total = 0;
    for (const ForwardResult& result : transfer.results) total += result.moved;
    return total;
}

}  // namespace

TEST_CASE("forwarder: a few MiB arrive byte for byte, through buffer and pipes, and the end passes on",
          "[forwarder]") {
    PipePool pipes(256 * 1024, 4);
    Link link;
    Direction direction;
    const std::vector<std::uint8_t> payload = pattern(4 * 1024 * 1024 + 123);
    const Transfer transfer = run_transfer(link, pipes, direction, payload);
    REQUIRE(transfer.received.size() == payload.size());
    CHECK(checksum(transfer.received) == checksum(payload));
    CHECK(transfer.received == payload);
    CHECK(transfer.backend_saw_end);
    CHECK(direction.finished);
    CHECK(direction.bytes == payload.size());
    CHECK(moved_in_total(transfer) == payload.size());
    CHECK(transfer.results.back().outcome == Outcome::finished);
    // A stream went through the pipes; all of them came back, none holds bytes.
    CHECK(pipes.stats().created >= 1);
    CHECK(pipes.stats().in_use == 0);
    CHECK_FALSE(direction.pipe.held());
}

TEST_CASE("forwarder: a small message goes through the buffer, no pipe leased", "[forwarder]") {
    PipePool pipes(256 * 1024, 4);
    Link link;
    Direction direction;
    const std::vector<std::uint8_t> message = pattern(300);
    REQUIRE(::send(link.client.get(), message.data(), message.size(), MSG_NOSIGNAL) == 300);
    REQUIRE(wait_for(link.source.get(), POLLIN));
    const ForwardResult result = passgate::forward(direction, link.ends(), pipes, false);
    CHECK(result.outcome == Outcome::source_empty);
    CHECK(result.moved == 300);
    CHECK_FALSE(result.source_ended);
    CHECK(pipes.stats().created == 0);
    std::vector<std::uint8_t> got(1000);
    REQUIRE(wait_for(link.backend.get(), POLLIN));
    REQUIRE(::recv(link.backend.get(), got.data(), got.size(), 0) == 300);
    got.resize(300);
    CHECK(got == message);
}

TEST_CASE("forwarder: the source's end passes on as shutdown(SHUT_WR), the other way stays open",
          "[forwarder]") {
    PipePool pipes(256 * 1024, 4);
    Link link;
    Direction direction;
    REQUIRE(::send(link.client.get(), "last words", 10, MSG_NOSIGNAL) == 10);
    REQUIRE(::shutdown(link.client.get(), SHUT_WR) == 0);
    REQUIRE(wait_for(link.source.get(), POLLRDHUP));
    pollfd entry{link.source.get(), POLLIN | POLLRDHUP, 0};
    REQUIRE(::poll(&entry, 1, 0) == 1);
    direction.note_end_events(entry.revents);  // as the readable watch reports it
    const ForwardResult result = passgate::forward(direction, link.ends(), pipes, false);
    CHECK(result.outcome == Outcome::finished);
    CHECK(result.source_ended);
    CHECK(result.moved == 10);
    CHECK(direction.finished);
    // The backend reads the bytes, then its end of stream.
    char got[32];
    REQUIRE(wait_for(link.backend.get(), POLLIN));
    REQUIRE(::recv(link.backend.get(), got, sizeof got, 0) == 10);
    REQUIRE(wait_for(link.backend.get(), POLLIN));
    CHECK(::recv(link.backend.get(), got, sizeof got, 0) == 0);
    // Half-closed, not closed: the backend can still answer, the client still reads.
    REQUIRE(::send(link.backend.get(), "reply", 5, MSG_NOSIGNAL) == 5);
    Direction back;
    REQUIRE(wait_for(link.destination.get(), POLLIN));
    const ForwardResult answer =
        passgate::forward(back, {link.destination.get(), link.source.get()}, pipes, direction.finished);
    CHECK(answer.outcome == Outcome::source_empty);
    CHECK(answer.moved == 5);
    REQUIRE(wait_for(link.client.get(), POLLIN));
    CHECK(::recv(link.client.get(), got, sizeof got, 0) == 5);
}

TEST_CASE("forwarder: a stalled reader makes it wait with the bytes in its pipe; it resumes when drained, "
          "nothing lost", "[forwarder]") {
    PipePool pipes(64 * 1024, 4);
    Link link(true);
    Direction direction;
    // More than the destination's send buffer and the backend's receive buffer hold.
    const std::vector<std::uint8_t> payload = pattern(3 * 1024 * 1024);
    std::size_t written = 0;
    ForwardResult result;
    for (int step = 0; step < 100'000 && !direction.waiting_writable; ++step) {
        if (written < payload.size()) {
            const ssize_t sent = ::send(link.client.get(), payload.data() + written, payload.size() - written,
                                        MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent > 0) written += static_cast<std::size_t>(sent);
        }
        REQUIRE(wait_for(link.source.get(), POLLIN));
        result = passgate::forward(direction, link.ends(), pipes, false);
        REQUIRE((result.outcome == Outcome::source_empty || result.outcome == Outcome::budget_spent ||
                 result.outcome == Outcome::destination_full));
    }
    // The backend has not read a byte: the forwarder says so and keeps the rest in its pipe.
    REQUIRE(result.outcome == Outcome::destination_full);
    CHECK(direction.waiting_writable);
    REQUIRE(direction.pipe.held());
    CHECK(direction.pipe.bytes_inside > 0);
    pollfd entry{link.destination.get(), POLLOUT, 0};
    CHECK(::poll(&entry, 1, 0) == 0);  // truly full
    // The backend drains, slowly; the forwarder resumes and everything arrives, in order, once.
    const Transfer rest = run_transfer(link, pipes, direction, payload, written, 4096);
    REQUIRE(rest.received.size() == payload.size());
    CHECK(checksum(rest.received) == checksum(payload));
    CHECK(rest.received == payload);
    CHECK(rest.backend_saw_end);
    CHECK(direction.bytes == payload.size());
    CHECK(any_outcome(rest, Outcome::destination_full));  // it waited again, and resumed again
}

// Fills the destination (nobody reads the backend) until it takes no more; returns the bytes.
std::vector<std::uint8_t> fill(int fd) {
    std::vector<std::uint8_t> written;
    const std::vector<std::uint8_t> block = pattern(4096);
    for (int step = 0; step < 100'000; ++step) {
        const ssize_t sent = ::send(fd, block.data(), block.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0) {
            REQUIRE(errno == EAGAIN);
            return written;
        }
        written.insert(written.end(), block.begin(), block.begin() + sent);
    }
    FAIL("the destination never filled");
    return written;
}

// Reads `size` bytes from `fd`, polling.
std::vector<std::uint8_t> read_exactly(int fd, std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    std::size_t got = 0;
    while (got < size) {
        REQUIRE(wait_for(fd, POLLIN));
        const ssize_t n = ::recv(fd, bytes.data() + got, size - got, MSG_DONTWAIT);
        REQUIRE(n > 0);
        got += static_cast<std::size_t>(n);
    }
    return bytes;
}

TEST_CASE("forwarder: a small message to a full destination waits in a pipe, then arrives", "[forwarder]") {
    PipePool pipes(64 * 1024, 4);
    Link link(true);
    Direction direction;
    const std::vector<std::uint8_t> filler = fill(link.destination.get());
    const std::vector<std::uint8_t> message = pattern(300);
    REQUIRE(::send(link.client.get(), message.data(), message.size(), MSG_NOSIGNAL) == 300);
    REQUIRE(wait_for(link.source.get(), POLLIN));
    const ForwardResult result = passgate::forward(direction, link.ends(), pipes, false);
    REQUIRE(result.outcome == Outcome::destination_full);
    CHECK(result.moved == 0);
    CHECK(direction.waiting_writable);
    REQUIRE(direction.pipe.held());
    CHECK(direction.pipe.bytes_inside == 300);
    // The backend reads; once the destination is writable the pipe's bytes go, and the pipe back.
    std::vector<std::uint8_t> expected = filler;
    expected.insert(expected.end(), message.begin(), message.end());
    std::vector<std::uint8_t> received = read_exactly(link.backend.get(), filler.size());
    REQUIRE(wait_for(link.destination.get(), POLLOUT));
    direction.on_writable();
    const ForwardResult resumed = passgate::forward(direction, link.ends(), pipes, false);
    CHECK(resumed.outcome == Outcome::source_empty);
    CHECK(resumed.moved == 300);
    CHECK_FALSE(direction.pipe.held());
    const std::vector<std::uint8_t> rest = read_exactly(link.backend.get(), 300);
    received.insert(received.end(), rest.begin(), rest.end());
    CHECK(received == expected);
    CHECK(direction.bytes == 300);
}

TEST_CASE("forwarder: out of pipes, a stream's turn ends in out_of_pipes with the errno of pipe2",
          "[forwarder]") {
    PipePool pipes(64 * 1024, 0);
    Link link;
    Direction direction;
    // A full buffer's worth makes it a stream: the splice path needs a pipe.
    const std::vector<std::uint8_t> payload = pattern(4 * copy_chunk);
    REQUIRE(::send(link.client.get(), payload.data(), payload.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(payload.size()));
    REQUIRE(wait_for(link.source.get(), POLLIN));
    // No descriptor left for pipe2: lower the limit to the lowest free descriptor.
    rlimit original{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
    const int lowest_free = ::dup(0);
    REQUIRE(lowest_free >= 0);
    ::close(lowest_free);
    rlimit tight = original;
    tight.rlim_cur = static_cast<rlim_t>(lowest_free);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
    const ForwardResult result = passgate::forward(direction, link.ends(), pipes, false);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &original) == 0);
    CHECK(result.outcome == Outcome::out_of_pipes);
    CHECK(result.error == EMFILE);
    CHECK(result.moved == copy_chunk);  // the buffer's bytes went before the pipe was needed
    CHECK(direction.bytes == copy_chunk);
    CHECK(pipes.stats().create_failed == 1);
    CHECK_FALSE(direction.pipe.held());
}
