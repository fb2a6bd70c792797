#include "tests/support/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace integration {

namespace {

int millis_left(Deadline deadline) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 60 * 60 * 1000));
}

// Waits for `events` on fd until the deadline. False (errno = ETIMEDOUT) when it passed.
bool wait_for(int fd, short events, Deadline deadline) {
    for (int round = 0; round < 100000; ++round) {
        pollfd item{fd, events, 0};
        const int ready = ::poll(&item, 1, millis_left(deadline));
        if (ready == 1) return true;
        if (ready == 0) {
            errno = ETIMEDOUT;
            return false;
        }
        if (errno != EINTR) return false;
    }
    errno = ETIMEDOUT;
    return false;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    return address;
}

}  // namespace

void Socket::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Socket connect_to(std::uint16_t port, Millis timeout) { return connect_bound_to(nullptr, port, timeout); }

Socket connect_bound_to(const char* source_ip, std::uint16_t port, Millis timeout) {
    Socket socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!socket) return socket;
    if (source_ip != nullptr) {
        sockaddr_in source{};
        source.sin_family = AF_INET;
        if (::inet_pton(AF_INET, source_ip, &source.sin_addr) != 1) return Socket();
        if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0)
            return Socket();
    }
    const sockaddr_in address = loopback(port);
    if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0)
        return socket;
    if (errno != EINPROGRESS) return Socket();
    if (!wait_for(socket.get(), POLLOUT, deadline_in(timeout))) return Socket();
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0)
        return Socket();
    return socket;
}

Socket listen_on_loopback(int backlog, std::uint16_t& port) {
    Socket socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!socket) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in address = loopback(0);
    socklen_t length = sizeof address;
    if (::bind(socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(socket.get(), backlog) != 0 ||
        ::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::system_error(errno, std::generic_category(), "listen 127.0.0.1:0");
    port = ntohs(address.sin_port);
    return socket;
}

void set_nodelay(int fd) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::string local_name(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return "?";
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &address.sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(address.sin_port));
}

bool send_all(int fd, const void* data, std::size_t size, Deadline deadline) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    std::size_t sent = 0;
    // Each round either sends something or waits for room: bounded by size and the deadline.
    for (std::size_t round = 0; sent < size && round < size + 100000; ++round) {
        const ssize_t done = ::send(fd, bytes + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (done > 0) {
            sent += static_cast<std::size_t>(done);
            continue;
        }
        if (done < 0 && errno == EINTR) continue;
        if (done < 0 && errno == EAGAIN) {
            if (!wait_for(fd, POLLOUT, deadline)) return false;
            continue;
        }
        return false;
    }
    return sent == size;
}

std::optional<std::size_t> recv_some(int fd, void* data, std::size_t size, Deadline deadline) {
    for (int round = 0; round < 100000; ++round) {
        const ssize_t got = ::recv(fd, data, size, MSG_DONTWAIT);
        if (got >= 0) return static_cast<std::size_t>(got);
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return std::nullopt;
        if (!wait_for(fd, POLLIN, deadline)) return std::nullopt;
    }
    errno = ETIMEDOUT;
    return std::nullopt;
}

bool recv_exact(int fd, void* data, std::size_t size, Deadline deadline) {
    auto* bytes = static_cast<std::uint8_t*>(data);
    std::size_t have = 0;
    for (std::size_t round = 0; have < size && round < size + 100000; ++round) {
        const std::optional<std::size_t> got = recv_some(fd, bytes + have, size - have, deadline);
        if (!got || *got == 0) return false;
        have += *got;
    }
    return have == size;
}

