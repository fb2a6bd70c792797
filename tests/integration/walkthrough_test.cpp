// The Envoy Gateway "TLS passthrough" walkthrough, end to end with real processes: openssl makes
// the certificates exactly as the walkthrough does, `openssl s_server -www` terminates TLS behind
// passgate, and curl checks that the certificate it sees is the backend's.

#include "tests/support/kube_api_server.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"
#include "tests/support/walkthrough.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

using namespace integration;

namespace {

std::string walkthrough_config(std::uint16_t listen_port, std::uint16_t backend_port) {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n\n"
           "[[route]]\nname = \"passthrough\"\nlisteners = [\"tls\"]\n"
           "hostnames = [\"passthrough.example.com\"]\n"
           "backends = [ { service = \"passthrough-echoserver\" } ]\n\n"
           "[[service]]\nname = \"passthrough-echoserver\"\n"
           "endpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n";
}

}  // namespace

TEST_CASE("walkthrough: curl reaches the s_server behind passgate and sees its certificate",
          "[integration][walkthrough]") {
    TempDir dir;
    make_walkthrough_certificates(dir);
    HttpsBackend backend(dir);
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {walkthrough_config(port, backend.port), {}, 2});
    REQUIRE(passgate.wait_ready());

    constexpr int rounds = 20;
    for (int attempt = 0; attempt < rounds; ++attempt) {
        INFO("curl attempt " << attempt + 1 << " of " << rounds);
        check_walkthrough_reply(curl(dir, "passthrough.example.com", port, attempt));
    }
    // The access log has one line per connection, parsed back: all 20 completed, on the
    // walkthrough's route, service and endpoint, with the SNI and curl's ALPN offer.
    const auto completed = [&] {
        return passgate.log_lines_with({" reason=completed ", " sni=passthrough.example.com ",
                                        " route=passthrough ", " service=passthrough-echoserver ",
                                        " alpn=h2,http/1.1 ", " listener=tls "});
    };
    CHECK(wait_until([&] { return completed().size() == static_cast<std::size_t>(rounds); },
                     Millis(3000)));
    CHECK(completed().size() == static_cast<std::size_t>(rounds));
    for (const std::string& line : completed()) {
        CHECK(line.find(" endpoint=127.0.0.1:" + std::to_string(backend.port) + " ") != std::string::npos);
        CHECK(line.find(" bytes_to_backend=0 ") == std::string::npos);
        CHECK(line.find(" bytes_to_client=0 ") == std::string::npos);
    }
    CHECK(passgate.failed_connection_lines().empty());
    stop_and_check(passgate);
}

TEST_CASE("walkthrough: an unrouted SNI is closed with reason=no_route, the routed one still works",
          "[integration][walkthrough]") {
    TempDir dir;
    make_walkthrough_certificates(dir);
    HttpsBackend backend(dir);
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {walkthrough_config(port, backend.port), {}, 2});
    REQUIRE(passgate.wait_ready());

    const RunResult other = curl(dir, "other.example.com", port, 0);
    INFO("curl stderr:\n" << other.err);
    REQUIRE(other.status.has_value());
    CHECK(*other.status != 0);
    const bool logged = wait_until(
        [&] { return !passgate.log_lines_with({"reason=no_route", "sni=other.example.com"}).empty(); },
        Millis(3000));
    INFO("passgate stderr:\n" << passgate.stderr_text());
    CHECK(logged);

    check_walkthrough_reply(curl(dir, "passthrough.example.com", port, 1));
    stop_and_check(passgate);
}

