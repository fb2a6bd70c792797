// SIGHUP reloads with real traffic: reloads under load (short connections and long checksummed
// streams while the config flips between two valid versions and an invalid one), listeners added
// and removed by reload, and a removed route's drain_timeout.
//
// Every reload is sent only after passgate has handled the one before (two SIGHUPs in a row may
// make one reload), so the reload counters can be compared with what was sent.

#include "tests/support/checksum_load.h"  // corpus_hellos()
#include "tests/support/net.h"
#include "tests/support/paced_streams.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

using namespace integration;

namespace {

std::vector<std::uint8_t> bytes_of(const std::string& text) {
    return std::vector<std::uint8_t>(text.begin(), text.end());
}

std::string joined(const std::vector<std::string>& lines, std::size_t limit = 10) {
    std::string text;
    for (std::size_t i = 0; i < lines.size() && i < limit; ++i) text += lines[i] + "\n";
    if (lines.size() > limit) text += "... (" + std::to_string(lines.size() - limit) + " more)\n";
    return text;
}

// Access-log lines (one per ended connection).
std::vector<std::string> access_lines(const Passgate& passgate) {
    return passgate.log_lines_with({" reason=", " bytes_to_backend="});
}

// ---- Reload under load ---------------------------------------------------------------------------
//
// Short echo connections and long checksummed streams (tests/support/paced_streams.h), served by
// two backends (services "one" and "two") that share one record of the streams.

class MixedBackends {
public:
    MixedBackends()
        : one_([this](int fd, std::size_t) { streams_.serve(fd); }),
          two_([this](int fd, std::size_t) { streams_.serve(fd); }) {}
    ~MixedBackends() { stop(); }

