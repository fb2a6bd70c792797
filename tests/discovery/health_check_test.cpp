// Tests for the active health checker (src/discovery/health_check.h): a real reactor::Loop probing real peers
// on 127.0.0.1 (listening sockets served by the same loop, and openssl s_server), with short
// intervals and every wait bounded.

#include "src/discovery/health_check.h"

#include "reactor/fd.h"
#include "reactor/loop.h"
#include "reactor/socket.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace passgate;
using namespace std::chrono_literals;
using reactor::Fd;
using reactor::Loop;
using reactor::Millis;
using Bytes = std::vector<std::uint8_t>;

namespace {

config::Address loopback(int port) {
    const auto address = config::parse_address("127.0.0.1:" + std::to_string(port), /*allow_port_zero=*/true);
    REQUIRE(address);
    return *address;
}

// Runs the loop until `done` holds or `timeout_ms` has passed; checks `each_tick` every 2 ms.
bool run_until(Loop& loop, const std::function<bool()>& done, Millis timeout_ms,
               const std::function<void()>& each_tick = {}) {
    struct Ticker final : reactor::Timer {
        Loop& loop;
        const std::function<bool()>& done;
        const std::function<void()>& each_tick;
        Millis deadline;
        Ticker(Loop& l, const std::function<bool()>& d, const std::function<void()>& t, Millis end)
            : loop(l), done(d), each_tick(t), deadline(end) {}
        void on_timer() override {
            if (each_tick) each_tick();
            if (done() || loop.now() >= deadline) return loop.stop();
            loop.arm_timer_after(*this, 2);
        }
    };
    loop.update_now();
    Ticker ticker(loop, done, each_tick, loop.now() + timeout_ms);
    loop.arm_timer_after(ticker, 0);
    loop.run();
    return done();
}

void run_for(Loop& loop, Millis duration_ms) {
    run_until(loop, [] { return false; }, duration_ms);
}

// A listening socket on 127.0.0.1 served by the test's loop. Each accepted connection gets the
// next reply of `script` (nothing once the script is empty, or when it is empty from the start)
// and is kept open, so what the checker sees is the reply, not a close.
class Peer final : public reactor::WatchHandler {
public:
    explicit Peer(Loop& loop, int port = 0) : loop_(loop) { listen(port); }
    ~Peer() = default;

    int port() const { return port_; }
    config::Address address() const { return loopback(port_); }
    std::size_t accepted() const { return accepted_at.size(); }
    void reply_with(std::vector<Bytes> replies) { script.assign(replies.begin(), replies.end()); }
    void stop_listening() {
        watch_.stop();
        listener_.reset();
    }
    void listen(int port) {
        const config::Address address = loopback(port);
        reactor::ListenOptions options;
        options.reuse_port = false;
        listener_ = reactor::listen_tcp(address.sockaddr_ptr(), address.length, options);
        port_ = reactor::local_port(listener_.get());
        watch_.accept(listener_.get());
    }
    // How many accepted connections the checker has closed (EOF or reset, nothing else pending).
    std::size_t closed_by_checker() const {
        std::size_t closed = 0;
        for (const Fd& connection : connections) {
            char byte = 0;
            for (;;) {  // skip the ClientHello bytes, if any
                const ssize_t n = ::recv(connection.get(), &byte, 1, MSG_DONTWAIT);
                if (n > 0) continue;
                if (n == 0 || errno == ECONNRESET) ++closed;
                break;
            }
        }
        return closed;
    }

    std::deque<Bytes> script;
    std::vector<Millis> accepted_at;  // monotonic ms
    std::vector<Fd> connections;

private:
    void on_watch(int result) override {
        REQUIRE(result >= 0);
        Fd connection(result);
        accepted_at.push_back(reactor::monotonic_millis());
        if (!script.empty()) {
            const Bytes reply = script.front();
            script.pop_front();
            REQUIRE(::send(connection.get(), reply.data(), reply.size(), MSG_NOSIGNAL) ==
                    static_cast<ssize_t>(reply.size()));
        }
        connections.push_back(std::move(connection));
    }

