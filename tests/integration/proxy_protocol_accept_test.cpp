// PROXY protocol FROM an upstream load balancer (listener accept_proxy_protocol, issue 8 part 2),
// with real peers on both sides: HAProxy in front (`send-proxy` / `send-proxy-v2`), passgate in
// the middle, and NGINX behind it reading passgate's own PROXY header (send_proxy_protocol) and
// answering with the client address it learnt (nginx_echo.h). Clients bind distinct 127.0.0.x
// addresses, so each one's address is visible end to end; HAProxy reaches passgate from
// 127.0.0.1, the only trusted proxy.

#include "tests/support/net.h"
#include "tests/support/nginx_echo.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

using namespace integration;

namespace {

// Some socket listens on 127.0.0.1:port (state 0A in /proc/net/tcp), found without connecting.
bool listening(std::uint16_t port) {
    char wanted[32];
    std::snprintf(wanted, sizeof wanted, "0100007F:%04X", port);
    std::istringstream table(read_file("/proc/net/tcp"));
    std::string line;
    while (std::getline(table, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state;
        fields >> slot >> local >> remote >> state;
        if (local == wanted && state == "0A") return true;
    }
    return false;
}

// HAProxy in the foreground (-db), mode tcp, one server: passgate, with `server_options`.
class Haproxy {
public:
    Haproxy(const TempDir& dir, std::uint16_t passgate_port, const std::string& server_options)
        : port_(free_port()) {
        const std::string config =
            "global\n  maxconn 256\n"
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n"
            "frontend edge\n  bind 127.0.0.1:" + std::to_string(port_) + "\n  default_backend passgate\n"
            "backend passgate\n  server s 127.0.0.1:" + std::to_string(passgate_port) + " " +
            server_options + "\n";
        write_file(dir.file("haproxy.cfg"), config);
        process_ = std::make_unique<Process>(SpawnOptions{
            {"haproxy", "-db", "-f", dir.file("haproxy.cfg")}, dir.file("haproxy.out"),
            dir.file("haproxy.err"), dir.path().string()});
        // Not probed with a connection: HAProxy would pass it on (retrying) to passgate.
        REQUIRE(wait_until([&] { return listening(port_); }, Millis(5000)));
    }
    std::uint16_t port() const { return port_; }

private:
    std::uint16_t port_;
    std::unique_ptr<Process> process_;
};

// defer_accept = false: an untrusted peer is refused at accept, before it sends anything; with
// the default a silent peer is accepted (and refused) about a second later.
std::string config_for(std::uint16_t listen_port, std::uint16_t backend_port,
                       const std::string& listener_extra) {
    return "[admin]\naddress = \"@ADMIN@\"\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n"
           "client_hello_timeout = \"1s\"\naccept_proxy_protocol = true\ndefer_accept = false\n"
           "trusted_proxies = [\"127.0.0.1\"]\n" + listener_extra + "\n"
           "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"*.corpus.test\"]\n"
           "backends = [ { service = \"nginx\" } ]\n"
           "[[service]]\nname = \"nginx\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n"
           "send_proxy_protocol = \"v2\"\n";
}

const std::vector<std::uint8_t>& hello_bytes() { return captured_hello("curl-h2.bin").bytes; }

std::vector<std::uint8_t> bytes_of(const std::string& text) {
    return std::vector<std::uint8_t>(text.begin(), text.end());
}

std::vector<std::uint8_t> concat(std::vector<std::uint8_t> a, const std::vector<std::uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// passgate_proxy_protocol_rejected_total{listener="tls",reason=REASON} reaches `value` in time.
bool proxy_rejected_reaches(const Passgate& passgate, const std::string& reason, double value) {
    const std::string series =
        "passgate_proxy_protocol_rejected_total{listener=\"tls\",reason=\"" + reason + "\"}";
    return wait_until([&] { return metric_sample(passgate, series) == value; }, Millis(3000));
}

// Closed by passgate (EOF or reset) within `within`, without a byte.
void check_closed_quietly(int fd, Millis within = Millis(1000)) {
    const CloseObservation seen = wait_closed(fd, Millis(3000));
    CHECK(seen.closed);
    CHECK(seen.bytes == 0);
    CHECK(seen.after < within);
}

void require_nginx() {
    if (!std::filesystem::exists(NginxProxyProtocolEcho::stream_module))
        FAIL("nginx stream module missing: apt-get install nginx libnginx-mod-stream");
}

}  // namespace

TEST_CASE("behind HAProxy (send-proxy, send-proxy-v2) the carried client address is the client's",
          "[integration][proxy_protocol]") {
    require_nginx();
    const char* server_options = GENERATE("send-proxy", "send-proxy-v2");
    INFO("HAProxy server option: " << server_options);
    TempDir dir;
    NginxProxyProtocolEcho nginx(dir);
    const std::uint16_t port = free_port();
    Haproxy haproxy(dir, port, server_options);
    // Denying 127.0.0.1, HAProxy's own address, denies no one: allow/deny see the carried address.
    Passgate passgate(dir, {config_for(port, nginx.port(), "deny = [\"127.0.0.1\", \"127.0.0.66\"]"), {}, 2});
    REQUIRE(passgate.wait_ready());

    for (const char* source : {"127.0.0.21", "127.0.0.22", "127.0.0.23"}) {
        Socket client = connect_bound_to(source, haproxy.port());
        REQUIRE(client);
        const std::string client_name = local_name(client.get());
        INFO("client " << client_name);
        REQUIRE(send_all(client.get(), hello_bytes(), deadline_in(Millis(3000))));
        // NGINX read passgate's header: the client's address, and the address it connected to.
        CHECK(read_line(client.get()) ==
              "client=" + client_name + " server=127.0.0.1:" + std::to_string(haproxy.port()));
        // The access log names the client, not HAProxy.
        CHECK(passgate.wait_for_client_log(client_name, "route=corpus"));
    }
    CHECK(wait_until([&] { return passgate.metric({"passgate_upstream_connections_total"}) == 3.0; },
                     Millis(3000)));

    // The listener's deny, on the carried address: closed after the header, before any backend.
    Socket denied = connect_bound_to("127.0.0.66", haproxy.port());
    REQUIRE(denied);
    const std::string denied_name = local_name(denied.get());
    CHECK(send_all(denied.get(), hello_bytes(), deadline_in(Millis(3000))));
    check_closed_quietly(denied.get());
    CHECK(passgate.wait_for_client_log(denied_name, "reason=denied"));
    CHECK(wait_until([&] {
        return metric_sample(passgate, "passgate_downstream_connections_refused_total{listener=\"tls\",reason=\"denied\"}") == 1.0;
    }, Millis(3000)));
    CHECK(passgate.metric({"passgate_upstream_connections_total"}) == 3.0);
    // HAProxy's headers were all accepted.
    CHECK(passgate.metric({"passgate_proxy_protocol_rejected_total"}) == 0.0);
    stop_and_check(passgate);
}

TEST_CASE("PROXY headers: untrusted peers, missing, malformed and late headers are closed and counted",
          "[integration][proxy_protocol]") {
    require_nginx();
    TempDir dir;
    NginxProxyProtocolEcho nginx(dir);
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {config_for(port, nginx.port(), ""), {}, 2});
    REQUIRE(passgate.wait_ready());

    // A peer that is not a trusted proxy: closed at accept, nothing read.
    Socket untrusted = connect_bound_to("127.0.0.9", port);
    REQUIRE(untrusted);
    const std::string untrusted_name = local_name(untrusted.get());
    check_closed_quietly(untrusted.get());
    CHECK(passgate.wait_for_client_log(untrusted_name, "reason=proxy_untrusted"));
    CHECK(proxy_rejected_reaches(passgate, "untrusted", 1));

    // A trusted peer that sends the hello without a header.
    Socket missing = connect_to(port);
    REQUIRE(missing);
    const std::string missing_name = local_name(missing.get());
    CHECK(send_all(missing.get(), hello_bytes(), deadline_in(Millis(3000))));
    check_closed_quietly(missing.get());
    CHECK(passgate.wait_for_client_log(missing_name, "reason=proxy_missing"));
    CHECK(proxy_rejected_reaches(passgate, "missing", 1));

    // Malformed: a v1 address with a leading zero; a v2 header of version 3.
    const std::vector<std::vector<std::uint8_t>> malformed = {
        concat(bytes_of("PROXY TCP4 192.0.2.01 127.0.0.1 40000 443\r\n"), hello_bytes()),
        concat({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x31, 0x11, 0x00, 0x0C,
                192, 0, 2, 1, 127, 0, 0, 1, 0x9C, 0x40, 0x01, 0xBB},
               hello_bytes())};
    for (const std::vector<std::uint8_t>& bytes : malformed) {
        Socket client = connect_to(port);
        REQUIRE(client);
        const std::string name = local_name(client.get());
        CHECK(send_all(client.get(), bytes, deadline_in(Millis(3000))));
        check_closed_quietly(client.get());
        CHECK(passgate.wait_for_client_log(name, "reason=proxy_malformed"));
    }
    CHECK(proxy_rejected_reaches(passgate, "malformed", 2));

    // Half a header, then nothing: client_hello_timeout (1 s) covers the header too.
    Socket slow = connect_to(port);
    REQUIRE(slow);
    const std::string slow_name = local_name(slow.get());
    CHECK(send_all(slow.get(), bytes_of("PROXY TCP4 192.0.2.1 "), deadline_in(Millis(3000))));
    const CloseObservation timed_out = wait_closed(slow.get(), Millis(5000));
    CHECK(timed_out.closed);
    CHECK(timed_out.after >= Millis(900));
    CHECK(passgate.wait_for_client_log(slow_name, "reason=proxy_timeout"));
    CHECK(proxy_rejected_reaches(passgate, "timeout", 1));
    CHECK(metric_sample(passgate, "passgate_downstream_connections_closed_total{listener=\"tls\",reason=\"proxy_timeout\"}") == 1.0);
    // None of them reached a backend.
    CHECK(passgate.metric({"passgate_upstream_connections_total"}) == 0.0);

    // A v1 header trickling in, its end in the same write as the hello: the header's addresses,
    // the destination included, go on to the backend; no hello byte is lost.
    {
        Socket client = connect_to(port);
        REQUIRE(client);
        CHECK(send_all(client.get(), bytes_of("PROXY TCP4 203.0.113.9 198.5"), deadline_in(Millis(3000))));
        std::this_thread::sleep_for(Millis(50));
        CHECK(send_all(client.get(), concat(bytes_of("1.100.1 40000 443\r\n"), hello_bytes()),
                       deadline_in(Millis(3000))));
        CHECK(read_line(client.get()) == "client=203.0.113.9:40000 server=198.51.100.1:443");
        CHECK(passgate.wait_for_client_log("203.0.113.9:40000", "route=corpus"));
    }
    // v2 LOCAL (the balancer's own health check): the socket's addresses stand.
    {
        Socket client = connect_to(port);
        REQUIRE(client);
        const std::string name = local_name(client.get());
        const std::vector<std::uint8_t> local = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                                 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};
        CHECK(send_all(client.get(), concat(local, hello_bytes()), deadline_in(Millis(3000))));
        CHECK(read_line(client.get()) == "client=" + name + " server=127.0.0.1:" + std::to_string(port));
        CHECK(passgate.wait_for_client_log(name, "route=corpus"));
    }
    CHECK(passgate.metric({"passgate_proxy_protocol_rejected_total"}) == 5.0);
    stop_and_check(passgate);
}