    std::uint16_t port_one() const { return one_.port(); }
    std::uint16_t port_two() const { return two_.port(); }
    std::size_t accepted() const { return one_.accepted() + two_.accepted(); }
    std::size_t accepted_one() const { return one_.accepted(); }
    std::size_t accepted_two() const { return two_.accepted(); }
    void stop() {
        one_.stop();
        two_.stop();
    }
    std::map<std::uint64_t, StreamRecord> records() { return streams_.records(); }

private:
    PacedStreamBackend streams_;
    TcpServer one_;  // after streams_: their threads use it
    TcpServer two_;
};

// Config A: listener tls, route corpus split 3:1 between services one and two.
// Config B: weights 1:3, plus listener "extra" (its own port) and route "extra" on it.
std::string mixed_config(bool variant_b, std::uint16_t port, std::uint16_t extra_port,
                         std::uint16_t one, std::uint16_t two) {
    std::string text = "[admin]\naddress = \"@ADMIN@\"\n\n"
                       "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n";
    if (variant_b)
        text += "[[listener]]\nname = \"extra\"\naddress = \"127.0.0.1:" + std::to_string(extra_port) + "\"\n\n";
    text += "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"*.corpus.test\"]\n"
            "backends = [ { service = \"one\", weight = " + std::string(variant_b ? "1" : "3") +
            " }, { service = \"two\", weight = " + std::string(variant_b ? "3" : "1") + " } ]\n\n";
    if (variant_b)
        text += "[[route]]\nname = \"extra\"\nlisteners = [\"extra\"]\nhostnames = [\"*.corpus.test\"]\n"
                "backends = [ { service = \"one\" } ]\n\n";
    text += "[[service]]\nname = \"one\"\nendpoints = [\"127.0.0.1:" + std::to_string(one) + "\"]\n\n"
            "[[service]]\nname = \"two\"\nendpoints = [\"127.0.0.1:" + std::to_string(two) + "\"]\n";
    return text;
}

int line_count(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

}  // namespace

TEST_CASE("reload under load: short connections and checksummed streams survive 20 reloads, "
          "valid and invalid, all counted", "[integration][reload]") {
    REQUIRE(corpus_hellos().size() >= 5);
    TempDir dir;
    MixedBackends backends;
    const std::uint16_t port = free_port();
    const std::uint16_t extra_port = free_port();
    const std::string config_a = mixed_config(false, port, extra_port, backends.port_one(), backends.port_two());
    const std::string config_b = mixed_config(true, port, extra_port, backends.port_one(), backends.port_two());
    // A TOML syntax error on a known line: "workers =" with no value.
    const std::string invalid = config_b + "\n[runtime]\nworkers =\n";
    const int invalid_line = line_count(config_b) + 3;
    Passgate passgate(dir, {config_a, {}, 2});
    REQUIRE(passgate.wait_ready());

    // Short connections: 4 clients, each connect + hello + 64 bytes echoed + close, 3 ms apart.
    // (A reload that cancels the accept in flight on a kept listener's socket closes connections
    // the kernel had already accepted: they fail here with ECONNRESET and have no access-log line.)
    const Clock::time_point start = Clock::now();
    const auto since_start = [&] {
        return std::to_string(std::chrono::duration_cast<Millis>(Clock::now() - start).count()) + " ms";
    };
    std::atomic<bool> stop_short{false};
    std::atomic<int> short_ok{0};
    std::mutex mutex;
    std::vector<std::string> short_failures;
    std::vector<std::thread> short_clients;
    for (int client = 0; client < 4; ++client) {
        short_clients.emplace_back([&, client] {
            ByteStream bytes(0xabc0 + static_cast<std::uint64_t>(client));
            for (int round = 0; round < 20000 && !stop_short.load(); ++round) {
                std::vector<std::uint8_t> payload(8 + 64);
                bytes.fill(payload.data() + 8, 64);
                std::memcpy(payload.data(), &echo_magic, sizeof echo_magic);
                const CapturedHello& hello =
                    *corpus_hellos()[static_cast<std::size_t>(round + client) % corpus_hellos().size()];
                const std::string began = since_start();
                const std::string problem = echo_round_trip(port, hello.bytes, payload, Millis(5000));
                if (problem.empty()) {
                    ++short_ok;
                } else {
                    std::lock_guard lock(mutex);
                    short_failures.push_back("client " + std::to_string(client) + " round " +
                                             std::to_string(round) + ", started at " + began +
                                             ", failed at " + since_start() + ": " + problem);
                }
                std::this_thread::sleep_for(Millis(3));  // a steady stream, not a flood
            }
        });
    }

    // Long streams: 8 at once, 2-3 MiB each way, paced over 3.5 s: they span the reloads.
    constexpr int streams = 8;
    const Millis pace(3500);
    const Deadline stream_deadline = deadline_in(Millis(30000));
    std::vector<StreamOutcome> outcomes(streams);
    std::vector<std::thread> stream_clients;
    for (int index = 0; index < streams; ++index) {
        stream_clients.emplace_back([&, index] {
            const auto id = static_cast<std::uint64_t>(index);
            const std::uint64_t up = (2u << 20) + id * 65537;
            const std::uint64_t down = (2u << 20) + id * 131071;
            outcomes[static_cast<std::size_t>(index)] = run_stream(port, id, up, down, pace, stream_deadline);
        });
    }
    std::this_thread::sleep_for(Millis(200));  // the streams are established under config A

    // 20 reloads, 100-200 ms apart: A and B alternate; the invalid file 3 times; once the same
    // file again (a no-op that still counts as a success).
    int valid = 0;
    int failed = 0;
    bool running_b = false;
    std::vector<std::string> sent;
    for (int index = 0; index < 20; ++index) {
        const bool bad = index == 4 || index == 11 || index == 17;
        const bool same = index == 8;
        const std::string at = since_start();
        if (bad) {
            reload_with(passgate, invalid);
            ++failed;
            sent.push_back(at + " invalid");
        } else {
            if (!same) running_b = !running_b;
            reload_with(passgate, running_b ? config_b : config_a);
            ++valid;
            sent.push_back(at + " " + (running_b ? "B" : "A") + (same ? " (same file)" : ""));
        }
        INFO("reloads sent: " << index + 1);
        REQUIRE(wait_for_reloads(passgate, index + 1));
        std::this_thread::sleep_for(Millis(100 + (index % 5) * 20));
    }
    for (std::thread& thread : stream_clients) thread.join();
    std::this_thread::sleep_for(Millis(200));
    stop_short = true;
    for (std::thread& thread : short_clients) thread.join();

    // Reload counts: exactly what was sent.
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"success\"}") == valid);
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"failure\"}") == failed);
    CHECK(valid == 17);
    CHECK(failed == 3);

    // The invalid file's error names FILE:LINE.
    const std::string where = passgate.config_path() + ":" + std::to_string(invalid_line) + ": syntax error";
    const auto rejected = passgate.log_lines_with({"configuration reload rejected", where});
    INFO("looking for a rejection naming " << where);
    CHECK(rejected.size() == static_cast<std::size_t>(failed));
    CHECK(passgate.log_lines_with({"reload: configuration unchanged"}).size() == 1);

    // Zero failed short connections.
    const int short_total = short_ok.load();
    {
        std::lock_guard lock(mutex);
        INFO(short_failures.size() << " short connections failed:\n" << joined(short_failures));
        INFO("reloads sent (SIGHUP at):\n" << joined(sent, 20));
        CHECK(short_failures.empty());
    }
    CHECK(short_total > 100);

    // Zero broken streams: the client saw every down byte; the backend every up byte.
    CHECK(wait_until([&] { return backends.records().size() == static_cast<std::size_t>(streams); },
                     Millis(5000)));
    const std::map<std::uint64_t, StreamRecord> records = backends.records();
    std::uint64_t stream_bytes = 0;
    for (int index = 0; index < streams; ++index) {
        const StreamOutcome& outcome = outcomes[static_cast<std::size_t>(index)];
        INFO("stream " << index);
        CHECK(outcome.problem == "");
        const auto record = records.find(static_cast<std::uint64_t>(index));
        REQUIRE(record != records.end());
        CHECK(record->second.down_sent);
        CHECK(record->second.eof);
        CHECK(record->second.bytes == outcome.up_bytes);
        CHECK(record->second.hash == outcome.up_hash);
        stream_bytes += record->second.bytes * 2;
    }

    // passgate's side: one access-log line per connection, each one completed.
    const std::size_t expected_lines = static_cast<std::size_t>(short_total + streams);
    CHECK(wait_until([&] { return access_lines(passgate).size() >= expected_lines; }, Millis(5000)));
    CHECK(access_lines(passgate).size() == expected_lines);
    const std::vector<std::string> not_completed = passgate.failed_connection_lines();
    INFO(not_completed.size() << " access-log lines not completed:\n" << joined(not_completed));
    CHECK(not_completed.empty());
    // Both services got connections (the weights changed under load).
    CHECK(backends.accepted_one() > 0);
    CHECK(backends.accepted_two() > 0);
    WARN("reload under load: " << sent.size() << " reloads (" << valid << " valid, " << failed
                               << " invalid), " << short_total << " short connections, " << streams
                               << " streams, " << stream_bytes / (1024.0 * 1024.0) << " MiB checked");
    backends.stop();
    stop_and_check(passgate);
}