    Loop& loop_;
    Fd listener_;
    int port_ = 0;
    reactor::Watch watch_{loop_, *this};
};

// Several silent peers.
struct Peers : std::vector<std::unique_ptr<Peer>> {
    Peers(Loop& loop, int count) {
        for (int i = 0; i < count; ++i) push_back(std::make_unique<Peer>(loop));
    }
    std::vector<config::Address> addresses() const {
        std::vector<config::Address> out;
        for (const auto& peer : *this) out.push_back(peer->address());
        return out;
    }
};

// A port where nothing listens: bound (so no one else takes it meanwhile) but not listening.
struct ClosedPort {
    Fd socket;
    int port = 0;
    ClosedPort() {
        socket = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(socket);
        const config::Address address = loopback(0);
        REQUIRE(::bind(socket.get(), address.sockaddr_ptr(), address.length) == 0);
        port = reactor::local_port(socket.get());
    }
    config::Address address() const { return loopback(port); }
};

struct Change {
    std::string address;
    bool healthy = false;
    std::string reason;
    HealthStatus status;  // as the checker saw it when it reported
};

struct Recorder {
    std::vector<Change> changes;
    HealthChecker* checker = nullptr;
    HealthChecker::Changed callback() {
        return [this](const config::Address& address, bool healthy, const std::string& reason) {
            Change change{address.to_string(), healthy, reason, {}};
            if (checker != nullptr) {
                const auto status = checker->status(address);
                REQUIRE(status);
                change.status = *status;
            }
            changes.push_back(std::move(change));
        };
    }
    std::size_t count(const config::Address& address) const {
        return static_cast<std::size_t>(std::count_if(changes.begin(), changes.end(),
            [&](const Change& change) { return change.address == address.to_string(); }));
    }
};

HealthCheckOptions fast(HealthCheckKind kind, unsigned unhealthy = 1, unsigned healthy = 1) {
    HealthCheckOptions options;
    options.interval = 50ms;
    options.timeout = 500ms;
    options.kind = kind;
    options.unhealthy_threshold = unhealthy;
    options.healthy_threshold = healthy;
    return options;
}

// Record bytes a TLS server could start with.
const Bytes kServerHello = {22, 3, 3, 0, 0x7a, 2, 0, 0, 0x76, 3, 3};
const Bytes kAlert = {21, 3, 3, 0, 2, 2, 40};  // fatal handshake_failure
const Bytes kGarbage = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', '4', '0', '0', '\r', '\n'};

std::size_t open_fd_count() { return static_cast<std::size_t>(integration::total_fds(integration::open_fds(::getpid()))); }

// ---- openssl s_server ---------------------------------------------------------------------------

// A self-signed P-256 certificate, made once per test run.
const integration::TempDir& certificate_dir() {
    static const integration::TempDir dir;
    static const bool made = [] {
        const integration::RunResult result = integration::run(
            {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", dir.file("key.pem"), "-out", dir.file("cert.pem"), "-days", "2",
             "-subj", "/CN=backend.test"},
            dir, "req");
        INFO(result.err);
        REQUIRE(result.status == 0);
        return true;
    }();
    REQUIRE(made);
    return dir;
}

// `openssl s_server -www` on 127.0.0.1:port; the constructor waits until it accepts.
class SServer {
public:
    explicit SServer(std::uint16_t port, std::vector<std::string> extra = {}) : port_(port) {
        const integration::TempDir& dir = certificate_dir();
        integration::SpawnOptions options;
        options.argv = {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                        "-cert", dir.file("cert.pem"), "-key", dir.file("key.pem"), "-www"};
        options.argv.insert(options.argv.end(), extra.begin(), extra.end());
        options.stdout_path = logs_.file("out");
        options.stderr_path = logs_.file("err");
        process_ = std::make_unique<integration::Process>(options);
        const bool up = integration::wait_until(
            [&] { return !process_->running() || integration::port_accepts(port); },
            integration::Millis(10000), integration::Millis(20));
        INFO(process_->stderr_text());
        REQUIRE(process_->running());
        REQUIRE(up);
    }
    void kill() { process_.reset(); }  // SIGKILL and reap: the PID we started, nothing else
    config::Address address() const { return loopback(port_); }
    std::string output() const { return process_ ? process_->stdout_text() + process_->stderr_text() : ""; }

private:
    std::uint16_t port_;
    integration::TempDir logs_;
    std::unique_ptr<integration::Process> process_;
};

}  // namespace

