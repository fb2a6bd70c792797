#include "tests/support/passgate.h"

#include "tests/support/net.h"

#include <catch2/catch.hpp>

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace integration {

std::string passgate_binary() { return required_env("PASSGATE_BINARY"); }

Passgate::Passgate(const TempDir& dir, const PassgateOptions& options, const std::string& name,
                   const PassgateLaunch& launch, const std::string& binary)
    : config_path_(dir.file(name + ".toml")), admin_port_(free_port()) {
    std::string config = options.config;
    const std::string marker = "@ADMIN@";
    const std::string admin = "127.0.0.1:" + std::to_string(admin_port_);
    for (std::size_t at = config.find(marker); at != std::string::npos; at = config.find(marker, at))
        config.replace(at, marker.size(), admin);
    write_file(config_path_, config);

    SpawnOptions spawn;
    spawn.argv = launch.prefix;
    const std::string program = binary.empty() ? passgate_binary() : binary;
    spawn.argv.insert(spawn.argv.end(), {program, "--config", config_path_, "--workers",
                                         std::to_string(options.workers)});
    if (launch.allow_root) spawn.argv.push_back("--allow-root");
    spawn.argv.insert(spawn.argv.end(), options.extra_args.begin(), options.extra_args.end());
    spawn.stdout_path = dir.file(name + ".out");
    spawn.stderr_path = dir.file(name + ".err");
    process_ = std::make_unique<Process>(spawn);
}

bool Passgate::wait_ready(Millis timeout) {
    const bool ready = wait_until(
        [this] {
            if (!process_->running()) return true;  // ends the wait; checked below
            const auto response = http_get(admin_port_, "/readyz", Millis(500));
            return response && response->status == 200;
        },
        timeout, Millis(20)) && process_->running();
    if (!ready)
        UNSCOPED_INFO("passgate did not become ready (" << (process_->running() ? "running" : "exited")
                                                        << "); stderr:\n" << stderr_text());
    return ready;
}

bool Passgate::wait_for_log(const std::string& needle, Millis timeout) const {
    return wait_until([&] { return stderr_text().find(needle) != std::string::npos; }, timeout);
}

bool Passgate::wait_for_client_log(const std::string& client, const std::string& needle,
                                   Millis timeout) const {
    const std::string field = "client=" + client;
    return wait_until(
        [&] {
            for (const std::string& line : log_lines_with({field, needle})) {
                const std::size_t at = line.find(field) + field.size();
                if (at == line.size() || line[at] == ' ') return true;  // not a longer port
            }
            return false;
        },
        timeout);
}

std::vector<std::string> Passgate::failed_connection_lines() const {
    std::vector<std::string> failed;
    for (const std::string& line : log_lines_with({" reason="}))
        if (line.find(" reason=completed ") == std::string::npos) failed.push_back(line);
    return failed;
}

std::vector<std::string> Passgate::log_lines_with(const std::vector<std::string>& needles) const {
    std::vector<std::string> lines;
    std::istringstream in(stderr_text());
    std::string line;
    for (int count = 0; count < 1000000 && std::getline(in, line); ++count) {
        bool all = true;
        for (const std::string& needle : needles) all = all && line.find(needle) != std::string::npos;
        if (all) lines.push_back(line);
    }
    return lines;
}

std::optional<double> Passgate::metric(const std::vector<std::string>& names) const {
    const auto response = http_get(admin_port_, "/metrics");
    if (!response || response->status != 200) return std::nullopt;
    for (const std::string& name : names) {
        std::optional<double> sum;
        std::istringstream in(response->body);
        std::string line;
        for (int count = 0; count < 1000000 && std::getline(in, line); ++count) {
            if (line.empty() || line[0] == '#') continue;
            const std::size_t end = line.find_first_of("{ ");
            if (end == std::string::npos || line.compare(0, end, name) != 0 || end != name.size()) continue;
            const std::size_t space = line.rfind(' ');
            sum = sum.value_or(0) + std::strtod(line.c_str() + space + 1, nullptr);
        }
        if (sum) return sum;
    }
    return std::nullopt;
}

// ---- Reloads -------------------------------------------------------------------------------------

std::string with_admin_address(const Passgate& passgate, const std::string& config) {
    std::string text = config;
    const std::string marker = "@ADMIN@";
    const std::string admin = "127.0.0.1:" + std::to_string(passgate.admin_port());
    for (std::size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at))
        text.replace(at, marker.size(), admin);
    return text;
}

void reload_with(Passgate& passgate, const std::string& config) {
    const std::string temporary = passgate.config_path() + ".new";
    write_file(temporary, with_admin_address(passgate, config));
    std::filesystem::rename(temporary, passgate.config_path());
    passgate.process().send_signal(SIGHUP);
}

namespace {

std::optional<double> sample_in(const std::string& exposition, const std::string& series) {
    std::istringstream in(exposition);
    std::string line;
    for (int count = 0; count < 1000000 && std::getline(in, line); ++count) {
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
            line[series.size()] == ' ')
            return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
    return std::nullopt;
}

}  // namespace

