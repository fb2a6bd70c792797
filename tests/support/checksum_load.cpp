#include "tests/support/checksum_load.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

namespace integration {

bool send_stream(int fd, std::uint64_t seed, std::uint64_t bytes, Deadline deadline) {
    std::vector<std::uint8_t> buffer(256 * 1024);
    ByteStream stream(seed);
    for (std::uint64_t sent = 0; sent < bytes;) {
        const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), bytes - sent));
        stream.fill(buffer.data(), chunk);
        if (!send_all(fd, buffer.data(), chunk, deadline)) return false;
        sent += chunk;
    }
    return true;
}

const std::vector<const CapturedHello*>& corpus_hellos() {
    static const std::vector<const CapturedHello*> hellos = [] {
        std::vector<const CapturedHello*> list;
        for (const CapturedHello& hello : captured_hellos())
            if (hello.sni && hello.sni->ends_with(".corpus.test")) list.push_back(&hello);
        return list;
    }();
    return hellos;
}

void checksum_backend(int fd, Deadline deadline) {
    std::uint8_t header[5];
    if (!recv_exact(fd, header, sizeof header, deadline)) return;
    const std::size_t record = (std::size_t{header[3]} << 8) | header[4];
    std::vector<std::uint8_t> hello(header, header + 5);
    hello.resize(5 + record);
    if (!recv_exact(fd, hello.data() + 5, record, deadline)) return;
    Preamble preamble{};
    if (!recv_exact(fd, &preamble, sizeof preamble, deadline)) return;
    ReplyHeader reply{};
    const std::vector<const CapturedHello*>& hellos = corpus_hellos();
    reply.preamble_ok = preamble.magic == preamble_magic && preamble.hello_index < hellos.size() &&
                        preamble.reply_bytes <= (64u << 20);
    if (!reply.preamble_ok) return;
    reply.hello_exact = hello == hellos[preamble.hello_index]->bytes;
    // A late reader: the client's bytes back up through passgate (its pipe and both sockets fill).
    if (preamble.read_delay_ms > 0)
        std::this_thread::sleep_for(Millis(std::min<std::uint64_t>(preamble.read_delay_ms, 5000)));

    const HashedStream received = read_to_eof_hashing(fd, deadline);
    if (!received.eof) return;  // error or deadline: the client sees the close and reports it
    reply.bytes = received.bytes;
    reply.hash = received.hash;
    if (!send_all(fd, &reply, sizeof reply, deadline)) return;
    if (!send_stream(fd, downstream_seed(preamble.connection), preamble.reply_bytes, deadline)) return;
    ::shutdown(fd, SHUT_WR);  // then TcpServer closes it: the server side closes first
}

