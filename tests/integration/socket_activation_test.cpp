// Socket activation (issue 17): passgate takes its listening sockets from systemd
// (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES; sd_listen_fds(3)) instead of binding them. The sockets
// are passed by Debian's systemd-socket-activate (package systemd), which binds them, waits for the
// first connection and then execs the command with the variables set exactly as systemd sets them
// for a socket unit (`--fdname=` is FileDescriptorName=). With every socket passed, passgate needs
// no capability at all: it serves on ports below 1024 as nobody with empty capability sets.
// A passed socket that no listener names, or bound to another address than its listener's, or a
// passed descriptor that is not a listening TCP socket, is an error at start (exit 1, the
// documented message). systemd-socket-activate passes only sockets it binds itself: the case of a
// passed regular file sets the variables in a shell that then execs passgate with the file on fd 3.
// The real units under a real systemd: tests/systemd/boot_test.sh.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

using namespace integration;

namespace {

std::string address(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

struct ListenerSpec {
    std::string name;
    std::uint16_t port;
};

// Listeners on 127.0.0.1, all routed to the echo backend; the admin on `admin_port`.
std::string config_for(const std::vector<ListenerSpec>& listeners, std::uint16_t admin_port,
                       std::uint16_t backend_port) {
    std::string config = "[admin]\naddress = \"" + address(admin_port) + "\"\n\n";
    std::string names;
    for (const ListenerSpec& listener : listeners) {
        config += "[[listener]]\nname = \"" + listener.name + "\"\naddress = \"" + address(listener.port) + "\"\n\n";
        names += std::string(names.empty() ? "" : ", ") + "\"" + listener.name + "\"";
    }
    return config + "[[route]]\nname = \"r\"\nlisteners = [" + names + "]\nbackends = [ { service = \"echo\" } ]\n\n" +
           "[[service]]\nname = \"echo\"\nendpoints = [\"" + address(backend_port) + "\"]\n";
}

// systemd-socket-activate passes on only TERM, PATH, USER and HOME; what the test run sets for
// passgate (sanitizer options, the io_uring set-up of the fallback suite) goes with -E.
std::vector<std::string> passed_environment() {
    std::vector<std::string> arguments;
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "PASSGATE_IO_URING"})
        if (const char* value = std::getenv(name)) arguments.push_back(std::string("--setenv=") + name + "=" + value);
    return arguments;
}

struct Activation {
    std::vector<std::string> listen;  // -l ADDRESS, in fd order (3, 4, ...)
    std::string fdnames;              // --fdname=, names separated by ':'; empty: none given
    bool datagram = false;            // -d: UDP sockets instead of listening TCP sockets
};

// systemd-socket-activate [-d] -l ADDRESS... [--fdname=NAMES] -E... COMMAND...
std::vector<std::string> socket_activate(const Activation& activation, const std::vector<std::string>& command) {
    std::vector<std::string> argv = {"systemd-socket-activate"};
    if (activation.datagram) argv.push_back("--datagram");
    for (const std::string& listen : activation.listen) argv.insert(argv.end(), {"--listen", listen});
    if (!activation.fdnames.empty()) argv.push_back("--fdname=" + activation.fdnames);
    const std::vector<std::string> environment = passed_environment();
    argv.insert(argv.end(), environment.begin(), environment.end());
    argv.insert(argv.end(), command.begin(), command.end());
    return argv;
}

std::vector<std::string> passgate_command(const std::string& config_path, bool allow_root) {
    std::vector<std::string> command = {passgate_binary(), "--config", config_path, "--workers", "2"};
    if (allow_root) command.push_back("--allow-root");
    return command;
}

bool systemd_socket_activate_installed() {
    for (const char* directory : {"/usr/bin", "/bin"})
        if (::access((std::string(directory) + "/systemd-socket-activate").c_str(), X_OK) == 0) return true;
    return false;
}

// systemd-socket-activate execs its command at the first connection (or datagram) on one of its
// sockets, as systemd starts a socket-activated service.
void trigger(const Activation& activation) {
    const std::string& first = activation.listen.front();
    const auto port = static_cast<std::uint16_t>(std::stoi(first.substr(first.rfind(':') + 1)));
    if (!activation.datagram) {
        REQUIRE(port_accepts(port, Millis(5000)));
        return;
    }
    // UDP: a datagram; resent until the socket is bound (no error tells when it is not yet).
    Socket sender(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(sender);
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char byte = 'x';
    REQUIRE(::sendto(sender.get(), &byte, 1, 0, reinterpret_cast<sockaddr*>(&target), sizeof target) == 1);
}

struct Outcome {
    std::optional<int> status;  // nullopt: still running after 10 s
    std::string err;
};

// passgate started with `activation`'s sockets (as root, --allow-root: these cases fail before
// privilege matters); its exit status and stderr.
Outcome start_activated(const TempDir& dir, const std::string& name, const Activation& activation,
                        const std::string& config) {
    const std::string config_path = dir.file(name + ".toml");
    write_file(config_path, config);
    SpawnOptions spawn;
    spawn.argv = socket_activate(activation, passgate_command(config_path, true));
    spawn.stderr_path = dir.file(name + ".err");
    spawn.stdout_path = dir.file(name + ".out");
    Process process(spawn);
    // systemd-socket-activate prints "Listening on ADDRESS as N." once its sockets are bound.
    REQUIRE(wait_until([&] { return process.stderr_text().find("Listening on " + activation.listen.back()) != std::string::npos; },
                       Millis(5000)));
    trigger(activation);
    Outcome outcome;
    outcome.status = process.wait_exit(Millis(10000));
    outcome.err = process.stderr_text();
    return outcome;
}

// Root binds the ports and lets setpriv drop to nobody; systemd-socket-activate comes with the
// package systemd (.ci/packages): missing, the test fails rather than passing unseen.
bool runs_here() {
    if (::geteuid() != 0) {
        WARN("skipped: needs root (systemd-socket-activate binds, setpriv drops to nobody)");
        return false;
    }
    REQUIRE(systemd_socket_activate_installed());
    return true;
}

}  // namespace

