// PROXY protocol to backends, checked by a real peer: NGINX (Debian's nginx with the stream
// module) listens with `proxy_protocol` and answers with the client and server addresses it read
// from passgate's header. The client binds 127.0.0.7 so its address is not passgate's own.

#include "tests/integration/net.h"
#include "tests/integration/passgate.h"
#include "tests/integration/process.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

using namespace integration;

namespace {

const char* const stream_module = "/usr/lib/nginx/modules/ngx_stream_module.so";

// NGINX in the foreground, one process, answering every connection with one line.
class NginxProxyProtocolEcho {
public:
    explicit NginxProxyProtocolEcho(const TempDir& dir) : port_(free_port()) {
        const std::string config =
            "load_module " + std::string(stream_module) + ";\n"
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            "pid " + dir.file("nginx.pid") + ";\nerror_log " + dir.file("nginx-error.log") + " info;\n"
            "events { worker_connections 64; }\n"
            "stream {\n  server {\n    listen 127.0.0.1:" + std::to_string(port_) + " proxy_protocol;\n"
            "    return \"client=$proxy_protocol_addr:$proxy_protocol_port "
            "server=$proxy_protocol_server_addr:$proxy_protocol_server_port\\n\";\n  }\n}\n";
        write_file(dir.file("nginx.conf"), config);
        process_ = std::make_unique<Process>(SpawnOptions{
            {"nginx", "-c", dir.file("nginx.conf"), "-p", dir.path().string(), "-e", dir.file("nginx-error.log")},
            dir.file("nginx.out"), dir.file("nginx.err"), dir.path().string()});
        REQUIRE(wait_until([&] { return port_accepts(port_); }, Millis(5000)));
    }
    std::uint16_t port() const { return port_; }

private:
    std::uint16_t port_;
    std::unique_ptr<Process> process_;
};

std::string config_for(std::uint16_t listen_port, std::uint16_t backend_port, const char* version) {
    return "[admin]\naddress = \"@ADMIN@\"\n[access_log]\nenabled = false\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n"
           "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"*.corpus.test\"]\n"
           "backends = [ { service = \"nginx\" } ]\n"
           "[[service]]\nname = \"nginx\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n"
           "send_proxy_protocol = \"" + version + "\"\n";
}

// Connects from 127.0.0.7 and returns the local port used.
Socket connect_from(const char* source_ip, std::uint16_t port, std::uint16_t& local_port) {
    Socket socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in source{};
    source.sin_family = AF_INET;
    inet_pton(AF_INET, source_ip, &source.sin_addr);
    REQUIRE(::bind(socket.get(), reinterpret_cast<sockaddr*>(&source), sizeof source) == 0);
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(socket.get(), reinterpret_cast<sockaddr*>(&target), sizeof target) == 0);
    sockaddr_in bound{};
    socklen_t length = sizeof bound;
    ::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&bound), &length);
    local_port = ntohs(bound.sin_port);
    return socket;
}

std::string read_line(int fd) {
    std::string line;
    char c = 0;
    while (line.size() < 512 && recv_exact(fd, &c, 1, deadline_in(Millis(3000))) && c != '\n') line += c;
    return line;
}

}  // namespace

TEST_CASE("PROXY protocol v1 and v2 to a backend: NGINX reads the real client address",
          "[integration][proxy_protocol]") {
    if (!std::filesystem::exists(stream_module)) FAIL("nginx stream module missing: apt-get install nginx libnginx-mod-stream");
    const char* version = GENERATE("v1", "v2");
    INFO("send_proxy_protocol = " << version);
    TempDir dir;
    NginxProxyProtocolEcho nginx(dir);
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {config_for(port, nginx.port(), version), {}, 2});
    REQUIRE(passgate.wait_ready());

    const CapturedHello& hello = captured_hello("curl-h2.bin");
    std::size_t reply_bytes = 0;
    for (int round = 0; round < 5; ++round) {
        std::uint16_t client_port = 0;
        Socket client = connect_from("127.0.0.7", port, client_port);
        REQUIRE(send_all(client.get(), hello.bytes, deadline_in(Millis(2000))));
        const std::string line = read_line(client.get());
        CHECK(line == "client=127.0.0.7:" + std::to_string(client_port) +
                          " server=127.0.0.1:" + std::to_string(port));
        reply_bytes += line.size() + 1;
    }
    CHECK(wait_until([&] { return passgate.metric({"passgate_upstream_connections_total"}) == 5.0; },
                     Millis(3000)));
    // The header is passgate's, not the client's: bytes forwarded (both directions summed)
    // count the hellos and NGINX's replies only.
    const double expected_bytes = double(5 * hello.bytes.size() + reply_bytes);
    CHECK(wait_until([&] { return passgate.metric({"passgate_bytes_total"}) == expected_bytes; },
                     Millis(3000)));
    INFO("bytes_total " << passgate.metric({"passgate_bytes_total"}).value_or(-1));
    CHECK(passgate.metric({"passgate_bytes_total"}) == expected_bytes);
    // (NGINX's `return` closes with the hello still unread, so each connection ends with the
    // backend's reset: reason=backend_error, as it should be.)
    stop_and_check(passgate);
}