std::string echo_round_trip(std::uint16_t port, const std::vector<std::uint8_t>& hello,
                            const std::vector<std::uint8_t>& payload, Millis timeout) {
    const Deadline deadline = deadline_in(timeout);
    Socket socket = connect_to(port, timeout);
    if (!socket) return std::string("connect failed: ") + std::strerror(errno);
    std::vector<std::uint8_t> sent(hello);
    sent.insert(sent.end(), payload.begin(), payload.end());
    if (!send_all(socket.get(), sent, deadline))
        return std::string("sending failed: ") + std::strerror(errno);
    std::vector<std::uint8_t> echoed(sent.size());
    if (!recv_exact(socket.get(), echoed.data(), echoed.size(), deadline))
        return std::string("no complete echo: ") + std::strerror(errno);
    if (echoed != sent) return "echo differs: " + byte_difference(echoed, sent);
    if (::shutdown(socket.get(), SHUT_WR) != 0)
        return std::string("shutdown(SHUT_WR): ") + std::strerror(errno);
    std::uint8_t extra[64];
    const std::optional<std::size_t> got = recv_some(socket.get(), extra, sizeof extra, deadline);
    if (!got) return std::string("no EOF from the backend after the half-close: ") + std::strerror(errno);
    if (*got != 0) return "unexpected bytes after the echo";
    return {};
}

std::string echo_check(int fd, const std::string& text, Millis timeout) {
    const Deadline deadline = deadline_in(timeout);
    if (!send_all(fd, text.data(), text.size(), deadline))
        return std::string("sending failed: ") + std::strerror(errno);
    std::string echoed(text.size(), '\0');
    if (!recv_exact(fd, echoed.data(), echoed.size(), deadline))
        return std::string("no complete echo: ") + std::strerror(errno);
    if (echoed != text) return "echo differs: \"" + echoed + "\"";
    return {};
}

CloseObservation wait_closed(int fd, Millis timeout) {
    CloseObservation result;
    const Clock::time_point start = Clock::now();
    const Deadline deadline = start + timeout;
    for (int round = 0; round < 100000; ++round) {
        std::uint8_t buffer[4096];
        const std::optional<std::size_t> got = recv_some(fd, buffer, sizeof buffer, deadline);
        if (got && *got > 0) {
            result.bytes += *got;
            continue;
        }
        if (!got && errno == ETIMEDOUT) break;
        result.closed = true;
        result.reset = !got;  // an error other than the timeout: ECONNRESET in practice
        break;
    }
    result.after = std::chrono::duration_cast<Millis>(Clock::now() - start);
    return result;
}

// ---- TcpServer -----------------------------------------------------------------------------------

TcpServer::TcpServer(Handler handler, std::uint16_t port, const std::string& host)
    : handler_(std::move(handler)) {
    listener_ = Socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listener_) throw std::system_error(errno, std::generic_category(), "socket");
    const int one = 1;  // a server restarted on its old port must not wait for TIME_WAIT
    if (port != 0) ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address = loopback(port);
    if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1)
        throw std::invalid_argument("TcpServer: not an IPv4 address: " + host);
    socklen_t length = sizeof address;
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_.get(), 512) != 0 ||
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::system_error(errno, std::generic_category(),
                                "listen " + host + ":" + std::to_string(port));
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

TcpServer::~TcpServer() { stop(); }

void TcpServer::accept_loop() {
    // Wakes every 20 ms to notice stop(); ends when stopping, or after 15 minutes at most.
    for (int round = 0; round < 45000 && !stopping_.load(); ++round) {
        pollfd item{listener_.get(), POLLIN, 0};
        if (::poll(&item, 1, 20) != 1) continue;
        const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) continue;
        std::lock_guard lock(mutex_);
        if (stopping_.load()) {
            ::close(fd);
            break;
        }
        const std::size_t index = accepted_.fetch_add(1);
        open_.push_back(fd);
        threads_.emplace_back([this, fd, index] {
            handler_(fd, index);
            std::lock_guard inner(mutex_);
            open_.erase(std::find(open_.begin(), open_.end(), fd));
            ::close(fd);
        });
    }
}

void TcpServer::stop() {
    if (stopping_.exchange(true)) {
        if (acceptor_.joinable()) acceptor_.join();
        return;
    }
    if (acceptor_.joinable()) acceptor_.join();
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(mutex_);
        // Wakes every handler: its reads see EOF, its writes fail.
        for (const int fd : open_) ::shutdown(fd, SHUT_RDWR);
        threads.swap(threads_);
    }
    for (std::thread& thread : threads) thread.join();
    listener_.reset();
}

// ---- EchoBackend ---------------------------------------------------------------------------------

