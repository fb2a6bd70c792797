// Failure injection with real processes (issue 7, item 3): backends that reset or die mid-stream,
// a backend that never answers the SYN, thousands of clients that never finish their hello, a
// process out of descriptors, a user out of pipe pages, and memory while far more connections
// than max_connections are attempted.
//
// Every load here is bounded in count and time. Timing bounds are correctness bounds, several
// times what an idle machine needs: these tests run on a shared, loaded 2-core machine and under
// ASan, so they tell "closed at the timeout" from "never closed", and "served" from "stalled
// behind the flood", not fast from slow.

#include "tests/support/checksum_load.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

using namespace integration;

namespace {

// ---- Process and metric readings ----------------------------------------------------------------

// utime + stime of process `pid` in seconds (/proc/PID/stat fields 14 and 15); -1 if unreadable.
double cpu_seconds(pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const std::size_t end = stat.rfind(')');
    if (end == std::string::npos) return -1;
    std::istringstream fields(stat.substr(end + 2));  // from field 3 (state) on
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int index = 3; index <= 15 && fields >> field; ++index) {
        if (index == 14) utime = std::stoull(field);
        if (index == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// VmRSS of process `pid` in KiB; -1 if unreadable.
long rss_kib(pid_t pid) {
    std::istringstream status(read_file("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    for (int count = 0; count < 200 && std::getline(status, line); ++count)
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

double closed_with(const Passgate& passgate, const std::string& listener, const std::string& reason) {
    return labelled_sum(passgate, "passgate_downstream_connections_closed_total",
                        {"listener=\"" + listener + "\"", "reason=\"" + reason + "\""});
}

// passgate's descriptors a moment after an admin request. The admin server closes an
// exchange's socket on its loop's next iteration after the response (AdminServer::retire), so
// counts taken this way hold no admin exchange, however they were before.
std::map<std::string, int> fds_after_admin_request(const Passgate& passgate) {
    http_get(passgate.admin_port(), "/healthz");
    std::this_thread::sleep_for(Millis(100));
    return open_fds(passgate.pid());
}

int count_of(const std::map<std::string, int>& fds, const std::string& kind) {
    const auto it = fds.find(kind);
    return it == fds.end() ? 0 : it->second;
}

// passgate's sockets come back to `baseline` (within the timeout).
bool sockets_back_to(const Passgate& passgate, int baseline, Millis timeout = Millis(5000)) {
    return wait_until([&] { return count_of(fds_after_admin_request(passgate), "socket") == baseline; },
                      timeout, Millis(50));
}

// `text` without UBSan's vptr reports on memory it could not read. The vptr check tests whether
// memory is readable by writing it into a fresh pipe (sanitizer_common's IsAccessibleMemoryRange):
// out of descriptors, pipe() fails and every virtual call through a valid object is reported as
// "... does not point to an object of type ...", "object has invalid vptr", "<memory cannot be
// printed>". A real bad vptr has readable memory and is printed, so it stays in the text.
// The three lines of one report need not be adjacent: passgate's access log writer (another
// thread) writes to the same stderr and its lines can land between them.
std::string without_unreadable_vptr_reports(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> lines;
    std::string line;
    for (int count = 0; count < 1000000 && std::getline(in, line); ++count) lines.push_back(line);
    const auto other_thread = [](const std::string& candidate) {
        return candidate.rfind("time=", 0) == 0 || candidate.rfind("passgate[", 0) == 0;
    };
    // Index of the next line at or after `from` that is not another thread's, if any.
    const auto next_own = [&](std::size_t from) {
        while (from < lines.size() && other_thread(lines[from])) ++from;
        return from;
    };
    std::vector<bool> dropped(lines.size(), false);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].find("runtime error: member ") == std::string::npos ||
            lines[i].find("which does not point to an object of type") == std::string::npos)
            continue;
        const std::size_t note = next_own(i + 1);
        if (note >= lines.size() || lines[note].find("note: object has invalid vptr") == std::string::npos)
            continue;
        const std::size_t memory = next_own(note + 1);
        if (memory >= lines.size() || lines[memory] != "<memory cannot be printed>") continue;
        dropped[i] = dropped[note] = dropped[memory] = true;
    }
    std::string kept;
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (!dropped[i]) kept += lines[i] + "\n";
    return kept;
}

// passgate under a descriptor limit that it will reach. UBSan's vptr check needs a fresh pipe to
// test memory (see without_unreadable_vptr_reports): out of descriptors it reports a valid object,
// and with halt_on_error=1 (the tests' setting) that false report kills passgate mid-test. Here it
// reports and goes on; the test then fails on any sanitizer report but those.
PassgateLaunch exhausted_descriptors_launch(int soft, int hard) {
    return PassgateLaunch{{"env", "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0", "prlimit",
                           "--nofile=" + std::to_string(soft) + ":" + std::to_string(hard)},
                          true};
}

// ---- Clients ------------------------------------------------------------------------------------

const std::vector<std::uint8_t>& any_hello() { return captured_hello("curl-h2.bin").bytes; }

// A client that sends and reads at once without blocking, so that bytes flow both ways until
// passgate closes the connection.
struct TwoWayClient {
    Socket socket;
    std::string name;  // "127.0.0.1:PORT", as in the access log's client=
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    bool closed = false;
    bool reset = false;  // ECONNRESET or EPIPE rather than EOF
    Clock::time_point closed_at{};

    explicit TwoWayClient(std::uint16_t port) : socket(connect_to(port)) {
        REQUIRE(socket);
        name = local_name(socket.get());
        REQUIRE(send_all(socket.get(), any_hello(), deadline_in(Millis(3000))));
    }

    // One non-blocking round: send a chunk, read what is there.
    void step() {
        if (closed) return;
        static const std::vector<std::uint8_t> chunk(16 * 1024, 'c');
        const ssize_t out = ::send(socket.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (out > 0) sent += static_cast<std::uint64_t>(out);
        else if (out < 0 && errno != EAGAIN && errno != EINTR) return close_seen(true);
        std::uint8_t buffer[64 * 1024];
        for (int round = 0; round < 16; ++round) {
            const ssize_t in = ::recv(socket.get(), buffer, sizeof buffer, MSG_DONTWAIT);
            if (in > 0) {
                received += static_cast<std::uint64_t>(in);
                continue;
            }
            if (in == 0) return close_seen(false);
            if (errno == EAGAIN || errno == EINTR) return;
            return close_seen(true);
        }
    }

private:
    void close_seen(bool by_reset) {
        closed = true;
        reset = by_reset;
        closed_at = Clock::now();
    }
};

// Steps every client until `done()` or the timeout, waiting in poll() up to 5 ms between rounds.
bool drive(std::vector<std::unique_ptr<TwoWayClient>>& clients, const std::function<bool()>& done,
           Millis timeout) {
    const Deadline deadline = deadline_in(timeout);
    for (int round = 0; round < 1000000 && Clock::now() < deadline; ++round) {
        if (done()) return true;
        std::vector<pollfd> items;
        for (const auto& client : clients)
            if (!client->closed) items.push_back({client->socket.get(), POLLIN | POLLOUT, 0});
        ::poll(items.data(), items.size(), 5);
        for (auto& client : clients) client->step();
    }
    return done();
}

bool all_closed(const std::vector<std::unique_ptr<TwoWayClient>>& clients) {
    return std::all_of(clients.begin(), clients.end(), [](const auto& client) { return client->closed; });
}

// Two listeners in one passgate: "victim" (every SNI, route "victim", service "victim" at
// victim_backend) for the connections a fault hits, and "tls" (*.corpus.test, route "corpus",
// service "checksum" at checksum_backend) for the bystanders checked byte for byte.
std::string victim_and_bystanders_config(std::uint16_t victim_port, std::uint16_t victim_backend,
                                         std::uint16_t tls_port, std::uint16_t checksum_backend) {
    return transfer_config(tls_port, checksum_backend) +
           "\n[[listener]]\nname = \"victim\"\naddress = \"127.0.0.1:" + std::to_string(victim_port) + "\"\n"
           "\n[[route]]\nname = \"victim\"\nlisteners = [\"victim\"]\nbackends = [ { service = \"victim\" } ]\n"
           "\n[[service]]\nname = \"victim\"\nendpoints = [\"127.0.0.1:" + std::to_string(victim_backend) + "\"]\n";
}

// Listener "tls" on 127.0.0.1:port (plus `listener_extra` lines), route "r" with every SNI to
// service "echo" at 127.0.0.1:backend_port.
std::string echo_config(std::uint16_t port, std::uint16_t backend_port, const std::string& listener_extra = "") {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n" + listener_extra +
           "\n[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [ { service = \"echo\" } ]\n\n"
           "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n";
}

// The access-log lines of connections whose client is `client` exactly.
std::string log_line_of(const Passgate& passgate, const std::string& client) {
    for (const std::string& line : passgate.log_lines_with({"client=" + client + " "})) return line;
    return {};
}

// Reads one TLS record (the hello) from a backend-side socket.
bool read_hello_record(int fd, Deadline deadline) {
    std::uint8_t header[5];
    if (!recv_exact(fd, header, sizeof header, deadline)) return false;
    std::vector<std::uint8_t> body((std::size_t{header[3]} << 8) | header[4]);
    return recv_exact(fd, body.data(), body.size(), deadline);
}

}  // namespace

// ---- Backends that fail mid-stream --------------------------------------------------------------

TEST_CASE("faults: a backend that resets mid-stream closes its client only; bystanders stay byte-exact",
          "[integration][faults]") {
    TempDir dir;
    const Deadline deadline = deadline_in(Millis(120000));
    TcpServer bystander_backend([&](int fd, std::size_t) { checksum_backend(fd, deadline); });
    // Reads the hello, streams 1 MiB to the client while discarding what the client sends, goes
    // on reading for 300 ms, then closes with SO_LINGER 0 (TcpServer closes the socket when the
    // handler returns): a reset while the client's bytes still flow. (Without the 300 ms the
    // whole 1 MiB fits in the kernel's buffers and the reset discards it before passgate reads
    // it: TCP semantics, nothing passgate can forward.)
    std::atomic<int> resets{0};
    TcpServer resetting([&](int fd, std::size_t) {
        if (!read_hello_record(fd, deadline)) return;
        const std::vector<std::uint8_t> chunk(64 * 1024, 'r');
        std::uint8_t sink[64 * 1024];
        const auto drain = [&] {
            for (int round = 0; round < 16 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++round) {}
        };
        for (std::uint64_t sent = 0; sent < (1u << 20);) {
            if (!send_all(fd, chunk.data(), chunk.size(), deadline)) return;
            sent += chunk.size();
            drain();
        }
        const Deadline reset_at = deadline_in(Millis(300));
        for (int round = 0; round < 100000 && Clock::now() < reset_at; ++round) {
            pollfd item{fd, POLLIN, 0};
            ::poll(&item, 1, 5);
            drain();
        }
        const linger abortive{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
        ++resets;
    });
    const std::uint16_t tls_port = free_port();
    const std::uint16_t victim_port = free_port();
    Passgate passgate(dir, {victim_and_bystanders_config(victim_port, resetting.port(), tls_port,
                                                         bystander_backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());

    constexpr int bystanders = 16;
    LoadResult load;
    std::thread load_thread([&] { load = run_load(tls_port, {bystanders, Millis(60000)}); });

    std::vector<std::unique_ptr<TwoWayClient>> victims;
    victims.push_back(std::make_unique<TwoWayClient>(victim_port));
    // Bounded: the backend resets after 1 MiB; a client never closed within 20 s is a hang.
    const bool closed = drive(victims, [&] { return all_closed(victims); }, Millis(20000));
    load_thread.join();

    const TwoWayClient& victim = *victims.front();
    INFO("victim " << victim.name << ": sent " << victim.sent << ", received " << victim.received
                   << (victim.reset ? ", reset" : ", EOF"));
    CHECK(closed);
    CHECK(resets.load() == 1);
    CHECK(victim.received > 0);  // bytes were flowing when the backend reset
    check_load(load, bystanders);

    INFO("passgate stderr:\n" << passgate.stderr_text());
    CHECK(passgate.wait_for_client_log(victim.name, "reason=backend_error"));
    WARN("reset mid-stream, access log: " << log_line_of(passgate, victim.name));
    CHECK(closed_with(passgate, "victim", "backend_error") == 1);
    CHECK(closed_with(passgate, "tls", "completed") == bystanders);
    CHECK(passgate.failed_connection_lines().size() == 1);  // the victim's only
    bystander_backend.stop();
    resetting.stop();
    stop_and_check(passgate);
}

TEST_CASE("faults: a backend process killed (SIGKILL) during a bulk transfer; bystanders stay byte-exact",
          "[integration][faults]") {
    TempDir dir;
    const Deadline deadline = deadline_in(Millis(120000));
    TcpServer bystander_backend([&](int fd, std::size_t) { checksum_backend(fd, deadline); });
    // A real backend process that streams both ways (perf/passgate-backend --mode both).
    const std::uint16_t victim_backend_port = free_port();
    SpawnOptions spawn;
    spawn.argv = {required_env("PASSGATE_PERF_BACKEND"), "--listen", "127.0.0.1:" + std::to_string(victim_backend_port),
                  "--mode", "both", "--max-seconds", "120"};
    spawn.stdout_path = dir.file("backend.out");
    spawn.stderr_path = dir.file("backend.err");
    Process victim_backend(spawn);
    REQUIRE(wait_until([&] { return port_accepts(victim_backend_port); }, Millis(5000)));

    const std::uint16_t tls_port = free_port();
    const std::uint16_t victim_port = free_port();
    Passgate passgate(dir, {victim_and_bystanders_config(victim_port, victim_backend_port, tls_port,
                                                         bystander_backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());

    constexpr int bystanders = 16;
    LoadResult load;
    std::thread load_thread([&] { load = run_load(tls_port, {bystanders, Millis(60000)}); });

    constexpr int victim_count = 3;
    std::vector<std::unique_ptr<TwoWayClient>> victims;
    for (int i = 0; i < victim_count; ++i) victims.push_back(std::make_unique<TwoWayClient>(victim_port));
    // Kill once every victim has received 256 KiB: a bulk transfer in full flow.
    const bool flowing = drive(victims, [&] {
        return std::all_of(victims.begin(), victims.end(), [](const auto& v) { return v->received >= (256u << 10); });
    }, Millis(20000));
    REQUIRE(flowing);
    victim_backend.send_signal(SIGKILL);
    const Clock::time_point killed = Clock::now();
    const bool closed = drive(victims, [&] { return all_closed(victims); }, Millis(10000));
    load_thread.join();

    CHECK(closed);
    for (const auto& victim : victims) {
        INFO("victim " << victim->name << ": sent " << victim->sent << ", received " << victim->received
                       << (victim->reset ? ", reset" : ", EOF"));
        CHECK(victim->closed);
        if (victim->closed) CHECK(victim->closed_at - killed < Millis(5000));
    }
    check_load(load, bystanders);

    INFO("passgate stderr:\n" << passgate.stderr_text());
    for (const auto& victim : victims) {
        CHECK(passgate.wait_for_client_log(victim->name, "reason=backend_error"));
        WARN("backend killed, access log: " << log_line_of(passgate, victim->name));
    }
    CHECK(closed_with(passgate, "victim", "backend_error") == victim_count);
    CHECK(closed_with(passgate, "tls", "completed") == bystanders);
    CHECK(passgate.failed_connection_lines().size() == victim_count);
    bystander_backend.stop();
    stop_and_check(passgate);
}

// ---- A backend that never answers the SYN -------------------------------------------------------

TEST_CASE("faults: an endpoint that never answers the SYN times out at connect_timeout; the next one serves",
          "[integration][faults]") {
    TempDir dir;
    EchoBackend live;
    // A listening socket that never accepts, its accept queue full (backlog 0 holds one
    // connection): the kernel drops every further SYN, as a firewall DROP rule would.
    std::uint16_t silent_port = 0;
    const Socket silent = listen_on_loopback(0, silent_port);
    Socket filler = connect_to(silent_port);
    REQUIRE(filler);
    REQUIRE_FALSE(connect_to(silent_port, Millis(300)));  // the SYN goes unanswered

    const std::uint16_t port = free_port();
    const std::string silent_endpoint = "127.0.0.1:" + std::to_string(silent_port);
    const std::string config =
        "[admin]\naddress = \"@ADMIN@\"\n\n"
        "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n"
        "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [ { service = \"s\" } ]\n\n"
        "[[service]]\nname = \"s\"\nconnect_timeout = \"400ms\"\nconnect_attempts = 2\n"
        "endpoints = [\"" + silent_endpoint + "\", \"127.0.0.1:" + std::to_string(live.port()) + "\"]\n";
    // One worker: one balancer, so round robin sends every other connection to the silent one first.
    Passgate passgate(dir, {config, {}, 1});
    REQUIRE(passgate.wait_ready());

    constexpr int clients = 6;
    int served = 0;
    std::vector<Millis> took;
    for (int i = 0; i < clients; ++i) {
        const Clock::time_point start = Clock::now();
        const std::string problem = echo_round_trip(port, any_hello(), {'p', 'i', 'n', 'g'}, Millis(5000));
        took.push_back(std::chrono::duration_cast<Millis>(Clock::now() - start));
        INFO("client " << i << ": " << problem);
        CHECK(problem.empty());
        if (problem.empty()) ++served;
    }
    CHECK(served == clients);
    CHECK(live.accepted() == static_cast<std::size_t>(clients));

    // The access log is written by its own thread after the connection closes: the last
    // client's line may come a moment after the client saw the close.
    std::vector<std::string> retried;
    wait_until([&] {
        retried = passgate.log_lines_with({"reason=completed", "connect_attempts=2"});
        return retried.size() >= static_cast<std::size_t>(clients / 2);
    }, Millis(3000));
    INFO("passgate stderr:\n" << passgate.stderr_text());
    CHECK(retried.size() == clients / 2);
    const double timeouts = labelled_sum(passgate, "passgate_upstream_connect_failures_total",
                                         {"endpoint=\"" + silent_endpoint + "\"", "reason=\"timeout\""});
    CHECK(timeouts == static_cast<double>(retried.size()));
    // Those that met the silent endpoint first waited for connect_timeout (400 ms), not for the
    // kernel's SYN retries (over a minute); the upper bound is generous for a loaded machine.
    const int slow = static_cast<int>(std::count_if(took.begin(), took.end(), [](Millis t) { return t >= Millis(380); }));
    CHECK(slow == static_cast<int>(retried.size()));
    CHECK(*std::max_element(took.begin(), took.end()) < Millis(3000));
    if (!retried.empty()) WARN("SYN never answered, access log: " << retried.front());
    stop_and_check(passgate);
}

// ---- Slowloris and idle-before-hello ------------------------------------------------------------

TEST_CASE("faults: 2000 slowloris and idle-before-hello clients are closed at client_hello_timeout; "
          "good clients meanwhile are served promptly", "[integration][faults][slowloris]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    // defer_accept off: the idle clients are accepted at the handshake, so the deadline checked is
    // passgate's own (with the default the kernel holds a silent client about a second first).
    Passgate passgate(dir, {echo_config(port, backend.port(), "client_hello_timeout = \"2s\"\ndefer_accept = false\n"),
                            {}, 2});
    REQUIRE(passgate.wait_ready());
    const int baseline_sockets = count_of(fds_after_admin_request(passgate), "socket");
    constexpr Millis hello_timeout(2000);

    // 1500 connect and send nothing; 500 send the hello one byte a second (slowloris).
    constexpr int idle_count = 1500;
    constexpr int slow_count = 500;
    struct Bad {
        Socket socket;
        Clock::time_point opened;
        std::optional<Clock::time_point> closed;
        std::size_t bytes = 0;  // received from passgate: must stay 0
    };
    std::vector<Bad> bad(idle_count + slow_count);
    for (Bad& one : bad) {
        one.socket = connect_to(port);
        one.opened = Clock::now();
        REQUIRE(one.socket);
    }

    // Good clients, one after another, while the bad ones wait and while they are all closed.
    std::atomic<bool> stop_good{false};
    std::vector<std::string> good_failures;
    std::vector<Millis> good_latency;
    std::thread good([&] {
        for (int i = 0; i < 300 && !stop_good.load(); ++i) {
            const Clock::time_point start = Clock::now();
            const std::string problem = echo_round_trip(port, any_hello(), {'g', 'o', 'o', 'd'}, Millis(5000));
            good_latency.push_back(std::chrono::duration_cast<Millis>(Clock::now() - start));
            if (!problem.empty()) good_failures.push_back("good client " + std::to_string(i) + ": " + problem);
            std::this_thread::sleep_for(Millis(50));
        }
    });

    // Drip one byte a second into each slowloris connection; watch every bad one for its close.
    const std::vector<std::uint8_t>& hello = captured_hello("chromium.bin").bytes;
    std::size_t dripped = 0;
    Clock::time_point next_drip = Clock::now();
    const Deadline deadline = deadline_in(hello_timeout + Millis(8000));
    int open_count = static_cast<int>(bad.size());
    for (int round = 0; round < 100000 && open_count > 0 && Clock::now() < deadline; ++round) {
        if (Clock::now() >= next_drip && dripped < hello.size()) {
            for (std::size_t i = idle_count; i < bad.size(); ++i)
                if (!bad[i].closed) ::send(bad[i].socket.get(), &hello[dripped], 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            ++dripped;
            next_drip += Millis(1000);
        }
        std::vector<pollfd> items;
        std::vector<std::size_t> which;
        for (std::size_t i = 0; i < bad.size(); ++i) {
            if (bad[i].closed) continue;
            items.push_back({bad[i].socket.get(), POLLIN | POLLRDHUP, 0});
            which.push_back(i);
        }
        if (::poll(items.data(), items.size(), 20) <= 0) continue;
        for (std::size_t k = 0; k < items.size(); ++k) {
            if (items[k].revents == 0) continue;
            Bad& one = bad[which[k]];
            std::uint8_t buffer[256];
            const ssize_t got = ::recv(one.socket.get(), buffer, sizeof buffer, MSG_DONTWAIT);
            if (got > 0) {
                one.bytes += static_cast<std::size_t>(got);
                continue;
            }
            if (got < 0 && errno == EAGAIN) continue;
            one.closed = Clock::now();
            --open_count;
        }
    }
    // Half a second more of good clients after the mass close, then stop them.
    std::this_thread::sleep_for(Millis(500));
    stop_good = true;
    good.join();

    int closed_count = 0, early = 0, late = 0;
    std::size_t bytes = 0;
    Millis first_close = Millis::max(), last_close{0};
    for (const Bad& one : bad) {
        bytes += one.bytes;
        if (!one.closed) continue;
        ++closed_count;
        const Millis after = std::chrono::duration_cast<Millis>(*one.closed - one.opened);
        first_close = std::min(first_close, after);
        last_close = std::max(last_close, after);
        // Not before the timeout (a little slack: the clock here starts before passgate's
        // accept); not long after it (3 s of slack for a loaded machine and ASan).
        if (after < hello_timeout - Millis(100)) ++early;
        if (after > hello_timeout + Millis(3000)) ++late;
    }
    const Millis worst_good = good_latency.empty() ? Millis(0) : *std::max_element(good_latency.begin(), good_latency.end());
    INFO("bad clients closed after " << first_close.count() << " to " << last_close.count() << " ms; good clients: "
         << good_latency.size() << ", worst " << worst_good.count() << " ms");
    CHECK(closed_count == idle_count + slow_count);
    CHECK(early == 0);
    CHECK(late == 0);
    CHECK(bytes == 0);
    std::string failures;
    for (const std::string& failure : good_failures) failures += failure + "\n";
    INFO(failures);
    CHECK(good_failures.empty());
    CHECK(good_latency.size() >= 20);  // they ran during the whole episode
    CHECK(worst_good < Millis(1000));
    WARN("slowloris: " << idle_count + slow_count << " bad clients closed " << first_close.count() << "-"
         << last_close.count() << " ms after connect (client_hello_timeout 2 s); " << good_latency.size()
         << " good clients, worst latency " << worst_good.count() << " ms");

    CHECK(labelled_sum(passgate, "passgate_client_hello_rejected_total", {"reason=\"timeout\""}) == idle_count + slow_count);
    CHECK(closed_with(passgate, "tls", "hello_timeout") == idle_count + slow_count);
    bad.clear();
    CHECK(sockets_back_to(passgate, baseline_sockets));
    stop_and_check(passgate);
}

// ---- Out of descriptors -------------------------------------------------------------------------

TEST_CASE("faults: out of descriptors (RLIMIT_NOFILE 64), accept backs off without spinning and recovers",
          "[integration][faults][fds]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    constexpr int limit = 64;
    // Without the default cap (derived from this limit, it would refuse connections before the
    // descriptors ran out): this test is about what happens when they do.
    Passgate passgate(dir, {"[runtime]\nmax_connections_per_worker = 1000\n\n" + echo_config(port, backend.port()), {}, 1}, "passgate",
                      exhausted_descriptors_launch(limit, limit));
    REQUIRE(passgate.wait_ready());
    const std::map<std::string, int> cold = fds_after_admin_request(passgate);
    INFO("passgate's descriptors at start: " << describe_fds(cold));
    REQUIRE(total_fds(cold) < limit - 10);
    const int baseline_sockets = count_of(cold, "socket");
    CHECK(passgate.metric({"process_max_fds"}) == limit);

    // Three times more connections than passgate has descriptors: each sends its hello and
    // stays open. Those passgate accepts hold two descriptors (client, backend) when the backend
    // connect gets one; the rest wait in the listen backlog.
    const int attempted = 3 * limit;
    std::vector<Socket> clients;
    for (int i = 0; i < attempted; ++i) {
        clients.push_back(connect_to(port));
        REQUIRE(clients.back());
        ::send(clients.back().get(), any_hello().data(), any_hello().size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    REQUIRE(wait_until([&] { return total_fds(open_fds(passgate.pid())) >= limit - 2; }, Millis(5000)));
    std::this_thread::sleep_for(Millis(300));

    // Exhausted for 2 s: a spinning acceptor would burn most of a core (about 2 s of CPU);
    // the back-off (10 ms doubling to 1 s) needs next to none. 0.3 s is a generous bound.
    const double cpu_before = cpu_seconds(passgate.pid());
    std::this_thread::sleep_for(Millis(2000));
    const double cpu_used = cpu_seconds(passgate.pid()) - cpu_before;
    const std::map<std::string, int> exhausted = open_fds(passgate.pid());
    INFO("passgate's descriptors while exhausted: " << describe_fds(exhausted) << "; CPU over 2 s: " << cpu_used << " s");
    CHECK(total_fds(exhausted) >= limit - 2);
    CHECK(cpu_used >= 0);
    CHECK(cpu_used < 0.3);

    // The clients go away: passgate accepts again and serves a new client.
    clients.clear();
    std::string problem = "never tried";
    const bool recovered = wait_until([&] {
        problem = echo_round_trip(port, any_hello(), {'b', 'a', 'c', 'k'}, Millis(2000));
        return problem.empty();
    }, Millis(15000), Millis(100));
    // One read of stderr: the file grows while passgate runs (its log writer is a thread).
    const std::string stderr_so_far = passgate.stderr_text();
    INFO("sanitizer or assert report (head):\n" << sanitizer_report(stderr_so_far));
    INFO("last attempt: " << problem << "\npassgate stderr (tail):\n"
                          << stderr_so_far.substr(stderr_so_far.size() > 4000 ? stderr_so_far.size() - 4000 : 0));
    CHECK(recovered);
    CHECK(sockets_back_to(passgate, baseline_sockets, Millis(10000)));
    // The failed accepts are visible: counted per worker and logged.
    CHECK(passgate.metric({"passgate_worker_accept_errors_total"}).value_or(0) >= 1);
    CHECK(passgate.wait_for_log("accept failed: Too many open files (backing off)"));
    // The backend connects that failed with EMFILE were passgate's shortage, not the endpoint's:
    // no connect failure counted against it, no ejection (closed out_of_resources instead).
    CHECK(passgate.metric({"passgate_upstream_connect_failures_total"}).value_or(0) == 0);
    CHECK(passgate.metric({"passgate_endpoint_ejections_total"}).value_or(0) == 0);
    WARN("fd exhaustion: CPU " << cpu_used << " s over 2 s exhausted; closed out_of_resources: "
         << closed_with(passgate, "tls", "out_of_resources") << ", completed: " << closed_with(passgate, "tls", "completed")
         << ", client_closed: " << closed_with(passgate, "tls", "client_closed"));
    // stop_and_check, but with the sanitizer's own out-of-descriptors reports left out.
    const int status = passgate.stop(Millis(5000));
    const std::string log = passgate.stderr_text();
    const std::string report = sanitizer_report(without_unreadable_vptr_reports(log));
    INFO("sanitizer report:\n" << report);
    CHECK(status == 0);
    CHECK(report.empty());
}

// ---- Out of pipe pages --------------------------------------------------------------------------

namespace {

constexpr const char* pipe_soft_path = "/proc/sys/fs/pipe-user-pages-soft";

// Sets fs.pipe-user-pages-soft for the scope, and restores the old value.
class PipePagesSoft {
public:
    explicit PipePagesSoft(long pages) {
        old_ = read_file(pipe_soft_path);
        std::ofstream out(pipe_soft_path);
        out << pages << '\n';
        out.flush();
        ok_ = static_cast<bool>(out);
    }
    ~PipePagesSoft() {
        std::ofstream out(pipe_soft_path);
        out << old_;
    }
    bool ok() const { return ok_; }
    const std::string& old_value() const { return old_; }

private:
    std::string old_;
    bool ok_ = false;
};

// The sizes (F_GETPIPE_SZ) of the pipes open in process `pid`, through /proc/PID/fd (opened
// read-only and non-blocking: that reads nothing and ends at once).
std::map<int, int> pipe_sizes(pid_t pid) {
    std::map<int, int> sizes;
    const std::filesystem::path directory = "/proc/" + std::to_string(pid) + "/fd";
    std::error_code error;
    int seen = 0;
    for (std::filesystem::directory_iterator it(directory, error);
         !error && it != std::filesystem::directory_iterator() && seen < 100000; it.increment(error), ++seen) {
        const std::string target = std::filesystem::read_symlink(it->path(), error).string();
        if (error || target.rfind("pipe:", 0) != 0) {
            error.clear();
            continue;
        }
        const int fd = ::open(it->path().c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        ++sizes[::fcntl(fd, F_GETPIPE_SZ)];
        ::close(fd);
    }
    return sizes;
}

// A uid and gid no one else uses here, so that the pipe pages counted against it are passgate's.
constexpr int pipe_test_uid = 64999;

}  // namespace

TEST_CASE("faults: an unprivileged passgate over fs.pipe-user-pages-soft keeps every connection byte-exact",
          "[integration][faults][pipes]") {
    if (::geteuid() != 0) {
        WARN("skipped: needs root to run passgate as another user through setpriv");
        return;
    }
    // 64 pages: one 256 KiB pipe. Forty bulk connections want up to 80 pipes.
    PipePagesSoft soft(64);
    if (!soft.ok()) {
        WARN("skipped: " << pipe_soft_path << " is not writable here");
        return;
    }
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);  // the unprivileged passgate reads its config there
    const Deadline deadline = deadline_in(Millis(120000));
    TcpServer backend([&](int fd, std::size_t) { checksum_backend(fd, deadline); });
    const std::uint16_t port = free_port();
    const std::string id = std::to_string(pipe_test_uid);
    Passgate passgate(dir, {transfer_config(port, backend.port()), {}, 2}, "passgate",
                      PassgateLaunch{{"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups",
                                      "--inh-caps=-all", "--bounding-set=-all"}, false});
    REQUIRE(passgate.wait_ready());

    constexpr int connections = 40;
    const LoadResult load = run_load(port, {connections, Millis(90000)});
    check_load(load, connections);
    INFO("passgate stderr:\n" << passgate.stderr_text());
    CHECK(passgate.failed_connection_lines().empty());
    CHECK(closed_with(passgate, "tls", "completed") == connections);
    CHECK(closed_with(passgate, "tls", "out_of_resources") == 0);
    // Evidence that the limit was reached: pooled pipes the kernel kept small (under 256 KiB).
    const std::map<int, int> sizes = pipe_sizes(passgate.pid());
    std::ostringstream described;
    int small = 0;
    for (const auto& [size, count] : sizes) {
        described << count << " x " << size << " B; ";
        if (size < (256 << 10)) small += count;
    }
    INFO("pooled pipe ends by size: " << described.str());
    CHECK(small > 0);
    WARN("pipe exhaustion (pipe-user-pages-soft 64, was " << soft.old_value().substr(0, soft.old_value().find('\n'))
         << "): " << load.succeeded << "/" << connections << " byte-exact; pooled pipe ends by size: " << described.str());
    backend.stop();
    stop_and_check(passgate);
}

// ---- max_connections: memory stays bounded ------------------------------------------------------

namespace {

// The start of a ClientHello that declares a 60000-byte handshake message and sends `records`
// full 16 KiB records of it: never complete, so passgate keeps every byte until the timeout.
std::vector<std::uint8_t> partial_big_hello(int records) {
    std::vector<std::uint8_t> bytes;
    for (int record = 0; record < records; ++record) {
        bytes.insert(bytes.end(), {0x16, 0x03, 0x01, 0x40, 0x00});  // handshake, 16384 bytes
        std::vector<std::uint8_t> body(16384, 0x41);
        if (record == 0) {
            body[0] = 0x01;  // client_hello, length 60000 (0x00ea60)
            body[1] = 0x00;
            body[2] = 0xea;
            body[3] = 0x60;
        }
        bytes.insert(bytes.end(), body.begin(), body.end());
    }
    return bytes;
}

}  // namespace

TEST_CASE("faults: 2000 connections against max_connections = 50 keep passgate's memory bounded",
          "[integration][faults][limits]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    constexpr int limit = 50;
    const std::string limits = "client_hello_timeout = \"60s\"\nmax_connections = " + std::to_string(limit) + "\n";
    Passgate passgate(dir, {echo_config(port, backend.port(), limits), {}, 1});  // one worker: the limit is exact
    REQUIRE(passgate.wait_ready());
    // Warm up (allocator arenas, the access log) before the baseline.
    for (int i = 0; i < 5; ++i) CHECK(echo_round_trip(port, any_hello(), {'w'}).empty());
    std::this_thread::sleep_for(Millis(200));
    const long baseline = rss_kib(passgate.pid());
    REQUIRE(baseline > 0);

    // Every attempt sends 48 KiB of a hello that never completes. Admitted, each would hold
    // its 48 KiB in passgate until client_hello_timeout: 2000 of them would be about 94 MiB.
    const std::vector<std::uint8_t> pending = partial_big_hello(3);
    constexpr int attempted = 2000;
    std::vector<Socket> clients;
    for (int i = 0; i < attempted; ++i) {
        clients.push_back(connect_to(port));
        REQUIRE(clients.back());
        // Refused ones are closed at once: their sends may fail, which is fine.
        ::send(clients.back().get(), pending.data(), pending.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    const bool all_seen = wait_until([&] {
        return labelled_sum(passgate, "passgate_downstream_connections_refused_total",
                            {"reason=\"listener_limit\""}) == attempted - limit;
    }, Millis(15000), Millis(100));
    std::this_thread::sleep_for(Millis(300));
    const long loaded = rss_kib(passgate.pid());
    const long growth = loaded - baseline;
    INFO("RSS " << baseline << " KiB before, " << loaded << " KiB with " << attempted << " attempted");
    CHECK(all_seen);
    CHECK(passgate.metric({"passgate_downstream_connections_active"}) == limit);
    // 50 admitted hellos of 48 KiB are about 2.4 MiB; 16 MiB leaves room for ASan's quarantine
    // and allocator slack, and is far below the ~94 MiB an unbounded passgate would hold.
    CHECK(growth < 16 * 1024);
    WARN("max_connections 50, " << attempted << " attempted with 48 KiB pending hellos: RSS +" << growth << " KiB");
    clients.clear();
    stop_and_check(passgate);
}

TEST_CASE("faults: 10,000 idle connections (no hello yet): memory per connection, and all served after",
          "[integration][faults][idle]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    // Idle before the hello: passgate holds one socket each (an idle connection after the hello
    // holds two, and 10,000 of those would pass the 20,000 descriptor limit of this machine;
    // perf/run's idle workload measures that case with 5,000).
    // 10,000 is more than the default cap derived from 20,000 descriptors (two per connection
    // once routed), and SO_REUSEPORT may spread them unevenly: each worker may hold them all.
    // defer_accept off: what is measured is passgate holding connections before their hello (with
    // the default, silent clients wait in the kernel instead).
    Passgate passgate(dir, {"[runtime]\nmax_connections_per_worker = 10000\n\n" +
                                echo_config(port, backend.port(), "client_hello_timeout = \"60s\"\ndefer_accept = false\n"),
                            {}, 2});
    REQUIRE(passgate.wait_ready());
    for (int i = 0; i < 5; ++i) CHECK(echo_round_trip(port, any_hello(), {'w'}).empty());
    std::this_thread::sleep_for(Millis(200));
    const long baseline = rss_kib(passgate.pid());
    REQUIRE(baseline > 0);

    constexpr int idle = 10000;
    std::vector<Socket> clients;
    clients.reserve(idle);
    for (int i = 0; i < idle; ++i) {
        clients.push_back(connect_to(port));
        REQUIRE(clients.back());
    }
    REQUIRE(wait_until([&] { return passgate.metric({"passgate_downstream_connections_active"}) == idle; },
                       Millis(15000), Millis(100)));
    std::this_thread::sleep_for(Millis(300));
    const long loaded = rss_kib(passgate.pid());
    const double per_connection = static_cast<double>(loaded - baseline) / idle;
    INFO("RSS " << baseline << " KiB before, " << loaded << " KiB with " << idle << " idle");
    // A pending connection is its ProxyConnection (a few hundred bytes) plus kernel socket memory
    // (not in RSS). 4 KiB leaves room for ASan's redzones; the plain build measures far less.
    CHECK(per_connection < 4.0);
    WARN(idle << " idle connections before the hello: RSS +" << (loaded - baseline) << " KiB, "
              << per_connection << " KiB per connection");
    // Good clients are still served while they wait.
    CHECK(echo_round_trip(port, any_hello(), {'o', 'k'}).empty());
    clients.clear();
    REQUIRE(wait_until([&] { return passgate.metric({"passgate_downstream_connections_active"}) == 0.0; },
                       Millis(15000), Millis(100)));
    stop_and_check(passgate);
}

// ---- Diagnostics to a stalled stderr (issue 13, item 4) -----------------------------------------

namespace {

// A FIFO as passgate's stderr, with a reader that never reads (a stalled journald): the test
// holds the read end open and fills the pipe on demand.
class StalledStderr {
public:
    explicit StalledStderr(const std::string& path) : path_(path) {
        REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
        reader_ = Socket(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        REQUIRE(reader_);
    }
    // Shrinks the pipe to one page and writes into it until it is full.
    void fill() {
        Socket writer(::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        REQUIRE(writer);
        ::fcntl(writer.get(), F_SETPIPE_SZ, 4096);  // may fail with bytes inside: then fill more
        const std::string junk(512, '#');
        for (int i = 0; i < 100000; ++i) {
            const ssize_t written = ::write(writer.get(), junk.data(), junk.size());
            if (written < 0) {
                REQUIRE(errno == EAGAIN);
                return;
            }
        }
        FAIL("the pipe never filled");
    }
    // Everything in the pipe now, until the writers are gone (call after passgate exited).
    std::string drain() {
        std::string text;
        char buffer[64 * 1024];
        for (int i = 0; i < 100000; ++i) {
            const ssize_t got = ::read(reader_.get(), buffer, sizeof buffer);
            if (got <= 0) break;
            text.append(buffer, static_cast<std::size_t>(got));
        }
        return text;
    }

private:
    std::string path_;
    Socket reader_;
};

// Listener "tls" to the echo backend, listener "dead" to three endpoints that refuse every
// connect, each failure an ejection (and a warning line from the worker).
std::string stalled_log_config(std::uint16_t port, std::uint16_t backend, std::uint16_t dead_port,
                               const std::vector<std::uint16_t>& refusing) {
    std::string endpoints;
    for (const std::uint16_t closed : refusing)
        endpoints += (endpoints.empty() ? "\"127.0.0.1:" : ", \"127.0.0.1:") + std::to_string(closed) + "\"";
    return "[access_log]\nenabled = false\n\n" + echo_config(port, backend) +
           "\n[[listener]]\nname = \"dead\"\naddress = \"127.0.0.1:" + std::to_string(dead_port) + "\"\n"
           "\n[[route]]\nname = \"dead\"\nlisteners = [\"dead\"]\nbackends = [ { service = \"dead\" } ]\n"
           "\n[[service]]\nname = \"dead\"\nendpoints = [" + endpoints + "]\nconnect_attempts = 3\n"
           "[service.outlier_detection]\nconsecutive_failures = 1\nbase_ejection_time = \"1ms\"\n"
           "max_ejection_time = \"1ms\"\n";
}

// A port on 127.0.0.1 that refuses connections (bound, not listening) while it lives.
struct RefusingPort {
    Socket socket;
    std::uint16_t port = 0;
    RefusingPort() {
        socket = Socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(socket);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        socklen_t length = sizeof address;
        REQUIRE(::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
        port = ntohs(address.sin_port);
    }
};

}  // namespace

TEST_CASE("faults: with stderr on a pipe nobody reads, endpoint ejections never stall the worker; "
          "the dropped lines are counted", "[integration][faults][log]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    const std::uint16_t dead_port = free_port();
    RefusingPort refusing[3];
    StalledStderr stalled(dir.file("stalled.err"));  // Passgate's stderr path for name "stalled"
    // One worker: a blocked worker would be every worker.
    Passgate passgate(dir, {stalled_log_config(port, backend.port(), dead_port,
                                               {refusing[0].port, refusing[1].port, refusing[2].port}),
                            {}, 1}, "stalled");
    REQUIRE(passgate.wait_ready());
    REQUIRE(echo_round_trip(port, any_hello(), {'u', 'p'}).empty());
    stalled.fill();

    // Clients of the dead listener in batches of 50: each costs up to three ejections (three
    // warning lines) on the worker, more than the log queue holds in all.
    double dropped = 0;
    int clients = 0;
    const Deadline deadline = deadline_in(Millis(60000));
    while (clients < 20000 && Clock::now() < deadline) {
        std::vector<Socket> batch;
        for (int i = 0; i < 50; ++i) {
            batch.push_back(connect_to(dead_port));
            REQUIRE(batch.back());
            ::send(batch.back().get(), any_hello().data(), any_hello().size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        clients += 50;
        // Each is closed by passgate after its connect attempts: a stalled worker closes none.
        for (Socket& client : batch) {
            char byte = 0;
            const auto got = recv_some(client.get(), &byte, 1, deadline_in(Millis(5000)));
            INFO("client " << clients << " of the dead listener");
            const bool closed = (got && *got == 0) || (!got && errno == ECONNRESET);
            REQUIRE(closed);
        }
        if (clients % 1000 == 0) {
            dropped = passgate.metric({"passgate_log_lines_dropped_total"}).value_or(0);
            if (dropped > 0) break;
        }
    }
    // The worker still serves: a good client through it, byte for byte.
    CHECK(echo_round_trip(port, any_hello(), {'s', 't', 'i', 'l', 'l'}, Millis(3000)).empty());
    CHECK(dropped > 0);
    WARN("stalled stderr: " << clients << " clients of a dead service, "
         << passgate.metric({"passgate_endpoint_ejections_total"}).value_or(0) << " ejections, "
         << dropped << " log lines dropped; the worker kept serving");

    // SIGTERM: the log writer gives up on the stalled pipe after its flush timeout (1 s).
    const int status = passgate.stop(Millis(5000));
    CHECK(status == 0);
    const std::string report = sanitizer_report(stalled.drain());
    INFO("sanitizer report:\n" << report);
    CHECK(report.empty());
}

// ---- Default bounds (issue 13, item 9) ----------------------------------------------------------

TEST_CASE("faults: passgate raises its soft descriptor limit to the hard limit and logs it",
          "[integration][faults][fds]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {echo_config(port, backend.port()), {}, 1}, "passgate",
                      PassgateLaunch{{"prlimit", "--nofile=256:4096"}, true});
    REQUIRE(passgate.wait_ready());
    CHECK(passgate.wait_for_log("file descriptor limit: soft limit raised from 256 to 4096 (hard 4096)"));
    CHECK(passgate.metric({"process_max_fds"}) == 4096);
    // The derived per-worker cap: (4096 - 128 - 256 admin - 2 * 64 pipes) / 2 = 1792.
    CHECK(passgate.wait_for_log("connections per worker: at most 1792 (derived from the descriptor limit"));
    stop_and_check(passgate);
}

TEST_CASE("faults: the default connection cap (from the descriptor limit) refuses excess slow hellos; "
          "the admin port and good clients are still served", "[integration][faults][fds]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    // Hard limit 600: the cap is max(16, (600 - 128 - 256 - 128) / 2) = 44 connections.
    constexpr int cap = 44;
    constexpr int limit = 600;
    Passgate passgate(dir, {echo_config(port, backend.port(), "client_hello_timeout = \"5s\"\n"), {}, 1},
                      "passgate", exhausted_descriptors_launch(limit, limit));
    REQUIRE(passgate.wait_ready());
    CHECK(passgate.wait_for_log("connections per worker: at most 44 "));

    // Far more slow-hello clients than passgate has descriptors: each sends half a hello.
    const std::vector<std::uint8_t>& hello = any_hello();
    const std::vector<std::uint8_t> half(hello.begin(), hello.begin() + static_cast<std::ptrdiff_t>(hello.size() / 2));
    constexpr int attempted = 800;
    std::vector<Socket> slow;
    for (int i = 0; i < attempted; ++i) {
        slow.push_back(connect_to(port));
        REQUIRE(slow.back());
        ::send(slow.back().get(), half.data(), half.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    const double refused_expected = attempted - cap;
    const bool counted = wait_until([&] {
        return labelled_sum(passgate, "passgate_downstream_connections_refused_total",
                            {"reason=\"worker_limit\""}) >= refused_expected;
    }, Millis(10000), Millis(100));
    CHECK(counted);
    // Nowhere near out of descriptors: the admin port answers, no accept failed.
    const auto health = http_get(passgate.admin_port(), "/healthz", Millis(1000));
    CHECK((health && health->status == 200));
    {
        // Refusing at the cap means accept, then close. A burst that piled up in the backlog
        // (800 connects while the worker was off the CPU) is taken by one multishot accept, so
        // for a moment it can hold more descriptors than the cap's reserve: EMFILE, the acceptor
        // backs off and recovers (seen once in a full suite run). Anything else is a failure.
        const std::vector<std::string> accept_failures = passgate.log_lines_with({"accept failed"});
        INFO("accept failures logged: " << accept_failures.size()
                                        << (accept_failures.empty() ? "" : ", first: " + accept_failures.front()));
        for (const std::string& line : accept_failures)
            CHECK(line.find("accept failed: Too many open files (backing off)") != std::string::npos);
        const double accept_errors = passgate.metric({"passgate_worker_accept_errors_total"}).value_or(-1);
        CHECK(accept_errors >= 0);
        CHECK((accept_errors == 0 || !accept_failures.empty()));
    }
    CHECK(passgate.metric({"passgate_downstream_connections_active"}) == cap);
    // Once the slow ones time out (client_hello_timeout 5 s), good clients are served again.
    std::string problem = "never tried";
    CHECK(wait_until([&] {
        problem = echo_round_trip(port, any_hello(), {'o', 'k'}, Millis(2000));
        return problem.empty();
    }, Millis(15000), Millis(100)));
    INFO(problem);
    slow.clear();
    // stop_and_check, but with the sanitizer's own out-of-descriptors reports left out.
    const int status = passgate.stop(Millis(5000));
    const std::string report = sanitizer_report(without_unreadable_vptr_reports(passgate.stderr_text()));
    INFO("sanitizer report:\n" << report);
    CHECK(status == 0);
    CHECK(report.empty());
}

// [runtime] pause_accepting_at: HAProxy's maxconn behaviour. Past the bound new connections wait in
// the kernel's listen queue instead of being accepted and refused; each is served once the worker
// holds half as many. One worker, a bound of 4, 10 clients.
TEST_CASE("faults: pause_accepting_at leaves connections past it in the listen queue; none is refused, all "
          "are served in turn", "[integration][faults][pause]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {"[runtime]\npause_accepting_at = 4\n\n" + echo_config(port, backend.port()), {}, 1});
    REQUIRE(passgate.wait_ready());
    CHECK(passgate.metric({"passgate_worker_accept_pauses_total"}) == 0);
    auto accepted = [&] { return passgate.metric({"passgate_worker_accepted_total"}).value_or(-1); };
    auto pauses = [&] { return passgate.metric({"passgate_worker_accept_pauses_total"}).value_or(-1); };
    // The echo backend sends the hello back first, then the text: both, byte for byte.
    auto served = [&](int fd, const std::string& text) {
        std::vector<std::uint8_t> echoed(any_hello().size());
        if (!recv_exact(fd, echoed.data(), echoed.size(), deadline_in(Millis(3000)))) return std::string("no hello echoed");
        if (echoed != any_hello()) return std::string("hello echo differs");
        return echo_check(fd, text);
    };

    // Four clients are accepted and proxied; the fourth pauses accepting.
    std::vector<Socket> clients;
    for (int i = 0; i < 4; ++i) {
        clients.push_back(connect_to(port));
        REQUIRE(clients.back());
        REQUIRE(send_all(clients.back().get(), any_hello(), deadline_in(Millis(2000))));
        CHECK(served(clients.back().get(), "held " + std::to_string(i)).empty());
    }
    CHECK(wait_until([&] { return pauses() == 1; }, Millis(2000)));
    // Six more connect (the kernel completes their handshakes) and send their hellos: none is
    // taken. A bounded look (300 ms) at something that must not happen.
    for (int i = 4; i < 10; ++i) {
        clients.push_back(connect_to(port));
        REQUIRE(clients.back());
        REQUIRE(send_all(clients.back().get(), any_hello(), deadline_in(Millis(2000))));
    }
    std::this_thread::sleep_for(Millis(300));
    CHECK(accepted() == 4);
    CHECK(passgate.metric({"passgate_downstream_connections_active"}) == 4);

    // Closing two of the held ones brings the worker to half: it accepts the next two in queue
    // order (clients 4 and 5), then pauses again at four.
    clients[0].reset();
    clients[1].reset();
    CHECK(wait_until([&] { return accepted() == 6 && pauses() == 2; }, Millis(5000)));
    std::this_thread::sleep_for(Millis(100));
    CHECK(accepted() == 6);
    CHECK(served(clients[4].get(), "late 4").empty());
    CHECK(served(clients[5].get(), "late 5").empty());
    // The rest, two at a time: every client is served, byte for byte, and nothing is refused.
    for (std::size_t next = 6; next < 10; next += 2) {
        clients[next - 4].reset();
        clients[next - 3].reset();
        CHECK(served(clients[next].get(), "late " + std::to_string(next)).empty());
        CHECK(served(clients[next + 1].get(), "late " + std::to_string(next + 1)).empty());
    }
    CHECK(accepted() == 10);
    CHECK(labelled_sum(passgate, "passgate_downstream_connections_refused_total", {}) == 0);
    clients.clear();
    stop_and_check(passgate);
}

TEST_CASE("faults: slow hellos over the default max_hello_memory are refused; good clients are served "
          "meanwhile", "[integration][faults][limits]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {echo_config(port, backend.port(), "client_hello_timeout = \"30s\"\n"), {}, 1});
    REQUIRE(passgate.wait_ready());

    // Each sends 48 KiB of a hello that never completes: its buffer grows to 64 KiB. The default
    // budget (64 MiB) holds about 1000 of them; 1300 try.
    const std::vector<std::uint8_t> pending = partial_big_hello(3);
    constexpr int attempted = 1300;
    std::vector<Socket> clients;
    for (int i = 0; i < attempted; ++i) {
        clients.push_back(connect_to(port));
        REQUIRE(clients.back());
        ::send(clients.back().get(), pending.data(), pending.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    const bool refused = wait_until([&] {
        return labelled_sum(passgate, "passgate_downstream_connections_refused_total",
                            {"reason=\"hello_memory_limit\""}) >= 200;
    }, Millis(15000), Millis(100));
    const double held = passgate.metric({"passgate_hello_memory_bytes"}).value_or(-1);
    INFO("hello memory held: " << held);
    CHECK(refused);
    CHECK(held <= 64.0 * 1024 * 1024 * 9 / 8);
    CHECK(held >= 60.0 * 1024 * 1024);
    // Good clients (ordinary hellos) still get through: small hellos have a reserve.
    for (int i = 0; i < 10; ++i) CHECK(echo_round_trip(port, any_hello(), {'g', 'o', 'o', 'd'}).empty());
    WARN("max_hello_memory 64 MiB: " << attempted << " clients with 48 KiB pending hellos, "
         << labelled_sum(passgate, "passgate_downstream_connections_refused_total", {"reason=\"hello_memory_limit\""})
         << " refused, " << held << " bytes held");
    clients.clear();
    stop_and_check(passgate);
}
