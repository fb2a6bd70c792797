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
#include <map>
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
    std::uint64_t read_delay_ms; // the backend waits this long before it reads the client's bytes
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
    // A late reader: the client's bytes back up through passgate (its pipe and both sockets fill).
    if (preamble.read_delay_ms > 0)
        std::this_thread::sleep_for(Millis(std::min<std::uint64_t>(preamble.read_delay_ms, 5000)));

    const HashedStream received = read_to_eof_hashing(fd, deadline);
    if (!received.eof) return;  // error or deadline: the client sees the close and reports it
    reply.bytes = received.bytes;
    reply.hash = received.hash;
    std::vector<std::uint8_t> buffer(256 * 1024);
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
    Millis backend_read_delay{0};  // the backend starts reading the client's stream late
    Millis client_read_delay{0};   // the client starts reading the reply late
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

const std::vector<std::string> active_metric = {"passgate_downstream_connections_active", "passgate_active"};
const std::vector<std::string> accepted_metric = {"passgate_downstream_connections_total", "passgate_accepted_total"};

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
    CHECK(passgate.failed_connection_lines().empty());
    CHECK(wait_until([&] { return passgate.metric(active_metric) == 0.0; }, Millis(3000)));
    CHECK(passgate.metric(accepted_metric) == static_cast<double>(connections));
    backend.stop();
    stop_and_check(passgate);
}

