// Least privilege (issue 7, item 5): passgate refuses to serve as root unless told to, and runs
// as an unprivileged user whose only capability is CAP_NET_BIND_SERVICE, on a port below 1024.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

using namespace integration;

namespace {

std::string echo_config(std::uint16_t listen_port, std::uint16_t backend_port) {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n\n"
           "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [ { service = \"echo\" } ]\n\n"
           "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend_port) + "\"]\n";
}

}  // namespace

TEST_CASE("privilege: as root without --allow-root, passgate exits 1 and names the way out",
          "[integration][privilege]") {
    if (::geteuid() != 0) {
        WARN("skipped: this test runs as uid " << ::geteuid() << ", not root");
        return;
    }
    TempDir dir;
    const std::string path = dir.file("passgate.toml");
    std::string config = echo_config(free_port(), 9);
    config.replace(config.find("@ADMIN@"), 7, "127.0.0.1:" + std::to_string(free_port()));
    write_file(path, config);
    const RunResult result = run({passgate_binary(), "--config", path}, dir, "root", Millis(10000));
    INFO("stdout:\n" << result.out << "\nstderr:\n" << result.err);
    REQUIRE(result.status.has_value());
    CHECK(*result.status == 1);
    CHECK(result.err.find("refusing to run as root") != std::string::npos);
    CHECK(result.err.find("--allow-root") != std::string::npos);
    CHECK(result.err.find("CAP_NET_BIND_SERVICE") != std::string::npos);
    CHECK(sanitizer_report(result.err).empty());

    // --check only reads the config: root may run it.
    const RunResult check = run({passgate_binary(), "--check", "--config", path}, dir, "check", Millis(10000));
    CHECK(check.status == 0);
}

TEST_CASE("privilege: as nobody with only CAP_NET_BIND_SERVICE, passgate serves on a port below 1024",
          "[integration][privilege]") {
    if (::geteuid() != 0) {
        WARN("skipped: needs root to switch to nobody with setpriv");
        return;
    }
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);  // nobody reads its config there
    EchoBackend backend;
    const std::uint16_t port = free_privileged_port(600);
    // As the systemd unit does (User=, AmbientCapabilities=, CapabilityBoundingSet=).
    const PassgateLaunch as_nobody{{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                    "--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service",
                                    "--bounding-set=-all,+net_bind_service"},
                                   false};
    Passgate passgate(dir, {echo_config(port, backend.port()), {}, 2}, "passgate", as_nobody);
    REQUIRE(passgate.wait_ready());

    // The process itself: nobody, and CAP_NET_BIND_SERVICE (bit 10) is all it has or can get.
    const std::string cap_net_bind_service = "0000000000000400";
    CHECK(status_field(passgate.pid(), "Uid") == "65534\t65534\t65534\t65534");
    CHECK(status_field(passgate.pid(), "Gid") == "65534\t65534\t65534\t65534");
    CHECK(status_field(passgate.pid(), "Groups").empty());
    CHECK(status_field(passgate.pid(), "CapEff") == cap_net_bind_service);
    CHECK(status_field(passgate.pid(), "CapPrm") == cap_net_bind_service);
    CHECK(status_field(passgate.pid(), "CapBnd") == cap_net_bind_service);

    INFO("listening on 127.0.0.1:" << port);
    CHECK(echo_round_trip(port, captured_hello("curl-h2.bin").bytes, {'l', 'o', 'w'}).empty());
    CHECK(backend.accepted() == 1);
    INFO("passgate stderr:\n" << passgate.stderr_text());
    CHECK(passgate.failed_connection_lines().empty());
    stop_and_check(passgate);
}
