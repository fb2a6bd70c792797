// The binary upgrade (SIGUSR2, `passgate upgrade --config FILE`, admin POST/GET /upgrade): the
// running process is started from a copy of the binary in the test's directory; the test replaces
// that file the way a package manager does (a temporary file renamed over it) with a second build
// that says another version ($PASSGATE_NEXT_BINARY, "<version>+next"), or with a script that fails
// or never gets ready, and triggers the upgrade.
//
// The new process is a child of the old one. This test process makes itself a child subreaper, so
// that the new process becomes its child when the old one exits: its exit status can be read and
// it is always killed at the end (UpgradedProcess). The old process is the harness's child
// (Passgate), which reads its exit status.
//
// Which process served a connection: the socket inode of passgate's end of it (/proc/net/tcp, by
// the two ports) found among /proc/PID/fd of the old or the new process.

#include "tests/support/backends.h"
#include "tests/support/checksum_load.h"  // corpus_hellos()
#include "tests/support/net.h"
#include "tests/support/paced_streams.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

using namespace integration;

namespace {

std::string next_binary() { return required_env("PASSGATE_NEXT_BINARY"); }

std::string joined(const std::vector<std::string>& lines, std::size_t limit = 10) {
    std::string text;
    for (std::size_t i = 0; i < lines.size() && i < limit; ++i) text += lines[i] + "\n";
    if (lines.size() > limit) text += "... (" + std::to_string(lines.size() - limit) + " more)\n";
    return text;
}

// Joins the threads it watches when it goes out of scope (a failed REQUIRE included); each of them
// ends by its own deadline.
class JoinAll {
public:
    explicit JoinAll(std::vector<std::thread>& threads) : threads_(threads) {}
    ~JoinAll() { join(); }
    JoinAll(const JoinAll&) = delete;
    JoinAll& operator=(const JoinAll&) = delete;
    void join() {
        for (std::thread& thread : threads_)
            if (thread.joinable()) thread.join();
    }

private:
    std::vector<std::thread>& threads_;
};

std::string tail(const std::string& text, std::size_t size = 6000) {
    return text.size() > size ? text.substr(text.size() - size) : text;
}

// Orphans in this process's subtree (the new process, once the old one has exited) become its
// children, so that the test can reap them and read their exit status.
void become_subreaper() { REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0); }

// The installed binary: a copy of $PASSGATE_BINARY at DIR/passgate, replaced as a package manager
// replaces it: the new content goes into a temporary file in the same directory, renamed over it
// (the running process keeps its own, now unlinked, file).
class InstalledBinary {
public:
    explicit InstalledBinary(const TempDir& dir) : path_(dir.file("passgate")) { install(passgate_binary()); }
    const std::string& path() const { return path_; }

    void install(const std::string& source) {
        const std::string temporary = path_ + ".dpkg-new";
        std::filesystem::copy_file(source, temporary, std::filesystem::copy_options::overwrite_existing);
        replace_with(temporary);
    }
    void install_script(const std::string& text) {
        const std::string temporary = path_ + ".dpkg-new";
        write_file(temporary, text);
        replace_with(temporary);
    }

private:
    void replace_with(const std::string& temporary) {
        using std::filesystem::perms;
        std::filesystem::permissions(temporary, perms::owner_all | perms::group_read | perms::group_exec |
                                                    perms::others_read | perms::others_exec);
        std::filesystem::rename(temporary, path_);
    }

    std::string path_;
};

// GET /upgrade, parsed.
struct UpgradeStatus {
    pid_t pid = 0;
    std::string version;
    std::string state;
    pid_t upgraded_from = 0;
    pid_t last_new_pid = 0;
    std::string last_result;
    std::string last_reason;
    std::string text;
};

std::optional<UpgradeStatus> upgrade_status(std::uint16_t admin_port) {
    const auto response = http_get(admin_port, "/upgrade", Millis(1000));
    if (!response || response->status != 200) return std::nullopt;
    UpgradeStatus status;
    status.text = response->body;
    std::istringstream in(response->body);
    std::string line;
    for (int count = 0; count < 100 && std::getline(in, line); ++count) {
        const std::size_t colon = line.find(": ");
        if (colon == std::string::npos) continue;
        const std::string key = line.substr(0, colon);
        const std::string value = line.substr(colon + 2);
        if (key == "pid") status.pid = std::atoi(value.c_str());
        if (key == "version") status.version = value;
        if (key == "state") status.state = value;
        if (key == "upgraded_from") status.upgraded_from = std::atoi(value.c_str());
        if (key == "last_new_pid") status.last_new_pid = std::atoi(value.c_str());
        if (key == "last_result") status.last_result = value;
        if (key == "last_reason") status.last_reason = value;
    }
    return status;
}

// Polls GET /upgrade (every 10 ms, up to `timeout`) until `done` says yes; the last answer.
std::optional<UpgradeStatus> wait_for_status(std::uint16_t admin_port,
                                             const std::function<bool(const UpgradeStatus&)>& done,
                                             Millis timeout = Millis(30000)) {
    std::optional<UpgradeStatus> last;
    wait_until(
        [&] {
            const auto status = upgrade_status(admin_port);
            if (status) last = status;
            return status && done(*status);
        },
        timeout);
    return last;
}

