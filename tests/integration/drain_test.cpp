// [runtime] drain_delay: on the first SIGTERM /readyz answers 503 at once while the listeners go on
// accepting for the delay (flows a router still sends during its withdrawal are served), then the
// usual drain. (drain_delay = "0s", today's behaviour, is lifecycle_test.cpp's.)

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <signal.h>

#include <thread>

using namespace integration;

namespace {

std::string drain_config(const std::string& drain_delay, std::uint16_t listen_port, std::uint16_t backend_port) {
    return "[runtime]\ndrain_delay = \"" + drain_delay + "\"\nshutdown_timeout = \"20s\"\n\n"
           "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n\n"
           "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"*.corpus.test\"]\n"
           "backends = [ { service = \"echo\" } ]\n\n"
           "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n";
}

// A connection through passgate: the hello and then `payload_bytes` of seeded bytes go out, and
// the echo backend's copy must come back byte for byte. "" when it did.
std::string proxied_round_trip(int fd, std::uint64_t seed, std::size_t payload_bytes) {
    const CapturedHello& hello = captured_hello("python3-ssl.bin");
    std::vector<std::uint8_t> sent = hello.bytes;
    std::vector<std::uint8_t> payload(payload_bytes);
    ByteStream(seed).fill(payload.data(), payload.size());
    sent.insert(sent.end(), payload.begin(), payload.end());
    if (!send_all(fd, sent, deadline_in(Millis(3000)))) return "send failed";
    std::vector<std::uint8_t> echoed(sent.size());
    if (!recv_exact(fd, echoed.data(), echoed.size(), deadline_in(Millis(3000)))) return "echo incomplete";
    return byte_difference(echoed, sent);
}

// One more echo of `text` on an established connection (its hello went through already).
std::string still_flowing(int fd, const std::string& text) { return echo_check(fd, text, Millis(2000)); }

std::optional<int> readyz_status(std::uint16_t admin_port, std::string* body = nullptr) {
    const std::optional<HttpResponse> response = http_get(admin_port, "/readyz", Millis(500));
    if (!response) return std::nullopt;
    if (body != nullptr) *body = response->body;
    return response->status;
}

// A started passgate with `drain_delay`, serving one echo backend on `port`.
struct DrainingNode {
    explicit DrainingNode(const std::string& drain_delay)
        : port(free_port()), passgate(dir, {drain_config(drain_delay, port, backend.port()), {}, 2}) {}
    TempDir dir;
    EchoBackend backend;
    std::uint16_t port;
    Passgate passgate;
};

}  // namespace

TEST_CASE("drain: with drain_delay, /readyz says 503 at once while new connections are still served "
          "for the delay; then accepting stops, established connections finish, exit 0",
          "[integration][lifecycle][drain]") {
    DrainingNode node("2s");
    Passgate& passgate = node.passgate;
    const std::uint16_t port = node.port;
    REQUIRE(passgate.wait_ready());
    CHECK(readyz_status(passgate.admin_port()) == 200);
    CHECK(passgate.metric({"passgate_draining"}) == 0.0);

    Socket established = connect_to(port);
    REQUIRE(established);
    REQUIRE(proxied_round_trip(established.get(), 1, 4096) == "");

    const Clock::time_point signalled = Clock::now();
    passgate.process().send_signal(SIGTERM);
    // /readyz turns 503 at once (the signal is handled by the control loop, no worker involved).
    std::string body;
    REQUIRE(wait_until([&] { return readyz_status(passgate.admin_port(), &body) == 503; }, Millis(2000), Millis(2)));
    const auto to_503 = std::chrono::duration_cast<Millis>(Clock::now() - signalled);
    INFO("503 after " << to_503.count() << " ms");
    CHECK(to_503 < Millis(100));
    CHECK(body == "draining\n");
    const std::optional<HttpResponse> health = http_get(passgate.admin_port(), "/healthz", Millis(500));
    REQUIRE(health.has_value());
    CHECK(health->status == 200);
    CHECK(passgate.metric({"passgate_draining"}) == 1.0);
    CHECK(passgate.wait_for_log("drain started: /readyz answers 503; accepting new connections for 2000 ms"));

    // 1 s in (the behaviour under test: a flow the router still sends mid-withdrawal): a new
    // connection is accepted and proxied byte for byte, and the established one still flows.
    std::this_thread::sleep_until(signalled + Millis(1000));
    Socket late = connect_to(port);
    REQUIRE(late);
    CHECK(proxied_round_trip(late.get(), 2, 256 * 1024) == "");
    CHECK(still_flowing(established.get(), "one second into the drain") == "");
    CHECK(readyz_status(passgate.admin_port()) == 503);

    // The delay runs out: new connections are refused from then on.
    REQUIRE(wait_until([&] { return !port_accepts(port, Millis(200)); }, Millis(5000), Millis(20)));
    const auto refused_after = std::chrono::duration_cast<Millis>(Clock::now() - signalled);
    INFO("refusing after " << refused_after.count() << " ms");
    CHECK(refused_after >= Millis(1900));
    CHECK(refused_after < Millis(4000));
    CHECK(passgate.wait_for_log("drain_delay (2000 ms) over: stopped accepting, draining "));
    CHECK_FALSE(connect_to(port, Millis(500)));

    // Both accepted connections go on until their clients close; then the process exits 0.
    CHECK(still_flowing(established.get(), "after accepting stopped") == "");
    CHECK(still_flowing(late.get(), "the late one, after accepting stopped") == "");
    CHECK(passgate.process().wait_exit(Millis(200)) == std::nullopt);  // still draining them
    const std::string established_name = local_name(established.get());
    const std::string late_name = local_name(late.get());
    established.reset();
    late.reset();
    const std::optional<int> status = passgate.process().wait_exit(Millis(5000));
    const std::string log = passgate.stderr_text();
    INFO(log);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    // Both served to the end (the probes of the port above are the only other connections).
    CHECK(passgate.wait_for_client_log(established_name, "reason=completed"));
    CHECK(passgate.wait_for_client_log(late_name, "reason=completed"));
    CHECK(sanitizer_report(log).empty());
}

TEST_CASE("drain: during drain_delay SIGHUP is logged and ignored, a second SIGTERM stops at once",
          "[integration][lifecycle][drain]") {
    DrainingNode node("30s");
    Passgate& passgate = node.passgate;
    const std::uint16_t port = node.port;
    REQUIRE(passgate.wait_ready());
    Socket established = connect_to(port);
    REQUIRE(established);
    REQUIRE(proxied_round_trip(established.get(), 3, 1024) == "");

    passgate.process().send_signal(SIGTERM);
    REQUIRE(wait_until([&] { return readyz_status(passgate.admin_port()) == 503; }, Millis(2000), Millis(5)));
    // A changed file (another hash): a reload would count a success; none must run.
    reload_with(passgate, drain_config("30s", port, node.backend.port()) + "\n# changed\n");
    CHECK(passgate.wait_for_log("received SIGHUP while shutting down: configuration not reloaded"));
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"success\"}") == 0.0);
    CHECK(port_accepts(port));  // still in the delay

    check_second_sigterm_stops_at_once(passgate, established.get());
}
