// A route's hostnames_file (issue 23) in a real passgate: the file rewritten by atomic renames 100
// times while connections run (none may fail, the last version serves, none of an older one
// does), a malformed version that keeps the last good one (logged with FILE:LINE, counted), and
// `--check` / `passgate route` reporting a name claimed twice. Every wait is bounded.

#include "tests/support/backends.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

using namespace integration;

namespace {

// Atomic replace, as config/README.md tells operators to do it.
void replace_file(const std::string& path, const std::string& text) {
    write_file(path + ".tmp", text);
    REQUIRE(std::rename((path + ".tmp").c_str(), path.c_str()) == 0);
}

// Version `v` of the tenants file: 5,000 names of its own, a name in every version and a wildcard.
std::string tenants_version(int v) {
    std::string text = "# version " + std::to_string(v) + "\nstable.example.com\n*.wild.example.com\n";
    for (int k = 0; k < 5000; ++k) text += "v" + std::to_string(v) + "-" + std::to_string(k) + ".example.com\n";
    return text;
}

std::string hostfile_config(std::uint16_t port, const IdentBackend& tenant, const IdentBackend& fallback) {
    return "[admin]\naddress = \"@ADMIN@\"\n[access_log]\nenabled = false\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n"
           "default_route = \"fallback\"\n"
           "[[route]]\nname = \"tenants\"\nlisteners = [\"tls\"]\nhostnames_file = \"tenants.txt\"\n"
           "backends = [ { service = \"tenant\" } ]\n"
           "[[route]]\nname = \"fallback\"\nlisteners = [\"tls\"]\nbackends = [ { service = \"fallback\" } ]\n"
           "[[service]]\nname = \"tenant\"\nendpoints = [\"127.0.0.1:" + std::to_string(tenant.port()) + "\"]\n"
           "[[service]]\nname = \"fallback\"\nendpoints = [\"127.0.0.1:" + std::to_string(fallback.port()) + "\"]\n";
}

std::string backend_for(std::uint16_t port, const std::string& sni) { return ask_backend(port, minimal_client_hello(sni)); }

}  // namespace

TEST_CASE("hostnames_file: 100 atomic renames while connections run: none fails, the last version serves",
          "[integration][hostfile]") {
    TempDir dir;
    IdentBackend tenant("tenant");
    IdentBackend fallback("fallback");
    const std::uint16_t port = free_port();
    const std::string file = dir.file("tenants.txt");
    write_file(file, tenants_version(0));
    Passgate passgate(dir, {hostfile_config(port, tenant, fallback), {}, 2});
    REQUIRE(passgate.wait_ready());
    REQUIRE(backend_for(port, "v0-17.example.com") == "tenant");
    REQUIRE(metric_sample(passgate, "passgate_hostnames_file_names{route=\"tenants\"}") == 5002.0);

    // Names in every version: each connection must reach the tenant route, whatever the version.
    ClientLoop exact([&] { return backend_for(port, "stable.example.com") == "tenant"; });
    ClientLoop wildcard([&] { return backend_for(port, "a.b.WILD.example.com.") == "tenant"; });
    std::mt19937 random(23);
    constexpr int versions = 100;
    for (int v = 1; v <= versions; ++v) {
        replace_file(file, tenants_version(v));
        // 0-80 ms apart: some versions are read on their own, bursts are read once (the watch's
        // 50 ms debounce).
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 80)(random)));
    }
    const auto last_rename = std::chrono::steady_clock::now();
    // The last version serves; a name of the one before it is gone (the fallback takes it).
    const bool serving = wait_until([&] { return backend_for(port, "v100-4999.example.com") == "tenant"; },
                                    Millis(5000), Millis(5));
    const auto served_after = std::chrono::steady_clock::now() - last_rename;
    REQUIRE(serving);
    WARN("rename to serving (last of 100 versions, 5,002 names, 2 workers): "
         << std::chrono::duration_cast<std::chrono::milliseconds>(served_after).count() << " ms");
    exact.stop();
    wildcard.stop();
    CHECK(exact.failed() == 0);
    CHECK(wildcard.failed() == 0);
    CHECK(exact.succeeded() > 20);
    CHECK(wildcard.succeeded() > 20);
    CHECK(backend_for(port, "v99-4999.example.com") == "fallback");
    CHECK(backend_for(port, "v0-17.example.com") == "fallback");
    CHECK(backend_for(port, "v100-0.example.com") == "tenant");
    CHECK(metric_sample(passgate, "passgate_hostnames_file_errors_total{route=\"tenants\"}") == 0.0);

    // A malformed version: logged with FILE:LINE, counted, ignored; version 100 still serves.
    replace_file(file, tenants_version(101) + "bad..example.com\n");
    REQUIRE(wait_until([&] {
        return metric_sample(passgate, "passgate_hostnames_file_errors_total{route=\"tenants\"}") == 1.0;
    }, Millis(3000)));
    CHECK(passgate.wait_for_log("tenants.txt:5004: invalid hostname \"bad..example.com\": empty label; keeping the "
                                "last good version (5002 names)"));
    CHECK(backend_for(port, "v100-4999.example.com") == "tenant");
    CHECK(backend_for(port, "v101-0.example.com") == "fallback");
    // A good version after it is taken again.
    replace_file(file, tenants_version(102));
    CHECK(wait_until([&] { return backend_for(port, "v102-1.example.com") == "tenant"; }, Millis(3000), Millis(5)));
    // A reload that points the route at a file that does not exist is rejected as a whole (there
    // is no last good version of that file): the running tables keep serving.
    const std::string config = hostfile_config(port, tenant, fallback);
    const std::string missing = dir.file("missing.txt");
    std::string moved = config;
    moved.replace(moved.find("\"tenants.txt\""), 13, "\"missing.txt\"");
    reload_with(passgate, moved);
    REQUIRE(wait_for_reloads(passgate, 1));
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"failure\"}") == 1.0);
    CHECK(passgate.wait_for_log("route \"tenants\": hostnames_file: " + missing + ": cannot open"));
    CHECK(backend_for(port, "v102-1.example.com") == "tenant");
    // No snapshot piles up: the current one only, once no connection holds an older one.
    CHECK(wait_until([&] { return passgate.metric({"passgate_config_snapshots_live"}) == 1.0; }, Millis(3000)));
    stop_and_check(passgate);
}