// POST /upgrade from 127.0.0.1.
std::optional<HttpResponse> post_upgrade(std::uint16_t admin_port) {
    const Deadline deadline = deadline_in(Millis(3000));
    Socket socket = connect_to(admin_port);
    if (!socket) return std::nullopt;
    const std::string request = "POST /upgrade HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                                "Connection: close\r\n\r\n";
    if (!send_all(socket.get(), request.data(), request.size(), deadline)) return std::nullopt;
    std::string answer;
    char buffer[4096];
    for (int round = 0; round < 1000; ++round) {
        const std::optional<std::size_t> got = recv_some(socket.get(), buffer, sizeof buffer, deadline);
        if (!got) return std::nullopt;
        if (*got == 0) break;
        answer.append(buffer, *got);
    }
    const std::size_t space = answer.find(' ');
    const std::size_t body = answer.find("\r\n\r\n");
    if (answer.rfind("HTTP/1.", 0) != 0 || space == std::string::npos || body == std::string::npos)
        return std::nullopt;
    return HttpResponse{std::atoi(answer.c_str() + space + 1), answer.substr(body + 4)};
}

// `passgate upgrade --config FILE`, run with the test's own binary (the installed file may be a
// failing script).
RunResult upgrade_cli(const TempDir& dir, const Passgate& passgate, const std::string& name) {
    return run({passgate_binary(), "upgrade", "--config", passgate.config_path()}, dir, name, Millis(60000));
}

// The new pid in the CLI's "upgraded: pid OLD -> NEW (VERSION)", or 0.
pid_t upgraded_pid(const RunResult& result, pid_t old_pid) {
    const std::regex pattern("upgraded: pid " + std::to_string(old_pid) + " -> ([0-9]+) \\(([^)]*)\\)");
    std::smatch match;
    const std::string text = result.out + result.err;
    if (!std::regex_search(text, match, pattern)) return 0;
    return std::atoi(match[1].str().c_str());
}

// The process an upgrade started. Not the test's child while the old process lives; its child
// (subreaper) once the old one has exited. Killed (SIGKILL) at the end if still there.
class UpgradedProcess {
public:
    explicit UpgradedProcess(pid_t pid) : pid_(pid) {}
    ~UpgradedProcess() {
        if (pid_ <= 0 || status_) return;
        ::kill(pid_, SIGKILL);
        wait_exit(Millis(5000));
    }
    UpgradedProcess(const UpgradedProcess&) = delete;
    UpgradedProcess& operator=(const UpgradedProcess&) = delete;

    pid_t pid() const { return pid_; }
    // The exit status (code, or 128 + signal) once it has exited and been reaped here; nullopt
    // when it is still running after `timeout`, or was reaped by another process.
    std::optional<int> wait_exit(Millis timeout) {
        wait_until(
            [this] {
                int status = 0;
                const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
                if (reaped == pid_) {
                    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                    return true;
                }
                // ECHILD: still the old process's child (or reaped by it; then it is gone).
                return reaped < 0 && errno == ECHILD && ::kill(pid_, 0) != 0 && errno == ESRCH;
            },
            timeout, Millis(5));
        return status_;
    }
    // SIGTERM, then SIGKILL after `grace`. The exit status, or -1 when it had to be killed.
    int terminate(Millis grace = Millis(5000)) {
        ::kill(pid_, SIGTERM);
        if (const auto status = wait_exit(grace)) return *status;
        ::kill(pid_, SIGKILL);
        wait_exit(Millis(5000));
        return -1;
    }

private:
    pid_t pid_;
    std::optional<int> status_;
};

// The process, among `candidates`, that holds passgate's end of the client connection `fd` to
// 127.0.0.1:listen_port; 0 when none does.
pid_t serving_process(int fd, std::uint16_t listen_port, const std::vector<pid_t>& candidates) {
    sockaddr_in local{};
    socklen_t length = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0) return 0;
    const unsigned client_port = ntohs(local.sin_port);
    // /proc/net/tcp: "sl local_address rem_address st ... uid timeout inode", ports in hex.
    std::ifstream table("/proc/net/tcp");
    std::string line;
    std::string inode;
    for (int count = 0; count < 1000000 && std::getline(table, line); ++count) {
        std::istringstream fields(line);
        std::string slot, local_address, remote_address, field;
        fields >> slot >> local_address >> remote_address;
        const std::size_t local_colon = local_address.find(':');
        const std::size_t remote_colon = remote_address.find(':');
        if (local_colon == std::string::npos || remote_colon == std::string::npos) continue;
        if (std::stoul(local_address.substr(local_colon + 1), nullptr, 16) != listen_port ||
            std::stoul(remote_address.substr(remote_colon + 1), nullptr, 16) != client_port)
            continue;
        for (int skip = 0; skip < 6 && fields >> field; ++skip) {}  // st, queues, timer, retransmits, uid, timeout
        fields >> inode;
        if (inode != "0") break;  // 0: a closed connection with the same ports (TIME_WAIT)
        inode.clear();
    }
    if (inode.empty()) return 0;
    const std::string target = "socket:[" + inode + "]";
    for (const pid_t pid : candidates) {
        std::error_code error;
        for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", error)) {
            std::error_code link_error;
            if (std::filesystem::read_symlink(entry.path(), link_error).string() == target) return pid;
        }
    }
    return 0;
}

