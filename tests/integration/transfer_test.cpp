// Byte-exact transfer through passgate under concurrency, with half-close passed through, and
// passgate's descriptors returned after the load.
//
// Protocol between the test client and the test backend (all behind the captured ClientHello):
//   client -> backend: ClientHello (one TLS record) | preamble | N pseudo-random bytes | FIN
//   backend -> client: reply header | M pseudo-random bytes | FIN
// The backend answers only after it has seen the client's FIN, so a half-close that does not pass
// through shows up as a timeout.

#include "tests/integration/net.h"
#include "tests/integration/passgate.h"
#include "tests/integration/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

using namespace integration;

namespace {

constexpr std::uint64_t preamble_magic = 0x70617373'67617465ull;  // "passgate"

struct Preamble {
    std::uint64_t magic;
    std::uint64_t connection;
    std::uint64_t hello_index;   // into corpus_hellos()
    std::uint64_t reply_bytes;   // M
};
struct ReplyHeader {
    std::uint64_t hash;          // FNV-1a 64 of the N bytes received after the preamble
    std::uint64_t bytes;         // N as counted by the backend
    std::uint64_t hello_exact;   // 1: the backend received the hello bytes unchanged
    std::uint64_t preamble_ok;   // 1: the preamble followed, intact
};

std::uint64_t upstream_seed(std::uint64_t connection) { return 0x1000 + connection * 7919; }
std::uint64_t downstream_seed(std::uint64_t connection) { return 0xdead0000 + connection * 104729; }

// The captured hellos that carry an SNI under corpus.test.
const std::vector<const CapturedHello*>& corpus_hellos() {
    static const std::vector<const CapturedHello*> hellos = [] {
        std::vector<const CapturedHello*> list;
        for (const CapturedHello& hello : captured_hellos())
            if (hello.sni && hello.sni->ends_with(".corpus.test")) list.push_back(&hello);
        return list;
    }();
    return hellos;
}

// Reads the hello (one TLS record) and the preamble, hashes the client's stream until EOF, then
// sends the reply header and M bytes, and closes.
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

    Fnv1a64 hash;
    std::vector<std::uint8_t> buffer(256 * 1024);
    for (std::size_t round = 0; round < (1u << 24); ++round) {
        const std::optional<std::size_t> got = recv_some(fd, buffer.data(), buffer.size(), deadline);
        if (!got) return;  // error or deadline: the client sees the close and reports it
        if (*got == 0) break;
        hash.add(buffer.data(), *got);
        reply.bytes += *got;
    }
    reply.hash = hash.value;
    if (!send_all(fd, &reply, sizeof reply, deadline)) return;
    ByteStream stream(downstream_seed(preamble.connection));
    for (std::uint64_t sent = 0; sent < preamble.reply_bytes;) {
        const std::size_t chunk = static_cast<std::size_t>(
            std::min<std::uint64_t>(buffer.size(), preamble.reply_bytes - sent));
        stream.fill(buffer.data(), chunk);
        if (!send_all(fd, buffer.data(), chunk, deadline)) return;
        sent += chunk;
    }
    ::shutdown(fd, SHUT_WR);  // then TcpServer closes it: the server side closes first
}

struct LoadOptions {
    int connections = 40;
    Millis budget{60000};
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
                       std::uint64_t down_bytes, Deadline deadline) {
    const std::vector<const CapturedHello*>& hellos = corpus_hellos();
    const std::uint64_t hello_index = connection % hellos.size();
    const CapturedHello& hello = *hellos[hello_index];
    Socket socket = connect_to(port);
    if (!socket) return "connect to passgate failed";
    const int fd = socket.get();
    if (!send_all(fd, hello.bytes, deadline)) return "sending the hello failed";
    const Preamble preamble{preamble_magic, connection, hello_index, down_bytes};
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
            const std::string problem = run_client(port, static_cast<std::uint64_t>(index), up, down, deadline);
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

std::optional<std::uint64_t> metric(const Passgate& passgate, const std::string& name) {
    const auto response = http_get(passgate.admin_port(), "/metrics");
    if (!response || response->status != 200) return std::nullopt;
    const std::string needle = "\n" + name + " ";
    const std::size_t at = ("\n" + response->body).find(needle);
    if (at == std::string::npos) return std::nullopt;
    return std::strtoull(response->body.c_str() + at + needle.size() - 1, nullptr, 10);
}

}  // namespace

TEST_CASE("transfer: 40 concurrent connections, 1-2 MiB each way, byte-exact, half-close passes",
          "[integration][transfer]") {
    REQUIRE(corpus_hellos().size() >= 5);
    TempDir dir;
    const Deadline backend_deadline = deadline_in(Millis(90000));
    TcpServer backend([&](int fd, std::size_t) { checksum_backend(fd, backend_deadline); });
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {transfer_config(port, backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());

    constexpr int connections = 40;
    const LoadResult load = run_load(port, {connections, Millis(60000)});
    check_load(load, connections);
    CHECK(backend.accepted() == static_cast<std::size_t>(connections));
    INFO("passgate stderr:\n" << passgate.stderr_text());
    CHECK(passgate.log_lines_with({"connection closed"}).empty());
    CHECK(wait_until([&] { return metric(passgate, "passgate_active") == 0u; }, Millis(3000)));
    CHECK(metric(passgate, "passgate_accepted_total") == static_cast<std::uint64_t>(connections));
    backend.stop();
    stop_and_check(passgate);
}

TEST_CASE("resources: passgate's descriptors return to their count before the load",
          "[integration][transfer][resources]") {
    TempDir dir;
    const Deadline backend_deadline = deadline_in(Millis(150000));
    TcpServer backend([&](int fd, std::size_t) { checksum_backend(fd, backend_deadline); });
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {transfer_config(port, backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());

    // Settled: no admin connection from the readiness probe is still open.
    std::map<std::string, int> before;
    wait_until([&] {
        const auto now = open_fds(passgate.pid());
        const bool same = now == before;
        before = now;
        return same;
    }, Millis(2000), Millis(100));
    REQUIRE(total_fds(before) > 0);

    constexpr int connections = 40;
    for (int r = 0; r < 5; ++r) {
    const LoadResult load = run_load(port, {connections, Millis(60000)});
    check_load(load, connections);
    std::this_thread::sleep_for(Millis(300));
    WARN("after round " << r << ": " << describe_fds(open_fds(passgate.pid())));
    }

    std::map<std::string, int> after;
    const bool returned = wait_until([&] {
        after = open_fds(passgate.pid());
        return after == before;
    }, Millis(5000), Millis(50));
    INFO("descriptors before the load: " << describe_fds(before));
    INFO("descriptors after the load:  " << describe_fds(after));
    CHECK(returned);
    backend.stop();
    stop_and_check(passgate);
}
