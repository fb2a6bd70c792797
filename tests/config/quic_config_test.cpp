// Config keys of QUIC listeners: [[listener]] protocol, quic_flow_idle_timeout, and
// [runtime] max_quic_flows_per_worker; what QUIC refuses.

#include "config/config.h"
#include "tests/config/config_error.h"

#include <catch2/catch.hpp>

#include <string>

using namespace passgate::config;

namespace {

// Lines: 1 [[listener]] 2 name 3 address 4 protocol, then from line 5 `listener_lines`; then a
// route and a service (`service_lines` from the service's line 3 on).
std::string quic_config(const std::string& listener_lines, const std::string& service_lines = "",
                        const std::string& protocol = "quic") {
    return "[[listener]]\nname = \"h3\"\naddress = \"127.0.0.1:443\"\nprotocol = \"" + protocol + "\"\n" +
           listener_lines + "\n" +
           "[[route]]\nname = \"r\"\nlisteners = [\"h3\"]\nbackends = [{ service = \"s\" }]\n" +
           "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:8443\"]\n" + service_lines;
}

using passgate::config::testing::error_of;

}  // namespace

TEST_CASE("protocol: tls by default, quic on request, with its idle timeout", "[config][quic]") {
    const Config plain = parse_config(quic_config("", "", "tls"), "t.toml");
    CHECK(plain.listeners.at(0).protocol == ListenerProtocol::tls);
    CHECK(plain.runtime.max_quic_flows_per_worker == 16384);
    const Config quic = parse_config(quic_config(""), "t.toml");
    CHECK(quic.listeners.at(0).protocol == ListenerProtocol::quic);
    CHECK(quic.listeners.at(0).quic_flow_idle_timeout == std::chrono::seconds(30));
    const Config tuned = parse_config("[runtime]\nmax_quic_flows_per_worker = 100\n" +
                                          quic_config("quic_flow_idle_timeout = \"5s\""),
                                      "t.toml");
    CHECK(tuned.listeners.at(0).quic_flow_idle_timeout == std::chrono::seconds(5));
    CHECK(tuned.runtime.max_quic_flows_per_worker == 100);
}

TEST_CASE("protocol: a TLS and a QUIC listener may share an address; two QUIC ones may not",
          "[config][quic]") {
    const std::string tls = "[[listener]]\nname = \"tls\"\naddress = \"0.0.0.0:443\"\n";
    const std::string shared = tls + "[[listener]]\nname = \"h3\"\naddress = \"0.0.0.0:443\"\nprotocol = \"quic\"\n" +
                               "[[route]]\nname = \"r\"\nlisteners = [\"tls\", \"h3\"]\nbackends = [{ service = \"s\" }]\n" +
                               "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:8443\"]\n";
    CHECK(parse_config(shared, "t.toml").listeners.size() == 2);
    const std::string overlapping =
        "[[listener]]\nname = \"a\"\naddress = \"0.0.0.0:443\"\nprotocol = \"quic\"\n"
        "[[listener]]\nname = \"h3\"\naddress = \"127.0.0.1:443\"\nprotocol = \"quic\"\n"
        "[[route]]\nname = \"r\"\nlisteners = [\"a\"]\nbackends = [{ service = \"s\" }]\n"
        "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:8443\"]\n";
    CHECK(error_of(overlapping).starts_with("t.toml:7: listener[1].address: 127.0.0.1:443 overlaps 0.0.0.0:443"));
}

TEST_CASE("protocol: what does not apply to QUIC is refused at its line", "[config][quic][errors]") {
    CHECK(error_of(quic_config("", "", "udp")) ==
          "t.toml:4: listener[0].protocol: unknown protocol \"udp\" (\"tls\" or \"quic\")");
    CHECK(error_of(quic_config("accept_proxy_protocol = true\ntrusted_proxies = [\"10.0.0.0/8\"]")) ==
          "t.toml:5: listener[0].accept_proxy_protocol: does not apply to protocol = \"quic\" (UDP has no "
          "stream to carry a PROXY header)");
    CHECK(error_of(quic_config("", "send_proxy_protocol = \"v2\"\n")) ==
          "t.toml:9: route[0].backends: service \"s\" (line 10) sends a PROXY protocol header, which QUIC "
          "listener \"h3\" cannot: its backends get the client's datagrams unchanged");
    CHECK(error_of(quic_config("quic_flow_idle_timeout = \"5s\"", "", "tls")) ==
          "t.toml:5: listener[0].quic_flow_idle_timeout: only applies with protocol = \"quic\"");
    CHECK(error_of(quic_config("defer_accept = false")) ==
          "t.toml:5: listener[0].defer_accept: does not apply to protocol = \"quic\" (UDP has no accept)");
}