// ---- Load ---------------------------------------------------------------------------------------
//
// Echo connections (the short connections, the request/response connections and the probes that
// find out which process served them) and long checksummed streams: tests/support/paced_streams.h.

class LoadBackend {
public:
    LoadBackend() : server_([this](int fd, std::size_t) { streams_.serve(fd); }) {}
    ~LoadBackend() { stop(); }

    std::uint16_t port() const { return server_.port(); }
    int streams_started() const { return streams_.streams_started(); }
    void stop() { server_.stop(); }
    std::map<std::uint64_t, StreamRecord> records() { return streams_.records(); }

private:
    PacedStreamBackend streams_;
    TcpServer server_;  // last: its threads use streams_
};

const std::vector<std::uint8_t>& hello_for(std::size_t index) {
    return corpus_hellos()[index % corpus_hellos().size()]->bytes;
}

// Opens an echo connection (hello and magic sent and echoed back); an invalid Socket on failure.
Socket open_echo(std::uint16_t port, std::size_t hello_index, Deadline deadline, std::string& problem) {
    Socket socket = connect_to(port);
    if (!socket) {
        problem = std::string("connect failed: ") + std::strerror(errno);
        return Socket();
    }
    std::vector<std::uint8_t> sent = hello_for(hello_index);
    const auto* magic = reinterpret_cast<const std::uint8_t*>(&echo_magic);
    sent.insert(sent.end(), magic, magic + sizeof echo_magic);
    std::vector<std::uint8_t> echoed(sent.size());
    if (!send_all(socket.get(), sent, deadline) || !recv_exact(socket.get(), echoed.data(), echoed.size(), deadline)) {
        problem = std::string("no echo of the hello: ") + std::strerror(errno);
        return Socket();
    }
    if (echoed != sent) {
        problem = "hello echo differs";
        return Socket();
    }
    return socket;
}

// Which process (old or new) serves a connection opened now; 0 when it failed or neither holds it.
pid_t probe_server(std::uint16_t port, const std::vector<pid_t>& candidates) {
    std::string problem;
    Socket socket = open_echo(port, 0, deadline_in(Millis(3000)), problem);
    if (!socket) return 0;
    return serving_process(socket.get(), port, candidates);
}

// Threads of connections through passgate until stopped (at most 2 minutes), each failure recorded
// with the time it happened (ms since the load began).
class Load {
public:
    explicit Load(std::uint16_t port) : port_(port), start_(Clock::now()) {}
    ~Load() { stop(); }
    Load(const Load&) = delete;
    Load& operator=(const Load&) = delete;

    // conn: `clients` threads of short connections (connect, hello, 64 bytes echoed, half-close,
    // the backend's EOF, close), 3 ms apart.
    void start_short(int clients) {
        for (int client = 0; client < clients; ++client)
            threads_.emplace_back([this, client] {
                ByteStream bytes(0xabc0 + static_cast<std::uint64_t>(client));
                const Deadline end = deadline_in(Millis(120000));
                for (int round = 0; round < 40000 && !stop_.load() && Clock::now() < end; ++round) {
                    std::vector<std::uint8_t> payload(8 + 64);
                    std::memcpy(payload.data(), &echo_magic, sizeof echo_magic);
                    bytes.fill(payload.data() + 8, 64);
                    const std::string began = since_start();
                    const std::string problem = echo_round_trip(
                        port_, hello_for(static_cast<std::size_t>(round + client)), payload, Millis(5000));
                    if (problem.empty()) ++short_ok_;
                    else fail("short client " + std::to_string(client) + " round " + std::to_string(round) +
                              ", started at " + began + ": " + problem);
                    std::this_thread::sleep_for(Millis(3));  // a steady stream, not a flood
                }
            });
    }

    // rr: `clients` long connections, each 64-byte requests echoed one at a time, 2 ms apart; each
    // connection lasts `lifetime`, then the client half-closes, waits for the EOF and opens the
    // next one.
    void start_rr(int clients, Millis lifetime) {
        for (int client = 0; client < clients; ++client)
            threads_.emplace_back([this, client, lifetime] {
                ByteStream bytes(0x7272 + static_cast<std::uint64_t>(client));
                const Deadline end = deadline_in(Millis(120000));
                for (int connection = 0; connection < 1000 && !stop_.load() && Clock::now() < end; ++connection)
                    rr_connection(client, connection, bytes, lifetime);
            });
    }