TEST_CASE("hostnames_file: --check and passgate route report a name claimed twice", "[integration][hostfile]") {
    TempDir dir;
    write_file(dir.file("tenants.txt"), "shop.example.com\nshared.example.com\n*.wild.example.com\n");
    const std::string config =
        "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(free_port()) + "\"\n"
        "[[route]]\nname = \"inline\"\nlisteners = [\"tls\"]\nhostnames = [\"shared.example.com\"]\n"
        "backends = [ { service = \"s\" } ]\n"
        "[[route]]\nname = \"tenants\"\nlisteners = [\"tls\"]\nhostnames_file = \"tenants.txt\"\n"
        "backends = [ { service = \"s\" } ]\n"
        "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:1\"]\n";
    write_file(dir.file("passgate.toml"), config);
    const RunResult check = run({passgate_binary(), "--check", "--config", dir.file("passgate.toml")}, dir, "check");
    INFO("stdout:\n" << check.out << "\nstderr:\n" << check.err);
    CHECK(check.status == 0);
    CHECK(check.err.find("warning: " + dir.file("passgate.toml") +
                         ":9: route \"tenants\" hostname \"shared.example.com\" on listener \"tls\" is shadowed by "
                         "route \"inline\" (defined first, same hostname); it never matches there") != std::string::npos);
    CHECK(check.out.find("route tenants: hostnames_file " + dir.file("tenants.txt") + " (3 names here)") !=
          std::string::npos);

    const RunResult route = run({passgate_binary(), "route", "--config", dir.file("passgate.toml"), "--sni",
                                 "shared.example.com"}, dir, "route");
    INFO("route:\n" << route.out << route.err);
    CHECK(route.status == 0);
    CHECK(route.out.find("=> route \"inline\": exact hostname shared.example.com") != std::string::npos);
    CHECK(route.out.find("lost: route \"tenants\" (exact hostname shared.example.com): defined later") !=
          std::string::npos);
    const RunResult wild = run({passgate_binary(), "route", "--config", dir.file("passgate.toml"), "--sni",
                                "x.WILD.example.com"}, dir, "route-wild");
    CHECK(wild.out.find("=> route \"tenants\": wildcard *.wild.example.com") != std::string::npos);

    // A malformed file: --check fails naming FILE:LINE, as start-up would.
    write_file(dir.file("tenants.txt"), "ok.example.com\n10.0.0.1\n");
    const RunResult bad = run({passgate_binary(), "--check", "--config", dir.file("passgate.toml")}, dir, "check-bad");
    CHECK(bad.status == 1);
    CHECK(bad.err.find(dir.file("tenants.txt") + ":2: invalid hostname \"10.0.0.1\": IP literals are not hostnames") !=
          std::string::npos);
}
