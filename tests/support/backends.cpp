#include "tests/support/backends.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

namespace integration {

namespace {
TcpServer::Handler ident_handler(const std::string& id) {
    return [id](int fd, std::size_t) {
        std::uint8_t buffer[4096];
        // Wait for the forwarded hello, then answer with the id.
        const auto got = recv_some(fd, buffer, sizeof buffer, deadline_in(Millis(5000)));
        if (!got || *got == 0) return;
        const std::string answer = id + "\n";
        if (!send_all(fd, answer.data(), answer.size(), deadline_in(Millis(2000)))) return;
        // Hold the connection until the client closes (bounded: 60 s).
        const Deadline until = deadline_in(Millis(60000));
        while (Clock::now() < until) {
            const auto more = recv_some(fd, buffer, sizeof buffer, deadline_in(Millis(200)));
            if (more && *more == 0) return;          // EOF
            if (!more && errno != ETIMEDOUT) return;  // reset, or the server shut it down
        }
    };
}
}  // namespace

IdentBackend::IdentBackend(std::string id, std::uint16_t port, std::string host)
    : id_(std::move(id)), host_(std::move(host)),
      server_(std::make_unique<TcpServer>(ident_handler(id_), port, host_)) {
    port_ = server_->port();
}

void IdentBackend::restart() {
    server_->stop();
    server_ = std::make_unique<TcpServer>(ident_handler(id_), port_, host_);
}

Socket connect_from(const std::string& source, std::uint16_t port, Millis timeout) {
    Socket socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!socket) return {};
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1) return {};
    if (::bind(socket.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return {};
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(port);
    remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(socket.get(), reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0 &&
        errno != EINPROGRESS)
        return {};
    pollfd item{socket.get(), POLLOUT, 0};
    if (::poll(&item, 1, static_cast<int>(timeout.count())) != 1) return {};
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) return {};
    set_nodelay(socket.get());
    return socket;
}

std::string read_backend_id(int fd, const std::vector<std::uint8_t>& hello, Millis timeout) {
    const Deadline deadline = deadline_in(timeout);
    if (!send_all(fd, hello, deadline)) return "";
    std::string id;
    char c = 0;
    while (id.size() < 64) {
        if (!recv_exact(fd, &c, 1, deadline)) return "";
        if (c == '\n') return id;
        id.push_back(c);
    }
    return "";
}

std::string ask_backend(std::uint16_t port, const std::vector<std::uint8_t>& hello,
                        const std::string& source) {
    Socket client = connect_from(source, port);
    if (!client) return "";
    return read_backend_id(client.get(), hello);
}

ClientLoop::ClientLoop(std::function<bool()> attempt)
    : thread_([this, attempt = std::move(attempt)] {
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
          while (!stop_.load() && std::chrono::steady_clock::now() < deadline) {
              if (attempt()) ++succeeded_;
              else ++failed_;
              std::this_thread::sleep_for(Millis(5));
          }
      }) {}

void ClientLoop::stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

}  // namespace integration
