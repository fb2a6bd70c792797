// QUIC (HTTP/3) passthrough with real peers: Debian's ngtcp2 example server (gtlsserver) as two
// backends with their own certificates and files, and its client (gtlsclient) through passgate.
// The client does not check certificates; which backend answered is told by the file's bytes,
// which differ per backend. Hostile datagrams are built here (no QUIC library needed for them:
// they only have to look like, or fail to be, Initials).

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

using namespace integration;

namespace {

constexpr std::size_t kFileBytes = 300 * 1000;

std::vector<std::uint8_t> file_bytes(std::uint64_t seed, std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    ByteStream(seed).fill(bytes.data(), bytes.size());
    return bytes;
}

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// One gtlsserver on ip:port with a self-signed certificate for `name` and htdocs holding
// "file" (kFileBytes seeded by `seed`).
class QuicBackend {
public:
    QuicBackend(const TempDir& dir, const std::string& name, const std::string& ip, std::uint16_t port,
                std::uint64_t seed, std::vector<std::string> extra = {})
        : file(file_bytes(seed, kFileBytes)) {
        const std::string base = dir.file(name);
        std::filesystem::create_directories(base + "/htdocs");
        write_bytes(base + "/htdocs/file", file);
        const RunResult made = run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                    "-nodes", "-keyout", base + "/key.pem", "-out", base + "/cert.pem", "-days", "2",
                                    "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name},
                                   dir, name + "-openssl");
        REQUIRE(made.status == 0);
        std::vector<std::string> argv = {"gtlsserver", "-q", "-d", base + "/htdocs"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.insert(argv.end(), {ip, std::to_string(port), base + "/key.pem", base + "/cert.pem"});
        process = std::make_unique<Process>(SpawnOptions{.argv = argv, .stdout_path = base + "/server.out",
                                                         .stderr_path = base + "/server.err", .cwd = {}});
    }
    std::vector<std::uint8_t> file;
    std::unique_ptr<Process> process;
};

struct Fetch {
    std::optional<int> status;
    std::optional<std::vector<std::uint8_t>> body;  // the downloaded file, if any
    std::string log;                                // the client's stdout and stderr
};

// gtlsclient to `sni`:port, fetching /path into a fresh folder. gtlsclient 0.12.1 sends the host
// name it connects to as its SNI (it ignores --sni): it runs in its own user and mount namespace
// where the test's hosts file (every test name at 127.0.0.1) is /etc/hosts. Bounded by the
// client's own idle timeout and a hard 20 s.
Fetch fetch(const TempDir& dir, const std::string& name, std::uint16_t port, const std::string& sni,
            const std::string& path, std::vector<std::string> extra = {}, const std::string& timeout = "3s") {
    const std::string hosts = dir.file("hosts");
    if (!std::filesystem::exists(hosts)) write_file(hosts, "127.0.0.1 localhost a.test b.test c.test\n");
    const std::string download = dir.file(name + "-download");
    std::filesystem::create_directories(download);
    std::vector<std::string> argv = {"unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                                     "mount --bind \"$0\" /etc/hosts && exec \"$@\"", hosts,
                                     "gtlsclient", "--exit-on-all-streams-close", "--timeout=" + timeout,
                                     "--download=" + download};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.insert(argv.end(), {sni, std::to_string(port), "https://" + sni + "/" + path});
    const RunResult result = run(argv, dir, name, Millis(20000));
    Fetch out;
    out.status = result.status;
    out.log = result.out + result.err;
    const std::string file = download + "/" + path;
    if (std::filesystem::exists(file)) out.body = read_binary_file(file);
    return out;
}

std::string config(std::uint16_t listen_port, std::uint16_t backend_port, const std::string& extra_listener = "",
                   const std::string& shutdown_timeout = "1s") {
    const std::string port = std::to_string(backend_port);
    // Flows end by idle timeout, not by a close: a short shutdown_timeout lets passgate exit soon.
    return "[runtime]\nshutdown_timeout = \"" + shutdown_timeout + "\"\n\n[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"h3\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n"
           "protocol = \"quic\"\nclient_hello_timeout = \"2s\"\n" + extra_listener + "\n"
           "[[route]]\nname = \"a\"\nlisteners = [\"h3\"]\nhostnames = [\"a.test\"]\nbackends = [ { service = \"a\" } ]\n\n"
           "[[route]]\nname = \"b\"\nlisteners = [\"h3\"]\nhostnames = [\"b.test\"]\nbackends = [ { service = \"b\" } ]\n\n"
           "[[service]]\nname = \"a\"\nendpoints = [\"127.0.0.2:" + port + "\"]\n\n"
           "[[service]]\nname = \"b\"\nendpoints = [\"127.0.0.3:" + port + "\"]\n";
}

// Two backends (a.test on 127.0.0.2, b.test on 127.0.0.3, same port) and passgate before them.
struct QuicSetup {
    explicit QuicSetup(unsigned workers = 2, std::vector<std::string> server_extra = {}, const std::string& extra_listener = "",
                       const std::string& shutdown_timeout = "1s")
        : listen_port(free_port()),
          backend_port(free_port()),
          a(dir, "a.test", "127.0.0.2", backend_port, 1, server_extra),
          b(dir, "b.test", "127.0.0.3", backend_port, 2, server_extra),
          passgate(dir, {config(listen_port, backend_port, extra_listener, shutdown_timeout), {}, workers}) {}
    TempDir dir;
    std::uint16_t listen_port;
    std::uint16_t backend_port;
    QuicBackend a;
    QuicBackend b;
    Passgate passgate;
};

double quic_sum(const Passgate& passgate, const std::string& family, const std::vector<std::string>& labels = {}) {
    return labelled_sum(passgate, family, labels);
}

// A datagram from 127.0.0.1 (or `source`) to passgate's QUIC port.
void send_datagram(std::uint16_t port, const std::vector<std::uint8_t>& bytes, const char* source = nullptr) {
    Socket socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(socket);
    if (source != nullptr) {
        sockaddr_in local{};
        local.sin_family = AF_INET;
        REQUIRE(inet_pton(AF_INET, source, &local.sin_addr) == 1);
        REQUIRE(::bind(socket.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) == 0);
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::sendto(socket.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
            static_cast<ssize_t>(bytes.size()));
}

// A v1 Initial long header with an 8-byte DCID, a 0-byte SCID, no token, then `length` as a
// 2-byte varint and `body` (random: not decryptable with the keys of that DCID).
std::vector<std::uint8_t> fake_initial(std::uint64_t seed, std::size_t total, std::optional<std::uint16_t> length = {}) {
    std::vector<std::uint8_t> bytes = {0xc3, 0x00, 0x00, 0x00, 0x01, 0x08};
    const std::vector<std::uint8_t> dcid = file_bytes(seed, 8);
    bytes.insert(bytes.end(), dcid.begin(), dcid.end());
    bytes.push_back(0x00);  // SCID length
    bytes.push_back(0x00);  // token length
    const std::size_t rest = total > bytes.size() + 2 ? total - bytes.size() - 2 : 0;
    const std::uint16_t declared = length.value_or(static_cast<std::uint16_t>(rest));
    bytes.push_back(static_cast<std::uint8_t>(0x40 | (declared >> 8)));
    bytes.push_back(static_cast<std::uint8_t>(declared & 0xff));
    const std::vector<std::uint8_t> body = file_bytes(seed + 7, rest);
    bytes.insert(bytes.end(), body.begin(), body.end());
    bytes.resize(total);
    return bytes;
}

// After SIGUSR2: the new process's pid once it took over (GET /upgrade answers from it: the
// admin socket moves too), or 0 after 15 s.
pid_t wait_for_new_process(const Passgate& passgate, pid_t old_pid) {
    pid_t new_pid = 0;
    wait_until([&] {
        const std::optional<HttpResponse> status = http_get(passgate.admin_port(), "/upgrade", Millis(500));
        if (!status || status->status != 200) return false;
        const std::size_t at = status->body.find("pid: ");
        if (at == std::string::npos) return false;
        const pid_t pid = std::atoi(status->body.c_str() + at + 5);
        if (pid != old_pid && pid > 0) new_pid = pid;
        return new_pid != 0;
    }, Millis(15000), Millis(20));
    return new_pid;
}

}  // namespace

TEST_CASE("quic: each SNI reaches its own backend with the file intact; an unrouted name is refused and "
          "counted; one access-log line per flow says protocol=quic",
          "[integration][quic]") {
    QuicSetup setup;
    REQUIRE(setup.passgate.wait_ready());
    const Fetch a = fetch(setup.dir, "fetch-a", setup.listen_port, "a.test", "file", {"-q"});
    REQUIRE(a.body);
    CHECK(*a.body == setup.a.file);
    const Fetch b = fetch(setup.dir, "fetch-b", setup.listen_port, "b.test", "file", {"-q"});
    REQUIRE(b.body);
    CHECK(*b.body == setup.b.file);
    CHECK(setup.a.file != setup.b.file);

    const Fetch refused = fetch(setup.dir, "fetch-c", setup.listen_port, "c.test", "file", {"-q"}, "1s");
    CHECK(!refused.body);
    Passgate& passgate = setup.passgate;
    CHECK(wait_until([&] { return quic_sum(passgate, "passgate_quic_flows_closed_total", {"reason=\"no_route\""}) >= 1; },
                     Millis(3000)));
    CHECK(quic_sum(passgate, "passgate_quic_flows_total", {"route=\"a\""}) == 1);
    CHECK(quic_sum(passgate, "passgate_quic_flows_total", {"route=\"b\""}) == 1);
    CHECK(quic_sum(passgate, "passgate_quic_bytes_total", {"direction=\"backend_to_client\""}) > 2.0 * kFileBytes);
    CHECK(quic_sum(passgate, "passgate_quic_packets_total", {"direction=\"client_to_backend\""}) > 0);
    // The refused flow's line at once; the served ones end by idle timeout (their UDP has no close).
    CHECK(wait_until([&] { return !passgate.log_lines_with({"reason=no_route", "sni=c.test", "protocol=quic"}).empty(); },
                     Millis(3000)));
    stop_and_check(passgate);
    CHECK(passgate.log_lines_with({"route=a", "protocol=quic"}).size() == 1);
    CHECK(passgate.log_lines_with({"route=b", "protocol=quic"}).size() == 1);
}

TEST_CASE("quic: a NAT-rebound client keeps its flow, with two workers; a client that migrates onto a "
          "new connection ID is not followed", "[integration][quic]") {
    QuicSetup setup(2);
    Passgate& passgate = setup.passgate;
    REQUIRE(passgate.wait_ready());
    // The client moves to a new port 100 ms in, before it asks for the file (200 ms): the request
    // and the whole response travel on the new address. The new port lands on either worker
    // (SO_REUSEPORT hash): three runs make both likely.
    for (int run_index = 0; run_index < 3; ++run_index) {
        const Fetch moved = fetch(setup.dir, "rebind-" + std::to_string(run_index), setup.listen_port, "a.test", "file",
                                  {"-q", "--change-local-addr=100ms", "--nat-rebinding", "--delay-stream=200ms"});
        REQUIRE(moved.body);
        CHECK(*moved.body == setup.a.file);
    }
    CHECK(quic_sum(passgate, "passgate_quic_flows_total", {"route=\"a\""}) == 3);
    // Active migration: the client switches to a connection ID the server gave it inside the
    // encrypted connection (NEW_CONNECTION_ID), which passgate cannot see. Its datagrams from the
    // new address match no flow and are dropped (counted), and the request is never answered.
    const Fetch migrated = fetch(setup.dir, "migrate", setup.listen_port, "a.test", "file",
                                 {"-q", "--change-local-addr=100ms", "--delay-stream=200ms"}, "1s");
    CHECK((!migrated.body || *migrated.body != setup.a.file));
    CHECK(quic_sum(passgate, "passgate_quic_datagrams_dropped_total", {"reason=\"no_flow\""}) +
              quic_sum(passgate, "passgate_quic_handoffs_total", {"result=\"sent\""}) >= 1);
    stop_and_check(passgate);
}

TEST_CASE("quic: key updates and a server's Retry pass through", "[integration][quic]") {
    QuicSetup setup(2, {"-V"});
    Passgate& passgate = setup.passgate;
    REQUIRE(passgate.wait_ready());
    const Fetch updated = fetch(setup.dir, "key-update", setup.listen_port, "b.test", "file",
                                {"--key-update=50ms", "--delay-stream=200ms"});
    REQUIRE(updated.body);
    CHECK(*updated.body == setup.b.file);
    // gtlsserver -V answers the first Initial with a Retry: the client's second Initial (to the
    // Retry's connection ID, with its token) reaches the same flow and the same server.
    CHECK(updated.log.find("type=Retry") != std::string::npos);
    // The client started a key update and the server answered in the new key phase.
    CHECK(updated.log.find("Initiate key update") != std::string::npos);
    CHECK(updated.log.find("type=1RTT k=1") != std::string::npos);
    CHECK(quic_sum(passgate, "passgate_quic_flows_total", {"route=\"b\""}) == 1);
    stop_and_check(passgate);
}

TEST_CASE("quic: a ClientHello spread over two Initial packets is reassembled and routed", "[integration][quic]") {
    QuicSetup setup(1);
    Passgate& passgate = setup.passgate;
    REQUIRE(passgate.wait_ready());
    // Two finite-field key shares make a hello of about 1,300 bytes: two Initial packets.
    const Fetch split = fetch(setup.dir, "split", setup.listen_port, "b.test", "file",
                              {"--groups=-GROUP-ALL:+GROUP-FFDHE8192:+GROUP-FFDHE6144:+GROUP-X25519"});
    REQUIRE(split.body);
    CHECK(*split.body == setup.b.file);
    // The client's own trace: a CRYPTO frame that starts past offset 0 in a second Initial.
    CHECK(split.log.find("frm tx 1 Initial CRYPTO(0x06) offset=") != std::string::npos);
    CHECK(split.log.find("frm tx 1 Initial CRYPTO(0x06) offset=0 ") == std::string::npos);
    stop_and_check(passgate);
}

TEST_CASE("quic: a reload keeps an established flow on its endpoint; new flows follow the new config",
          "[integration][quic]") {
    QuicSetup setup(2);
    Passgate& passgate = setup.passgate;
    REQUIRE(passgate.wait_ready());
    // The client completes its handshake, then waits 1.5 s before asking for the file: the reload
    // (which sends a.test to b's server) happens in between. Sent to b, the request would reach a
    // server that does not know the connection.
    std::optional<Fetch> result;
    std::thread client([&] {
        result = fetch(setup.dir, "during-reload", setup.listen_port, "a.test", "file", {"-q", "--delay-stream=1500ms"});
    });
    const bool routed = wait_until(
        [&] { return quic_sum(passgate, "passgate_quic_flows_total", {"route=\"a\""}) >= 1; }, Millis(5000));
    std::string swapped = config(setup.listen_port, setup.backend_port);
    const std::string from = "endpoints = [\"127.0.0.2:";
    swapped.replace(swapped.find(from), from.size(), "endpoints = [\"127.0.0.3:");
    reload_with(passgate, swapped);
    const bool reloaded = wait_for_reloads(passgate, 1);
    client.join();
    CHECK(routed);
    CHECK(reloaded);
    REQUIRE(result);
    REQUIRE(result->body);
    CHECK(*result->body == setup.a.file);
    const Fetch after = fetch(setup.dir, "after-reload", setup.listen_port, "a.test", "file", {"-q"});
    REQUIRE(after.body);
    CHECK(*after.body == setup.b.file);
    stop_and_check(passgate);
}

TEST_CASE("quic: hostile datagrams cost bounded flows and time, and are all counted by reason",
          "[integration][quic]") {
    QuicSetup setup(2, {}, "quic_flow_idle_timeout = \"2s\"\n");
    Passgate& passgate = setup.passgate;
    REQUIRE(passgate.wait_ready());
    const std::uint16_t port = setup.listen_port;
    send_datagram(port, fake_initial(1, 300));                      // under 1,200 bytes
    send_datagram(port, fake_initial(2, 1200));                     // random: not decryptable
    send_datagram(port, fake_initial(3, 1200, 0x3fff));             // length past the datagram
    send_datagram(port, {0x40, 0x01, 0x02});                        // too short for any QUIC packet
    std::vector<std::uint8_t> stray = file_bytes(5, 40);
    stray[0] = 0x41;
    send_datagram(port, stray);                                     // short header, no flow
    std::vector<std::uint8_t> other_version = fake_initial(4, 1200);
    other_version[4] = 0x0a;                                        // version 0x0000000a
    send_datagram(port, other_version);
    CHECK(wait_until([&] {
        return quic_sum(passgate, "passgate_quic_initial_rejected_total", {"reason=\"short_datagram\""}) == 1 &&
               quic_sum(passgate, "passgate_quic_initial_rejected_total", {"reason=\"undecryptable\""}) +
                       quic_sum(passgate, "passgate_quic_initial_rejected_total", {"reason=\"malformed\""}) == 2 &&
               quic_sum(passgate, "passgate_quic_datagrams_dropped_total", {"reason=\"not_quic\""}) == 1 &&
               quic_sum(passgate, "passgate_quic_datagrams_dropped_total", {"reason=\"unsupported_version\""}) == 1;
    }, Millis(3000)));
    // The short header: dropped by its worker, or handed to the other one and claimed by none.
    CHECK(quic_sum(passgate, "passgate_quic_datagrams_dropped_total", {"reason=\"no_flow\""}) +
              quic_sum(passgate, "passgate_quic_handoffs_total", {"result=\"sent\""}) == 1);
    CHECK(quic_sum(passgate, "passgate_quic_handoffs_total", {"result=\"claimed\""}) == 0);

    // A flood from 250 source addresses, four Initials each: bounded in count and time. Each one
    // is refused at its first datagram: no flow is held. Sent in rounds of 100 datagrams that
    // passgate counts before the next (the socket buffer would drop a faster flood: UDP).
    const double before = quic_sum(passgate, "passgate_quic_initial_rejected_total");
    const Clock::time_point flood_start = Clock::now();
    int sent = 0;
    bool kept_up = true;
    for (int host = 2; host < 252 && Clock::now() - flood_start < Millis(15000); ++host) {
        const std::string source = "127.0.1." + std::to_string(host);
        for (int i = 0; i < 4; ++i, ++sent) send_datagram(port, fake_initial(1000 + sent, 1200), source.c_str());
        if (sent % 100 == 0)
            kept_up = kept_up && wait_until([&] {
                return quic_sum(passgate, "passgate_quic_initial_rejected_total") >= before + sent;
            }, Millis(3000), Millis(20));
    }
    CHECK(sent == 1000);
    CHECK(kept_up);
    CHECK(quic_sum(passgate, "passgate_quic_initial_rejected_total") == before + sent);
    INFO("flood of " << sent << " Initials took "
                     << std::chrono::duration_cast<Millis>(Clock::now() - flood_start).count() << " ms");
    CHECK(Clock::now() - flood_start < Millis(15000));
    CHECK(quic_sum(passgate, "passgate_quic_flows_active") == 0);
    // Still serving.
    const Fetch after = fetch(setup.dir, "after-flood", port, "a.test", "file", {"-q"});
    REQUIRE(after.body);
    CHECK(*after.body == setup.a.file);
    // Its flow ends quic_flow_idle_timeout (2 s here) after the last datagram, with one log line.
    CHECK(wait_until([&] {
        return quic_sum(passgate, "passgate_quic_flows_closed_total", {"reason=\"idle_timeout\""}) == 1;
    }, Millis(5000), Millis(50)));
    CHECK(quic_sum(passgate, "passgate_quic_flows_active") == 0);
    CHECK(passgate.log_lines_with({"route=a", "reason=idle_timeout", "protocol=quic"}).size() == 1);
    stop_and_check(passgate);
}

TEST_CASE("quic: a reload that changes a listener's protocol rebinds it (UDP to TCP and back)",
          "[integration][quic]") {
    QuicSetup setup(2);
    Passgate& passgate = setup.passgate;
    REQUIRE(passgate.wait_ready());
    CHECK_FALSE(port_accepts(setup.listen_port));  // QUIC: no TCP socket there
    std::string tls = config(setup.listen_port, setup.backend_port);
    const std::string quic_line = "protocol = \"quic\"\n";
    tls.replace(tls.find(quic_line), quic_line.size(), "protocol = \"tls\"\n");
    reload_with(passgate, tls);
    REQUIRE(wait_for_reloads(passgate, 1));
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"success\"}") == 1.0);
    CHECK(port_accepts(setup.listen_port));
    const Fetch refused = fetch(setup.dir, "over-tcp", setup.listen_port, "a.test", "file", {"-q"}, "1s");
    CHECK((!refused.body || *refused.body != setup.a.file));
    reload_with(passgate, config(setup.listen_port, setup.backend_port));
    REQUIRE(wait_for_reloads(passgate, 2));
    // The workers close the TCP socket once they have the new snapshot (a moment after the
    // control thread counts the reload).
    CHECK(wait_until([&] { return !port_accepts(setup.listen_port, Millis(200)); }, Millis(3000), Millis(50)));
    const Fetch back = fetch(setup.dir, "back-to-quic", setup.listen_port, "a.test", "file", {"-q"});
    REQUIRE(back.body);
    CHECK(*back.body == setup.a.file);
    stop_and_check(passgate);
}