    // The admin port: GET /healthz every 10 ms (it moves to the new process without a gap).
    void start_admin(std::uint16_t admin_port) {
        threads_.emplace_back([this, admin_port] {
            const Deadline end = deadline_in(Millis(120000));
            for (int round = 0; round < 20000 && !stop_.load() && Clock::now() < end; ++round) {
                const std::string began = since_start();
                const auto response = http_get(admin_port, "/healthz", Millis(3000));
                if (response && response->status == 200) ++admin_ok_;
                else fail("GET /healthz started at " + began + ": " +
                          (response ? "status " + std::to_string(response->status) : std::string("no answer")));
                std::this_thread::sleep_for(Millis(10));
            }
        });
    }

    void stop() {
        stop_ = true;
        for (std::thread& thread : threads_)
            if (thread.joinable()) thread.join();
    }
    int short_ok() const { return short_ok_.load(); }
    int admin_ok() const { return admin_ok_.load(); }
    int rr_transactions() const { return rr_transactions_.load(); }
    int rr_connections() const { return rr_connections_.load(); }
    std::vector<std::string> failures() {
        std::lock_guard lock(mutex_);
        return failures_;
    }
    std::string since_start() const {
        return std::to_string(std::chrono::duration_cast<Millis>(Clock::now() - start_).count()) + " ms";
    }

private:
    void rr_connection(int client, int connection, ByteStream& bytes, Millis lifetime) {
        const std::string where = "rr client " + std::to_string(client) + " connection " + std::to_string(connection);
        const std::string began = since_start();
        const Deadline deadline = deadline_in(lifetime + Millis(10000));
        std::string problem;
        Socket socket = open_echo(port_, static_cast<std::size_t>(client + connection), deadline, problem);
        if (!socket) return fail(where + ", started at " + began + ": " + problem);
        const Deadline until = deadline_in(lifetime);
        for (int round = 0; round < 100000 && !stop_.load() && Clock::now() < until; ++round) {
            std::uint8_t request[64], answer[64];
            bytes.fill(request, sizeof request);
            if (!send_all(socket.get(), request, sizeof request, deadline) ||
                !recv_exact(socket.get(), answer, sizeof answer, deadline))
                return fail(where + " round " + std::to_string(round) + ", at " + since_start() + ": " +
                            std::strerror(errno));
            if (std::memcmp(request, answer, sizeof request) != 0)
                return fail(where + " round " + std::to_string(round) + ": echo differs");
            ++rr_transactions_;
            std::this_thread::sleep_for(Millis(2));
        }
        std::uint8_t extra[16];
        if (::shutdown(socket.get(), SHUT_WR) != 0) return fail(where + ": shutdown failed");
        const std::optional<std::size_t> got = recv_some(socket.get(), extra, sizeof extra, deadline);
        if (!got || *got != 0) return fail(where + ": no clean EOF after the half-close, at " + since_start());
        ++rr_connections_;
    }

    void fail(const std::string& what) {
        std::lock_guard lock(mutex_);
        failures_.push_back(what);
    }

    std::uint16_t port_;
    Clock::time_point start_;
    std::atomic<bool> stop_{false};
    std::atomic<int> short_ok_{0};
    std::atomic<int> admin_ok_{0};
    std::atomic<int> rr_transactions_{0};
    std::atomic<int> rr_connections_{0};
    std::mutex mutex_;
    std::vector<std::string> failures_;
    std::vector<std::thread> threads_;
};

// One listener "tls" on 127.0.0.1:port, route "corpus" (*.corpus.test) to service "echo" at
// 127.0.0.1:backend, admin at "@ADMIN@", plus `runtime` lines under [runtime].
std::string load_config(std::uint16_t port, std::uint16_t backend, const std::string& runtime = "") {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[runtime]\nshutdown_timeout = \"20s\"\n" + runtime + "\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n"
           "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"*.corpus.test\"]\n"
           "backends = [ { service = \"echo\" } ]\n\n"
           "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend) + "\"]\n";
}

// Replaces the config file (a temporary file renamed over it) without signalling anyone.
void rewrite_config(const Passgate& passgate, const std::string& config) {
    const std::string temporary = passgate.config_path() + ".new";
    write_file(temporary, with_admin_address(passgate, config));
    std::filesystem::rename(temporary, passgate.config_path());
}

double upgrades(const Passgate& passgate, const std::string& result) {
    return metric_sample(passgate, "passgate_upgrades_total{result=\"" + result + "\"}").value_or(-1);
}

// The version label of passgate_build_info in /metrics, or "".
std::string build_info_version(const Passgate& passgate) {
    const auto response = http_get(passgate.admin_port(), "/metrics");
    if (!response || response->status != 200) return "";
    const std::regex pattern("passgate_build_info\\{[^}]*version=\"([^\"]*)\"");
    std::smatch match;
    return std::regex_search(response->body, match, pattern) ? match[1].str() : "";
}

std::string elapsed_since(Clock::time_point start) {
    return std::to_string(std::chrono::duration_cast<Millis>(Clock::now() - start).count()) + " ms";
}

