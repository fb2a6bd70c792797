// The process's life: signals, --check, --version, and a listener port that is already taken.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>

#include <filesystem>

using namespace integration;

namespace {

std::string simple_config(std::uint16_t listen_port, std::uint16_t backend_port) {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n\n"
           "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"*.corpus.test\"]\n"
           "backends = [ { service = \"echo\" } ]\n\n"
           "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n";
}

void check_no_sanitizer_report(const std::string& text) {
    INFO("stderr:\n" << text);
    CHECK(sanitizer_report(text).empty());
}

}  // namespace

namespace {

// A forwarding connection through passgate, checked by one echo round trip.
Socket open_forwarding_connection(std::uint16_t port) {
    const CapturedHello& hello = captured_hello("python3-ssl.bin");
    Socket client = connect_to(port);
    REQUIRE(client);
    REQUIRE(send_all(client.get(), hello.bytes, deadline_in(Millis(2000))));
    std::vector<std::uint8_t> echoed(hello.bytes.size());
    REQUIRE(recv_exact(client.get(), echoed.data(), echoed.size(), deadline_in(Millis(3000))));
    CHECK(byte_difference(echoed, hello.bytes) == "");
    return client;
}

}  // namespace

TEST_CASE("lifecycle: SIGTERM/SIGINT drain open connections up to shutdown_timeout, then exit 0",
          "[integration][lifecycle]") {
    const int signal = GENERATE(SIGTERM, SIGINT);
    INFO("signal " << signal);
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {"[runtime]\nshutdown_timeout = \"800ms\"\n" +
                               simple_config(port, backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());
    Socket client = open_forwarding_connection(port);

    const Clock::time_point start = Clock::now();
    passgate.process().send_signal(signal);
    // Accepting stops at once; the open connection keeps forwarding meanwhile.
    REQUIRE(wait_until([&] { return !port_accepts(port); }, Millis(2000)));
    const std::string ping = "still forwarding";
    REQUIRE(send_all(client.get(), std::vector<std::uint8_t>(ping.begin(), ping.end()),
                     deadline_in(Millis(1000))));
    std::vector<std::uint8_t> echoed(ping.size());
    REQUIRE(recv_exact(client.get(), echoed.data(), echoed.size(), deadline_in(Millis(1000))));
    CHECK(std::string(echoed.begin(), echoed.end()) == ping);

    const std::optional<int> status = passgate.process().wait_exit(Millis(5000));
    const auto took = std::chrono::duration_cast<Millis>(Clock::now() - start);
    const std::string log = passgate.stderr_text();
    INFO("stopped after " << took.count() << " ms; stderr:\n" << log);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    CHECK(took >= Millis(700));  // it waited for the connection...
    CHECK(took < Millis(3000));  // ...but not past shutdown_timeout
    CHECK(log.find(", draining ") != std::string::npos);  // (a readiness probe may still count)
    CHECK(log.find("closing 1 connections still open at shutdown_timeout") != std::string::npos);
    CHECK(log.find("passgate[info] stopped") != std::string::npos);
    CHECK(wait_closed(client.get(), Millis(2000)).closed);
    check_no_sanitizer_report(log);
}

TEST_CASE("lifecycle: a drain ends as soon as the last connection ends; a second SIGTERM closes at once",
          "[integration][lifecycle]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {simple_config(port, backend.port()), {}, 2});  // shutdown_timeout 30s
    REQUIRE(passgate.wait_ready());

    SECTION("the client closes: passgate exits right after") {
        Socket client = open_forwarding_connection(port);
        const Clock::time_point start = Clock::now();
        passgate.process().send_signal(SIGTERM);
        REQUIRE(wait_until([&] { return !port_accepts(port); }, Millis(2000)));
        client.reset();
        const std::optional<int> status = passgate.process().wait_exit(Millis(5000));
        INFO(passgate.stderr_text());
        REQUIRE(status.has_value());
        CHECK(*status == 0);
        CHECK(Clock::now() - start < Millis(3000));
    }
    SECTION("a second SIGTERM") {
        Socket client = open_forwarding_connection(port);
        passgate.process().send_signal(SIGTERM);
        REQUIRE(wait_until([&] { return !port_accepts(port); }, Millis(2000)));
        check_second_sigterm_stops_at_once(passgate, client.get());
    }
}

TEST_CASE("lifecycle: --check on a valid config exits 0 and describes listener and route",
          "[integration][lifecycle]") {
    TempDir dir;
    const std::string path = dir.file("valid.toml");
    std::string config = simple_config(8443, 9443);
    config.replace(config.find("@ADMIN@"), 7, "127.0.0.1:9901");
    write_file(path, config);
    const RunResult result = run({passgate_binary(), "--check", "--config", path}, dir, "check");
    INFO("stdout:\n" << result.out << "\nstderr:\n" << result.err);
    REQUIRE(result.status == 0);
    CHECK(result.out.find(path + ": OK") != std::string::npos);
    CHECK(result.out.find("tls 127.0.0.1:8443") != std::string::npos);
    CHECK(result.out.find("route corpus: *.corpus.test") != std::string::npos);
    CHECK(result.out.find("echo: 127.0.0.1:9443") != std::string::npos);
    check_no_sanitizer_report(result.err);
}

TEST_CASE("lifecycle: --check on an invalid config exits 1 with FILE:LINE: first",
          "[integration][lifecycle]") {
    struct Case {
        const char* name;
        int line;
        const char* text;
        const char* message;
    };
    const Case bad = GENERATE(
        Case{"unknown service", 9,
             "[[listener]]\n"                                  // 1
             "name = \"tls\"\n"                                // 2
             "address = \"127.0.0.1:8443\"\n"                  // 3
             "\n"                                              // 4
             "[[route]]\n"                                     // 5
             "name = \"r\"\n"                                  // 6
             "listeners = [\"tls\"]\n"                         // 7
             "hostnames = [\"a.example.com\"]\n"               // 8
             "backends = [ { service = \"missing\" } ]\n"      // 9
             "\n"                                              // 10
             "[[service]]\n"                                   // 11
             "name = \"s\"\n"                                  // 12
             "endpoints = [\"127.0.0.1:9443\"]\n",             // 13
             "missing"},
        Case{"bad duration", 4,
             "[[listener]]\n"                                  // 1
             "name = \"tls\"\n"                                // 2
             "address = \"127.0.0.1:8443\"\n"                  // 3
             "client_hello_timeout = \"soon\"\n"               // 4
             "\n"                                              // 5
             "[[route]]\n"                                     // 6
             "name = \"r\"\n"                                  // 7
             "listeners = [\"tls\"]\n"                         // 8
             "backends = [ { service = \"s\" } ]\n"            // 9
             "\n"                                              // 10
             "[[service]]\n"                                   // 11
             "name = \"s\"\n"                                  // 12
             "endpoints = [\"127.0.0.1:9443\"]\n",             // 13
             "client_hello_timeout"});
    INFO("case: " << bad.name);
    TempDir dir;
    const std::string path = dir.file("invalid.toml");
    write_file(path, bad.text);
    const RunResult result = run({passgate_binary(), "--check", "--config", path}, dir, "check");
    INFO("stdout:\n" << result.out << "\nstderr:\n" << result.err);
    REQUIRE(result.status == 1);
    const std::string prefix = path + ":" + std::to_string(bad.line) + ":";
    CHECK(result.err.rfind(path + ":", 0) == 0);
    CHECK(result.err.rfind(prefix, 0) == 0);
    CHECK(result.err.find(bad.message) != std::string::npos);
    check_no_sanitizer_report(result.err);
}

namespace {
// A config following the guide's Service through a kubeconfig next to it (relative path), and
// that kubeconfig, whose CA is `ca_file` (relative to the kubeconfig) and whose user has a token.
constexpr const char* kCheckToken = "check-token-7c1d-SECRET";
void write_kubernetes_files(const TempDir& dir, const std::string& ca_file) {
    write_file(dir.file("passgate.toml"),
               "[kubernetes]\n"                                                     // 1
               "kubeconfig = \"kubeconfig\"\n\n"                                    // 2
               "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:8443\"\n\n"
               "[[route]]\nname = \"passthrough\"\nlisteners = [\"tls\"]\n"
               "hostnames = [\"passthrough.example.com\"]\n"
               "backends = [ { service = \"echo\" } ]\n\n"
               "[[service]]\nname = \"echo\"\n"
               "kubernetes = { namespace = \"default\", service = \"passthrough-echoserver\", port = 443 }\n");
    write_file(dir.file("kubeconfig"),
               "apiVersion: v1\nkind: Config\ncurrent-context: edge\n"
               "clusters:\n- name: prod\n  cluster:\n    server: https://127.0.0.1:6443\n"
               "    certificate-authority: " + ca_file + "\n"
               "contexts:\n- name: edge\n  context:\n    cluster: prod\n    user: passgate\n"
               "users:\n- name: passgate\n  user:\n    token: " + std::string(kCheckToken) + "\n");
}
}  // namespace

TEST_CASE("lifecycle: --check loads the kubeconfig without contacting the API server; a broken one fails naming the file",
          "[integration][lifecycle][kubernetes]") {
    TempDir dir;
    const RunResult ca = run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                              "-nodes", "-keyout", dir.file("ca.key"), "-out", dir.file("ca.pem"), "-days", "2",
                              "-subj", "/CN=passgate-test-ca"},
                             dir, "req");
    INFO(ca.err);
    REQUIRE(ca.status == 0);
    const std::string config = dir.file("passgate.toml");
    const std::string kubeconfig = dir.file("kubeconfig");

    write_kubernetes_files(dir, "ca.pem");
    const RunResult good = run({passgate_binary(), "--check", "--config", config}, dir, "check-good");
    INFO("stdout:\n" << good.out << "\nstderr:\n" << good.err);
    CHECK(good.status == 0);
    CHECK(good.out.find("  echo: kubernetes default/passthrough-echoserver port 443\n") != std::string::npos);
    CHECK(good.out.find("kubernetes: kubeconfig " + kubeconfig +
                        " (context edge: cluster prod, user passgate): credentials OK (the API server was not "
                        "contacted)\n") != std::string::npos);
    check_no_sanitizer_report(good.err);

    const RunResult route = run({passgate_binary(), "route", "--config", config, "--sni", "passthrough.example.com"},
                                dir, "route");
    INFO("route stdout:\n" << route.out << "\nstderr:\n" << route.err);
    CHECK(route.status == 0);
    CHECK(route.out.find("endpoints from kubernetes default/passthrough-echoserver port 443") != std::string::npos);

    // The CA is the key: not a certificate. The error names both files and never the token.
    write_kubernetes_files(dir, "ca.key");
    const RunResult broken = run({passgate_binary(), "--check", "--config", config}, dir, "check-broken");
    INFO("stdout:\n" << broken.out << "\nstderr:\n" << broken.err);
    CHECK(broken.status == 1);
    CHECK(broken.err.rfind(config + ":1: kubernetes: kubeconfig " + kubeconfig +
                               ": clusters[0].cluster: certificate-authority " + dir.file("ca.key") +
                               ": not a PEM certificate\n",
                           0) == 0);
    CHECK(broken.err.find(kCheckToken) == std::string::npos);
    CHECK(broken.out.find("credentials OK") == std::string::npos);
    check_no_sanitizer_report(broken.err);

    std::filesystem::remove(kubeconfig);
    const RunResult absent = run({passgate_binary(), "--check", "--config", config}, dir, "check-absent");
    INFO("stderr:\n" << absent.err);
    CHECK(absent.status == 1);
    CHECK(absent.err.find("kubeconfig " + kubeconfig + ": cannot read: No such file or directory") != std::string::npos);
}