TEST_CASE("quic: a binary upgrade hands the QUIC listener's UDP sockets to the new process, which serves "
          "new flows", "[integration][quic]") {
    QuicSetup setup(2);
    Passgate& passgate = setup.passgate;
    REQUIRE(passgate.wait_ready());
    const Fetch before = fetch(setup.dir, "before-upgrade", setup.listen_port, "a.test", "file", {"-q"});
    REQUIRE(before.body);
    CHECK(*before.body == setup.a.file);
    const pid_t old_pid = passgate.pid();
    passgate.process().send_signal(SIGUSR2);
    const pid_t new_pid = wait_for_new_process(passgate, old_pid);
    REQUIRE(new_pid > 0);
    CHECK(passgate.wait_for_log("listener \"h3\": 2 listening socket(s) on 127.0.0.1:" +
                                    std::to_string(setup.listen_port) + " from the old process",
                                Millis(3000)));
    // The old process ends once its flow is gone (shutdown_timeout 1 s), exit status 0.
    CHECK(passgate.process().wait_exit(Millis(10000)) == 0);
    const Fetch after = fetch(setup.dir, "after-upgrade", setup.listen_port, "b.test", "file", {"-q"});
    REQUIRE(after.body);
    CHECK(*after.body == setup.b.file);
    CHECK(::kill(new_pid, SIGTERM) == 0);
    CHECK(wait_until([&] { return ::kill(new_pid, 0) != 0; }, Millis(10000), Millis(20)));
}

