#pragma once
// Socket helpers and in-process backends for the integration tests. Every blocking step waits
// with poll() against a deadline; servers run a thread per connection and can be stopped at any
// time (their sockets are shut down, which wakes every thread).

#include "tests/support/process.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace integration {

using Deadline = Clock::time_point;
inline Deadline deadline_in(Millis timeout) { return Clock::now() + timeout; }

// An owned descriptor.
class Socket {
public:
    Socket() = default;
    explicit Socket(int fd) : fd_(fd) {}
    ~Socket() { reset(); }
    Socket(Socket&& other) noexcept : fd_(other.release()) {}
    Socket& operator=(Socket&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.release();
        }
        return *this;
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset();

private:
    int fd_ = -1;
};

// Connects to 127.0.0.1:port; an invalid Socket on failure or timeout. The socket is non-blocking
// (all helpers below poll before they read or write).
Socket connect_to(std::uint16_t port, Millis timeout = Millis(2000));
// The same from `source_ip` (another 127.0.0.x, for a distinct client address), any port.
Socket connect_bound_to(const char* source_ip, std::uint16_t port, Millis timeout = Millis(2000));
void set_nodelay(int fd);
// A blocking TCP socket listening on 127.0.0.1:<ephemeral> with `backlog`; `port` gets the port.
// Nothing accepts on it unless the caller does.
Socket listen_on_loopback(int backlog, std::uint16_t& port);
// "127.0.0.1:PORT" of the local end, as passgate logs it in client=...
std::string local_name(int fd);

bool send_all(int fd, const void* data, std::size_t size, Deadline deadline);
inline bool send_all(int fd, const std::vector<std::uint8_t>& data, Deadline deadline) {
    return send_all(fd, data.data(), data.size(), deadline);
}
// Reads exactly `size` bytes; false on EOF, error or deadline.
bool recv_exact(int fd, void* data, std::size_t size, Deadline deadline);
// One read: bytes read (0 = EOF), or nullopt on error or deadline (errno tells: ETIMEDOUT).
std::optional<std::size_t> recv_some(int fd, void* data, std::size_t size, Deadline deadline);

// One short connection through passgate to a backend that echoes every byte (EchoBackend):
// connect, send `hello` then `payload`, read both back byte for byte, half-close, wait for the
// backend's EOF, close. Empty on success, else what went wrong.
std::string echo_round_trip(std::uint16_t port, const std::vector<std::uint8_t>& hello,
                            const std::vector<std::uint8_t>& payload, Millis timeout = Millis(3000));
// On an established connection to an echoing backend: sends `text` and reads it back. Empty on
// success, else what went wrong.
std::string echo_check(int fd, const std::string& text, Millis timeout = Millis(2000));

// A small TLS 1.2 ClientHello (one record) whose only extension is server_name `sni` (none when
// empty): for tests that route many names without a TLS library.
std::vector<std::uint8_t> minimal_client_hello(const std::string& sni);

// How a connection ended from the client's side.
struct CloseObservation {
    bool closed = false;     // EOF or reset seen before the timeout
    bool reset = false;      // ECONNRESET (rather than EOF)
    std::size_t bytes = 0;   // bytes that arrived before the close
    Millis after{0};         // time until the close was seen
};
CloseObservation wait_closed(int fd, Millis timeout);

// A TCP server on 127.0.0.1:<ephemeral>. `handler` runs on its own thread per connection with a
// blocking-free (non-blocking) socket; it should return when the socket says EOF or `stopping`.
class TcpServer {
public:
    using Handler = std::function<void(int fd, std::size_t index)>;
    // `port` 0: an ephemeral port; else that port (SO_REUSEADDR: restarting on it works).
    // `host`: a 127.x.y.z address to listen on.
    explicit TcpServer(Handler handler, std::uint16_t port = 0, const std::string& host = "127.0.0.1");
    ~TcpServer();
    TcpServer(const TcpServer&) = delete;
    TcpServer& operator=(const TcpServer&) = delete;

    std::uint16_t port() const { return port_; }
    std::size_t accepted() const { return accepted_.load(); }
    bool stopping() const { return stopping_.load(); }
    // Stops accepting, shuts every connection down, joins every thread. Idempotent.
    void stop();

private:
    void accept_loop();

    Handler handler_;
    Socket listener_;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> accepted_{0};
    std::mutex mutex_;
    std::vector<int> open_;  // connection fds, for shutdown on stop
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

// Echoes every byte back and records what each connection sent; closes its side after EOF.
class EchoBackend {
public:
    EchoBackend();
    ~EchoBackend() { server_.stop(); }
    std::uint16_t port() const { return server_.port(); }
    std::size_t accepted() const { return server_.accepted(); }
    // Bytes received so far on connection `index` (in accept order).
    std::vector<std::uint8_t> received(std::size_t index);
    std::size_t connections_seen();
    void stop() { server_.stop(); }

private:
    std::mutex mutex_;
    std::vector<std::shared_ptr<std::vector<std::uint8_t>>> received_;
    TcpServer server_;  // last: its threads use the members above
};

// Empty when equal, else a short description ("sizes 10 and 12; first difference at byte 4"):
// for CHECK(byte_difference(a, b) == "") without dumping kilobytes into the report.
std::string byte_difference(const std::vector<std::uint8_t>& actual,
                            const std::vector<std::uint8_t>& expected);

// Deterministic pseudo-random bytes (splitmix64), the same for the same seed.
class ByteStream {
public:
    explicit ByteStream(std::uint64_t seed) : state_(seed) {}
    void fill(std::uint8_t* out, std::size_t size);

private:
    std::uint64_t state_;
    std::uint64_t word_ = 0;
    unsigned left_ = 0;  // unused bytes in word_
};

// FNV-1a, 64 bits, over a stream fed in pieces.
struct Fnv1a64 {
    std::uint64_t value = 0xcbf29ce484222325ull;
    void add(const std::uint8_t* data, std::size_t size) {
        for (std::size_t i = 0; i < size; ++i) {
            value ^= data[i];
            value *= 0x100000001b3ull;
        }
    }
};

// Reads `fd` until EOF (or an error or the deadline), hashing what arrives.
struct HashedStream {
    std::uint64_t bytes = 0;
    std::uint64_t hash = Fnv1a64{}.value;
    bool eof = false;  // false: stopped by an error or the deadline
};
HashedStream read_to_eof_hashing(int fd, Deadline deadline);

}  // namespace integration
