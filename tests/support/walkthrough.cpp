#include "tests/support/walkthrough.h"

#include "tests/support/net.h"

#include <catch2/catch.hpp>

#include <vector>

namespace integration {

// The walkthrough's three openssl commands, verbatim, run in `dir`.
void make_walkthrough_certificates(const TempDir& dir) {
    const std::vector<std::vector<std::string>> commands = {
        {"openssl", "req", "-x509", "-sha256", "-nodes", "-days", "365", "-newkey", "rsa:2048",
         "-subj", "/O=example Inc./CN=example.com", "-keyout", "example.com.key", "-out",
         "example.com.crt"},
        {"openssl", "req", "-out", "passthrough.example.com.csr", "-newkey", "rsa:2048", "-nodes",
         "-keyout", "passthrough.example.com.key", "-subj",
         "/CN=passthrough.example.com/O=some organization"},
        {"openssl", "x509", "-req", "-sha256", "-days", "365", "-CA", "example.com.crt", "-CAkey",
         "example.com.key", "-set_serial", "0", "-in", "passthrough.example.com.csr", "-out",
         "passthrough.example.com.crt"},
    };
    int step = 0;
    for (const auto& command : commands) {
        const RunResult result = run(command, dir, "openssl-" + std::to_string(step++));
        INFO("openssl " << command[1] << " stderr:\n" << result.err);
        REQUIRE(result.status == 0);
    }
}

HttpsBackend::HttpsBackend(const TempDir& dir) : port(free_port()) {
        SpawnOptions options;
        options.argv = {"openssl", "s_server", "-accept", std::to_string(port), "-cert",
                        "passthrough.example.com.crt", "-key", "passthrough.example.com.key",
                        "-www", "-quiet"};
        options.cwd = dir.path().string();
        options.stdout_path = dir.file("s_server.out");
        options.stderr_path = dir.file("s_server.err");
        process = std::make_unique<Process>(options);
        const bool up = wait_until([&] { return !process->running() || port_accepts(port); },
                                   Millis(10000), Millis(20)) &&
                        process->running();
        INFO("s_server stderr:\n" << process->stderr_text());
        REQUIRE(up);
}

RunResult curl(const TempDir& dir, const std::string& host, std::uint16_t port, int attempt,
               const std::string& address) {
    const std::string p = std::to_string(port);
    return run({"curl", "-sS", "-v", "--resolve", host + ":" + p + ":" + address, "--cacert",
                "example.com.crt", "https://" + host + ":" + p + "/"},
               dir, "curl-" + std::to_string(attempt), Millis(20000));
}

void check_walkthrough_reply(const RunResult& result) {
    INFO("curl stderr:\n" << result.err << "\ncurl stdout:\n" << result.out.substr(0, 2000));
    REQUIRE(result.status == 0);
    // The certificate curl verified is the backend's own: passgate passed TLS through untouched.
    CHECK(result.err.find("subject: CN=passthrough.example.com; O=some organization") != std::string::npos);
    CHECK(result.err.find("issuer: O=example Inc.; CN=example.com") != std::string::npos);
    CHECK(result.err.find("SSL certificate verify ok") != std::string::npos);
    // And the body is s_server -www's status page.
    CHECK(result.out.find("s_server -accept") != std::string::npos);
    CHECK(result.out.find("Ciphers supported in s_server binary") != std::string::npos);
}

}  // namespace integration
