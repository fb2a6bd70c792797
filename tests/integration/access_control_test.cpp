// Access control and limits with a real passgate (issue 8, items 4 and 5): allow/deny by client
// address (clients bind different 127.0.0.x sources), listener and route max_connections,
// max_connection_rate, and a route's max_connection_duration; with one worker, and (exact limits)
// with four.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <thread>

using namespace integration;

namespace {

// Connects from `source_ip` (any port) to 127.0.0.1:port; non-blocking once connected.
Socket connect_from(const char* source_ip, std::uint16_t port) {
    Socket socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(socket);
    sockaddr_in source{};
    source.sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, source_ip, &source.sin_addr) == 1);
    REQUIRE(::bind(socket.get(), reinterpret_cast<sockaddr*>(&source), sizeof source) == 0);
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(socket.get(), reinterpret_cast<sockaddr*>(&target), sizeof target) == 0);
    REQUIRE(::fcntl(socket.get(), F_SETFL, ::fcntl(socket.get(), F_GETFL) | O_NONBLOCK) == 0);
    set_nodelay(socket.get());
    return socket;
}

// defer_accept = false: these clients connect and say nothing, and the checks at accept (allow,
// deny, limits) must meet them at once; with the default, a silent client is accepted about a
// second later (tests/integration/defer_accept_test.cpp checks a refusal with the default).
std::string config_for(std::uint16_t listen_port, std::uint16_t backend_port,
                       const std::string& listener_extra, const std::string& route_extra) {
    return "[admin]\naddress = \"@ADMIN@\"\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n" +
           "defer_accept = false\n" + listener_extra +
           "\n[[route]]\nname = \"echo\"\nlisteners = [\"tls\"]\n"
           "backends = [ { service = \"echo\" } ]\n" + route_extra +
           "\n[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n";
}

const std::vector<std::uint8_t>& hello_bytes() { return captured_hello("curl-h2.bin").bytes; }

// Sends the hello and reads it back from the echo backend: the connection was admitted.
bool round_trip(int fd) {
    const std::vector<std::uint8_t>& hello = hello_bytes();
    if (!send_all(fd, hello, deadline_in(Millis(3000)))) return false;
    std::vector<std::uint8_t> back(hello.size());
    return recv_exact(fd, back.data(), back.size(), deadline_in(Millis(3000))) && back == hello;
}

// One sample of /metrics: FAMILY{...listener="tls"...reason="REASON"...} VALUE; 0 when absent.
double sample(const Passgate& passgate, const std::string& family, const std::string& reason) {
    const auto response = http_get(passgate.admin_port(), "/metrics");
    REQUIRE(response);
    REQUIRE(response->status == 200);
    std::istringstream in(response->body);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(family + "{", 0) != 0) continue;
        if (line.find("listener=\"tls\"") == std::string::npos) continue;
        if (line.find("reason=\"" + reason + "\"") == std::string::npos) continue;
        return std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    }
    return 0;
}

double refused(const Passgate& passgate, const std::string& reason) {
    return sample(passgate, "passgate_downstream_connections_refused_total", reason);
}
double closed(const Passgate& passgate, const std::string& reason) {
    return sample(passgate, "passgate_downstream_connections_closed_total", reason);
}

// Closed by passgate (EOF or reset) within a short time, without a byte.
void check_closed_at_once(int fd) {
    const CloseObservation seen = wait_closed(fd, Millis(2000));
    CHECK(seen.closed);
    CHECK(seen.bytes == 0);
    CHECK(seen.after < Millis(1000));
}

}  // namespace

