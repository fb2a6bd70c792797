// The admin port under idle and slow clients (issue 13, item 8): /healthz must answer whatever
// other clients hold, and a request head that does not arrive is closed at request_timeout.
// And over real HTTP (issue 14): pipelined requests, an oversized head, a head sent a byte at a
// time, curl as the client.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace integration;

namespace {

// One listener to a service nobody connects to: these tests talk to the admin port only.
std::string admin_config(const std::string& admin_extra = "") {
    return "[admin]\naddress = \"@ADMIN@\"\n" + admin_extra +
           "\n[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(free_port()) + "\"\n"
           "\n[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [ { service = \"s\" } ]\n"
           "\n[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:" + std::to_string(free_port()) + "\"]\n";
}

// The sample of `series` (labels included, as exposed) in /metrics; nullopt when absent.
std::optional<double> sample(const Passgate& passgate, const std::string& series) {
    return metric_sample(passgate, series);
}

// Connects to the admin port from `source` and sends `head` (possibly nothing).
Socket hold_connection(const Passgate& passgate, const char* source, const std::string& head = "") {
    Socket socket = connect_bound_to(source, passgate.admin_port());
    REQUIRE(socket);
    if (!head.empty()) REQUIRE(send_all(socket.get(), head.data(), head.size(), deadline_in(Millis(1000))));
    return socket;
}

// How long until passgate closes `socket` (EOF or reset), sending one more header byte every
// 200 ms meanwhile (a slowloris head); nullopt if it is still open after `limit`.
std::optional<Millis> closed_after(int socket, Millis limit) {
    const Clock::time_point start = Clock::now();
    for (int round = 0; round < 1000 && Clock::now() - start < limit; ++round) {
        const char byte = 'x';
        ::send(socket, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        char buffer[256];
        const auto got = recv_some(socket, buffer, sizeof buffer, deadline_in(Millis(200)));
        if ((got && *got == 0) || (!got && errno != ETIMEDOUT))
            return std::chrono::duration_cast<Millis>(Clock::now() - start);
    }
    return std::nullopt;
}

// What a client reads from `socket` until passgate closes it (or `timeout` passes).
struct ReadToClose {
    std::string bytes;
    bool closed = false;  // EOF or reset seen
    bool reset = false;   // ECONNRESET
};
ReadToClose read_to_close(int socket, Millis timeout) {
    ReadToClose result;
    const Deadline deadline = deadline_in(timeout);
    for (int round = 0; round < 100000 && Clock::now() < deadline; ++round) {
        char buffer[4096];
        const auto got = recv_some(socket, buffer, sizeof buffer, deadline);
        if (got && *got > 0) {
            result.bytes.append(buffer, *got);
            continue;
        }
        if (got) {
            result.closed = true;
        } else if (errno != ETIMEDOUT) {
            result.closed = true;
            result.reset = errno == ECONNRESET;
        }
        break;
    }
    return result;
}

// Occurrences of `needle` in `text`.
std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t count = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
    return count;
}

}  // namespace