// ---- tcp ------------------------------------------------------------------------------------------

TEST_CASE("health tcp: a listener passes, a closed port fails with the refusal", "[health]") {
    Loop loop;
    Peer listener(loop);
    ClosedPort closed;
    Recorder recorder;
    HealthChecker checker(loop, fast(HealthCheckKind::tcp), recorder.callback());
    recorder.checker = &checker;
    checker.set_targets({listener.address(), closed.address()});
    CHECK(checker.healthy(listener.address()) == true);  // new targets start healthy
    CHECK(checker.healthy(closed.address()) == true);
    CHECK(checker.target_count() == 2);

    REQUIRE(run_until(loop, [&] {
        return checker.status(listener.address())->probes >= 3 && checker.status(closed.address())->probes >= 3;
    }, 3000));
    CHECK(checker.healthy(listener.address()) == true);
    CHECK(checker.status(listener.address())->last_reason == "connected");
    CHECK(recorder.count(listener.address()) == 0);
    CHECK(checker.healthy(closed.address()) == false);
    REQUIRE(recorder.changes.size() == 1);
    CHECK(recorder.changes[0].address == closed.address().to_string());
    CHECK_FALSE(recorder.changes[0].healthy);
    CHECK(recorder.changes[0].reason == "connect: Connection refused");
    CHECK_FALSE(checker.healthy(loopback(1)).has_value());  // not a target
}

TEST_CASE("health tcp: thresholds count consecutive results across a listener restart", "[health]") {
    Loop loop;
    Peer listener(loop);
    const int port = listener.port();
    Recorder recorder;
    HealthChecker checker(loop, fast(HealthCheckKind::tcp, 3, 2), recorder.callback());
    recorder.checker = &checker;
    const config::Address address = listener.address();
    checker.set_targets({address});
    REQUIRE(run_until(loop, [&] { return checker.status(address)->probes >= 2; }, 3000));
    CHECK(checker.status(address)->consecutive_passes >= 2);

    // Down: unhealthy only at the third failure in a row.
    listener.stop_listening();
    unsigned most_failures_while_healthy = 0;
    REQUIRE(run_until(loop, [&] { return !recorder.changes.empty(); }, 3000, [&] {
        const HealthStatus status = *checker.status(address);
        if (status.healthy) most_failures_while_healthy = std::max(most_failures_while_healthy, status.consecutive_failures);
    }));
    CHECK(most_failures_while_healthy == 2);
    CHECK_FALSE(recorder.changes[0].healthy);
    CHECK(recorder.changes[0].status.consecutive_failures == 3);
    CHECK(recorder.changes[0].reason == "connect: Connection refused");

    // Up again on the same port: healthy at the second pass in a row.
    listener.listen(port);
    REQUIRE(run_until(loop, [&] { return recorder.changes.size() >= 2; }, 3000));
    REQUIRE(recorder.changes.size() == 2);
    CHECK(recorder.changes[1].healthy);
    CHECK(recorder.changes[1].status.consecutive_passes == 2);
    CHECK(recorder.changes[1].reason == "connected");
    CHECK(checker.healthy(address) == true);
}