std::string run_client(std::uint16_t port, std::uint64_t connection, std::uint64_t up_bytes,
                       std::uint64_t down_bytes, const LoadOptions& options, Deadline deadline) {
    const std::vector<const CapturedHello*>& hellos = corpus_hellos();
    const std::uint64_t hello_index = connection % hellos.size();
    const CapturedHello& hello = *hellos[hello_index];
    Socket socket = connect_to(port);
    if (!socket) return "connect to passgate failed";
    const int fd = socket.get();
    if (!send_all(fd, hello.bytes, deadline)) return "sending the hello failed";
    const Preamble preamble{preamble_magic, connection, hello_index, down_bytes,
                            static_cast<std::uint64_t>(options.backend_read_delay.count())};
    if (!send_all(fd, &preamble, sizeof preamble, deadline)) return "sending the preamble failed";

    std::vector<std::uint8_t> buffer(128 * 1024);
    ByteStream up(upstream_seed(connection));
    Fnv1a64 sent_hash;
    for (std::uint64_t sent = 0; sent < up_bytes;) {
        // Varying write sizes: a prime-ish cycle so that writes do not line up with pipe pages.
        const std::size_t want = 1 + (sent * 31 + connection * 17) % buffer.size();
        const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(want, up_bytes - sent));
        up.fill(buffer.data(), chunk);
        sent_hash.add(buffer.data(), chunk);
        if (!send_all(fd, buffer.data(), chunk, deadline))
            return "sending failed after " + std::to_string(sent) + " bytes: " + std::strerror(errno);
        sent += chunk;
    }
    if (::shutdown(fd, SHUT_WR) != 0) return std::string("shutdown(SHUT_WR): ") + std::strerror(errno);
    // A late reader: the reply backs up through passgate towards the backend.
    if (options.client_read_delay.count() > 0) std::this_thread::sleep_for(options.client_read_delay);

    ReplyHeader reply{};
    if (!recv_exact(fd, &reply, sizeof reply, deadline))
        return std::string("no reply header (half-close not passed through?): ") + std::strerror(errno);
    std::ostringstream problems;
    if (reply.preamble_ok != 1) problems << "backend saw a damaged preamble; ";
    if (reply.hello_exact != 1) problems << "backend received a different hello (" << hello.file << "); ";
    if (reply.bytes != up_bytes) problems << "backend received " << reply.bytes << " of " << up_bytes << " bytes; ";
    if (reply.hash != sent_hash.value) problems << "backend's checksum of the client's bytes differs; ";

    ByteStream down(downstream_seed(connection));
    std::vector<std::uint8_t> expected(buffer.size());
    std::uint64_t received = 0;
    for (std::size_t round = 0; round < (1u << 24); ++round) {
        const std::optional<std::size_t> got = recv_some(fd, buffer.data(), buffer.size(), deadline);
        if (!got) {
            problems << "reading the reply failed after " << received << " bytes: " << std::strerror(errno) << "; ";
            break;
        }
        if (*got == 0) break;
        const std::size_t usable = static_cast<std::size_t>(
            std::min<std::uint64_t>(*got, received < down_bytes ? down_bytes - received : 0));
        down.fill(expected.data(), usable);
        if (std::memcmp(expected.data(), buffer.data(), usable) != 0) {
            std::size_t at = 0;
            while (at < usable && expected[at] == buffer[at]) ++at;
            problems << "reply differs at byte " << received + at << "; ";
            break;
        }
        received += *got;
    }
    if (received != down_bytes) problems << "received " << received << " of " << down_bytes << " reply bytes; ";
    return problems.str();
}

LoadResult run_load(std::uint16_t port, const LoadOptions& options) {
    LoadResult result;
    const Deadline deadline = deadline_in(options.budget);
    std::mutex mutex;
    std::vector<std::thread> clients;
    const Clock::time_point start = Clock::now();
    for (int index = 0; index < options.connections; ++index) {
        // 1 MiB to 2 MiB each way, different per connection and per direction.
        const std::uint64_t up = (1u << 20) + (static_cast<std::uint64_t>(index) * 97 * 1021) % (1u << 20);
        const std::uint64_t down = (1u << 20) + (static_cast<std::uint64_t>(index) * 53 * 4099) % (1u << 20);
        clients.emplace_back([&, index, up, down] {
            const std::string problem = run_client(port, static_cast<std::uint64_t>(index), up, down, options, deadline);
            std::lock_guard lock(mutex);
            if (problem.empty()) {
                ++result.succeeded;
                result.bytes_up += up;
                result.bytes_down += down;
            } else {
                result.failures.push_back("connection " + std::to_string(index) + ": " + problem);
            }
        });
    }
    for (std::thread& client : clients) client.join();
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
}

std::string transfer_config(std::uint16_t listen_port, std::uint16_t backend_port) {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n\n"
           "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"*.corpus.test\"]\n"
           "backends = [ { service = \"checksum\" } ]\n\n"
           "[[service]]\nname = \"checksum\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n";
}

void check_load(const LoadResult& load, int connections) {
    std::string failures;
    for (std::size_t i = 0; i < load.failures.size() && i < 10; ++i) failures += load.failures[i] + "\n";
    INFO(load.failures.size() << " connections failed; first ones:\n" << failures);
    CHECK(load.succeeded == connections);
    CHECK(load.seconds < 60.0);
    WARN("byte-exact load: " << load.succeeded << " connections, "
                             << (load.bytes_up + load.bytes_down) / (1024.0 * 1024.0) << " MiB verified in "
                             << load.seconds << " s");
}

}  // namespace integration