TEST_CASE("admin: two pipelined requests in one write get the first answered, then the close",
          "[integration][admin]") {
    TempDir dir;
    Passgate passgate(dir, {admin_config(), {}, 1});
    REQUIRE(passgate.wait_ready());
    Socket client = connect_to(passgate.admin_port());
    REQUIRE(client);
    const std::string two = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /readyz HTTP/1.1\r\nHost: a\r\n\r\n";
    REQUIRE(send_all(client.get(), two.data(), two.size(), deadline_in(Millis(1000))));
    const ReadToClose read = read_to_close(client.get(), Millis(3000));
    INFO(read.bytes);
    CHECK(read.closed);
    CHECK_FALSE(read.reset);  // both requests were read: a clean FIN, no unread-data reset
    // One response (the first request's), marked Connection: close; the second is not answered.
    CHECK(count_of(read.bytes, "HTTP/1.1 ") == 1);
    CHECK(read.bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(read.bytes.find("\r\nConnection: close\r\n") != std::string::npos);
    CHECK(read.bytes.size() >= 3);
    CHECK(read.bytes.substr(read.bytes.size() - 3) == "ok\n");
    CHECK(read.bytes.find("ready\n") == std::string::npos);
    stop_and_check(passgate);
}

TEST_CASE("admin: a request head over 8 KiB gets 400 and the close, also when it is complete",
          "[integration][admin]") {
    TempDir dir;
    Passgate passgate(dir, {admin_config(), {}, 1});
    REQUIRE(passgate.wait_ready());
    // 8 KiB is the limit, blank line included. A complete head of 9 KiB is read whole by the
    // server (it reads 4 KiB at a time); one of 64 KiB is cut off unread.
    for (const std::size_t target : {std::size_t(9) * 1024, std::size_t(12) * 1024, std::size_t(64) * 1024}) {
        const std::string filler = "X-Filler: " + std::string(1000, 'a') + "\r\n";
        std::string head = "GET /healthz HTTP/1.1\r\nHost: a\r\n";
        while (head.size() + 2 < target) head += filler;
        head += "\r\n";
        INFO("head of " << head.size() << " bytes");
        REQUIRE(head.size() > 8 * 1024);
        Socket client = connect_to(passgate.admin_port());
        REQUIRE(client);
        // The server may close before the whole head is written (it stops reading at the limit).
        [[maybe_unused]] const bool sent = send_all(client.get(), head.data(), head.size(), deadline_in(Millis(2000)));
        const ReadToClose read = read_to_close(client.get(), Millis(3000));
        INFO(read.bytes.substr(0, 200));
        CHECK(read.closed);
        CHECK(read.bytes.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    }
    // A head of exactly 8 KiB is still answered.
    std::string head = "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Filler: ";
    head += std::string(8 * 1024 - head.size() - 4, 'b') + "\r\n\r\n";
    REQUIRE(head.size() == 8 * 1024);
    Socket client = connect_to(passgate.admin_port());
    REQUIRE(client);
    REQUIRE(send_all(client.get(), head.data(), head.size(), deadline_in(Millis(2000))));
    const ReadToClose read = read_to_close(client.get(), Millis(3000));
    CHECK(read.bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    stop_and_check(passgate);
}

TEST_CASE("admin: a head sent a byte at a time past request_timeout is closed unanswered and counted",
          "[integration][admin]") {
    TempDir dir;
    Passgate passgate(dir, {admin_config("request_timeout = \"1s\"\n"), {}, 1});
    REQUIRE(passgate.wait_ready());
    REQUIRE(sample(passgate, "passgate_admin_connections_closed_total{reason=\"timeout\"}") == 0);
    // 60 bytes at one every 50 ms: complete after 3 s, well past the 1 s timeout. Each byte is
    // progress, and still it does not extend the deadline.
    const std::string head = "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: " + std::string(16, 's') + "\r\n\r\n";
    REQUIRE(head.size() == 60);
    Socket client = connect_to(passgate.admin_port());
    REQUIRE(client);
    const Clock::time_point start = Clock::now();
    std::size_t sent = 0;
    ReadToClose read;
    for (; sent < head.size() && !read.closed; ++sent) {
        if (::send(client.get(), &head[sent], 1, MSG_NOSIGNAL) != 1) break;
        read = read_to_close(client.get(), Millis(50));
    }
    if (!read.closed) read = read_to_close(client.get(), Millis(3000));
    const Millis after = std::chrono::duration_cast<Millis>(Clock::now() - start);
    INFO("closed after " << after.count() << " ms, " << sent << " bytes sent");
    CHECK(read.closed);
    CHECK(read.bytes.empty());  // never answered: the head was not complete in time
    CHECK(sent < head.size());
    CHECK(after >= Millis(800));
    CHECK(after < Millis(2500));
    CHECK(sample(passgate, "passgate_admin_connections_closed_total{reason=\"timeout\"}") == 1);
    CHECK(sample(passgate, "passgate_admin_connections_closed_total{reason=\"evicted\"}") == 0);
    stop_and_check(passgate);
}

TEST_CASE("admin: curl gets /metrics as text and as OpenMetrics", "[integration][admin]") {
    TempDir dir;
    Passgate passgate(dir, {admin_config(), {}, 1});
    REQUIRE(passgate.wait_ready());
    const std::string url = "http://127.0.0.1:" + std::to_string(passgate.admin_port()) + "/metrics";
    const RunResult text = run({"curl", "-sS", "-v", "--max-time", "5", url}, dir, "curl-text", Millis(10000));
    INFO("curl stderr:\n" << text.err);
    REQUIRE(text.status == 0);
    CHECK(text.err.find("< HTTP/1.1 200 OK") != std::string::npos);
    CHECK(text.err.find("< Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(text.out.find("# TYPE passgate_config_reloads_total counter\n") != std::string::npos);
    CHECK(text.out.find("\npassgate_admin_connections_closed_total{reason=\"timeout\"} 0\n") != std::string::npos);

    const RunResult open_metrics = run({"curl", "-sS", "-v", "--max-time", "5", "-H",
                                        "Accept: application/openmetrics-text; version=1.0.0", url},
                                       dir, "curl-openmetrics", Millis(10000));
    INFO("curl stderr:\n" << open_metrics.err);
    REQUIRE(open_metrics.status == 0);
    CHECK(open_metrics.err.find("< Content-Type: application/openmetrics-text") != std::string::npos);
    CHECK(open_metrics.out.size() >= 6);
    CHECK(open_metrics.out.substr(open_metrics.out.size() - 6) == "# EOF\n");
    stop_and_check(passgate);
}

TEST_CASE("admin: 300 idle and slow connections from several sources and from one do not keep "
          "/healthz and /readyz from answering at once", "[integration][admin]") {
    TempDir dir;
    Passgate passgate(dir, {admin_config(), {}, 1});
    REQUIRE(passgate.wait_ready());

    // 300 idle from twenty other addresses (15 each, under the per-source limit of 16: together
    // over the total of 256), 150 idle from 127.0.0.1 (the probes' own address) and 20 from
    // 127.0.0.1 that send half a request head.
    std::vector<Socket> held;
    for (int source = 2; source < 22; ++source) {
        const std::string address = "127.0.0." + std::to_string(source);
        for (int i = 0; i < 15; ++i) held.push_back(hold_connection(passgate, address.c_str()));
    }
    for (int i = 0; i < 150; ++i) held.push_back(hold_connection(passgate, "127.0.0.1"));
    for (int i = 0; i < 20; ++i) held.push_back(hold_connection(passgate, "127.0.0.1", "GET /healthz HTTP/1.1\r\n"));
    std::this_thread::sleep_for(Millis(200));

    // Probes answer at once, every time, while the others hold their connections.
    for (int probe = 0; probe < 10; ++probe) {
        const Clock::time_point start = Clock::now();
        const auto health = http_get(passgate.admin_port(), probe % 2 == 0 ? "/healthz" : "/readyz", Millis(1000));
        const Millis took = std::chrono::duration_cast<Millis>(Clock::now() - start);
        INFO("probe " << probe << " took " << took.count() << " ms");
        REQUIRE(health);
        CHECK(health->status == 200);
    }
    // The room came from the oldest idle connections (the per-source limit and the total).
    CHECK(sample(passgate, "passgate_admin_connections_closed_total{reason=\"evicted\"}").value_or(0) >= 300 - 256);
    held.clear();
    stop_and_check(passgate);
}

TEST_CASE("admin: a request head that never completes is closed at request_timeout", "[integration][admin]") {
    TempDir dir;
    SECTION("request_timeout = \"1s\"") {
        Passgate passgate(dir, {admin_config("request_timeout = \"1s\"\n"), {}, 1});
        REQUIRE(passgate.wait_ready());
        Socket slow = hold_connection(passgate, "127.0.0.1", "GET /metrics HTTP/1.1\r\nX-Slow: ");
        const std::optional<Millis> after = closed_after(slow.get(), Millis(6000));
        REQUIRE(after);
        INFO("closed after " << after->count() << " ms");
        CHECK(*after >= Millis(800));
        CHECK(*after < Millis(2500));
        CHECK(sample(passgate, "passgate_admin_connections_closed_total{reason=\"timeout\"}") == 1);
        stop_and_check(passgate);
    }
    SECTION("by default (2 s)") {
        Passgate passgate(dir, {admin_config(), {}, 1});
        REQUIRE(passgate.wait_ready());
        Socket slow = hold_connection(passgate, "127.0.0.1", "GET /metrics HTTP/1.1\r\nX-Slow: ");
        const std::optional<Millis> after = closed_after(slow.get(), Millis(8000));
        REQUIRE(after);
        INFO("closed after " << after->count() << " ms");
        CHECK(*after >= Millis(1800));
        CHECK(*after < Millis(3500));
        stop_and_check(passgate);
    }
}