TEST_CASE("health tcp: a connect that does not complete fails by timeout", "[health]") {
    // A listener with a full accept queue drops new SYNs (the client retransmits after a
    // second): the probe's connect stays pending. backlog 0 queues one connection; two
    // non-blocking connects that are never accepted fill it.
    const config::Address any_port = loopback(0);
    reactor::ListenOptions listen_options;
    listen_options.reuse_port = false;
    listen_options.backlog = 0;
    Fd listener = reactor::listen_tcp(any_port.sockaddr_ptr(), any_port.length, listen_options);
    const config::Address address = loopback(reactor::local_port(listener.get()));
    std::vector<Fd> fillers;
    for (int i = 0; i < 2; ++i) {
        reactor::ConnectStart filler = reactor::start_connect(address.sockaddr_ptr(), address.length);
        REQUIRE(filler.socket);
        fillers.push_back(std::move(filler.socket));
    }

    Loop loop;
    Recorder recorder;
    HealthCheckOptions options = fast(HealthCheckKind::tcp);
    options.timeout = 100ms;
    HealthChecker checker(loop, options, recorder.callback());
    checker.set_targets({address});
    REQUIRE(run_until(loop, [&] { return !recorder.changes.empty(); }, 3000));
    CHECK(recorder.changes[0].reason == "connect: timeout");
}

// ---- tls, against scripted peers -----------------------------------------------------------------

TEST_CASE("health tls: a peer that accepts but never answers fails by timeout, one probe at a time",
          "[health]") {
    Loop loop;
    Peer silent(loop);
    Recorder recorder;
    HealthCheckOptions options = fast(HealthCheckKind::tls, 2);
    options.timeout = 150ms;  // three intervals: a second probe must not start meanwhile
    HealthChecker checker(loop, options, recorder.callback());
    checker.set_targets({silent.address()});
    std::size_t most_in_flight = 0;
    REQUIRE(run_until(loop, [&] { return !recorder.changes.empty(); }, 3000,
                      [&] { most_in_flight = std::max(most_in_flight, checker.probes_in_flight()); }));
    CHECK(recorder.changes[0].reason == "tls: timeout waiting for a ServerHello");
    CHECK(most_in_flight == 1);
    // Each probe is one connection, and it was closed before the next one began.
    const HealthStatus status = *checker.status(silent.address());
    CHECK(status.probes == 2);
    CHECK(silent.accepted() <= status.probes + 1);
    // A socket with a poll in flight is released when the cancel reaches the kernel, on the
    // loop's next trip: let it run once more before looking.
    run_for(loop, 10);
    CHECK(silent.closed_by_checker() >= status.probes);
}

TEST_CASE("health tls: an alert, garbage or a close fail with the reason", "[health]") {
    Loop loop;
    Peer alert(loop);
    alert.reply_with({kAlert});
    Peer garbage(loop);
    garbage.reply_with({kGarbage});
    Peer hello(loop);
    hello.reply_with({kServerHello, kServerHello, kServerHello, kServerHello});
    Peer wrong_message(loop);  // a handshake record, but a ClientHello, not a ServerHello
    wrong_message.reply_with({{22, 3, 3, 0, 4, 1, 0, 0, 0}});
    Recorder recorder;
    HealthChecker checker(loop, fast(HealthCheckKind::tls), recorder.callback());
    checker.set_targets({alert.address(), garbage.address(), hello.address(), wrong_message.address()});
    REQUIRE(run_until(loop, [&] {
        return recorder.changes.size() >= 3 && checker.status(hello.address())->probes >= 2;
    }, 3000));
    std::map<std::string, std::string> reasons;
    for (const Change& change : recorder.changes) {
        CHECK_FALSE(change.healthy);
        reasons[change.address] = change.reason;
    }
    CHECK(reasons[alert.address().to_string()] == "tls: alert");
    CHECK(reasons[garbage.address().to_string()] == "tls: not a ServerHello");
    CHECK(reasons[wrong_message.address().to_string()] == "tls: not a ServerHello");
    CHECK_FALSE(reasons.contains(hello.address().to_string()));
    CHECK(checker.status(hello.address())->last_reason == "tls: ServerHello");
}