TEST_CASE("allow and deny by client address, at the listener and at the route",
          "[integration][access]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, PassgateOptions{config_for(port, backend.port(),
                                                      "allow = [\"127.0.0.0/8\"]\ndeny = [\"127.0.0.9/32\"]",
                                                      "deny = [\"127.0.0.10\"]"),
                                           {}, 1});
    REQUIRE(passgate.wait_ready());

    // Denied by the listener: closed before the hello is read (nothing is sent here).
    Socket nine = connect_from("127.0.0.9", port);
    const std::string nine_name = local_name(nine.get());
    check_closed_at_once(nine.get());
    CHECK(passgate.wait_for_client_log(nine_name, "reason=denied"));

    // Denied by the route: the hello is read and routed, then closed; the backend sees nothing.
    Socket ten = connect_from("127.0.0.10", port);
    const std::string ten_name = local_name(ten.get());
    CHECK(send_all(ten.get(), hello_bytes(), deadline_in(Millis(3000))));
    check_closed_at_once(ten.get());
    CHECK(passgate.wait_for_client_log(ten_name, "reason=denied"));
    CHECK(passgate.wait_for_client_log(ten_name, "route=echo"));

    // Allowed by both.
    Socket eleven = connect_from("127.0.0.11", port);
    CHECK(round_trip(eleven.get()));
    Socket one = connect_from("127.0.0.1", port);
    CHECK(round_trip(one.get()));
    CHECK(backend.accepted() == 2);

    CHECK(refused(passgate, "denied") == 2);
    CHECK(closed(passgate, "denied") == 2);
    CHECK(refused(passgate, "listener_limit") == 0);
    // Refusals are not hello rejections.
    CHECK(passgate.metric({"passgate_client_hello_rejected_total"}).value_or(-1) == 0);
    eleven.reset();
    one.reset();
    stop_and_check(passgate);
}

TEST_CASE("listener max_connections: the 5th concurrent connection is refused, then recovered",
          "[integration][limits]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, PassgateOptions{config_for(port, backend.port(), "max_connections = 4", ""),
                                           {}, 1});
    REQUIRE(passgate.wait_ready());

    std::vector<Socket> open;
    for (int i = 0; i < 4; ++i) {
        open.push_back(connect_from("127.0.0.1", port));
        CHECK(round_trip(open.back().get()));
    }
    Socket fifth = connect_from("127.0.0.1", port);
    const std::string fifth_name = local_name(fifth.get());
    check_closed_at_once(fifth.get());
    CHECK(passgate.wait_for_client_log(fifth_name, "reason=listener_limit"));
    CHECK(refused(passgate, "listener_limit") == 1);
    CHECK(backend.accepted() == 4);

    // One ends: a new connection is admitted again.
    open.front().reset();
    Socket again;
    const bool recovered = wait_until(
        [&] {
            again = connect_from("127.0.0.1", port);
            return round_trip(again.get());
        },
        Millis(3000), Millis(50));
    CHECK(recovered);
    // Still full: refused again.
    Socket over = connect_from("127.0.0.1", port);
    check_closed_at_once(over.get());
    CHECK(refused(passgate, "listener_limit") >= 2);
    open.clear();
    again.reset();
    stop_and_check(passgate);
}

TEST_CASE("route max_connections refuses after routing, before the backend",
          "[integration][limits]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, PassgateOptions{config_for(port, backend.port(), "", "max_connections = 2"),
                                           {}, 1});
    REQUIRE(passgate.wait_ready());
    Socket a = connect_from("127.0.0.1", port);
    Socket b = connect_from("127.0.0.1", port);
    CHECK(round_trip(a.get()));
    CHECK(round_trip(b.get()));
    Socket c = connect_from("127.0.0.1", port);
    const std::string c_name = local_name(c.get());
    CHECK(send_all(c.get(), hello_bytes(), deadline_in(Millis(3000))));
    check_closed_at_once(c.get());
    CHECK(passgate.wait_for_client_log(c_name, "reason=route_limit"));
    CHECK(refused(passgate, "route_limit") == 1);
    CHECK(backend.accepted() == 2);

    a.reset();
    Socket d;
    CHECK(wait_until(
        [&] {
            d = connect_from("127.0.0.1", port);
            return round_trip(d.get());
        },
        Millis(3000), Millis(50)));
    b.reset();
    d.reset();
    stop_and_check(passgate);
}