// After an upgrade answered success at `success_at`: a connection opened no later than 1 s after it
// is served by `new_pid`, and so are the next 10.
void check_new_process_serves(std::uint16_t port, pid_t old_pid, pid_t new_pid, Clock::time_point success_at) {
    pid_t last = 0;
    const bool switched = wait_until(
        [&] {
            last = probe_server(port, {old_pid, new_pid});
            return last == new_pid;
        },
        std::max(Millis(1), std::chrono::duration_cast<Millis>(success_at + Millis(1000) - Clock::now())));
    INFO("last probe served by pid " << last << " (old " << old_pid << ", new " << new_pid << ")");
    CHECK(switched);
    int by_new = 0;
    for (int probe = 0; probe < 10; ++probe) by_new += probe_server(port, {old_pid, new_pid}) == new_pid;
    CHECK(by_new == 10);
}

}  // namespace

// ---- Upgrade under load ------------------------------------------------------------------------

TEST_CASE("upgrade under load: short, request/response and 8 checksummed 4 MiB streams survive; "
          "the new binary serves new connections within 1 s; the old one exits 0 after its last stream",
          "[integration][upgrade]") {
    const bool by_cli = GENERATE(false, true);
    INFO("trigger: " << (by_cli ? "passgate upgrade --config FILE" : "SIGUSR2"));
    REQUIRE(corpus_hellos().size() >= 5);
    become_subreaper();
    TempDir dir;
    LoadBackend backend;
    InstalledBinary binary(dir);
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {load_config(port, backend.port()), {}, 2}, "passgate", {}, binary.path());
    REQUIRE(passgate.wait_ready());
    const pid_t old_pid = passgate.pid();
    const auto before = upgrade_status(passgate.admin_port());
    REQUIRE(before);
    CHECK(before->pid == old_pid);
    CHECK(before->state == "idle");
    REQUIRE(!before->version.empty());
    CHECK(before->upgraded_from == 0);
    CHECK(build_info_version(passgate) == before->version);

    Load load(port);
    load.start_short(4);
    load.start_rr(4, Millis(1500));
    load.start_admin(passgate.admin_port());
    // 8 streams, 4 MiB each way, paced over 6 s: they span the upgrade.
    constexpr int streams = 8;
    const Millis pace(6000);
    const Deadline stream_deadline = deadline_in(Millis(40000));
    std::vector<StreamOutcome> outcomes(streams);
    std::vector<std::thread> stream_clients;
    for (int index = 0; index < streams; ++index)
        stream_clients.emplace_back([&, index] {
            const auto id = static_cast<std::uint64_t>(index);
            outcomes[static_cast<std::size_t>(index)] = run_stream(port, id, 4u << 20, 4u << 20, pace, stream_deadline);
        });
    JoinAll join_streams(stream_clients);
    // Every stream is established on the old process before the new binary is installed.
    REQUIRE(wait_until([&] { return backend.streams_started() == streams; }, Millis(5000)));
    const std::vector<std::string> early_failures = load.failures();
    INFO("failures before the upgrade:\n" << joined(early_failures));

    binary.install(next_binary());
    const Clock::time_point triggered = Clock::now();
    const std::string triggered_at = load.since_start();
    pid_t new_pid = 0;
    if (by_cli) {
        const RunResult cli = upgrade_cli(dir, passgate, "upgrade-cli");
        INFO("passgate upgrade: status " << cli.status.value_or(-1) << "\n" << cli.out << cli.err);
        CHECK(cli.status == 0);
        new_pid = upgraded_pid(cli, old_pid);
        CHECK(new_pid > 0);
        CHECK((cli.out + cli.err).find("(" + before->version + "+next)") != std::string::npos);
    } else {
        passgate.process().send_signal(SIGUSR2);
        const auto answer = wait_for_status(passgate.admin_port(), [&](const UpgradeStatus& status) {
            return status.pid != old_pid || (status.state == "idle" && !status.last_result.empty());
        });
        REQUIRE(answer);
        INFO("GET /upgrade:\n" << answer->text);
        CHECK(answer->pid != old_pid);
        if (answer->pid != old_pid) new_pid = answer->pid;
    }
    const Clock::time_point success_at = Clock::now();
    const std::string success_after = elapsed_since(triggered);
    INFO("upgrade triggered at " << triggered_at << " of the load, succeeded " << success_after << " later");
    INFO("passgate stderr (tail):\n" << tail(passgate.stderr_text()));
    REQUIRE(new_pid > 0);
    UpgradedProcess upgraded(new_pid);

    const auto after = upgrade_status(passgate.admin_port());
    REQUIRE(after);
    INFO("GET /upgrade from the new process:\n" << after->text);
    CHECK(after->pid == new_pid);
    CHECK(after->version == before->version + "+next");
    CHECK(after->upgraded_from == old_pid);
    CHECK(after->state == "idle");
    CHECK(build_info_version(passgate) == before->version + "+next");
    check_new_process_serves(port, old_pid, new_pid, success_at);

    join_streams.join();
    // The streams ran through the upgrade: all of them ended after it succeeded.
    for (const StreamOutcome& outcome : outcomes) CHECK(outcome.ended > success_at);
    load.stop();

    // The old process exits 0 once its last stream is done (well before shutdown_timeout, 20 s).
    const std::optional<int> old_status = passgate.process().wait_exit(Millis(15000));
    CHECK(old_status == 0);
    // The new one serves on.
    const auto ready = http_get(passgate.admin_port(), "/readyz");
    CHECK((ready && ready->status == 200));
    CHECK(upgrades(passgate, "success") == 1);
    CHECK(upgrades(passgate, "failed") == 0);
    CHECK(probe_server(port, {new_pid}) == new_pid);

    const std::vector<std::string> failures = load.failures();
    INFO(failures.size() << " connections failed:\n" << joined(failures));
    CHECK(failures.empty());
    CHECK(load.short_ok() > 100);
    CHECK(load.rr_connections() >= 8);
    CHECK(load.admin_ok() > 50);
    CHECK(wait_until([&] { return backend.records().size() == static_cast<std::size_t>(streams); }, Millis(5000)));
    const std::map<std::uint64_t, StreamRecord> records = backend.records();
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
    }
    // Both processes log to the same stderr: every access-log line says completed.
    const std::vector<std::string> not_completed = passgate.failed_connection_lines();
    INFO(not_completed.size() << " access-log lines not completed:\n" << joined(not_completed));
    CHECK(not_completed.empty());
    WARN("upgrade under load (" << (by_cli ? "CLI" : "SIGUSR2") << "): success " << success_after
                                << " after the trigger; " << load.short_ok() << " short connections, "
                                << load.rr_transactions() << " request/response transactions on "
                                << load.rr_connections() << " connections, " << load.admin_ok() << " admin requests, "
                                << streams << " streams");

    backend.stop();
    CHECK(upgraded.terminate() == 0);
    CHECK(sanitizer_report(passgate.stderr_text()).empty());
}