TEST_CASE("quic: a flow established before a binary upgrade completes byte-exact through the old process, "
          "its client datagrams forwarded by the new one; new flows go to the new process", "[integration][quic]") {
    // shutdown_timeout 20 s: the old process serves its flow to the end, then exits once the flow
    // idled out (quic_flow_idle_timeout 3 s: longer than the client's silence below).
    QuicSetup setup(2, {}, "quic_flow_idle_timeout = \"3s\"\n", "20s");
    Passgate& passgate = setup.passgate;
    const std::vector<std::uint8_t> big = file_bytes(9, 20 * 1000 * 1000);
    write_bytes(setup.dir.file("a.test") + "/htdocs/big", big);
    REQUIRE(passgate.wait_ready());
    const pid_t old_pid = passgate.pid();
    // The client completes its handshake with the old process, then waits 2 s before asking
    // for 20 MB: the upgrade hands over in between (or during the download), so the request and
    // the client's ACKs reach the new process, which holds no flow for them.
    std::optional<Fetch> result;
    std::thread client([&] {
        result = fetch(setup.dir, "across-upgrade", setup.listen_port, "a.test", "big", {"-q", "--delay-stream=2000ms"},
                       "5s");
    });
    const bool routed = wait_until(
        [&] { return quic_sum(passgate, "passgate_quic_flows_total", {"route=\"a\""}) >= 1; }, Millis(5000), Millis(20));
    passgate.process().send_signal(SIGUSR2);
    const pid_t new_pid = wait_for_new_process(passgate, old_pid);
    client.join();
    CHECK(routed);
    REQUIRE(new_pid > 0);
    REQUIRE(result);
    INFO(result->log);
    REQUIRE(result->body);
    // Compared here, not by Catch: it would print 20 MB on a mismatch.
    const std::size_t received = result->body->size();
    const std::size_t first_difference = static_cast<std::size_t>(
        std::mismatch(result->body->begin(), result->body->end(), big.begin(), big.end()).first - result->body->begin());
    CHECK(received == big.size());
    CHECK(first_difference == big.size());
    // The new process (its admin socket now) forwarded the client's datagrams and started no flow
    // for them.
    CHECK(quic_sum(passgate, "passgate_quic_handoffs_total", {"result=\"upgrade_forwarded\""}) > 0);
    CHECK(quic_sum(passgate, "passgate_quic_handoffs_total", {"result=\"upgrade_full\""}) == 0);
    // None of the flow's datagrams was dropped by the new process (without forwarding, those it
    // happened to read were: no_flow).
    CHECK(quic_sum(passgate, "passgate_quic_datagrams_dropped_total", {"reason=\"no_flow\""}) == 0);
    CHECK(quic_sum(passgate, "passgate_quic_flows_total", {"route=\"a\""}) == 0);
    // The old process ends once its flow idled out, exit status 0; then nothing is forwarded.
    const std::optional<int> old_exit = passgate.process().wait_exit(Millis(10000));
    REQUIRE(old_exit);
    CHECK(*old_exit == 0);
    const Fetch after = fetch(setup.dir, "after-upgrade", setup.listen_port, "b.test", "file", {"-q"});
    REQUIRE(after.body);
    CHECK(*after.body == setup.b.file);
    CHECK(quic_sum(passgate, "passgate_quic_flows_total", {"route=\"b\""}) >= 1);
    CHECK(::kill(new_pid, SIGTERM) == 0);
    CHECK(wait_until([&] { return ::kill(new_pid, 0) != 0; }, Millis(10000), Millis(20)));
}