TEST_CASE("listener max_connection_rate: a burst beyond the bucket is refused, then refilled",
          "[integration][limits]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, PassgateOptions{config_for(port, backend.port(), "max_connection_rate = 5", ""),
                                           {}, 1});
    REQUIRE(passgate.wait_ready());

    // Ten connections at once against a bucket of 5 (refilled at 5 a second).
    const Clock::time_point start = Clock::now();
    std::vector<Socket> burst;
    for (int i = 0; i < 10; ++i) burst.push_back(connect_from("127.0.0.1", port));
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::this_thread::sleep_for(Millis(300));
    int refused_seen = 0;
    for (Socket& socket : burst) {
        const CloseObservation seen = wait_closed(socket.get(), Millis(50));
        if (seen.closed) ++refused_seen;
    }
    INFO("burst took " << seconds << " s");
    CHECK(refused_seen >= 10 - 5 - 1 - static_cast<int>(seconds * 5));
    CHECK(refused_seen <= 5);
    CHECK(refused_seen >= 1);
    CHECK(refused(passgate, "rate_limit") == refused_seen);
    CHECK(wait_until(
        [&] {
            return passgate.log_lines_with({"reason=rate_limit"}).size() ==
                   static_cast<std::size_t>(refused_seen);
        },
        Millis(3000)));
    burst.clear();

    // After a second the bucket has tokens again.
    std::this_thread::sleep_for(Millis(1100));
    Socket later = connect_from("127.0.0.1", port);
    CHECK(round_trip(later.get()));
    later.reset();
    stop_and_check(passgate);
}

TEST_CASE("route max_connection_duration closes a long stream with its reason",
          "[integration][limits]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, PassgateOptions{config_for(port, backend.port(), "",
                                                      "max_connection_duration = \"300ms\""),
                                           {}, 1});
    REQUIRE(passgate.wait_ready());
    Socket client = connect_from("127.0.0.1", port);
    const std::string name = local_name(client.get());
    const Clock::time_point start = Clock::now();
    REQUIRE(round_trip(client.get()));
    // Keep the stream busy (it never goes idle) until passgate closes it.
    bool ended = false;
    std::vector<std::uint8_t> chunk(1024, 0x5a);
    std::vector<std::uint8_t> back(chunk.size());
    for (int i = 0; i < 100 && !ended; ++i) {
        if (!send_all(client.get(), chunk, deadline_in(Millis(1000))) ||
            !recv_exact(client.get(), back.data(), back.size(), deadline_in(Millis(1000)))) {
            ended = true;
            break;
        }
        std::this_thread::sleep_for(Millis(20));
    }
    const auto lived = std::chrono::duration_cast<Millis>(Clock::now() - start);
    CHECK(ended);
    CHECK(lived >= Millis(250));
    CHECK(lived < Millis(1500));
    CHECK(passgate.wait_for_client_log(name, "reason=max_duration"));
    CHECK(closed(passgate, "max_duration") == 1);
    CHECK(refused(passgate, "denied") == 0);
    stop_and_check(passgate);
}

// ---- Exact limits across workers ----------------------------------------------------------------
// Four workers, and clients from many 127.0.0.x sources so that SO_REUSEPORT spreads them: the
// listener's and the route's limits hold over all workers together, not per worker.

namespace {

constexpr unsigned exact_workers = 4;

// The next client source, 127.0.0.2 to 127.0.0.201 in turn.
std::string next_source() {
    static unsigned next = 0;
    return "127.0.0." + std::to_string(2 + next++ % 200);
}

double active(const Passgate& passgate) {
    return passgate.metric({"passgate_downstream_connections_active"}).value_or(-1);
}

// Closes every held connection and waits until passgate counts none open.
void close_all(std::vector<Socket>& held, const Passgate& passgate) {
    held.clear();
    REQUIRE(wait_until([&] { return active(passgate) == 0; }, Millis(5000), Millis(20)));
}

}  // namespace