// ---- Failed upgrades ---------------------------------------------------------------------------

TEST_CASE("failed upgrade: a new binary that exits at once, then a config with a syntax error: the "
          "old process serves on, reports and counts each; a later valid upgrade works",
          "[integration][upgrade]") {
    REQUIRE(corpus_hellos().size() >= 5);
    become_subreaper();
    TempDir dir;
    LoadBackend backend;
    InstalledBinary binary(dir);
    const std::uint16_t port = free_port();
    const std::string config = load_config(port, backend.port());
    Passgate passgate(dir, {config, {}, 2}, "passgate", {}, binary.path());
    REQUIRE(passgate.wait_ready());
    const pid_t old_pid = passgate.pid();
    Load load(port);
    load.start_short(2);

    // (1) The new "binary" exits 3 at once; triggered with the CLI.
    binary.install_script("#!/bin/sh\nexit 3\n");
    const RunResult exits = upgrade_cli(dir, passgate, "upgrade-exits");
    {
        INFO("passgate upgrade: status " << exits.status.value_or(-1) << "\n" << exits.out << exits.err);
        CHECK(exits.status == 1);
        CHECK((exits.out + exits.err).find("upgrade failed: ") != std::string::npos);
    }
    auto status = upgrade_status(passgate.admin_port());
    REQUIRE(status);
    INFO("GET /upgrade:\n" << status->text);
    CHECK(status->pid == old_pid);
    CHECK(status->state == "idle");
    CHECK(status->last_result == "failed");
    CHECK(!status->last_reason.empty());
    CHECK((exits.out + exits.err).find(status->last_reason) != std::string::npos);  // the CLI gives the reason
    const pid_t first_attempt = status->last_new_pid;
    CHECK(first_attempt > 0);
    CHECK(passgate.wait_for_log("upgrade failed"));
    CHECK(upgrades(passgate, "failed") == 1);
    CHECK(probe_server(port, {old_pid}) == old_pid);

    // (2) The real new binary, but the config file now has a syntax error; triggered with SIGUSR2.
    binary.install(next_binary());
    rewrite_config(passgate, config + "\n[runtime]\nworkers =\n");
    passgate.process().send_signal(SIGUSR2);
    status = wait_for_status(passgate.admin_port(), [&](const UpgradeStatus& answer) {
        return answer.pid != old_pid || (answer.state == "idle" && answer.last_new_pid != first_attempt &&
                                         !answer.last_result.empty());
    });
    REQUIRE(status);
    INFO("GET /upgrade:\n" << status->text);
    CHECK(status->pid == old_pid);
    CHECK(status->last_new_pid != first_attempt);
    CHECK(status->last_result == "failed");
    CHECK(status->last_reason.find("syntax error") != std::string::npos);
    CHECK(wait_until([&] { return passgate.log_lines_with({"upgrade failed"}).size() == 2; }, Millis(3000)));
    CHECK(upgrades(passgate, "failed") == 2);
    CHECK(upgrades(passgate, "success") == 0);
    CHECK(probe_server(port, {old_pid}) == old_pid);
    CHECK(passgate.process().running());

    // (3) The config is fixed: the next upgrade works.
    rewrite_config(passgate, config);
    const RunResult works = upgrade_cli(dir, passgate, "upgrade-works");
    INFO("passgate upgrade: status " << works.status.value_or(-1) << "\n" << works.out << works.err);
    CHECK(works.status == 0);
    const pid_t new_pid = upgraded_pid(works, old_pid);
    REQUIRE(new_pid > 0);
    const Clock::time_point success_at = Clock::now();
    UpgradedProcess upgraded(new_pid);
    check_new_process_serves(port, old_pid, new_pid, success_at);
    load.stop();
    CHECK(passgate.process().wait_exit(Millis(15000)) == 0);
    CHECK(upgrades(passgate, "success") == 1);
    CHECK(upgrades(passgate, "failed") == 0);  // the new process's metrics start at zero

    const std::vector<std::string> failures = load.failures();
    INFO(failures.size() << " connections failed:\n" << joined(failures));
    CHECK(failures.empty());
    CHECK(load.short_ok() > 20);
    INFO("passgate stderr (tail):\n" << tail(passgate.stderr_text()));
    CHECK(passgate.failed_connection_lines().empty());
    backend.stop();
    CHECK(upgraded.terminate() == 0);
    CHECK(sanitizer_report(passgate.stderr_text()).empty());
}

