#pragma once
// The Envoy Gateway "TLS passthrough" guide's pieces for tests that run it end to end: its
// certificates (the guide's three openssl commands), the application that terminates TLS
// (`openssl s_server -www` with the guide's certificate) and its curl check.

#include "tests/support/process.h"

#include <cstdint>
#include <memory>
#include <string>

namespace integration {

// The guide's three openssl commands, verbatim, run in `dir`.
void make_walkthrough_certificates(const TempDir& dir);

// The HTTPS backend: openssl s_server -www on a free port of 127.0.0.1, up and accepting.
struct HttpsBackend {
    explicit HttpsBackend(const TempDir& dir);
    std::uint16_t port = 0;
    std::unique_ptr<Process> process;
};

// curl -v --resolve HOST:PORT:ADDRESS --cacert example.com.crt https://HOST:PORT/ (in `dir`).
RunResult curl(const TempDir& dir, const std::string& host, std::uint16_t port, int attempt,
               const std::string& address = "127.0.0.1");

// curl succeeded and saw the backend's own certificate and s_server's page.
void check_walkthrough_reply(const RunResult& result);

}  // namespace integration