TEST_CASE("lifecycle: --version exits 0 and prints the name", "[integration][lifecycle]") {
    TempDir dir;
    const RunResult result = run({passgate_binary(), "--version"}, dir, "version");
    INFO("stdout:\n" << result.out << "\nstderr:\n" << result.err);
    REQUIRE(result.status == 0);
    CHECK(result.out.rfind("passgate ", 0) == 0);
    check_no_sanitizer_report(result.err);
}

TEST_CASE("lifecycle: a listener port already in use stops start-up, naming the listener",
          "[integration][lifecycle]") {
    TempDir dir;
    // Held by the test without SO_REUSEPORT, so passgate's SO_REUSEPORT bind cannot share it.
    std::uint16_t taken = 0;
    Socket holder = listen_on_loopback(8, taken);

    Passgate passgate(dir, {simple_config(taken, 9), {}, 2});
    const std::optional<int> status = passgate.process().wait_exit(Millis(5000));
    const std::string log = passgate.stderr_text();
    INFO("stderr:\n" << log);
    REQUIRE(status.has_value());
    CHECK(*status != 0);
    CHECK(log.find("listener \"tls\"") != std::string::npos);
    CHECK(log.find("127.0.0.1:" + std::to_string(taken)) != std::string::npos);
    check_no_sanitizer_report(log);
}