// ---- upgrade_timeout and refusals --------------------------------------------------------------

TEST_CASE("upgrade_timeout: a new process that never gets ready is killed and counted; an upgrade "
          "while one runs is refused (admin 409, CLI, SIGUSR2) and counted",
          "[integration][upgrade]") {
    REQUIRE(corpus_hellos().size() >= 5);
    become_subreaper();
    TempDir dir;
    LoadBackend backend;
    InstalledBinary binary(dir);
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {load_config(port, backend.port(), "upgrade_timeout = \"3s\"\n"), {}, 2}, "passgate",
                      {}, binary.path());
    REQUIRE(passgate.wait_ready());
    const pid_t old_pid = passgate.pid();
    Load load(port);
    load.start_short(2);

    // The "new binary" holds the inherited sockets and never says ready.
    binary.install_script("#!/bin/sh\nexec sleep 30\n");
    const Clock::time_point triggered = Clock::now();
    RunResult first;
    std::vector<std::thread> first_cli;
    first_cli.emplace_back([&] { first = upgrade_cli(dir, passgate, "upgrade-first"); });
    JoinAll join_first_cli(first_cli);
    const auto starting = wait_for_status(
        passgate.admin_port(), [](const UpgradeStatus& status) { return status.state == "starting"; }, Millis(2500));
    REQUIRE(starting);
    INFO("GET /upgrade while starting:\n" << starting->text);
    REQUIRE(starting->state == "starting");
    const pid_t sleeper = starting->last_new_pid;
    CHECK(sleeper > 0);

    const auto refused = post_upgrade(passgate.admin_port());
    REQUIRE(refused);
    CHECK(refused->status == 409);
    const std::string in_progress = "upgrade refused: an upgrade is already in progress (new process ";
    CHECK(refused->body.rfind(in_progress + std::to_string(sleeper) + ", started ", 0) == 0);
    const RunResult second = upgrade_cli(dir, passgate, "upgrade-second");
    {
        INFO("second passgate upgrade: status " << second.status.value_or(-1) << "\n" << second.out << second.err);
        CHECK(second.status == 1);
        CHECK((second.out + second.err).find(in_progress) != std::string::npos);
    }
    passgate.process().send_signal(SIGUSR2);
    CHECK(wait_until([&] { return upgrades(passgate, "refused") == 3; }, Millis(2000)));
    const auto still = upgrade_status(passgate.admin_port());
    REQUIRE(still);
    CHECK(still->state == "starting");  // the refusals happened while the first upgrade ran

    join_first_cli.join();
    const std::string outcome_after = elapsed_since(triggered);
    INFO("first passgate upgrade, " << outcome_after << " after the trigger: status "
                                    << first.status.value_or(-1) << "\n" << first.out << first.err);
    CHECK(first.status == 1);
    CHECK((first.out + first.err).find("upgrade failed: ") != std::string::npos);
    CHECK(Clock::now() - triggered >= Millis(3000));
    const auto status = upgrade_status(passgate.admin_port());
    REQUIRE(status);
    INFO("GET /upgrade:\n" << status->text);
    CHECK(status->pid == old_pid);
    CHECK(status->state == "idle");
    CHECK(status->last_new_pid == sleeper);
    CHECK(status->last_result == "timeout");
    CHECK(upgrades(passgate, "timeout") == 1);
    CHECK(upgrades(passgate, "refused") == 3);
    CHECK(upgrades(passgate, "failed") == 0);
    CHECK(passgate.wait_for_log("upgrade failed"));
    // Killed and reaped by the old process.
    CHECK(wait_until([&] { return ::kill(sleeper, 0) != 0 && errno == ESRCH; }, Millis(2000)));

    CHECK(probe_server(port, {old_pid}) == old_pid);
    load.stop();
    const std::vector<std::string> failures = load.failures();
    INFO(failures.size() << " connections failed:\n" << joined(failures));
    CHECK(failures.empty());
    CHECK(load.short_ok() > 20);
    backend.stop();
    stop_and_check(passgate);
}

// ---- Reloads and upgrades ----------------------------------------------------------------------