std::optional<double> metric_sample(const Passgate& passgate, const std::string& series) {
    const auto response = http_get(passgate.admin_port(), "/metrics");
    if (!response || response->status != 200) return std::nullopt;
    return sample_in(response->body, series);
}

// The sum of the samples of `family` whose labels contain every one of `labels` (for example
// `reason="timeout"`); 0 when there are none. A failed scrape fails the test.
double labelled_sum(const Passgate& passgate, const std::string& family,
                    const std::vector<std::string>& labels) {
    const auto response = http_get(passgate.admin_port(), "/metrics");
    REQUIRE(response);
    REQUIRE(response->status == 200);
    std::istringstream in(response->body);
    std::string line;
    double sum = 0;
    for (int count = 0; count < 1000000 && std::getline(in, line); ++count) {
        if (line.rfind(family + "{", 0) != 0) continue;
        bool all = true;
        for (const std::string& label : labels) all = all && line.find(label) != std::string::npos;
        if (all) sum += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    }
    return sum;
}

std::optional<double> reloads_handled(const Passgate& passgate) {
    // One scrape for both, so that a reload in between cannot be counted twice or missed.
    const auto response = http_get(passgate.admin_port(), "/metrics");
    if (!response || response->status != 200) return std::nullopt;
    const auto success = sample_in(response->body, "passgate_config_reloads_total{result=\"success\"}");
    const auto failure = sample_in(response->body, "passgate_config_reloads_total{result=\"failure\"}");
    if (!success || !failure) return std::nullopt;
    return *success + *failure;
}

bool wait_for_reloads(const Passgate& passgate, int count, Millis timeout) {
    return wait_until([&] { return reloads_handled(passgate) == static_cast<double>(count); }, timeout,
                      Millis(5));
}

std::string sanitizer_report(const std::string& text) {
    // A failed assert() comes first: its line precedes the sanitizer's report of the abort.
    for (const char* marker : {"Assertion `", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"}) {
        const std::size_t at = text.find(marker);
        if (at != std::string::npos) return text.substr(at, 4000);
    }
    return {};
}

void stop_and_check(Passgate& passgate) {
    const int status = passgate.stop(Millis(5000));
    const std::string log = passgate.stderr_text();
    INFO("passgate stderr (tail):\n" << (log.size() > 6000 ? log.substr(log.size() - 6000) : log));
    CHECK(status == 0);
    CHECK(sanitizer_report(log).empty());
}

void check_second_sigterm_stops_at_once(Passgate& passgate, int client_fd) {
    const Clock::time_point start = Clock::now();
    passgate.process().send_signal(SIGTERM);
    const std::optional<int> status = passgate.process().wait_exit(Millis(3000));
    const std::string log = passgate.stderr_text();
    INFO(log);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    CHECK(Clock::now() - start < Millis(1000));
    CHECK(log.find("again, closing every connection now") != std::string::npos);
    CHECK(wait_closed(client_fd, Millis(2000)).closed);
    CHECK(sanitizer_report(log).empty());
}

// ---- Captured hellos -----------------------------------------------------------------------------

namespace {

// The value of `"key": "..."` or `"key": null` after `from` in a JSON text (index.json is flat and
// machine-written; this is all the parsing it needs).
std::optional<std::string> json_string(const std::string& text, const std::string& key,
                                       std::size_t from, std::size_t until) {
    const std::size_t at = text.find("\"" + key + "\"", from);
    if (at == std::string::npos || at >= until) return std::nullopt;
    const std::size_t colon = text.find(':', at);
    const std::size_t value = text.find_first_not_of(" \t\r\n", colon + 1);
    if (value == std::string::npos || text[value] != '"') return std::nullopt;  // null
    const std::size_t end = text.find('"', value + 1);
    return text.substr(value + 1, end - value - 1);
}

std::vector<CapturedHello> load_hellos() {
    const std::string directory = required_env("PASSGATE_CLIENTHELLOS");
    const std::string index = read_file(directory + "/index.json");
    std::vector<CapturedHello> hellos;
    std::size_t from = 0;
    for (int entry = 0; entry < 1000; ++entry) {
        const std::size_t open = index.find('{', from);
        if (open == std::string::npos) break;
        const std::size_t close = index.find('}', open);
        const std::optional<std::string> file = json_string(index, "file", open, close);
        if (file) {
            CapturedHello hello;
            hello.file = *file;
            hello.sni = json_string(index, "sni", open, close);
            hello.bytes = read_binary_file(directory + "/" + *file);
            hellos.push_back(std::move(hello));
        }
        from = close + 1;
    }
    return hellos;
}

}  // namespace

const std::vector<CapturedHello>& captured_hellos() {
    static const std::vector<CapturedHello> hellos = load_hellos();
    return hellos;
}

const CapturedHello& captured_hello(const std::string& file) {
    for (const CapturedHello& hello : captured_hellos())
        if (hello.file == file) return hello;
    FAIL("no captured hello " << file << " in $PASSGATE_CLIENTHELLOS/index.json");
    throw std::logic_error("unreachable");
}

}  // namespace integration