// ---- Listeners added and removed ---------------------------------------------------------------

namespace {

std::string listeners_config(bool x, bool y, std::uint16_t port_x, std::uint16_t port_y,
                             std::uint16_t backend) {
    std::string text = "[admin]\naddress = \"@ADMIN@\"\n\n";
    std::string names;
    if (x) {
        text += "[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:" + std::to_string(port_x) + "\"\n\n";
        names += "\"x\"";
    }
    if (y) {
        text += "[[listener]]\nname = \"y\"\naddress = \"127.0.0.1:" + std::to_string(port_y) + "\"\n\n";
        names += std::string(names.empty() ? "" : ", ") + "\"y\"";
    }
    return text + "[[route]]\nname = \"r\"\nlisteners = [" + names + "]\nhostnames = [\"*.corpus.test\"]\n"
                  "backends = [ { service = \"echo\" } ]\n\n"
                  "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend) + "\"]\n";
}

// A TCP connect to 127.0.0.1:port fails (refused) within the timeout.
bool refuses(std::uint16_t port) { return !connect_to(port, Millis(500)); }

}  // namespace

TEST_CASE("reload: listeners added and removed; kept ones never refuse; established connections "
          "of a removed listener keep working", "[integration][reload]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port_x = free_port();
    const std::uint16_t port_y = free_port();
    const std::string config_a = listeners_config(true, false, port_x, port_y, backend.port());
    const std::string config_b = listeners_config(true, true, port_x, port_y, backend.port());
    const std::string config_c = listeners_config(false, true, port_x, port_y, backend.port());
    const CapturedHello& hello = captured_hello("python3-ssl.bin");
    const std::vector<std::uint8_t> payload = bytes_of("ping through the listener");
    Passgate passgate(dir, {config_a, {}, 2});
    REQUIRE(passgate.wait_ready());
    CHECK(echo_round_trip(port_x, hello.bytes, payload) == "");
    CHECK(refuses(port_y));

    // A -> B: y appears and routes.
    reload_with(passgate, config_b);
    REQUIRE(wait_for_reloads(passgate, 1));
    CHECK(wait_until([&] { return echo_round_trip(port_y, hello.bytes, payload).empty(); }, Millis(2000)));
    CHECK(echo_round_trip(port_x, hello.bytes, payload) == "");

    // From now on y is probed without a pause: not one attempt may fail.
    std::atomic<bool> stop_probe{false};
    std::atomic<int> probes_ok{0};
    std::mutex mutex;
    std::vector<std::string> probe_failures;
    std::thread prober([&] {
        for (int round = 0; round < 100000 && !stop_probe.load(); ++round) {
            const std::string problem = echo_round_trip(port_y, hello.bytes, payload);
            if (problem.empty()) {
                ++probes_ok;
                continue;
            }
            std::lock_guard lock(mutex);
            probe_failures.push_back("probe " + std::to_string(round) + ": " + problem);
        }
    });

    // An established connection through x.
    Socket through_x = connect_to(port_x);
    REQUIRE(through_x);
    REQUIRE(send_all(through_x.get(), hello.bytes, deadline_in(Millis(2000))));
    std::vector<std::uint8_t> echoed(hello.bytes.size());
    REQUIRE(recv_exact(through_x.get(), echoed.data(), echoed.size(), deadline_in(Millis(3000))));
    const std::string client_x = local_name(through_x.get());

    // B -> C: x is gone; new connections to it are refused, the established one goes on.
    std::this_thread::sleep_for(Millis(150));
    reload_with(passgate, config_c);
    REQUIRE(wait_for_reloads(passgate, 2));
    CHECK(wait_until([&] { return refuses(port_x); }, Millis(2000)));
    // Refused from now on, not now and then (both workers' sockets are closed).
    int refused = 0;
    for (int attempt = 0; attempt < 20; ++attempt) refused += refuses(port_x) ? 1 : 0;
    CHECK(refused == 20);
    CHECK(echo_check(through_x.get(), "still forwarding after x was removed") == "");

    // C -> B -> C again while y is probed; the established connection is untouched throughout.
    std::this_thread::sleep_for(Millis(150));
    reload_with(passgate, config_b);
    REQUIRE(wait_for_reloads(passgate, 3));
    CHECK(wait_until([&] { return echo_round_trip(port_x, hello.bytes, payload).empty(); }, Millis(2000)));
    std::this_thread::sleep_for(Millis(150));
    reload_with(passgate, config_c);
    REQUIRE(wait_for_reloads(passgate, 4));
    CHECK(wait_until([&] { return refuses(port_x); }, Millis(2000)));
    std::this_thread::sleep_for(Millis(300));
    CHECK(echo_check(through_x.get(), "and after x came and went again") == "");
    const std::size_t x_bytes = hello.bytes.size() + std::strlen("still forwarding after x was removed") +
                                std::strlen("and after x came and went again");

    stop_probe = true;
    prober.join();
    {
        std::lock_guard lock(mutex);
        INFO(probe_failures.size() << " connections to y failed:\n" << joined(probe_failures));
        CHECK(probe_failures.empty());
    }
    CHECK(probes_ok.load() > 20);

    // The connection through x ends normally, and is logged under listener x.
    REQUIRE(::shutdown(through_x.get(), SHUT_WR) == 0);
    CHECK(wait_closed(through_x.get(), Millis(3000)).closed);
    // (Its client port may have served a short probe too: the byte count tells them apart.)
    const std::vector<std::string> x_line = {"client=" + client_x + " ", " listener=x ",
                                             " bytes_to_backend=" + std::to_string(x_bytes) + " "};
    CHECK(wait_until([&] { return !passgate.log_lines_with(x_line).empty(); }, Millis(3000)));
    const auto lines = passgate.log_lines_with(x_line);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find(" reason=completed ") != std::string::npos);
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"success\"}") == 4);
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"failure\"}") == 0);
    INFO("passgate stderr:\n" << passgate.stderr_text());
    CHECK(passgate.failed_connection_lines().empty());
    backend.stop();
    stop_and_check(passgate);
}

