// The sockmap forwarder's maps and program over real TCP connections on 127.0.0.1: a "client"
// connected to one paired socket, a "backend" accepted from the other (as a worker pairs them).
// Needs CAP_BPF and CAP_NET_ADMIN (skipped, with a message, without them).

#include "src/bpf/sockmap.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

using passgate::bpf::Pair;
using passgate::bpf::Sockmap;

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

// A connected pair of TCP sockets on loopback: {the outside end, the end a proxy would hold}.
std::pair<Fd, Fd> tcp_pair() {
    Fd listener(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener.get(), 1) == 0);
    REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
    Fd outside(::socket(AF_INET, SOCK_STREAM, 0));
    REQUIRE(::connect(outside.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    Fd inside(::accept(listener.get(), nullptr, nullptr));
    REQUIRE(inside.get() >= 0);
    return {std::move(outside), std::move(inside)};
}

std::unique_ptr<Sockmap> load_or_skip() {
    try {
        return Sockmap::load();
    } catch (const std::runtime_error& error) {
        WARN(std::string("skipped: ") + error.what());
        return nullptr;
    }
}

// Reads exactly `size` bytes (poll-bounded) or fails.
std::string read_exactly(int fd, std::size_t size) {
    std::string got;
    while (got.size() < size) {
        pollfd p{fd, POLLIN, 0};
        REQUIRE(::poll(&p, 1, poll_timeout_ms) == 1);
        char buffer[4096];
        const ssize_t n = ::recv(fd, buffer, std::min(sizeof buffer, size - got.size()), 0);
        REQUIRE(n > 0);
        got.append(buffer, static_cast<std::size_t>(n));
    }
    return got;
}

void send_all(int fd, const std::string& bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

}  // namespace

TEST_CASE("paired sockets forward both ways in the kernel and count the bytes", "[sockmap]") {
    std::unique_ptr<Sockmap> sockmap = load_or_skip();
    if (!sockmap) return;
    auto [client, from_client] = tcp_pair();
    auto [backend, to_backend] = tcp_pair();
    Pair pair;
    REQUIRE(sockmap->pair(from_client.get(), to_backend.get(), pair) == 0);
    CHECK(sockmap->paired_sockets() == 2);

    send_all(client.get(), "hello backend");
    CHECK(read_exactly(backend.get(), 13) == "hello backend");
    const std::string big(1 << 20, 'x');
    send_all(backend.get(), big);
    CHECK(read_exactly(client.get(), big.size()) == big);
    CHECK(sockmap->bytes_from(pair.a) == 13);
    CHECK(sockmap->bytes_from(pair.b) == big.size());

    const Sockmap::Bytes bytes = sockmap->unpair(pair);
    CHECK(bytes.from_a == 13);
    CHECK(bytes.from_b == big.size());
    CHECK(sockmap->paired_sockets() == 0);
}

TEST_CASE("bytes queued on a socket before it is paired", "[sockmap]") {
    std::unique_ptr<Sockmap> sockmap = load_or_skip();
    if (!sockmap) return;
    auto [client, from_client] = tcp_pair();
    auto [backend, to_backend] = tcp_pair();
    send_all(backend.get(), "early");
    pollfd p{to_backend.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, poll_timeout_ms) == 1);
    Pair pair;
    REQUIRE(sockmap->pair(from_client.get(), to_backend.get(), pair) == 0);
    pollfd q{client.get(), POLLIN, 0};
    const int ready = ::poll(&q, 1, 200);
    WARN("early bytes forwarded without a later skb: " << (ready == 1 ? "yes" : "no"));
    send_all(backend.get(), "late");
    const std::string got = read_exactly(client.get(), ready == 1 ? 9 : 4);
    WARN("client got: " << got);
    sockmap->unpair(pair);
}

TEST_CASE("a closed socket leaves the sockhash; unpair empties the pairs map", "[sockmap]") {
    std::unique_ptr<Sockmap> sockmap = load_or_skip();
    if (!sockmap) return;
    Pair pair;
    {
        auto [client, from_client] = tcp_pair();
        auto [backend, to_backend] = tcp_pair();
        REQUIRE(sockmap->pair(from_client.get(), to_backend.get(), pair) == 0);
    }
    CHECK(sockmap->paired_sockets() == 2);
    sockmap->unpair(pair);
    CHECK(sockmap->paired_sockets() == 0);
}