TEST_CASE("health tls: a peer that closes at once fails", "[health]") {
    // Accepts (the kernel does) and closes: the close arrives before any reply.
    Loop loop;
    struct Closer final : reactor::WatchHandler {
        void on_watch(int result) override {
            if (result >= 0) ::close(result);
        }
    } closer;
    const config::Address any_port = loopback(0);
    reactor::ListenOptions listen_options;
    listen_options.reuse_port = false;
    Fd listener = reactor::listen_tcp(any_port.sockaddr_ptr(), any_port.length, listen_options);
    const config::Address address = loopback(reactor::local_port(listener.get()));
    reactor::Watch accepting(loop, closer);
    accepting.accept(listener.get());

    Recorder recorder;
    HealthChecker checker(loop, fast(HealthCheckKind::tls), recorder.callback());
    checker.set_targets({address});
    REQUIRE(run_until(loop, [&] { return !recorder.changes.empty(); }, 3000));
    INFO(recorder.changes[0].reason);
    // EOF, or a reset when the peer closed with our hello unread.
    CHECK((recorder.changes[0].reason == "tls: closed before a ServerHello" ||
           recorder.changes[0].reason == "tls: recv: Connection reset by peer" ||
           recorder.changes[0].reason == "tls: send: Connection reset by peer"));
}

TEST_CASE("health tls: thresholds count consecutive results, in probe order", "[health]") {
    // One connection per probe, in order, so the script is the sequence of results.
    Loop loop;
    Peer peer(loop);
    peer.reply_with({kServerHello, kGarbage, kGarbage, kServerHello,      // 2 failures: no change
                     kGarbage, kAlert, kGarbage,                          // 3rd in a row: unhealthy
                     kServerHello, kGarbage, kServerHello, kServerHello,  // 2nd pass in a row: healthy
                     kServerHello, kServerHello});
    Recorder recorder;
    HealthChecker checker(loop, fast(HealthCheckKind::tls, 3, 2), recorder.callback());
    recorder.checker = &checker;
    checker.set_targets({peer.address()});
    REQUIRE(run_until(loop, [&] { return checker.status(peer.address())->probes >= 13; }, 5000));
    REQUIRE(recorder.changes.size() == 2);
    CHECK_FALSE(recorder.changes[0].healthy);
    CHECK(recorder.changes[0].status.probes == 7);
    CHECK(recorder.changes[0].reason == "tls: not a ServerHello");
    CHECK(recorder.changes[1].healthy);
    CHECK(recorder.changes[1].status.probes == 11);
    CHECK(recorder.changes[1].reason == "tls: ServerHello");
    CHECK(peer.accepted() == 13);  // not 14: the probe after the 13th has not started
}

// ---- tls, against openssl s_server --------------------------------------------------------------

TEST_CASE("health tls: openssl s_server answers the hello with a ServerHello", "[health]") {
    Loop loop;
    SServer any(integration::free_port());
    SServer tls12(integration::free_port(), {"-tls1_2"});
    SServer tls13(integration::free_port(), {"-tls1_3"});
    // Only P-384: the x25519 key share is not taken, the server asks again (HelloRetryRequest).
    SServer retry(integration::free_port(), {"-tls1_3", "-groups", "P-384"});
    const std::vector<config::Address> servers = {any.address(), tls12.address(), tls13.address(),
                                                  retry.address()};
    Recorder recorder;
    HealthCheckOptions options = fast(HealthCheckKind::tls);
    options.sni = "backend.test";
    HealthChecker checker(loop, options, recorder.callback());
    checker.set_targets(servers);
    REQUIRE(run_until(loop, [&] {
        return std::all_of(servers.begin(), servers.end(),
                           [&](const config::Address& a) { return checker.status(a)->probes >= 3; });
    }, 5000));
    for (const config::Address& server : servers) {
        INFO(server.to_string() << " " << checker.status(server)->last_reason);
        CHECK(checker.status(server)->consecutive_passes >= 3);
        CHECK(checker.status(server)->last_reason == "tls: ServerHello");
    }
    CHECK(recorder.changes.empty());
}

