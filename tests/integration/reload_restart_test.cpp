// A reload that changes settings only read at start (the access log's format and path, the
// worker count): each is named in a warning and counted by key, the running values stay in use,
// the rest of the reload is applied, and `passgate --check --against` predicted the same keys.

#include "tests/support/backends.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace integration;

namespace {

const std::vector<std::uint8_t>& hello() { return captured_hello("curl-h2.bin").bytes; }

// `workers`, the access log to `log` in `format`, and the listeners on `ports` (all to one route).
std::string restart_config(unsigned workers, const std::string& format, const std::string& log,
                           const std::vector<std::uint16_t>& ports, std::uint16_t backend) {
    std::string config = "[runtime]\nworkers = " + std::to_string(workers) +
                         "\n\n[admin]\naddress = \"@ADMIN@\"\n\n[access_log]\nformat = \"" + format +
                         "\"\npath = \"" + log + "\"\n\n";
    std::string names;
    for (std::size_t index = 0; index < ports.size(); ++index) {
        const std::string name = "tls" + std::to_string(index);
        config += "[[listener]]\nname = \"" + name + "\"\naddress = \"127.0.0.1:" + std::to_string(ports[index]) +
                  "\"\n\n";
        names += (names.empty() ? "\"" : ", \"") + name + "\"";
    }
    return config + "[[route]]\nname = \"r\"\nlisteners = [" + names +
           "]\nhostnames = [\"curl-h2.corpus.test\"]\nbackends = [ { service = \"pool\" } ]\n\n"
           "[[service]]\nname = \"pool\"\nendpoints = [ \"127.0.0.1:" + std::to_string(backend) + "\" ]\n";
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    for (int count = 0; count < 100000 && std::getline(in, line); ++count) lines.push_back(line);
    return lines;
}

// The keys of the "restart needed: KEY (OLD -> NEW)" lines of `passgate --check --against`.
std::set<std::string> predicted_keys(const std::string& output) {
    std::set<std::string> keys;
    const std::string prefix = "restart needed: ";
    for (const std::string& line : lines_of(output)) {
        if (line.rfind(prefix, 0) != 0 || line == prefix + "nothing") continue;
        keys.insert(line.substr(prefix.size(), line.find(" (") - prefix.size()));
    }
    return keys;
}

// The keys of passgate's "reload: KEY changed (...) but needs a restart" warnings in `log`.
std::multiset<std::string> warned_keys(const std::string& log) {
    std::multiset<std::string> keys;
    const std::string marker = "reload: ";
    for (const std::string& line : lines_of(log)) {
        const std::size_t at = line.find(marker);
        if (at == std::string::npos || line.find("but needs a restart") == std::string::npos) continue;
        const std::size_t start = at + marker.size();
        keys.insert(line.substr(start, line.find(" changed (", start) - start));
    }
    return keys;
}

// One connection through `port` to the backend, closed at once.
bool one_connection(std::uint16_t port) {
    Socket client = connect_to(port);
    return client && read_backend_id(client.get(), hello()) == "a";
}

// Access-log lines in `path` (a missing file has none).
std::vector<std::string> log_file_lines(const std::string& path) {
    if (!std::filesystem::exists(path)) return {};
    return lines_of(read_file(path));
}

}  // namespace

