// PROXY protocol to backends, checked by a real peer: NGINX listens with `proxy_protocol` and
// answers with the client and server addresses it read from passgate's header (nginx_echo.h).
// The client binds 127.0.0.7 so its address is not passgate's own.

#include "tests/support/net.h"
#include "tests/support/nginx_echo.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace integration;

namespace {

std::string config_for(std::uint16_t listen_port, std::uint16_t backend_port, const char* version) {
    return "[admin]\naddress = \"@ADMIN@\"\n[access_log]\nenabled = false\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n"
           "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"*.corpus.test\"]\n"
           "backends = [ { service = \"nginx\" } ]\n"
           "[[service]]\nname = \"nginx\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n"
           "send_proxy_protocol = \"" + version + "\"\n";
}

}  // namespace

TEST_CASE("PROXY protocol v1 and v2 to a backend: NGINX reads the real client address",
          "[integration][proxy_protocol]") {
    if (!std::filesystem::exists(NginxProxyProtocolEcho::stream_module)) FAIL("nginx stream module missing: apt-get install nginx libnginx-mod-stream");
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
        Socket client = connect_bound_to("127.0.0.7", port);
        REQUIRE(client);
        REQUIRE(send_all(client.get(), hello.bytes, deadline_in(Millis(2000))));
        const std::string line = read_line(client.get());
        CHECK(line == "client=" + local_name(client.get()) + " server=127.0.0.1:" + std::to_string(port));
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
