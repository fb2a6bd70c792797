// `passgate --check` and start-up agree (issue 21, item 1): the unit runs --check as ExecStartPre,
// so a config --check passes must start, and one it refuses must not. For each config of a table
// (broken ones and good ones) both run on the same file and must give the same verdict, the
// expected one.

#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

using namespace integration;

namespace {

struct Ports {
    std::uint16_t admin = free_port();
    std::uint16_t listener = free_port();
    std::uint16_t backend = free_port();
};

struct ParityCase {
    std::string name;
    // The TOML, given the ports and the case's folder (for absolute paths).
    std::function<std::string(const Ports&, const std::string& folder)> config;
    // Files the config refers to, made in the case's folder before both runs.
    std::function<void(const std::string& folder)> prepare = [](const std::string&) {};
    bool starts = false;     // the expected verdict of both
    bool as_nobody = false;  // run both as nobody: root would pass any permission check
};

std::string admin(const Ports& ports) {
    return "[admin]\naddress = \"127.0.0.1:" + std::to_string(ports.admin) + "\"\n\n";
}

std::string listener(const std::string& name, const std::string& address) {
    return "[[listener]]\nname = \"" + name + "\"\naddress = \"" + address + "\"\n\n";
}

std::string route_and_service(const std::vector<std::string>& listeners, const std::string& service_body) {
    std::string names;
    for (const std::string& name : listeners) names += (names.empty() ? "\"" : ", \"") + name + "\"";
    return "[[route]]\nname = \"r\"\nlisteners = [" + names + "]\nbackends = [ { service = \"s\" } ]\n\n"
           "[[service]]\nname = \"s\"\n" + service_body;
}

std::string static_service(const Ports& ports) {
    return "endpoints = [\"127.0.0.1:" + std::to_string(ports.backend) + "\"]\n";
}

std::string v4(std::uint16_t port, const std::string& ip = "127.0.0.1") { return ip + ":" + std::to_string(port); }
std::string v6(std::uint16_t port, const std::string& ip) { return "[" + ip + "]:" + std::to_string(port); }

// One listener on 127.0.0.1, a static service, and `extra` (an [access_log] table, ...).
std::string simple(const Ports& ports, const std::string& extra) {
    return admin(ports) + extra + listener("a", v4(ports.listener)) + route_and_service({"a"}, static_service(ports));
}

std::vector<ParityCase> parity_cases() {
    std::vector<ParityCase> cases;
    cases.push_back({"missing endpoints_file",
                     [](const Ports& p, const std::string&) {
                         return admin(p) + listener("a", v4(p.listener)) +
                                route_and_service({"a"}, "endpoints_file = \"missing.endpoints\"\n");
                     }});
    cases.push_back({"malformed endpoints_file",
                     [](const Ports& p, const std::string&) {
                         return admin(p) + listener("a", v4(p.listener)) +
                                route_and_service({"a"}, "endpoints_file = \"bad.endpoints\"\n");
                     },
                     [](const std::string& folder) { write_file(folder + "/bad.endpoints", "not-an-address\n"); }});
    cases.push_back({"access log in a folder that does not exist", [](const Ports& p, const std::string& folder) {
                         return simple(p, "[access_log]\npath = \"" + folder + "/missing/access.log\"\n\n");
                     }});
    cases.push_back({"access log folder not writable by the service user (nobody)",
                     [](const Ports& p, const std::string& folder) {
                         return simple(p, "[access_log]\npath = \"" + folder + "/read-only/access.log\"\n\n");
                     },
                     [](const std::string& folder) {
                         REQUIRE(::mkdir((folder + "/read-only").c_str(), 0555) == 0);
                         REQUIRE(::chmod((folder + "/read-only").c_str(), 0555) == 0);  // whatever the umask
                     },
                     false, true});
    cases.push_back({"access log path is a folder", [](const Ports& p, const std::string& folder) {
                         return simple(p, "[access_log]\npath = \"" + folder + "\"\n\n");
                     }});
    cases.push_back({"listeners 0.0.0.0:P and 127.0.0.1:P", [](const Ports& p, const std::string&) {
                         return admin(p) + listener("a", v4(p.listener, "0.0.0.0")) +
                                listener("b", v4(p.listener)) + route_and_service({"a", "b"}, static_service(p));
                     }});
    cases.push_back({"listeners [::]:P and 127.0.0.1:P (dual stack)", [](const Ports& p, const std::string&) {
                         return admin(p) + listener("a", v6(p.listener, "::")) + listener("b", v4(p.listener)) +
                                route_and_service({"a", "b"}, static_service(p));
                     }});
    cases.push_back({"listeners [::1]:P and [::]:P", [](const Ports& p, const std::string&) {
                         return admin(p) + listener("a", v6(p.listener, "::1")) + listener("b", v6(p.listener, "::")) +
                                route_and_service({"a", "b"}, static_service(p));
                     }});
    cases.push_back({"listener 0.0.0.0:P overlapping the admin address 127.0.0.1:P",
                     [](const Ports& p, const std::string&) {
                         return admin(p) + listener("a", v4(p.admin, "0.0.0.0")) +
                                route_and_service({"a"}, static_service(p));
                     }});
    cases.push_back({"gateway_api manifests file that does not exist", [](const Ports& p, const std::string&) {
                         return admin(p) + "[gateway_api]\nmanifests = [\"missing.yaml\"]\n\n" +
                                listener("a", v4(p.listener)) + route_and_service({"a"}, static_service(p));
                     }});
    cases.push_back({"kubeconfig path that does not exist", [](const Ports& p, const std::string&) {
                         return admin(p) + "[kubernetes]\nkubeconfig = \"/nonexistent/passgate-kubeconfig\"\n\n" +
                                listener("a", v4(p.listener)) +
                                route_and_service({"a"}, "kubernetes = { namespace = \"default\", service = \"echo\", "
                                                         "port = 443 }\n");
                     }});
    // Good ones: they must start.
    cases.push_back({"good: a static service, access log to a new file in a writable folder",
                     [](const Ports& p, const std::string& folder) {
                         return simple(p, "[access_log]\npath = \"" + folder + "/access.log\"\n\n");
                     },
                     [](const std::string&) {}, true});
    cases.push_back({"good: endpoints_file, listeners on 127.0.0.1:P and [::1]:P (distinct addresses)",
                     [](const Ports& p, const std::string&) {
                         return admin(p) + listener("a", v4(p.listener)) + listener("b", v6(p.listener, "::1")) +
                                route_and_service({"a", "b"}, "endpoints_file = \"pool.endpoints\"\n");
                     },
                     [](const std::string& folder) { write_file(folder + "/pool.endpoints", "127.0.0.1:9\n"); },
                     true});
    cases.push_back({"good: as nobody, access log to an existing file nobody may write",
                     [](const Ports& p, const std::string& folder) {
                         return simple(p, "[access_log]\npath = \"" + folder + "/nobody.log\"\n\n");
                     },
                     [](const std::string& folder) {
                         write_file(folder + "/nobody.log", "");
                         REQUIRE(::chmod((folder + "/nobody.log").c_str(), 0666) == 0);
                     },
                     true, true});
    return cases;
}

// The command line prefix that runs a command as nobody (as the unit's User= would).
std::vector<std::string> as_nobody_prefix() {
    return {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
}

std::vector<std::string> command(const ParityCase& parity, std::vector<std::string> arguments) {
    std::vector<std::string> argv = parity.as_nobody ? as_nobody_prefix() : std::vector<std::string>{};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return argv;
}

// Started: ready (/readyz 200) before it exited; then stopped with SIGTERM. Not started: it
// exited first (or never got ready within the bound).
bool starts(const ParityCase& parity, const TempDir& dir, const std::string& config_path, std::uint16_t admin_port,
            std::string& output) {
    SpawnOptions options;
    options.argv = command(parity, {passgate_binary(), "--config", config_path, "--allow-root", "--workers", "2"});
    options.stdout_path = dir.file("start.out");
    options.stderr_path = dir.file("start.err");
    options.cwd = dir.path().string();
    Process process(options);
    bool ready = false;
    wait_until(
        [&] {
            if (!process.running()) return true;
            const std::optional<HttpResponse> response = http_get(admin_port, "/readyz", Millis(500));
            ready = response && response->status == 200;
            return ready;
        },
        Millis(15000), Millis(50));
    if (ready) {
        const int status = process.terminate();
        CHECK(status == 0);
    }
    output = process.stderr_text();
    CHECK(sanitizer_report(output).empty());
    return ready;
}

}  // namespace

TEST_CASE("check parity: --check and start-up give the same verdict on each config", "[integration][check_parity]") {
    const bool root = ::geteuid() == 0;
    for (const ParityCase& parity : parity_cases()) {
        if (parity.as_nobody && !root) {
            WARN("skipped (needs root to switch to nobody with setpriv): " << parity.name);
            continue;
        }
        SECTION(parity.name) {
            TempDir dir;
            REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);  // nobody reads its config there
            const Ports ports;
            parity.prepare(dir.path().string());
            const std::string config_path = dir.file("passgate.toml");
            write_file(config_path, parity.config(ports, dir.path().string()));
            REQUIRE(::chmod(config_path.c_str(), 0644) == 0);
            INFO("config:\n" << read_file(config_path));

            const RunResult check = run(command(parity, {passgate_binary(), "--check", "--config", config_path}), dir,
                                        "check", Millis(10000));
            INFO("--check exit " << (check.status ? std::to_string(*check.status) : "none") << "\nstdout:\n"
                                 << check.out << "stderr:\n" << check.err);
            REQUIRE(check.status.has_value());
            std::string start_output;
            const bool started = starts(parity, dir, config_path, ports.admin, start_output);
            INFO("start-up " << (started ? "ready" : "failed") << "; stderr:\n" << start_output);

            const bool check_passed = *check.status == 0;
            CHECK(check_passed == started);
            CHECK(started == parity.starts);
            if (check_passed) {
                // A pass says OK and, last, what it could not check.
                CHECK(check.out.find(config_path + ": OK\n") == 0);
                CHECK(check.out.find("not checked: ") != std::string::npos);
                CHECK(check.out.find("whether the ports are free (bound at start)\n") ==
                      check.out.size() - std::string("whether the ports are free (bound at start)\n").size());
            } else {
                // A failure never says OK.
                CHECK(*check.status == 1);
                CHECK(check.out.find(": OK") == std::string::npos);
            }
        }
    }
}