TEST_CASE("transfer: late readers on either side (back-pressure) still get every byte",
          "[integration][transfer]") {
    TempDir dir;
    const Deadline backend_deadline = deadline_in(Millis(90000));
    TcpServer backend([&](int fd, std::size_t) { checksum_backend(fd, backend_deadline); });
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {transfer_config(port, backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());

    constexpr int connections = 8;
    LoadOptions options;
    options.connections = connections;
    options.backend_read_delay = Millis(300);
    options.client_read_delay = Millis(300);
    const LoadResult load = run_load(port, options);
    check_load(load, connections);
    INFO("passgate stderr:\n" << passgate.stderr_text());
    CHECK(passgate.failed_connection_lines().empty());
    backend.stop();
    stop_and_check(passgate);
}

// The backend speaks first and half-closes; the client keeps sending after it has seen the EOF.
// The backend records, per connection, what it then received.
struct BackendFirst {
    struct Record {
        bool hello_exact = false;
        std::uint64_t bytes = 0;
        std::uint64_t hash = 0;
        bool eof = false;
    };
    std::mutex mutex;
    std::map<std::uint64_t, Record> records;

    void serve(int fd, Deadline deadline) {
        std::uint8_t header[5];
        if (!recv_exact(fd, header, sizeof header, deadline)) return;
        const std::size_t record = (std::size_t{header[3]} << 8) | header[4];
        std::vector<std::uint8_t> hello(header, header + 5);
        hello.resize(5 + record);
        Preamble preamble{};
        if (!recv_exact(fd, hello.data() + 5, record, deadline) ||
            !recv_exact(fd, &preamble, sizeof preamble, deadline) || preamble.magic != preamble_magic ||
            preamble.hello_index >= corpus_hellos().size() || preamble.reply_bytes > (64u << 20))
            return;
        Record result;
        result.hello_exact = hello == corpus_hellos()[preamble.hello_index]->bytes;
        std::vector<std::uint8_t> buffer(128 * 1024);
        ByteStream stream(downstream_seed(preamble.connection));
        for (std::uint64_t sent = 0; sent < preamble.reply_bytes;) {
            const std::size_t chunk = static_cast<std::size_t>(
                std::min<std::uint64_t>(buffer.size(), preamble.reply_bytes - sent));
            stream.fill(buffer.data(), chunk);
            if (!send_all(fd, buffer.data(), chunk, deadline)) return;
            sent += chunk;
        }
        ::shutdown(fd, SHUT_WR);  // the backend is done talking, but keeps listening
        const HashedStream received = read_to_eof_hashing(fd, deadline);
        result.eof = received.eof;
        result.bytes = received.bytes;
        result.hash = received.hash;
        std::lock_guard lock(mutex);
        records[preamble.connection] = result;
    }
};

TEST_CASE("transfer: the backend half-closes first; the client's later bytes still arrive",
          "[integration][transfer][halfclose]") {
    TempDir dir;
    BackendFirst first;
    const Deadline deadline = deadline_in(Millis(60000));
    TcpServer backend([&](int fd, std::size_t) { first.serve(fd, deadline); });
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {transfer_config(port, backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());

    constexpr int connections = 16;
    std::mutex mutex;
    std::vector<std::string> failures;
    std::map<std::uint64_t, std::uint64_t> expected_hash;
    std::vector<std::thread> clients;
    for (int index = 0; index < connections; ++index) {
        clients.emplace_back([&, index] {
            const std::uint64_t connection = static_cast<std::uint64_t>(index);
            const std::uint64_t down = (512u << 10) + connection * 4099;
            const std::uint64_t up = (512u << 10) + connection * 7919;
            const auto fail = [&](const std::string& what) {
                std::lock_guard lock(mutex);
                failures.push_back("connection " + std::to_string(index) + ": " + what);
            };
            const std::uint64_t hello_index = connection % corpus_hellos().size();
            Socket socket = connect_to(port);
            if (!socket) return fail("connect failed");
            const Preamble preamble{preamble_magic, connection, hello_index, down, 0};
            if (!send_all(socket.get(), corpus_hellos()[hello_index]->bytes, deadline) ||
                !send_all(socket.get(), &preamble, sizeof preamble, deadline))
                return fail("sending hello and preamble failed");
            // Read the backend's whole stream up to its FIN first.
            ByteStream stream(downstream_seed(connection));
            std::vector<std::uint8_t> buffer(64 * 1024), expected(buffer.size());
            std::uint64_t received = 0;
            for (std::size_t round = 0; round < (1u << 20); ++round) {
                const std::optional<std::size_t> got = recv_some(socket.get(), buffer.data(), buffer.size(), deadline);
                if (!got) return fail("reading failed after " + std::to_string(received) + " bytes");
                if (*got == 0) break;
                if (received + *got > down) return fail("more bytes than the backend sent");
                stream.fill(expected.data(), *got);
                if (std::memcmp(expected.data(), buffer.data(), *got) != 0)
                    return fail("backend's bytes differ near offset " + std::to_string(received));
                received += *got;
            }
            if (received != down) return fail("got " + std::to_string(received) + " of " + std::to_string(down));
            // Only now send, then half-close.
            ByteStream up_stream(upstream_seed(connection));
            Fnv1a64 hash;
            for (std::uint64_t sent = 0; sent < up;) {
                const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), up - sent));
                up_stream.fill(buffer.data(), chunk);
                hash.add(buffer.data(), chunk);
                if (!send_all(socket.get(), buffer.data(), chunk, deadline))
                    return fail("sending after the backend's FIN failed at " + std::to_string(sent) + ": " +
                                std::strerror(errno));
                sent += chunk;
            }
            ::shutdown(socket.get(), SHUT_WR);
            std::lock_guard lock(mutex);
            expected_hash[connection] = hash.value;
        });
    }
    for (std::thread& client : clients) client.join();
    std::string failed;
    for (const std::string& failure : failures) failed += failure + "\n";
    INFO(failed);
    CHECK(failures.empty());

    // The backend records each stream when it sees the client's FIN.
    const bool all_recorded = wait_until([&] {
        std::lock_guard lock(first.mutex);
        return first.records.size() == static_cast<std::size_t>(connections);
    }, Millis(10000));
    CHECK(all_recorded);
    std::lock_guard lock(first.mutex);
    for (const auto& [connection, hash] : expected_hash) {
        INFO("connection " << connection);
        const auto it = first.records.find(connection);
        REQUIRE(it != first.records.end());
        CHECK(it->second.hello_exact);
        CHECK(it->second.eof);
        CHECK(it->second.bytes == (512u << 10) + connection * 7919);
        CHECK(it->second.hash == hash);
    }
    INFO("passgate stderr:\n" << passgate.stderr_text());
    CHECK(passgate.failed_connection_lines().empty());
    backend.stop();
    stop_and_check(passgate);
}