TEST_CASE("socket activation: with its sockets passed, passgate serves below port 1024 with no capability",
          "[integration][socket_activation]") {
    if (!runs_here()) return;
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);  // nobody reads its config there
    EchoBackend backend;
    const std::uint16_t tls_port = free_privileged_port(700);
    const std::uint16_t admin_port = free_privileged_port(700, tls_port);
    // A listener systemd does not pass is bound by passgate itself, as without socket activation.
    const std::uint16_t bound_port = free_port();
    const std::string config_path = dir.file("passgate.toml");
    write_file(config_path, config_for({{"tls", tls_port}, {"bound", bound_port}}, admin_port, backend.port()));

    // As passgate-activated.service: User=, no capability in any set (CapabilityBoundingSet=).
    std::vector<std::string> command = {"setpriv",       "--reuid=nobody",   "--regid=nogroup",  "--clear-groups",
                                        "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"};
    const std::vector<std::string> passgate = passgate_command(config_path, false);
    command.insert(command.end(), passgate.begin(), passgate.end());
    const Activation activation{{address(tls_port), address(admin_port)}, "tls:[admin]", false};
    SpawnOptions spawn;
    spawn.argv = socket_activate(activation, command);
    spawn.stderr_path = dir.file("passgate.err");
    spawn.stdout_path = dir.file("passgate.out");
    Process process(spawn);
    INFO("tls on " << address(tls_port) << ", admin on " << address(admin_port) << ", bound on " << address(bound_port));

    // The first connection (to the admin socket) starts passgate; it answers it once it serves.
    REQUIRE(wait_until([&] { return process.stderr_text().find("Listening on " + address(admin_port)) != std::string::npos; },
                       Millis(5000)));
    const bool ready = wait_until(
        [&] {
            if (!process.running()) return true;
            const auto response = http_get(admin_port, "/readyz", Millis(500));
            return response && response->status == 200;
        },
        Millis(15000), Millis(20)) && process.running();
    INFO("stderr:\n" << process.stderr_text());
    REQUIRE(ready);

    // The exec chain kept the pid systemd-socket-activate set in LISTEN_PID: this is passgate.
    CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(process.pid()) + "/exe") ==
          std::filesystem::canonical(passgate_binary()));
    const std::string no_capability = "0000000000000000";
    CHECK(status_field(process.pid(), "Uid") == "65534\t65534\t65534\t65534");
    CHECK(status_field(process.pid(), "CapEff") == no_capability);
    CHECK(status_field(process.pid(), "CapPrm") == no_capability);
    CHECK(status_field(process.pid(), "CapInh") == no_capability);
    CHECK(status_field(process.pid(), "CapBnd") == no_capability);
    CHECK(status_field(process.pid(), "CapAmb") == no_capability);

    // Ports below 1024 without CAP_NET_BIND_SERVICE: only the passed sockets can be listening there.
    CHECK(echo_round_trip(tls_port, captured_hello("curl-h2.bin").bytes, {'o', 'n', 'e'}).empty());
    CHECK(echo_round_trip(bound_port, captured_hello("curl-h2.bin").bytes, {'t', 'w', 'o'}).empty());
    CHECK(backend.accepted() == 2);

    const int status = process.terminate(Millis(5000));
    const std::string log = process.stderr_text();
    INFO("stderr:\n" << log);
    CHECK(status == 0);
    CHECK(sanitizer_report(log).empty());
    std::istringstream lines(log);
    std::string line;
    for (int count = 0; count < 100000 && std::getline(lines, line); ++count)
        if (line.find(" reason=") != std::string::npos) CHECK(line.find(" reason=completed ") != std::string::npos);
}