// PASSGATE_IO_URING=baseline (the meson suite `fallback` runs this binary with it) forces the
// set-up of kernels before 6.1; without it this kernel (6.x) gets the best set-up. Either way the
// workers say which they got, and the connection above the fallback paths still forwards.
TEST_CASE("lifecycle: the workers run the io_uring set-up PASSGATE_IO_URING asks for", "[integration][lifecycle]") {
    TempDir dir;
    EchoBackend backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {simple_config(port, backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());
    Socket client = open_forwarding_connection(port);
    REQUIRE(passgate.wait_for_log("worker 1: io_uring "));
    const std::vector<std::string> lines = passgate.log_lines_with({"] worker ", ": io_uring sq="});
    INFO("stderr:\n" << passgate.stderr_text());
    REQUIRE(lines.size() == 2);
    const char* mode = std::getenv("PASSGATE_IO_URING");
    const bool baseline = mode != nullptr && std::string(mode) == "baseline";
    for (const std::string& line : lines) {
        if (baseline) {
            CHECK(line.find("oneshot_accept (baseline forced by PASSGATE_IO_URING)") != std::string::npos);
            CHECK(line.find("single_issuer") == std::string::npos);
            CHECK(line.find("taskrun") == std::string::npos);
        } else {
            CHECK(line.find("single_issuer defer_taskrun") != std::string::npos);
            CHECK(line.find("multishot_accept") != std::string::npos);
        }
    }
    client.reset();
    stop_and_check(passgate);
}

TEST_CASE("lifecycle: an unknown PASSGATE_IO_URING value is refused at start", "[integration][lifecycle]") {
    TempDir dir;
    const std::uint16_t port = free_port();
    PassgateOptions options{simple_config(port, free_port()), {}, 2};
    // passgate inherits this process's environment; the suite's own value is put back after.
    const char* suite_value = std::getenv("PASSGATE_IO_URING");
    const std::optional<std::string> saved = suite_value ? std::optional<std::string>(suite_value) : std::nullopt;
    REQUIRE(::setenv("PASSGATE_IO_URING", "fast", 1) == 0);
    Passgate passgate(dir, options);
    if (saved) REQUIRE(::setenv("PASSGATE_IO_URING", saved->c_str(), 1) == 0);
    else REQUIRE(::unsetenv("PASSGATE_IO_URING") == 0);
    REQUIRE(passgate.process().wait_exit(Millis(5000)) == 1);
    CHECK(passgate.stderr_text().find("environment variable PASSGATE_IO_URING=\"fast\": the only value is \"baseline\"") !=
          std::string::npos);
}
