#pragma once
// Identifying backends for balancing tests: each answers every connection with its own id, so a
// client knows which endpoint passgate picked, and a client bound to a chosen 127.0.0.x source
// address (maglev's key).

#include "tests/support/net.h"

#include <atomic>
#include <functional>
#include <map>
#include <thread>
#include <memory>
#include <string>
#include <vector>

namespace integration {

// Reads the first bytes a connection sends (the ClientHello, forwarded by passgate), answers
// "<id>\n", then holds the connection until the client closes it (or the server stops).
class IdentBackend {
public:
    // Listens on host:port (port 0: an ephemeral one).
    explicit IdentBackend(std::string id, std::uint16_t port = 0, std::string host = "127.0.0.1");
    std::uint16_t port() const { return server_->port(); }
    const std::string& id() const { return id_; }
    std::size_t accepted() const { return server_->accepted(); }
    void stop() { server_->stop(); }
    // A new server on the same port (after stop()); the accepted count starts again at 0.
    void restart();

private:
    std::string id_;
    std::uint16_t port_;
    std::string host_;
    std::unique_ptr<TcpServer> server_;
};

// Connects to 127.0.0.1:port from `source` (a 127.0.0.x address, port chosen by the kernel).
Socket connect_from(const std::string& source, std::uint16_t port, Millis timeout = Millis(2000));

// Sends `hello` on `fd` and reads the backend's "<id>\n"; the id, or "" on failure.
std::string read_backend_id(int fd, const std::vector<std::uint8_t>& hello, Millis timeout = Millis(5000));

// One connection: connect from `source`, send `hello`, read the id, close. "" on failure.
std::string ask_backend(std::uint16_t port, const std::vector<std::uint8_t>& hello,
                        const std::string& source = "127.0.0.1");

// Connections one after another on their own thread (5 ms apart) until stopped, or for at most 2
// minutes: `attempt` makes one and says whether it went as expected; the others are counted.
class ClientLoop {
public:
    explicit ClientLoop(std::function<bool()> attempt);
    ~ClientLoop() { stop(); }
    ClientLoop(const ClientLoop&) = delete;
    ClientLoop& operator=(const ClientLoop&) = delete;
    void stop();
    int failed() const { return failed_.load(); }
    int succeeded() const { return succeeded_.load(); }

private:
    std::atomic<bool> stop_{false};
    std::atomic<int> failed_{0};
    std::atomic<int> succeeded_{0};
    std::thread thread_;
};

// How many times each id was answered.
using IdCounts = std::map<std::string, int>;

}  // namespace integration