namespace {

// Listener "tls" on `port`, route "r" for www.example.test to the IdentBackend on `backend`.
std::string ident_config(std::uint16_t port, std::uint16_t backend) {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n"
           "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nhostnames = [\"www.example.test\"]\n"
           "backends = [ { service = \"s\" } ]\n\n"
           "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend) + "\"]\n";
}

struct Answer {
    std::string backend;
    pid_t served_by = 0;
};

// One connection: the backend's id and the passgate process that served it.
Answer ask(std::uint16_t port, const std::vector<pid_t>& candidates) {
    Answer answer;
    Socket socket = connect_to(port);
    if (!socket) return answer;
    answer.backend = read_backend_id(socket.get(), minimal_client_hello("www.example.test"));
    answer.served_by = serving_process(socket.get(), port, candidates);
    return answer;
}

}  // namespace

TEST_CASE("upgrade after a reload uses the reloaded config file; a reload after an upgrade works "
          "in the new process", "[integration][upgrade]") {
    become_subreaper();
    TempDir dir;
    IdentBackend one("one");
    IdentBackend two("two");
    InstalledBinary binary(dir);
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {ident_config(port, one.port()), {}, 2}, "passgate", {}, binary.path());
    REQUIRE(passgate.wait_ready());
    const pid_t old_pid = passgate.pid();
    CHECK(ask(port, {old_pid}).backend == "one");

    reload_with(passgate, ident_config(port, two.port()));
    REQUIRE(wait_for_reloads(passgate, 1));
    CHECK(ask(port, {old_pid}).backend == "two");

    binary.install(next_binary());
    passgate.process().send_signal(SIGUSR2);
    const auto status = wait_for_status(passgate.admin_port(), [&](const UpgradeStatus& answer) {
        return answer.pid != old_pid || (answer.state == "idle" && !answer.last_result.empty());
    });
    REQUIRE(status);
    INFO("GET /upgrade:\n" << status->text);
    INFO("passgate stderr (tail):\n" << tail(passgate.stderr_text()));
    REQUIRE(status->pid != old_pid);
    UpgradedProcess upgraded(status->pid);
    CHECK(passgate.process().wait_exit(Millis(10000)) == 0);
    // The new process read the file as the reload left it.
    Answer answer = ask(port, {upgraded.pid()});
    CHECK(answer.backend == "two");
    CHECK(answer.served_by == upgraded.pid());

    // SIGHUP to the new process: it reloads (its reload counters start at zero).
    rewrite_config(passgate, ident_config(port, one.port()));
    ::kill(upgraded.pid(), SIGHUP);
    REQUIRE(wait_for_reloads(passgate, 1));
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"success\"}") == 1);
    answer = ask(port, {upgraded.pid()});
    CHECK(answer.backend == "one");
    CHECK(answer.served_by == upgraded.pid());

    CHECK(upgraded.terminate() == 0);
    CHECK(sanitizer_report(passgate.stderr_text()).empty());
}

// POST /upgrade starts a new process: only a local operator may ask for it. passgate runs in a
// network namespace of its own whose loopback also carries 10.77.0.1, with the admin server on
// every address; curl (run in that namespace) asks from 10.77.0.1 and from 127.0.0.1.
TEST_CASE("POST /upgrade from a non-loopback address is refused with 403 and starts nothing",
          "[integration][upgrade][admin]") {
    TempDir dir;
    const std::uint16_t admin_port = free_port();
    std::string config = load_config(free_port(), 9);
    config.replace(config.find("@ADMIN@"), 7, "0.0.0.0:" + std::to_string(admin_port));
    const PassgateLaunch in_own_namespace{
        .prefix = {"unshare", "--net", "--", "sh", "-c",
                   "ip link set lo up && ip address add 10.77.0.1/32 dev lo && exec \"$0\" \"$@\""},
        .allow_root = true};
    Passgate passgate(dir, {config, {}, 1}, "passgate", in_own_namespace);
    const std::string pid = std::to_string(passgate.pid());
    // curl inside passgate's namespace: HTTP status code on stdout.
    auto curl = [&](const std::string& method, const std::string& from, const std::string& path) {
        return run({"nsenter", "--net=/proc/" + pid + "/ns/net", "curl", "--silent", "--max-time", "5",
                    "--output", "/dev/null", "--write-out", "%{http_code}", "--interface", from, "--request",
                    method, "http://" + from + ":" + std::to_string(admin_port) + path},
                   dir, "curl", Millis(10000));
    };
    const bool ready = wait_until([&] { return curl("GET", "127.0.0.1", "/readyz").out == "200"; }, Millis(10000),
                                  Millis(50));
    INFO(passgate.stderr_text());
    REQUIRE(ready);

    const RunResult refused = curl("POST", "10.77.0.1", "/upgrade");
    CHECK(refused.out == "403");
    // The status view stays readable from there, and says no upgrade ran.
    CHECK(curl("GET", "10.77.0.1", "/upgrade").out == "200");
    CHECK(passgate.stderr_text().find("upgrade: started") == std::string::npos);
    CHECK(passgate.process().running());
    // The same request from the loopback address would start one (202): the 403 is the source's.
    // Not sent here: an upgrade's new process is the upgrade tests' business.
    CHECK(passgate.process().terminate() == 0);
    CHECK(sanitizer_report(passgate.stderr_text()).empty());
}
