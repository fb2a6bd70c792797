// Byte-exact transfer through passgate under concurrency, with half-close passed through, and
// passgate's descriptors returned after the load. The checksum protocol, backend and clients are
// in checksum_load.h.

#include "tests/support/checksum_load.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <cstring>
#include <chrono>
#include <map>
#include <optional>
#include <mutex>
#include <sstream>
#include <thread>

using namespace integration;

namespace {

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
        if (!send_stream(fd, downstream_seed(preamble.connection), preamble.reply_bytes, deadline)) return;
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

// Messages smaller than passgate's 8 KiB copy buffer go through recv + send; when the receiver
// stalls, a partial send's remainder waits in a pipe, and later bytes queue behind it. Spaced small
// writes into a reader that starts late drive exactly that path, in each direction.
TEST_CASE("transfer: small writes into a stalled reader arrive whole and in order; the quiet connection holds no pipe",
          "[integration][transfer]") {
    TempDir dir;
    const Deadline deadline = deadline_in(Millis(60000));
    constexpr std::size_t message = 4000;
    // 10 MB: more than passgate's send buffer can grow to (tcp_wmem's 4 MiB) plus the stalled
    // reader's receive buffer (kept small with SO_RCVBUF).
    constexpr std::size_t messages = 2500;
    const auto small_receive_buffer = [](int fd) {
        const int size = 64 * 1024;
        return ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0;
    };
    const std::vector<std::uint8_t>& hello = corpus_hellos()[0]->bytes;
    const auto write_messages = [&](int fd, std::uint64_t seed, Fnv1a64& sent_hash) {
        ByteStream stream(seed);
        std::vector<std::uint8_t> buffer(message);
        for (std::size_t index = 0; index < messages; ++index) {
            stream.fill(buffer.data(), buffer.size());
            sent_hash.add(buffer.data(), buffer.size());
            if (!send_all(fd, buffer, deadline)) return false;
            // Spaced: each of passgate's wake-ups finds less than its copy buffer holds, so the
            // reader's buffers fill up while passgate is on its copying path.
            std::this_thread::sleep_for(std::chrono::microseconds(300));
        }
        return true;
    };
    // Reads exactly `size` bytes, hashing them; the connection stays open.
    const auto read_hashing = [&](int fd, std::uint64_t size) {
        HashedStream stream;
        Fnv1a64 hash;
        std::vector<std::uint8_t> buffer(64 * 1024);
        while (stream.bytes < size) {
            const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - stream.bytes));
            const std::optional<std::size_t> got = recv_some(fd, buffer.data(), want, deadline);
            if (!got || *got == 0) break;
            hash.add(buffer.data(), *got);
            stream.bytes += *got;
        }
        stream.hash = hash.value;
        return stream;
    };
    // Once the bytes are through and both sides are quiet, the connection holds no pipe.
    const auto no_pipe_leased = [&](const Passgate& proxy) {
        return wait_until([&] { return proxy.metric({"passgate_pipes_in_use"}) == 0.0; }, Millis(3000));
    };
    const std::uint64_t up_total = hello.size() + messages * message;
    const std::uint64_t down_total = messages * message;
    std::mutex mutex;
    std::optional<HashedStream> backend_received;
    bool backend_saw_eof = false;
    Fnv1a64 backend_sent;
    bool backend_sent_all = false;
    bool backend_wrote = false;  // done writing, all or not
    bool downstream = false;
    TcpServer backend([&](int fd, std::size_t) {
        if (downstream) {
            std::vector<std::uint8_t> got(hello.size());
            if (!recv_exact(fd, got.data(), got.size(), deadline)) return;
            Fnv1a64 sent;
            const bool all = write_messages(fd, 2, sent);
            {
                std::lock_guard lock(mutex);
                backend_sent = sent;
                backend_sent_all = all;
                backend_wrote = true;
            }
            read_to_eof_hashing(fd, deadline);  // open until the client's FIN
            return;
        }
        small_receive_buffer(fd);
        std::this_thread::sleep_for(Millis(500));  // stalled: passgate's sends fill this socket
        const HashedStream received = read_hashing(fd, up_total);
        {
            std::lock_guard lock(mutex);
            backend_received = received;
        }
        const HashedStream rest = read_to_eof_hashing(fd, deadline);
        std::lock_guard lock(mutex);
        backend_saw_eof = rest.eof && rest.bytes == 0;
    });
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {transfer_config(port, backend.port()), {}, 1});
    REQUIRE(passgate.wait_ready());

    SECTION("client to backend") {
        Socket client = connect_to(port);
        REQUIRE(client);
        Fnv1a64 sent;
        sent.add(hello.data(), hello.size());
        REQUIRE(send_all(client.get(), hello, deadline));
        REQUIRE(write_messages(client.get(), 1, sent));
        REQUIRE(wait_until([&] { std::lock_guard lock(mutex); return backend_received.has_value(); },
                           Millis(20000)));
        {
            std::lock_guard lock(mutex);
            CHECK(backend_received->bytes == up_total);
            CHECK(backend_received->hash == sent.value);
        }
        CHECK(no_pipe_leased(passgate));
        REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
        CHECK(wait_until([&] { std::lock_guard lock(mutex); return backend_saw_eof; }, Millis(5000)));
    }
    SECTION("backend to client") {
        downstream = true;
        Socket client = connect_to(port);
        REQUIRE(client);
        REQUIRE(small_receive_buffer(client.get()));
        REQUIRE(send_all(client.get(), hello, deadline));
        std::this_thread::sleep_for(Millis(500));  // stalled: passgate's sends fill this socket
        const HashedStream received = read_hashing(client.get(), down_total);
        // The last bytes can arrive before the backend's thread has recorded what it sent.
        REQUIRE(wait_until([&] { std::lock_guard lock(mutex); return backend_wrote; }, Millis(5000)));
        {
            std::lock_guard lock(mutex);
            CHECK(backend_sent_all);
            CHECK(received.bytes == down_total);
            CHECK(received.hash == backend_sent.value);
        }
        CHECK(no_pipe_leased(passgate));
        REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
        const HashedStream rest = read_to_eof_hashing(client.get(), deadline);
        CHECK(rest.eof);
        CHECK(rest.bytes == 0);
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

    // Each worker keeps up to 64 empty pipes for reuse (src/proxy/worker.h pipe_pool_idle), so the pipe
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