// ---- drain_timeout -----------------------------------------------------------------------------

namespace {

// Route "draining" (go.corpus.test, drain_timeout 300ms) and route "keeping"
// (python.corpus.test, no drain_timeout) when `with_routes`; otherwise only route "other".
std::string drain_config(bool with_routes, std::uint16_t port, std::uint16_t backend) {
    std::string text = "[admin]\naddress = \"@ADMIN@\"\n\n"
                       "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n";
    if (with_routes)
        text += "[[route]]\nname = \"draining\"\nlisteners = [\"tls\"]\nhostnames = [\"go.corpus.test\"]\n"
                "drain_timeout = \"300ms\"\nbackends = [ { service = \"echo\" } ]\n\n"
                "[[route]]\nname = \"keeping\"\nlisteners = [\"tls\"]\nhostnames = [\"python.corpus.test\"]\n"
                "backends = [ { service = \"echo\" } ]\n\n";
    text += "[[route]]\nname = \"other\"\nlisteners = [\"tls\"]\nhostnames = [\"chromium.corpus.test\"]\n"
            "backends = [ { service = \"echo\" } ]\n\n"
            "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend) + "\"]\n";
    return text;
}

Socket open_echo_connection(std::uint16_t port, const CapturedHello& hello) {
    Socket client = connect_to(port);
    REQUIRE(client);
    REQUIRE(send_all(client.get(), hello.bytes, deadline_in(Millis(2000))));
    std::vector<std::uint8_t> echoed(hello.bytes.size());
    REQUIRE(recv_exact(client.get(), echoed.data(), echoed.size(), deadline_in(Millis(3000))));
    CHECK(byte_difference(echoed, hello.bytes) == "");
    return client;
}

}  // namespace