// Issue 8's typical use of ALPN routing: TLS-ALPN-01 certificate challenges (acme-tls/1) go to an
// ACME responder, everything else for the same hostname to the application.
TEST_CASE("ALPN routing: acme-tls/1 goes to the ACME responder, h2 and http/1.1 to the app",
          "[integration][walkthrough][alpn]") {
    TempDir dir;
    make_walkthrough_certificates(dir);
    HttpsBackend app(dir);
    EchoBackend acme;  // stands in for the ACME responder: records the hello it received
    const std::uint16_t port = free_port();
    const std::string config =
        walkthrough_config(port, app.port) +
        "\n[[route]]\nname = \"acme\"\nlisteners = [\"tls\"]\n"
        "hostnames = [\"passthrough.example.com\"]\nalpn = [\"acme-tls/1\"]\n"
        "backends = [ { service = \"acme-responder\" } ]\n\n"
        "[[service]]\nname = \"acme-responder\"\nendpoints = [\"127.0.0.1:" +
        std::to_string(acme.port()) + "\"]\n";
    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());

    for (const std::string http : {"--http2", "--http1.1"}) {
        const std::string p = std::to_string(port);
        const RunResult result =
            run({"curl", "-sS", "-v", http, "--resolve", "passthrough.example.com:" + p + ":127.0.0.1",
                 "--cacert", "example.com.crt", "https://passthrough.example.com:" + p + "/"},
                dir, "curl" + http, Millis(20000));
        INFO(http);
        check_walkthrough_reply(result);
    }
    CHECK(acme.accepted() == 0);

    // openssl s_client offering only acme-tls/1: the hello reaches the responder, byte for byte
    // what s_client sent (the echo backend sends it back, so s_client's handshake fails; that
    // is expected here).
    const RunResult challenge =
        run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-servername",
             "passthrough.example.com", "-alpn", "acme-tls/1"},
            dir, "s_client-acme", Millis(10000));
    REQUIRE(wait_until([&] { return acme.accepted() == 1; }, Millis(3000)));
    CHECK(wait_until([&] {
        return passgate.log_lines_with({" route=acme ", " alpn=acme-tls/1 ",
                                        " sni=passthrough.example.com "}).size() == 1;
    }, Millis(3000)));
    CHECK(passgate.log_lines_with({" route=passthrough ", " reason=completed "}).size() == 2);
    stop_and_check(passgate);
}

// The guide's walkthrough with the backend found the way Envoy Gateway finds it: through the
// Service passthrough-echoserver (port 443, targetPort 8443) and its EndpointSlices, here on the
// test API server (tests/support/kube_api_server.py); the slice carries the pod's real port.
TEST_CASE("walkthrough: curl reaches the s_server found through the Kubernetes Service and sees its certificate",
          "[integration][walkthrough][kubernetes]") {
    TempDir dir;
    make_walkthrough_certificates(dir);
    HttpsBackend backend(dir);
    KubeApiServer api;
    api.put(service_json());
    api.put(endpoint_slice_json("default", "passthrough-echoserver-abcde", "passthrough-echoserver", "https",
                                backend.port, "IPv4", {{"127.0.0.1"}}));
    api.write_kubeconfig(dir.file("kubeconfig"), KubeAuth::token_file);
    const std::uint16_t port = free_port();
    std::string config = walkthrough_config(port, backend.port);
    const std::string endpoints = "endpoints = [\"127.0.0.1:" + std::to_string(backend.port) + "\"]\n";
    config.replace(config.find(endpoints), endpoints.size(),
                   "kubernetes = { namespace = \"default\", service = \"passthrough-echoserver\", port = 443 }\n");
    config = "[kubernetes]\nkubeconfig = \"" + dir.file("kubeconfig") + "\"\n\n" + config;
    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());
    for (int attempt = 0; attempt < 3; ++attempt) check_walkthrough_reply(curl(dir, "passthrough.example.com", port, attempt));
    // `passgate route` names the Service as the source.
    const RunResult route = run({passgate_binary(), "route", "--config", passgate.config_path(), "--sni", "passthrough.example.com"},
                                dir, "route", Millis(10000));
    INFO(route.out << route.err);
    CHECK(route.out.find("kubernetes default/passthrough-echoserver port 443") != std::string::npos);
    stop_and_check(passgate);
}