TEST_CASE("health tls: the SNI reaches openssl s_server", "[health]") {
    // With -servername_fatal the server answers a hello naming another server with an alert.
    Loop loop;
    const integration::TempDir& dir = certificate_dir();
    SServer server(integration::free_port(), {"-servername", "backend.test", "-servername_fatal",
                                              "-cert2", dir.file("cert.pem"), "-key2", dir.file("key.pem")});
    Recorder recorder;
    HealthCheckOptions matching = fast(HealthCheckKind::tls);
    matching.sni = "backend.test";
    HealthChecker right(loop, matching, recorder.callback());
    HealthCheckOptions other = matching;
    other.sni = "other.test";
    HealthChecker wrong(loop, other, recorder.callback());
    right.set_targets({server.address()});
    wrong.set_targets({server.address()});
    REQUIRE(run_until(loop, [&] { return right.status(server.address())->probes >= 2 && !recorder.changes.empty(); }, 3000));
    CHECK(right.status(server.address())->last_reason == "tls: ServerHello");
    REQUIRE(recorder.changes.size() == 1);
    CHECK(recorder.changes[0].reason == "tls: alert");
    CHECK(wrong.healthy(server.address()) == false);
}

TEST_CASE("health tls: openssl s_server without a common group answers with an alert", "[health]") {
    Loop loop;
    SServer server(integration::free_port(), {"-tls1_3", "-groups", "ffdhe2048"});
    Recorder recorder;
    HealthChecker checker(loop, fast(HealthCheckKind::tls), recorder.callback());
    checker.set_targets({server.address()});
    REQUIRE(run_until(loop, [&] { return !recorder.changes.empty(); }, 3000));
    CHECK(recorder.changes[0].reason == "tls: alert");
}

TEST_CASE("health tls: s_server killed turns unhealthy, restarted turns healthy", "[health]") {
    Loop loop;
    const std::uint16_t port = integration::free_port();
    auto server = std::make_unique<SServer>(port);
    Recorder recorder;
    HealthChecker checker(loop, fast(HealthCheckKind::tls, 2, 2), recorder.callback());
    recorder.checker = &checker;
    const config::Address address = server->address();
    checker.set_targets({address});
    REQUIRE(run_until(loop, [&] { return checker.status(address)->consecutive_passes >= 2; }, 3000));

    server->kill();
    REQUIRE(run_until(loop, [&] { return !recorder.changes.empty(); }, 3000));
    CHECK_FALSE(recorder.changes[0].healthy);
    CHECK(recorder.changes[0].status.consecutive_failures == 2);
    CHECK(recorder.changes[0].reason == "connect: Connection refused");

    server = std::make_unique<SServer>(port);
    REQUIRE(run_until(loop, [&] { return recorder.changes.size() >= 2; }, 5000));
    CHECK(recorder.changes[1].healthy);
    CHECK(recorder.changes[1].status.consecutive_passes == 2);
    CHECK(recorder.changes[1].reason == "tls: ServerHello");
}

// ---- targets, spreading, teardown ----------------------------------------------------------------