EchoBackend::EchoBackend()
    : server_([this](int fd, std::size_t index) {
          auto record = std::make_shared<std::vector<std::uint8_t>>();
          {
              std::lock_guard lock(mutex_);
              if (received_.size() <= index) received_.resize(index + 1);
              received_[index] = record;
          }
          const Deadline deadline = deadline_in(Millis(60000));
          for (int round = 0; round < 1000000 && !server_.stopping(); ++round) {
              std::uint8_t buffer[16 * 1024];
              const std::optional<std::size_t> got = recv_some(fd, buffer, sizeof buffer, deadline);
              if (!got || *got == 0) break;
              {
                  std::lock_guard lock(mutex_);
                  record->insert(record->end(), buffer, buffer + *got);
              }
              if (!send_all(fd, buffer, *got, deadline)) break;
          }
          ::shutdown(fd, SHUT_WR);
      }) {}

std::vector<std::uint8_t> EchoBackend::received(std::size_t index) {
    std::lock_guard lock(mutex_);
    if (index >= received_.size() || !received_[index]) return {};
    return *received_[index];
}

std::size_t EchoBackend::connections_seen() {
    std::lock_guard lock(mutex_);
    return received_.size();
}

std::string byte_difference(const std::vector<std::uint8_t>& actual,
                            const std::vector<std::uint8_t>& expected) {
    if (actual == expected) return {};
    std::size_t at = 0;
    while (at < actual.size() && at < expected.size() && actual[at] == expected[at]) ++at;
    return "got " + std::to_string(actual.size()) + " bytes, expected " +
           std::to_string(expected.size()) + "; first difference at byte " + std::to_string(at);
}

// ---- ByteStream ----------------------------------------------------------------------------------

void ByteStream::fill(std::uint8_t* out, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
        if (left_ == 0) {
            // splitmix64
            std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            word_ = z ^ (z >> 31);
            left_ = 8;
        }
        out[i] = static_cast<std::uint8_t>(word_);
        word_ >>= 8;
        --left_;
    }
}

HashedStream read_to_eof_hashing(int fd, Deadline deadline) {
    HashedStream stream;
    Fnv1a64 hash;
    std::vector<std::uint8_t> buffer(256 * 1024);
    for (std::size_t round = 0; round < (1u << 24); ++round) {
        const std::optional<std::size_t> got = recv_some(fd, buffer.data(), buffer.size(), deadline);
        if (!got) break;
        if (*got == 0) {
            stream.eof = true;
            break;
        }
        hash.add(buffer.data(), *got);
        stream.bytes += *got;
    }
    stream.hash = hash.value;
    return stream;
}

std::vector<std::uint8_t> minimal_client_hello(const std::string& sni) {
    std::vector<std::uint8_t> extensions;
    const auto put16 = [](std::vector<std::uint8_t>& out, std::size_t value) {
        out.push_back(static_cast<std::uint8_t>(value >> 8));
        out.push_back(static_cast<std::uint8_t>(value & 0xff));
    };
    if (!sni.empty()) {
        put16(extensions, 0);               // server_name
        put16(extensions, sni.size() + 5);  // extension length
        put16(extensions, sni.size() + 3);  // server name list length
        extensions.push_back(0);            // host_name
        put16(extensions, sni.size());
        extensions.insert(extensions.end(), sni.begin(), sni.end());
    }
    std::vector<std::uint8_t> body = {0x03, 0x03};  // client_version TLS 1.2
    body.insert(body.end(), 32, 0x42);              // random
    body.push_back(0);                              // no session id
    put16(body, 2);
    body.push_back(0xc0);                           // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    body.push_back(0x2f);
    body.push_back(1);                              // compression methods: null
    body.push_back(0);
    put16(body, extensions.size());
    body.insert(body.end(), extensions.begin(), extensions.end());
    std::vector<std::uint8_t> record = {0x16, 0x03, 0x01};
    put16(record, body.size() + 4);
    record.push_back(0x01);  // ClientHello
    record.push_back(0);
    put16(record, body.size());
    record.insert(record.end(), body.begin(), body.end());
    return record;
}

}  // namespace integration