TEST_CASE("resources: passgate's descriptors return to their count before the load",
          "[integration][transfer][resources]") {
    TempDir dir;
    const Deadline backend_deadline = deadline_in(Millis(200000));
    TcpServer backend([&](int fd, std::size_t) { checksum_backend(fd, backend_deadline); });
    const std::uint16_t port = free_port();
    constexpr unsigned workers = 2;
    Passgate passgate(dir, {transfer_config(port, backend.port()), {}, workers});
    REQUIRE(passgate.wait_ready());
    constexpr int connections = 40;

    // The admin server keeps its last exchange's socket until the next exchange ends
    // (AdminServer::retire), so every count is taken right after an admin request: each then
    // holds exactly that one admin socket.
    const auto fds_after_admin_request = [&] {
        http_get(passgate.admin_port(), "/healthz");
        return open_fds(passgate.pid());
    };
    // Descriptors, once they have stopped changing.
    const auto settled_fds = [&] {
        std::map<std::string, int> last = fds_after_admin_request();
        wait_until([&] {
            const auto now = fds_after_admin_request();
            const bool same = now == last;
            last = now;
            return same;
        }, Millis(3000), Millis(100));
        return last;
    };
    const std::map<std::string, int> cold = settled_fds();
    REQUIRE(total_fds(cold) > 0);
    CHECK(cold.count("pipe") == 0);  // no connection yet: no pipe

    // Each worker keeps up to 64 empty pipes for reuse (src/worker.h pipe_pool_idle), so the pipe
    // count after a load depends on its peak concurrency. Every other descriptor (sockets above
    // all) must come back exactly, and pipes stay within the pool's bound.
    constexpr int pool_pipe_fds = 2 * 64 * static_cast<int>(workers);
    const auto without_pipes = [](std::map<std::string, int> fds) {
        fds.erase("pipe");
        return fds;
    };
    const auto pipes = [](const std::map<std::string, int>& fds) {
        const auto it = fds.find("pipe");
        return it == fds.end() ? 0 : it->second;
    };

    const int rounds = 3;
    for (int round = 0; round < rounds; ++round) {
        INFO("load round " << round + 1 << " of " << rounds);
        const std::map<std::string, int> before = settled_fds();
        const LoadResult load = run_load(port, {connections, Millis(60000)});
        check_load(load, connections);
        std::map<std::string, int> after;
        const bool returned = wait_until([&] {
            after = fds_after_admin_request();
            return without_pipes(after) == without_pipes(cold);
        }, Millis(5000), Millis(50));
        INFO("descriptors at start:            " << describe_fds(cold));
        INFO("descriptors before this round:   " << describe_fds(before));
        INFO("descriptors after this round:    " << describe_fds(after));
        CHECK(returned);
        CHECK(pipes(after) % 2 == 0);
        CHECK(pipes(after) <= pool_pipe_fds);
        CHECK(wait_until([&] { return passgate.metric(active_metric) == 0.0; }, Millis(3000)));
        // Where passgate exports its pool, the open pipes are exactly the pooled ones.
        const std::optional<double> in_use = passgate.metric({"passgate_pipes_in_use"});
        const std::optional<double> pooled = passgate.metric({"passgate_pipe_pool_size"});
        if (in_use && pooled) {
            CHECK(*in_use == 0.0);
            CHECK(pipes(open_fds(passgate.pid())) == 2 * static_cast<int>(*pooled));
        } else {
            WARN("no passgate_pipes_in_use / passgate_pipe_pool_size metrics: pipes checked against the bound only");
        }
        WARN("descriptors after round " << round + 1 << ": " << describe_fds(after));
    }
    backend.stop();
    stop_and_check(passgate);
}