TEST_CASE("health: set_targets keeps the state of addresses that stay", "[health]") {
    Loop loop;
    ClosedPort closed;
    Peer listener(loop);
    Recorder recorder;
    HealthChecker checker(loop, fast(HealthCheckKind::tcp, 2), recorder.callback());
    checker.set_targets({closed.address()});
    REQUIRE(run_until(loop, [&] { return checker.healthy(closed.address()) == false; }, 3000));
    const std::uint64_t probes = checker.status(closed.address())->probes;

    checker.set_targets({listener.address(), closed.address(), listener.address()});
    CHECK(checker.target_count() == 2);
    CHECK(checker.healthy(closed.address()) == false);  // kept, not reset to healthy
    CHECK(checker.status(closed.address())->probes == probes);
    CHECK(checker.healthy(listener.address()) == true);
    REQUIRE(run_until(loop, [&] {  // its schedule goes on
        return checker.status(listener.address())->probes >= 2 &&
               checker.status(closed.address())->probes >= probes + 2;
    }, 3000));
    CHECK(checker.healthy(closed.address()) == false);
    CHECK(recorder.changes.size() == 1);                       // no second "unhealthy"

    // Dropped: forgotten. Added back: a new target, healthy until proven otherwise.
    checker.set_targets({listener.address()});
    CHECK_FALSE(checker.healthy(closed.address()).has_value());
    checker.set_targets({listener.address(), closed.address()});
    CHECK(checker.healthy(closed.address()) == true);
    CHECK(checker.status(closed.address())->probes == 0);
}

TEST_CASE("health: first probes of many new targets are spread, not fired together", "[health]") {
    Loop loop;
    const Peers peers(loop, 40);
    const std::vector<config::Address> targets = peers.addresses();
    HealthCheckOptions options = fast(HealthCheckKind::tcp);
    options.interval = 500ms;  // first probes within 0..50 ms
    HealthChecker checker(loop, options, {});
    const Millis start = reactor::monotonic_millis();
    checker.set_targets(targets);
    REQUIRE(run_until(loop, [&] {
        return std::all_of(peers.begin(), peers.end(), [](const auto& peer) { return peer->accepted() >= 1; });
    }, 3000));
    std::set<Millis> distinct;
    Millis first = INT64_MAX, last = 0;
    for (const auto& peer : peers) {
        const Millis at = peer->accepted_at.front() - start;
        distinct.insert(at);
        first = std::min(first, at);
        last = std::max(last, at);
    }
    INFO("first probes between " << first << " and " << last << " ms, " << distinct.size() << " distinct");
    CHECK(last <= 50 + 200);  // "at once", give or take a busy machine
    CHECK(last - first >= 10);
    CHECK(distinct.size() >= 5);
}

TEST_CASE("health: destroying the checker with probes in flight is clean", "[health]") {
    Loop loop;
    const Peers peers(loop, 5);
    const std::vector<config::Address> targets = peers.addresses();
    const std::size_t fds_before = open_fd_count();
    const std::size_t ops_before = loop.operations_in_flight();  // the peers' accepts
    Recorder recorder;
    auto checker = std::make_unique<HealthChecker>(loop, fast(HealthCheckKind::tls), recorder.callback());
    checker->set_targets(targets);
    REQUIRE(run_until(loop, [&] {
        return checker->probes_in_flight() == targets.size() &&
               std::all_of(peers.begin(), peers.end(), [](const auto& peer) { return peer->accepted() == 1; });
    }, 3000));
    CHECK(loop.operations_in_flight() == ops_before + targets.size());  // one read poll each
    CHECK(open_fd_count() == fds_before + 2 * targets.size());  // probe socket + accepted socket

    checker.reset();
    run_for(loop, 50);
    CHECK(loop.operations_in_flight() == ops_before);  // the cancelled polls came back
    for (const auto& peer : peers) CHECK(peer->closed_by_checker() == 1);
    CHECK(open_fd_count() == fds_before + targets.size());  // only the peers' accepted sockets
    CHECK(recorder.changes.empty());
}