TEST_CASE("socket activation: a passed socket that no listener names is an error",
          "[integration][socket_activation]") {
    if (!runs_here()) return;
    TempDir dir;
    const std::uint16_t tls_port = free_port(), web_port = free_port(), admin_port = free_port();
    const std::string config = config_for({{"tls", tls_port}, {"web", web_port}}, admin_port, 9);

    SECTION("a name that is no listener's") {
        const Outcome outcome = start_activated(dir, "typo", {{address(tls_port)}, "tsl", false}, config);
        INFO("stderr:\n" << outcome.err);
        CHECK(outcome.status == 1);
        CHECK(outcome.err.find("systemd passed a socket named \"tsl\" (FileDescriptorName=) but no [[listener]] "
                               "has that name; listeners: tls, web") != std::string::npos);
        CHECK(sanitizer_report(outcome.err).empty());
    }
    SECTION("a socket unit without FileDescriptorName= (systemd names its sockets after the unit)") {
        const Outcome outcome =
            start_activated(dir, "unnamed", {{address(tls_port)}, "passgate-activated.socket", false}, config);
        INFO("stderr:\n" << outcome.err);
        CHECK(outcome.status == 1);
        CHECK(outcome.err.find("systemd passed a socket named \"passgate-activated.socket\" (FileDescriptorName=) "
                               "but no [[listener]] has that name; listeners: tls, web") != std::string::npos);
        CHECK(sanitizer_report(outcome.err).empty());
    }
}

TEST_CASE("socket activation: a passed socket bound to another address than its listener's is an error",
          "[integration][socket_activation]") {
    if (!runs_here()) return;
    TempDir dir;
    const std::uint16_t tls_port = free_port(), web_port = free_port(), admin_port = free_port();
    const std::uint16_t other_port = free_port();
    const std::string config = config_for({{"tls", tls_port}, {"web", web_port}}, admin_port, 9);

    SECTION("a listener's socket on another port") {
        const Outcome outcome = start_activated(dir, "port", {{address(other_port)}, "tls", false}, config);
        INFO("stderr:\n" << outcome.err);
        CHECK(outcome.status == 1);
        CHECK(outcome.err.find("listener \"tls\": systemd passed a socket bound to " + address(other_port) +
                               " (FileDescriptorName=tls) but address = \"" + address(tls_port) + "\"") !=
              std::string::npos);
        CHECK(sanitizer_report(outcome.err).empty());
    }
    SECTION("two listeners' sockets with each other's name") {
        const Outcome outcome =
            start_activated(dir, "swapped", {{address(web_port), address(tls_port)}, "tls:web", false}, config);
        INFO("stderr:\n" << outcome.err);
        CHECK(outcome.status == 1);
        const bool tls_reported =
            outcome.err.find("listener \"tls\": systemd passed a socket bound to " + address(web_port) +
                             " (FileDescriptorName=tls) but address = \"" + address(tls_port) + "\"") != std::string::npos;
        const bool web_reported =
            outcome.err.find("listener \"web\": systemd passed a socket bound to " + address(tls_port) +
                             " (FileDescriptorName=web) but address = \"" + address(web_port) + "\"") != std::string::npos;
        CHECK((tls_reported || web_reported));
        CHECK(sanitizer_report(outcome.err).empty());
    }
    SECTION("the [admin] socket on another port than [admin] address") {
        const Outcome outcome = start_activated(dir, "admin", {{address(other_port)}, "[admin]", false}, config);
        INFO("stderr:\n" << outcome.err);
        CHECK(outcome.status == 1);
        CHECK(outcome.err.find("systemd passed a socket bound to " + address(other_port) +
                               " (FileDescriptorName=[admin]) but address = \"" + address(admin_port) + "\"") !=
              std::string::npos);
        CHECK(sanitizer_report(outcome.err).empty());
    }
}

TEST_CASE("socket activation: a passed descriptor that is not a listening TCP socket is an error",
          "[integration][socket_activation]") {
    if (!runs_here()) return;
    TempDir dir;
    const std::uint16_t tls_port = free_port(), admin_port = free_port();
    const std::string config = config_for({{"tls", tls_port}}, admin_port, 9);

    SECTION("a UDP socket") {
        const std::uint16_t udp_port = free_port();
        const Outcome outcome = start_activated(dir, "udp", {{address(udp_port)}, "tls", true}, config);
        INFO("stderr:\n" << outcome.err);
        CHECK(outcome.status == 1);
        CHECK(outcome.err.find("\"tls\"") != std::string::npos);
        CHECK(outcome.err.find("fd 3") != std::string::npos);
        CHECK(sanitizer_report(outcome.err).empty());
    }
    SECTION("a regular file") {
        // systemd-socket-activate passes only sockets it binds: a shell sets the variables for its
        // own pid, which passgate keeps through exec, and opens the file on fd 3.
        const std::string config_path = dir.file("file.toml");
        write_file(config_path, config);
        write_file(dir.file("not-a-socket"), "");
        std::vector<std::string> argv = {
            "sh", "-c",
            "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=tls; exec \"$@\" 3<\"" + dir.file("not-a-socket") + "\"",
            "sh"};
        const std::vector<std::string> passgate = passgate_command(config_path, true);
        argv.insert(argv.end(), passgate.begin(), passgate.end());
        const RunResult result = run(argv, dir, "file", Millis(10000));
        INFO("stderr:\n" << result.err);
        CHECK(result.status == 1);
        CHECK(result.err.find("\"tls\"") != std::string::npos);
        CHECK(result.err.find("fd 3") != std::string::npos);
        CHECK(sanitizer_report(result.err).empty());
    }
}
