// The command line as scripts use it (issue 21, item 4): `passgate route` says its verdict in its
// exit status, usage errors exit 2 everywhere, `--workers 0` means one worker per CPU, --help
// gives the defaults and the exit codes.

#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sched.h>

#include <string>
#include <vector>

using namespace integration;

namespace {

// "strict" has no default_route; "fallback" sends every other hello to "r".
std::string two_listeners_config() {
    return "[admin]\naddress = \"127.0.0.1:" + std::to_string(free_port()) + "\"\n\n"
           "[[listener]]\nname = \"strict\"\naddress = \"127.0.0.1:" + std::to_string(free_port()) + "\"\n\n"
           "[[listener]]\nname = \"fallback\"\naddress = \"127.0.0.1:" + std::to_string(free_port()) + "\"\n"
           "default_route = \"r\"\n\n"
           "[[route]]\nname = \"r\"\nlisteners = [\"strict\", \"fallback\"]\nhostnames = [\"a.example.com\"]\n"
           "backends = [ { service = \"s\" } ]\n\n"
           "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:9\"]\n";
}

int status_of(const RunResult& result) {
    REQUIRE(result.status.has_value());
    return *result.status;
}

}  // namespace

TEST_CASE("cli: passgate route exits with its verdict: 0 routed, 3 no_route, 4 no_sni, 5 rejected; 1 config, 2 usage",
          "[integration][cli]") {
    TempDir dir;
    const std::string config = dir.file("passgate.toml");
    write_file(config, two_listeners_config());
    const auto route = [&](std::vector<std::string> arguments) {
        std::vector<std::string> argv = {passgate_binary(), "route", "--config", config};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        return run(argv, dir, "route", Millis(10000));
    };
    struct Row {
        std::vector<std::string> arguments;
        int status;
    };
    const std::vector<Row> rows = {
        {{"--sni", "a.example.com"}, 0},
        {{"--sni", "b.example.com"}, 3},                            // no_route on "strict"
        {{"--sni", "b.example.com", "--listener", "fallback"}, 0},  // its default_route
        {{"--sni", "b.example.com", "--listener", "strict"}, 3},
        {{"--sni", ""}, 4},                                         // no_sni on "strict"
        {{"--sni", "", "--listener", "fallback"}, 0},
        {{"--sni", "192.0.2.1"}, 5},                                // bad_sni: an IP literal
        {{"--sni", "a..example.com"}, 5},                           // bad_sni: an empty label
    };
    for (const Row& row : rows) {
        const RunResult result = route(row.arguments);
        INFO("route " << (row.arguments.size() > 1 ? row.arguments[1] : "") << " " << row.arguments.size()
                      << " args\nstdout:\n" << result.out << "stderr:\n" << result.err);
        CHECK(status_of(result) == row.status);
        CHECK(!result.out.empty());  // the explanation is printed whatever the verdict
    }

    // An unknown listener is a usage error that lists the names.
    const RunResult unknown = route({"--sni", "a.example.com", "--listener", "public"});
    CHECK(status_of(unknown) == 2);
    CHECK(unknown.err == "passgate route: --listener: no listener \"public\" in " + config +
                             "; listeners: strict, fallback\n");
    // No --sni: usage.
    CHECK(status_of(route({})) == 2);
    // A config that does not load: 1.
    write_file(config, "[[listener]]\nname = \"x\"\n");
    CHECK(status_of(route({"--sni", "a.example.com"})) == 1);
}

TEST_CASE("cli: usage errors exit 2 everywhere", "[integration][cli]") {
    TempDir dir;
    const std::string config = dir.file("passgate.toml");
    write_file(config, two_listeners_config());
    const std::vector<std::vector<std::string>> usages = {
        {"--no-such-flag"},
        {"--config"},                                        // no value
        {"--check"},                                         // no --config
        {"--config", config, "--workers", "1025"},
        {"--config", config, "--workers", "-1"},
        {"--config", config, "--workers", "two"},
        {"--config", config, "--log-level", "verbose"},
        {"route", "--config", config, "--sni"},              // no value
        {"route", "--config", config, "--sni", "a.example.com", "--listener"},
        {"upgrade"},                                         // neither --config nor --admin
        {"upgrade", "--admin", "localhost"},
    };
    for (const std::vector<std::string>& arguments : usages) {
        std::vector<std::string> argv = {passgate_binary()};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        const RunResult result = run(argv, dir, "usage", Millis(10000));
        INFO("arguments: " << arguments.front() << " (" << arguments.size() << ")\nstderr:\n" << result.err);
        CHECK(status_of(result) == 2);
        CHECK(!result.err.empty());
    }
}

TEST_CASE("cli: --help gives the default log level and the exit codes", "[integration][cli]") {
    TempDir dir;
    const RunResult help = run({passgate_binary(), "--help"}, dir, "help", Millis(10000));
    CHECK(status_of(help) == 0);
    CHECK(help.out.find("--log-level LEVEL  error, warning, info or debug (default: info)") != std::string::npos);
    CHECK(help.out.find("0: one per usable CPU") != std::string::npos);
    CHECK(help.out.find("3 no_route") != std::string::npos);
    CHECK(help.out.find("4 no_sni") != std::string::npos);
    CHECK(help.out.find("5 rejected before routing") != std::string::npos);
    CHECK(help.out.find("2 usage error") != std::string::npos);
}

TEST_CASE("cli: --workers 0 starts one worker per usable CPU, as workers = 0 does", "[integration][cli]") {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    REQUIRE(::sched_getaffinity(0, sizeof cpus, &cpus) == 0);
    const int usable = CPU_COUNT(&cpus);
    TempDir dir;
    const std::string listen = std::to_string(free_port());
    Passgate passgate(dir,
                      {"[admin]\naddress = \"@ADMIN@\"\n\n[runtime]\nworkers = 1\n\n"
                       "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + listen + "\"\n\n"
                       "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nbackends = [ { service = \"s\" } ]\n\n"
                       "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:9\"]\n",
                       {},
                       0});
    REQUIRE(passgate.wait_ready());
    // The command line overrides [runtime] workers = 1.
    CHECK(passgate.wait_for_log("started " + std::to_string(usable) + " workers"));
    stop_and_check(passgate);
}