TEST_CASE("health: the callback may drop its own target or destroy the checker", "[health]") {
    Loop loop;
    ClosedPort closed;
    Peer listener(loop);
    std::unique_ptr<HealthChecker> checker;
    std::vector<std::string> seen;
    checker = std::make_unique<HealthChecker>(loop, fast(HealthCheckKind::tcp),
        [&](const config::Address& address, bool, const std::string& reason) {
            seen.push_back(address.to_string() + " " + reason);
            checker->set_targets({listener.address()});  // drops the target that is reporting
        });
    checker->set_targets({closed.address(), listener.address()});
    REQUIRE(run_until(loop, [&] { return !seen.empty(); }, 3000));
    CHECK(seen[0] == closed.address().to_string() + " connect: Connection refused");
    CHECK_FALSE(checker->healthy(closed.address()).has_value());
    run_for(loop, 120);
    CHECK(seen.size() == 1);

    checker = std::make_unique<HealthChecker>(loop, fast(HealthCheckKind::tcp),
        [&](const config::Address&, bool, const std::string&) { checker.reset(); });
    checker->set_targets({closed.address()});
    REQUIRE(run_until(loop, [&] { return checker == nullptr; }, 3000));
    run_for(loop, 50);
    CHECK(loop.operations_in_flight() == 1);  // the listener's accept only
}

// ---- local shortages ------------------------------------------------------------------------------

TEST_CASE("health: the prober's own EMFILE is not held against the endpoint; counted apart", "[health]") {
    Loop loop;
    Peer listener(loop);
    Recorder recorder;
    // Recorded, checked once descriptors are back: no Catch2 assertion runs while out of them
    // (UBSan's vptr check needs a pipe, and reports every virtual call without one).
    std::vector<int> local_errors;
    std::vector<std::string> local_error_addresses;
    local_errors.reserve(1000);
    local_error_addresses.reserve(1000);
    HealthCheckOptions options = fast(HealthCheckKind::tcp, /*unhealthy=*/1);
    options.local_error = [&](const config::Address& address, int error) {
        if (local_errors.size() == local_errors.capacity()) return;
        local_error_addresses.push_back(address.to_string());
        local_errors.push_back(error);
    };
    HealthChecker checker(loop, options, recorder.callback());
    recorder.checker = &checker;
    checker.set_targets({listener.address()});
    REQUIRE(run_until(loop, [&] { return checker.status(listener.address())->probes >= 2; }, 3000));
    const std::uint64_t probes_before = checker.status(listener.address())->probes;

    // Out of descriptors: every probe's socket() fails with EMFILE.
    rlimit original{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
    {
        std::vector<Fd> fillers;
        int highest = 0;
        for (int i = 0; i < 16; ++i) {
            fillers.emplace_back(::dup(0));
            REQUIRE(fillers.back());
            highest = std::max(highest, fillers.back().get());
        }
        rlimit lowered = original;
        lowered.rlim_cur = static_cast<rlim_t>(highest + 1);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
        run_until(loop, [&] { return checker.status(listener.address())->local_errors >= 5; }, 3000);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &original) == 0);
    }
    const HealthStatus during = *checker.status(listener.address());
    CHECK(during.local_errors >= 5);
    CHECK(during.probes == probes_before);  // no verdict from a probe that could not run
    CHECK(during.consecutive_failures == 0);
    CHECK(checker.healthy(listener.address()) == true);
    CHECK(recorder.changes.empty());
    REQUIRE(local_errors.size() == during.local_errors);
    CHECK(std::all_of(local_errors.begin(), local_errors.end(), [](int error) { return error == EMFILE; }));
    CHECK(std::all_of(local_error_addresses.begin(), local_error_addresses.end(),
                      [&](const std::string& address) { return address == listener.address().to_string(); }));

    // Descriptors back: probes run and pass again.
    REQUIRE(run_until(loop, [&] { return checker.status(listener.address())->probes >= probes_before + 2; }, 3000));
    CHECK(checker.status(listener.address())->last_reason == "connected");
    CHECK(checker.healthy(listener.address()) == true);
}