// A listener's limit refuses the 6th at accept; a route's after its ClientHello (routing comes
// first). Either way, over 4 workers: exactly 5 held, the 6th refused, every time.
TEST_CASE("max_connections is exact over 4 workers: 5 held, the 6th refused, 20 times",
          "[integration][limits]") {
    const bool on_route = GENERATE(false, true);
    const std::string reason = on_route ? "route_limit" : "listener_limit";
    INFO("limit on the " << (on_route ? "route" : "listener"));
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, PassgateOptions{config_for(port, backend.port(), on_route ? "" : "max_connections = 5",
                                                      on_route ? "max_connections = 5" : ""),
                                           {}, exact_workers});
    REQUIRE(passgate.wait_ready());
    for (int repetition = 1; repetition <= 20; ++repetition) {
        INFO("repetition " << repetition);
        std::vector<Socket> held;
        int admitted = 0;
        for (int i = 0; i < 5; ++i) {
            held.push_back(connect_from(next_source().c_str(), port));
            admitted += round_trip(held.back().get()) ? 1 : 0;
        }
        CHECK(admitted == 5);
        Socket sixth = connect_from(next_source().c_str(), port);
        if (on_route) CHECK(send_all(sixth.get(), hello_bytes(), deadline_in(Millis(3000))));
        check_closed_at_once(sixth.get());
        CHECK(wait_until([&] { return refused(passgate, reason) == repetition; }, Millis(3000)));
        sixth.reset();
        close_all(held, passgate);
    }
    stop_and_check(passgate);
}

TEST_CASE("listener max_connections over 4 workers keeps counting connections open across a reload",
          "[integration][limits][reload]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, PassgateOptions{config_for(port, backend.port(), "max_connections = 5", ""),
                                           {}, exact_workers});
    REQUIRE(passgate.wait_ready());
    std::vector<Socket> held;
    for (int i = 0; i < 5; ++i) {
        held.push_back(connect_from(next_source().c_str(), port));
        CHECK(round_trip(held.back().get()));
    }
    // Same listener name, another config: the 5 open on the old snapshot still count.
    reload_with(passgate, config_for(port, backend.port(),
                                     "max_connections = 5\nclient_hello_timeout = \"4s\"", ""));
    REQUIRE(wait_for_reloads(passgate, 1));
    for (int i = 0; i < 4; ++i) {
        Socket over = connect_from(next_source().c_str(), port);
        check_closed_at_once(over.get());
    }
    CHECK(wait_until([&] { return refused(passgate, "listener_limit") == 4; }, Millis(3000)));
    // Two of the old ones close: exactly two new ones are admitted.
    held.erase(held.begin(), held.begin() + 2);
    REQUIRE(wait_until([&] { return active(passgate) == 3; }, Millis(5000), Millis(20)));
    for (int i = 0; i < 2; ++i) {
        held.push_back(connect_from(next_source().c_str(), port));
        CHECK(round_trip(held.back().get()));
    }
    Socket over = connect_from(next_source().c_str(), port);
    check_closed_at_once(over.get());
    CHECK(wait_until([&] { return refused(passgate, "listener_limit") == 5; }, Millis(3000)));
    over.reset();
    close_all(held, passgate);
    stop_and_check(passgate);
}

TEST_CASE("listener max_connection_rate is one bucket over 4 workers: 5 of a burst of 10",
          "[integration][limits]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, PassgateOptions{config_for(port, backend.port(), "max_connection_rate = 5", ""),
                                           {}, exact_workers});
    REQUIRE(passgate.wait_ready());
    double refused_before = 0;
    for (int repetition = 1; repetition <= 5; ++repetition) {
        INFO("repetition " << repetition);
        // A full bucket again: 5 tokens take 1 s to come back.
        std::this_thread::sleep_for(Millis(1100));
        const Clock::time_point start = Clock::now();
        std::vector<Socket> burst;
        for (int i = 0; i < 10; ++i) burst.push_back(connect_from(next_source().c_str(), port));
        int admitted = 0;
        for (Socket& socket : burst) admitted += round_trip(socket.get()) ? 1 : 0;
        // Passgate decided on each within this window, which refills a token every 200 ms.
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        INFO("burst judged within " << seconds << " s");
        CHECK(admitted >= 5);
        CHECK(admitted <= 5 + static_cast<int>(seconds * 5));
        const double refused_now = refused_before + (10 - admitted);
        CHECK(wait_until([&] { return refused(passgate, "rate_limit") == refused_now; }, Millis(3000)));
        refused_before = refused_now;
        close_all(burst, passgate);
    }
    stop_and_check(passgate);
}