TEST_CASE("reload: a removed route's connections are closed after its drain_timeout; without "
          "drain_timeout they keep running", "[integration][reload]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {drain_config(true, port, backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());
    Socket draining = open_echo_connection(port, captured_hello("go-crypto-tls.bin"));
    Socket keeping = open_echo_connection(port, captured_hello("python3-ssl.bin"));
    const std::string draining_client = local_name(draining.get());
    const std::string keeping_client = local_name(keeping.get());
    CHECK(echo_check(draining.get(), "before the reload") == "");
    CHECK(echo_check(keeping.get(), "before the reload") == "");

    const Clock::time_point sent = Clock::now();
    reload_with(passgate, drain_config(false, port, backend.port()));
    REQUIRE(wait_for_reloads(passgate, 1));
    // The draining route's connection: closed by passgate ~300 ms after the reload.
    const CloseObservation closed = wait_closed(draining.get(), Millis(2000));
    const auto took = std::chrono::duration_cast<Millis>(Clock::now() - sent);
    INFO("closed after " << took.count() << " ms (reset: " << closed.reset << ")");
    CHECK(closed.closed);
    CHECK(closed.bytes == 0);
    CHECK(took >= Millis(280));
    CHECK(took < Millis(2000));
    CHECK(passgate.wait_for_client_log(draining_client, "reason=route_removed"));
    const auto drained_lines = passgate.log_lines_with({"client=" + draining_client + " "});
    REQUIRE(drained_lines.size() == 1);
    CHECK(drained_lines[0].find(" route=draining ") != std::string::npos);

    // The route without drain_timeout: its connection still forwards a second later.
    std::this_thread::sleep_until(sent + Millis(1000));
    CHECK(echo_check(keeping.get(), "still here a second after the reload") == "");
    CHECK(passgate.log_lines_with({"client=" + keeping_client + " "}).empty());
    REQUIRE(::shutdown(keeping.get(), SHUT_WR) == 0);
    CHECK(wait_closed(keeping.get(), Millis(3000)).closed);
    CHECK(passgate.wait_for_client_log(keeping_client, "reason=completed"));
    const auto kept_lines = passgate.log_lines_with({"client=" + keeping_client + " "});
    REQUIRE(kept_lines.size() == 1);
    CHECK(kept_lines[0].find(" route=keeping ") != std::string::npos);
    CHECK(metric_sample(passgate, "passgate_downstream_connections_closed_total{listener=\"tls\","
                                  "reason=\"route_removed\"}") == 1);
    INFO("passgate stderr:\n" << passgate.stderr_text());
    backend.stop();
    stop_and_check(passgate);
}