TEST_CASE("reload: access log format and path and workers need a restart: warned, counted by key, kept, "
          "and predicted by --check --against",
          "[integration][reload_restart]") {
    TempDir dir;
    IdentBackend backend("a");
    const std::uint16_t port = free_port();
    const std::uint16_t added_port = free_port();
    const std::string first_log = dir.file("first.log");
    const std::string second_log = dir.file("second.log");
    const std::string first = restart_config(2, "logfmt", first_log, {port}, backend.port());
    Passgate passgate(dir, {first, {}, 2});
    REQUIRE(passgate.wait_ready());
    REQUIRE(one_connection(port));
    REQUIRE(wait_until([&] { return log_file_lines(first_log).size() == 1; }, Millis(3000)));

    // The new file: 3 workers, JSON to another file, and a second listener (applied by a reload).
    const std::string second = restart_config(3, "json", second_log, {port, added_port}, backend.port());
    const std::string second_path = dir.file("second.toml");
    write_file(second_path, with_admin_address(passgate, second));
    const RunResult check = run({passgate_binary(), "--check", "--config", second_path, "--against",
                                 passgate.config_path()},
                                dir, "check_against");
    INFO("--check --against:\n" << check.out << check.err);
    REQUIRE(check.status == 0);
    CHECK(check.out.find("restart needed: access_log.format (\"logfmt\" -> \"json\")\n") != std::string::npos);
    CHECK(check.out.find("listeners added: tls1; removed: none; changed: none\n") != std::string::npos);
    CHECK(check.out.find("routes added: none; removed: none; changed: r\n") != std::string::npos);
    const std::set<std::string> predicted = predicted_keys(check.out);
    CHECK(predicted == std::set<std::string>{"runtime.workers", "access_log.format", "access_log.path"});

    reload_with(passgate, second);
    REQUIRE(wait_for_reloads(passgate, 1));
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"success\"}") == 1);
    INFO("stderr:\n" << passgate.stderr_text());
    CHECK(passgate.wait_for_log("reload: access_log.format changed (\"logfmt\" -> \"json\") but needs a restart; "
                                "still using \"logfmt\""));
    CHECK(passgate.wait_for_log("reload: access_log.path changed (\"" + first_log + "\" -> \"" + second_log +
                                "\") but needs a restart; still using \"" + first_log + "\""));
    CHECK(passgate.wait_for_log("reload: runtime.workers changed (2 -> 3) but needs a restart; still using 2"));
    const std::multiset<std::string> warned = warned_keys(passgate.stderr_text());
    CHECK(std::set<std::string>(warned.begin(), warned.end()) == predicted);
    CHECK(warned.size() == 3);
    for (const char* key : {"runtime.workers", "access_log.format", "access_log.path"})
        CHECK(metric_sample(passgate, "passgate_config_reload_restart_required_total{key=\"" + std::string(key) +
                                          "\"}") == 1);
    CHECK_FALSE(metric_sample(passgate, "passgate_config_reload_restart_required_total{key=\"admin.address\"}"));

    // The rest was applied (the new listener serves); its connection is logged to the first file,
    // in logfmt, and no second file appeared.
    REQUIRE(one_connection(added_port));
    CHECK(wait_until([&] { return log_file_lines(first_log).size() == 2; }, Millis(3000)));
    for (const std::string& line : log_file_lines(first_log)) {
        CHECK(line.find(" route=r ") != std::string::npos);
        CHECK(line.front() != '{');
    }
    CHECK_FALSE(std::filesystem::exists(second_log));

    // Reloaded again with the same pending changes: warned and counted again (still not applied).
    reload_with(passgate, second + "# again\n");
    REQUIRE(wait_for_reloads(passgate, 2));
    CHECK(metric_sample(passgate, "passgate_config_reload_restart_required_total{key=\"access_log.format\"}") == 2);
    // Back to the values in use: nothing to warn about, nothing counted.
    reload_with(passgate, first + "# back\n");
    REQUIRE(wait_for_reloads(passgate, 3));
    CHECK(metric_sample(passgate, "passgate_config_reload_restart_required_total{key=\"access_log.format\"}") == 2);
    CHECK(warned_keys(passgate.stderr_text()).size() == 6);
    stop_and_check(passgate);
}

TEST_CASE("--check --against: an unchanged file, a usage error, an invalid new file",
          "[integration][reload_restart]") {
    TempDir dir;
    std::string config = restart_config(1, "logfmt", "-", {free_port()}, 9);
    config.replace(config.find("@ADMIN@"), 7, "127.0.0.1:" + std::to_string(free_port()));
    const std::string path = dir.file("a.toml");
    write_file(path, config);
    const RunResult same = run({passgate_binary(), "--check", "--config", path, "--against", path}, dir, "same");
    INFO(same.out << same.err);
    CHECK(same.status == 0);
    CHECK(same.out.find("unchanged (the same hash): a reload changes nothing\n") != std::string::npos);

    const RunResult usage = run({passgate_binary(), "--config", path, "--against", path}, dir, "usage");
    CHECK(usage.status == 2);
    const RunResult missing =
        run({passgate_binary(), "--check", "--config", path, "--against", dir.file("missing.toml")}, dir, "missing");
    CHECK(missing.status == 2);

    const std::string broken = dir.file("broken.toml");
    write_file(broken, config + "[[service]]\nname = \"pool\"\nendpoints = [ \"127.0.0.1:9\" ]\n");
    const RunResult invalid = run({passgate_binary(), "--check", "--config", broken, "--against", path}, dir, "invalid");
    INFO(invalid.err);
    CHECK(invalid.status == 1);
    CHECK(invalid.err.find(broken + ":25: service[1].name: ") != std::string::npos);
    CHECK(invalid.out.find("restart needed") == std::string::npos);
}
